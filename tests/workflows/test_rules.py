"""The rules of the trade in running cases: statutory interest, the 14-day letter and its costs,
contact hours. Real workflows and activities on the time-skipping test server."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import pytest
from sqlmodel import Session

from dunflow.calendar import AMSTERDAM, is_business_day, is_holiday
from dunflow.contacts import set_opt_out
from dunflow.flow import FlowDefinition, FlowInvalid, parse_flow
from dunflow.interest import rate_on
from dunflow.store import Debtor


def consumer_interest(principal_cents: int, days: int, on) -> int:
    """Simple interest at the table's rate (one rate over the whole term), rounded half up."""
    basis_points = rate_on("consumer", on).basis_points
    return (2 * principal_cents * basis_points * days + 3_650_000) // (2 * 3_650_000)


async def test_interest_runs_from_the_day_after_due_in_the_state_and_the_letter(flows):
    case = await flows.start_case(amount_cents=24_500, due_in_days=14)  # the letter goes out on day 29
    due = await flows.today() + timedelta(days=14)
    await flows.advance(days=50)
    today = await flows.today()
    assert rate_on("consumer", due) == rate_on("consumer", today), "a rate changed meanwhile"
    state = await flows.state(case)  # as of its last step, the escalation after the letter's term
    assert state.interest_on > due + timedelta(days=30)
    assert state.interest_cents == consumer_interest(24_500, (state.interest_on - due).days, today) > 0

    letter = await flows.message_of(case, "final_notice")
    at_letter = consumer_interest(24_500, 15, today)
    assert f"tot vandaag is dat € 0,{at_letter:02d}." in letter.body
    assert f"wettelijke rente verschuldigd ({rate_on('consumer', today).basis_points / 100:g}% per jaar)" in letter.body


# --- the 14-day notice and collection costs --------------------------------------------------

SIGNALS = {
    "full_payment": {"action": "end", "outcome": "paid"}, "partial_payment": {"action": "continue"},
    "dispute_opened": {"action": "pause"}, "dispute_upheld": {"action": "end", "outcome": "dispute_upheld"},
    "dispute_rejected": {"action": "continue"}, "promise_to_pay": {"action": "pause"},
    "broken_promise": {"action": "continue"},
}


def notice_then_costs(wait: dict) -> dict:
    """The 14-day letter at once, a wait, then the costs."""
    return {"name": "notice_then_costs", "start": "letter", "signals": SIGNALS, "steps": {
        "letter": {"type": "send", "channel": "letter", "template": "final_notice", "notice": "fourteen_day",
                   "next": "wait_term"},
        "wait_term": {"type": "wait", "next": "charge"} | wait,
        "charge": {"type": "charge_costs", "next": "done"},
        "done": {"type": "end", "outcome": "handed_over"},
    }}


def any_day(day) -> bool:
    return True


def plain_friday(day) -> bool:
    """A Friday (no holiday) followed by a plain business week: a letter posted then is received Monday."""
    return day.weekday() == 4 and all(is_business_day(day + timedelta(days=n)) for n in (0, 3, 17))


async def start_on_a_friday(flows, data: dict, **case):
    handle = await flows.start_case(definition=FlowDefinition.model_validate(data), start_on=plain_friday, **case)
    return handle, await flows.today()


async def test_costs_too_early_are_refused_at_publish_and_escalated_at_run_time(flows):
    too_early = notice_then_costs({"days": 15})
    with pytest.raises(FlowInvalid, match="charges costs too early"):
        parse_flow(too_early)

    case, friday = await start_on_a_friday(flows, too_early, amount_cents=300_000)
    await flows.advance(days=16)
    state = await flows.state(case)
    term_ends = friday + timedelta(days=3 + 14)  # received Monday, then 14 days: a Monday
    assert state.notice_term_ends == term_ends
    assert (state.status, state.current_step, state.costs_cents, state.amount_open_cents) == (
        "escalated", "charge", 0, 300_000)
    assert state.escalation_reason == ("Incassokosten niet in rekening gebracht: the 14-day term of the notice "
                                       f"runs until {term_ends.isoformat()}")
    assert [e.kind for e in state.history if e.step == "charge"] == ["costs_refused", "escalated"]


async def test_costs_are_charged_the_day_after_the_term_with_their_breakdown(flows):
    case, friday = await start_on_a_friday(
        flows, notice_then_costs({"until": {"date": "notice_term_end", "offset_days": 1}}), amount_cents=300_000)
    letter = await flows.message_of(case, "letter")
    assert "Deze kosten bedragen € 425,00." in letter.body
    await flows.advance(days=17, hours=12)
    assert (await flows.state(case)).costs_cents == 0  # Monday, the last day of the term
    await flows.advance(hours=22)
    state = await flows.state(case)
    assert (state.status, state.outcome, state.costs_cents, state.amount_open_cents) == (
        "closed", "handed_over", 42_500, 342_500)
    [charged] = [e for e in state.history if e.kind == "costs_charged"]
    assert charged.detail == ("€425.00 collection costs on €3,000.00: 15% of €2,500.00 = €375.00; "
                              "10% of €500.00 = €50.00")
    assert charged.at.astimezone(AMSTERDAM).date() == friday + timedelta(days=18)  # 09:00 on Tuesday


async def test_a_consumer_without_a_notice_is_escalated_but_a_business_is_charged(flows):
    data = notice_then_costs({"until": {"date": "notice_term_end", "offset_days": 1}})
    data["steps"]["letter"]["notice"] = None  # an ordinary letter
    consumer = await flows.start_case(definition=FlowDefinition.model_validate(data), amount_cents=10_000,
                                      start_on=any_day)
    business = await flows.start_case(definition=FlowDefinition.model_validate(data), amount_cents=10_000,
                                      start_on=any_day,
                                      id="D-2", type="business")
    await flows.advance(hours=22)
    state = await flows.state(consumer)
    assert (state.status, state.costs_cents) == ("escalated", 0)
    assert "no 14-day notice was sent to this consumer" in state.escalation_reason
    result = await business.result()
    assert (result.costs_cents, result.amount_open_cents) == (4_000, 14_000)


# --- contact hours, the weekly maximum, opt-outs ---------------------------------------------


def contact_flow(first: dict, then: dict, rules: dict | None = None) -> dict:
    """A wait or a message first, then one message, under contact rules."""
    return {"name": "contact_rules_test", "start": "first", "signals": SIGNALS,
            "contact_rules": rules if rules is not None else {}, "steps": {
                "first": first | {"next": "then"},
                "then": then | {"next": "done"},
                "done": {"type": "end", "outcome": "closed"},
            }}


async def start_on(flows, data: dict, day_wanted, **case):
    handle = await flows.start_case(definition=FlowDefinition.model_validate(data), start_on=day_wanted, **case)
    return handle, await flows.today()


def at_local(day, hour: int) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=AMSTERDAM)


def sent(messages) -> list[tuple[str, datetime]]:
    """(channel, minute sent): timers fire a few milliseconds after their moment."""
    return [(m.channel, m.at.replace(second=0, microsecond=0)) for m in messages]


SMS = {"type": "send", "channel": "sms", "template": "reminder_sms"}


async def test_an_sms_due_late_on_saturday_goes_out_monday_at_eight(flows):
    def plain_weekend(day):
        return day.weekday() == 5 and not is_holiday(day) and is_business_day(day + timedelta(days=2))
    case, saturday = await start_on(flows, contact_flow({"type": "wait", "hours": 22}, SMS), plain_weekend)
    await flows.advance(days=1, hours=12)  # Sunday noon
    state = await flows.state(case)
    monday = saturday + timedelta(days=2)
    assert flows.messages(case) == []
    assert state.deferred == f"sms until {monday.isoformat()} 08:00 Europe/Amsterdam: outside contact hours"
    assert (state.next_action.at, state.next_action.description) == (
        at_local(monday, 8), "send sms (deferred: outside contact hours)")
    assert [e.kind for e in state.history if e.step == "then"] == ["send_deferred"]
    result = await case.result()
    assert sent(result.messages) == [("sms", at_local(monday, 8))]
    assert result.deferred is None


async def test_after_a_holiday_monday_the_sms_waits_for_tuesday(flows):
    def before_a_holiday_monday(day):
        return day.weekday() == 5 and is_holiday(day + timedelta(days=2)) and is_business_day(day + timedelta(days=3))
    case, saturday = await start_on(flows, contact_flow({"type": "wait", "hours": 22}, SMS), before_a_holiday_monday)
    result = await case.result()
    assert sent(result.messages) == [("sms", at_local(saturday + timedelta(days=3), 8))]


async def test_a_business_day_wait_skips_the_weekend(flows):
    email = {"type": "send", "channel": "email", "template": "reminder_1"}
    case, friday = await start_on(flows, contact_flow({"type": "wait", "business_days": 1}, email),
                                  lambda day: day.weekday() == 4 and is_business_day(day + timedelta(days=3)))
    result = await case.result()
    assert sent(result.messages) == [("email", at_local(friday + timedelta(days=3), 9))]


async def test_the_weekly_maximum_holds_across_two_cases_of_one_debtor(flows):
    email = {"type": "send", "channel": "email", "template": "reminder_1"}
    data = contact_flow(email, {"type": "wait", "days": 2}, rules={"max_per_week": 3})
    data["steps"]["then"]["next"] = "again"
    data["steps"]["again"] = email | {"next": "done"}
    first = await flows.start_case(definition=FlowDefinition.model_validate(data), start_on=any_day)  # emails on 0, 2
    second = await flows.start_case(definition=FlowDefinition.model_validate(data), start_on=any_day)  # on 1, 3
    await flows.advance(days=3, hours=1)
    assert len(flows.messages(first)) + len(flows.messages(second)) == 3
    state = await flows.state(second)
    day_0 = (await flows.today()) - timedelta(days=4)
    assert state.deferred.startswith(f"email until {(day_0 + timedelta(days=7)).isoformat()} 00:00")
    assert state.deferred.endswith(": 3 contacts this week already")

    await flows.advance(days=4)  # a week after the first email
    assert [m.step_id for m in flows.messages(second)] == ["first", "again"]
    assert (await second.result()).status == "closed"


async def test_an_opted_out_channel_is_not_used_and_the_reason_is_on_the_timeline(flows, engine):
    with Session(engine) as session:
        session.add(Debtor(id="D-9", name="Els"))
        session.commit()
        set_opt_out(session, "D-9", "email", True, reason="asked by phone")
    email = {"type": "send", "channel": "email", "template": "reminder_1"}
    case = await flows.start_case(definition=FlowDefinition.model_validate(contact_flow(email, SMS)), id="D-9")
    result = await case.result()
    assert [m.channel for m in result.messages] == ["sms"]
    assert any(e.kind == "send_failed" and "opted out of email" in e.detail for e in result.history)


# --- several invoices, one debtor ------------------------------------------------------------


def reminder_after_due(combine: bool) -> dict:
    return {"name": "combined_test", "start": "wait_due", "signals": SIGNALS, "steps": {
        "wait_due": {"type": "wait", "until": {"date": "due_date", "offset_days": 1}, "next": "reminder"},
        "reminder": {"type": "send", "channel": "email", "template": "reminder_1", "combine": combine,
                     "next": "done"},
        "done": {"type": "end", "outcome": "closed"},
    }}


async def test_two_invoices_due_together_get_one_combined_reminder(flows):
    flow = FlowDefinition.model_validate(reminder_after_due(combine=True))
    first = await flows.start_case(definition=flow, start_on=any_day, number="F-A", due_in_days=14)
    second = await flows.start_case(definition=flow, start_on=any_day, number="F-B", due_in_days=13)  # a day later
    other = await flows.start_case(definition=flow, start_on=any_day, number="F-C", due_in_days=12, id="D-7")
    results = [await first.result(), await second.result()]
    assert [m.status for m in (await other.result()).messages] == ["sent"]  # another debtor, the same day

    statuses = sorted(result.messages[0].status for result in results)
    assert statuses == ["combined", "sent"]
    [sent] = [m for m in flows.messages(first) + flows.messages(second) if m.status == "sent"]
    [combined] = [m for m in flows.messages(first) + flows.messages(second) if m.status == "combined"]
    other_number = "F-B" if sent.case_id == first.id.removeprefix("case-") else "F-A"
    assert "Ook deze facturen staan nog open" in sent.body
    assert f"- factuur {other_number}: € 245,00, vervallen op" in sent.body
    assert "F-C" not in sent.body  # another debtor's invoice
    assert combined.body == f"combined into the reminder_1 of case {sent.case_id}"
    assert any(e.kind == "email_combined" for result in results for e in result.history)


async def test_without_combine_each_invoice_gets_its_own_reminder(flows):
    flow = FlowDefinition.model_validate(reminder_after_due(combine=False))
    first = await flows.start_case(definition=flow, start_on=any_day, number="F-D", due_in_days=14)
    second = await flows.start_case(definition=flow, start_on=any_day, number="F-E", due_in_days=13)
    results = [await first.result(), await second.result()]
    assert [result.messages[0].status for result in results] == ["sent", "sent"]
    assert all("Ook deze facturen" not in m.body for m in flows.messages(first) + flows.messages(second))
