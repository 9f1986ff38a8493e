"""Installment plans through the real workflows on the time-skipping server: a plan agreed after
the robo-call runs as a child of the case, reminds before each term, is paid term by term or
broken, and the case follows.

Day 0 is a plain Monday; the robo-call is on day 28 (a Monday) and the plan is agreed that
day, so with 3 terms they fall due on days 35, 35 + a month and 35 + two months."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session, select
from temporalio.client import WorkflowExecutionStatus

from dunflow.calendar import AMSTERDAM
from dunflow.case import DisputeOpened, OperatorAction
from dunflow.plans import PlanRequest, TermSpec
from dunflow.search_attributes import PLAN_STATUS
from dunflow.store import OutboundEvent
from tests.workflows.harness import payment
from workflows.collection import CollectionWorkflow

PLAN_REMINDER = "email:installment_plan"


async def case_with_plan_offer(flows, amount_cents: int = 30_000):
    """A case whose debtor pressed 1 in the robo-call and got the plan offer by SMS."""
    case = await flows.start_case(amount_cents=amount_cents)
    await flows.advance(days=28, hours=12)
    await flows.channel_event(case, "robo_call", "key_pressed", key="1")
    await flows.advance(hours=1)
    assert flows.sent_steps(case)[-1] == "sms:offer_plan"
    return case


async def agree(flows, case, terms: int | list[TermSpec], plan_id: str = "portal:1", source: str = "portal"):
    request = (PlanRequest(plan_id=plan_id, source=source, term_count=terms) if isinstance(terms, int)
               else PlanRequest(plan_id=plan_id, source=source, terms=terms, by="anna"))
    await case.signal(CollectionWorkflow.accept_plan, request)
    await flows.advance(hours=1)
    return await flows.state(case)


async def test_the_offer_after_pressing_1_is_an_sms_with_the_portal_link(flows):
    case = await case_with_plan_offer(flows)
    sms = flows.messages(case)[-1]
    assert "2 tot 6 maandelijkse termijnen" in sms.body
    assert "/p/" in sms.body and sms.body.count("#plan") == 1


async def test_a_plan_paid_term_by_term_ends_the_case_paid(flows):
    case = await case_with_plan_offer(flows)
    state = await agree(flows, case, 3)
    assert (state.status, state.plan.status) == ("in_plan", "active")
    assert [term.amount_cents for term in state.plan.terms] == [10_000, 10_000, 10_000]
    first_due = state.plan.terms[0].due_on
    assert first_due == state.interest_on + timedelta(days=7)
    assert (await case.describe()).typed_search_attributes.get(PLAN_STATUS) == "active"

    await flows.advance(days=5)  # term 1 due on day 35: its reminder went out on day 32
    assert flows.sent_steps(case)[-1] == PLAN_REMINDER
    assert "Termijn 1 van 3" in flows.messages(case)[-1].subject
    await case.signal(CollectionWorkflow.payment_received, payment("P-1", 10_000))
    await flows.advance(days=30)
    await case.signal(CollectionWorkflow.payment_received, payment("P-2", 10_000))
    await flows.advance(days=20)
    state = await flows.state(case)
    assert [term.status for term in state.plan.terms] == ["paid", "paid", "open"]
    await case.signal(CollectionWorkflow.payment_received, payment("P-3", 10_000))
    result = await case.result()
    assert (result.status, result.outcome, result.plan.status) == ("paid", "paid", "completed")
    assert flows.sent_steps(case).count(PLAN_REMINDER) == 2  # before terms 1 and 2; term 3 was paid early
    assert await flows.plan_handle(case).result() == "completed"


async def test_a_missed_term_gets_one_reminder_then_the_plan_breaks_and_the_flow_goes_on(flows, engine):
    case = await case_with_plan_offer(flows)
    await agree(flows, case, 2)
    await flows.advance(days=8)  # past term 1's day (35): the missed-term reminder
    state = await flows.state(case)
    assert state.plan.terms[0].status == "missed"
    assert flows.sent_steps(case)[-2:] == [PLAN_REMINDER, PLAN_REMINDER]
    assert "niet ontvangen" in flows.messages(case)[-1].subject
    await case.signal(CollectionWorkflow.payment_received, payment("P-1", 5_000))  # part of the term: not enough
    await flows.advance(days=8)
    state = await flows.state(case)
    assert state.plan.status == "broken"
    assert (state.plan.terms[0].paid_cents, state.amount_open_cents) == (5_000, 25_000)
    assert flows.sent_steps(case)[-1] == "letter:final_notice"  # the standard flow's broken_plan route
    assert state.status == "active"
    assert (await case.describe()).typed_search_attributes.get(PLAN_STATUS) == "broken"
    assert await flows.plan_handle(case).result() == "broken"
    with Session(engine) as session:
        kinds = [event.type for event in session.exec(select(OutboundEvent).where(
            OutboundEvent.case_id == case.id.removeprefix("case-")))]
    assert ["plan.accepted", "plan.broken"] == [kind for kind in kinds if kind.startswith("plan.")]


async def test_part_and_over_payments_fall_on_terms_in_order(flows):
    case = await case_with_plan_offer(flows, amount_cents=10_000)
    state = await agree(flows, case, 3)
    assert [term.amount_cents for term in state.plan.terms] == [3_334, 3_333, 3_333]
    await case.signal(CollectionWorkflow.payment_received, payment("P-1", 5_000))
    await flows.advance(hours=1)
    state = await flows.state(case)
    assert [(term.paid_cents, term.status) for term in state.plan.terms] == [
        (3_334, "paid"), (1_666, "open"), (0, "open")]
    await case.signal(CollectionWorkflow.payment_received, payment("P-2", 6_000))
    result = await case.result()
    assert (result.status, result.amount_open_cents, result.plan.paid_cents) == ("paid", -1_000, 10_000)
    assert [term.paid_cents for term in result.plan.terms] == [3_334, 3_333, 3_333]


async def test_plans_outside_the_flows_limits_are_refused_and_the_same_request_counts_once(flows):
    case = await case_with_plan_offer(flows)
    state = await agree(flows, case, 7, plan_id="portal:too-many")
    assert state.status == "active" and state.plan is None
    assert "7 terms are not offered; this amount allows 2 to 6 terms" in state.history[-1].detail
    wrong_sum = [TermSpec(due_on=state.interest_on + timedelta(days=10), amount_cents=20_000)]
    state = await agree(flows, case, wrong_sum, plan_id="operator:short", source="operator")
    assert state.plan is None and "add up to 20000 cents; the amount open is 30000" in state.history[-1].detail
    await agree(flows, case, 2, plan_id="portal:twice")
    state = await agree(flows, case, 2, plan_id="portal:twice")
    assert [entry.kind for entry in state.history].count("plan_accepted") == 1


async def test_an_operator_plan_replaces_the_running_one(flows):
    case = await case_with_plan_offer(flows)
    await agree(flows, case, 2)
    today = (await flows.state(case)).interest_on
    terms = [TermSpec(due_on=today + timedelta(days=3), amount_cents=1_000),
             TermSpec(due_on=today + timedelta(days=60), amount_cents=29_000)]
    state = await agree(flows, case, terms, plan_id="operator:new", source="operator")
    assert (state.plan.plan_id, state.plan.status, state.plan.source) == ("operator:new", "active", "operator")
    assert "plan_replaced" in [entry.kind for entry in state.history]
    first = flows.plan_handle(case, 1)
    assert (await first.describe()).status == WorkflowExecutionStatus.CANCELED
    await case.signal(CollectionWorkflow.payment_received, payment("P-1", 30_000))
    assert (await case.result()).outcome == "paid"
    assert await flows.plan_handle(case, 2).result() == "completed"


async def test_a_dispute_stops_the_plan_and_pauses_the_case(flows):
    case = await case_with_plan_offer(flows)
    await agree(flows, case, 3)
    await case.signal(CollectionWorkflow.dispute_opened, DisputeOpened(reason="wrong amount"))
    await flows.advance(hours=1)
    state = await flows.state_when(case, lambda state: state.status != "in_plan")
    assert (state.status, state.plan.status) == ("disputed", "stopped")
    await flows.advance(days=10)
    assert PLAN_REMINDER not in flows.sent_steps(case)  # a stopped plan reminds no one
    await case.signal(CollectionWorkflow.cancel, OperatorAction(by="anna"))
    assert (await case.result()).status == "cancelled"


async def test_a_plan_reminder_by_sms_waits_for_the_flows_contact_hours(flows):
    case = await flows.start_case(amount_cents=30_000, email=None)  # no email address: plan reminders go by SMS
    await flows.advance(days=28, hours=12)
    await flows.channel_event(case, "robo_call", "key_pressed", key="1")
    await flows.advance(hours=1)
    today = (await flows.state(case)).interest_on  # day 28, a Monday
    terms = [TermSpec(due_on=today + timedelta(days=9), amount_cents=10_000),  # its reminder falls on a Sunday
             TermSpec(due_on=today + timedelta(days=40), amount_cents=20_000)]
    await agree(flows, case, terms, plan_id="operator:sms", source="operator")
    await flows.advance(days=7)  # Monday, day 35 13:30: the Sunday reminder went out this morning at 08:00
    state = await flows.state(case)
    [reminder] = [entry for entry in state.history if entry.kind == "plan_term_reminder"]
    local = reminder.at.astimezone(AMSTERDAM)
    assert (local.date(), local.hour, local.weekday()) == (today + timedelta(days=7), 8, 0)
    assert "sms sent" in reminder.detail and flows.sent_steps(case)[-1] == "sms:installment_plan"
