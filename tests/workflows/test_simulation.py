"""Simulation: the real workflow on the time-skipping server, driven by each debtor scenario,
gives the day-by-day timeline the standard flow produces."""

from __future__ import annotations

import pytest

from api.simulation import SCENARIOS, Simulator
from dunflow.flow import load_flow_yaml
from dunflow.settings import PROJECT_ROOT
from tests.workflows.harness import plain_monday

STANDARD = load_flow_yaml((PROJECT_ROOT / "flows" / "standard.yaml").read_text())
# invoice on day 0, due on day 14
UNTIL_THE_CALL = [
    "13 email_sent pre_due_reminder",
    "15 email_sent reminder_1",
    "22 email_sent reminder_2", "22 sms_sent sms_reminder_2",
    "28 call_sent robo_call",
]


class PlainSimulator(Simulator):
    """Cases start on a Monday with no holiday in the weeks ahead, so no date moves for a holiday."""

    async def run(self, *args, **kwargs) -> dict:
        return await super().run(*args, starts_on=plain_monday, **kwargs)


@pytest.fixture
async def simulator(settings):
    simulator = PlainSimulator(settings)
    yield simulator
    await simulator.close()


def lines(timeline: dict) -> list[str]:
    """Each event as `day kind step`, a branch with where it went."""
    result = []
    for day in timeline["days"]:
        for event in day["events"]:
            line = f"{day['day']} {event['kind']} {event['step'] or ''}".rstrip()
            if event["kind"] == "branch":
                line += f" {event['detail']}"
            result.append(line)
    return result


async def test_never_opens_the_email(simulator):
    timeline = await simulator.run(STANDARD, "never_opens")
    assert lines(timeline) == [
        "0 started", "0 email_sent send_invoice",
        "2 branch check_opened -> sms_invoice (otherwise)", "2 sms_sent sms_invoice",
        *UNTIL_THE_CALL,
        "29 branch check_call_key -> final_notice (otherwise)", "29 letter_sent final_notice",
        "29 notice_sent final_notice",  # received on day 30, so its 14 days end on day 44
        "45 costs_charged charge_costs", "45 escalated escalate_no_response",
    ]
    assert (timeline["status"], timeline["current_step"]) == ("escalated", "escalate_no_response")
    assert timeline["days"][0]["date"] == timeline["issued_on"]


async def test_opens_but_never_pays(simulator):
    timeline = await simulator.run(STANDARD, "opens_never_pays")
    opened = [line for line in lines(timeline) if line.split()[1].endswith("_opened")]
    assert opened == [
        "0 debtor_opened send_invoice", "0 channel_opened send_invoice",
        "13 debtor_opened pre_due_reminder", "13 channel_opened pre_due_reminder",
        "15 debtor_opened reminder_1", "15 channel_opened reminder_1",
        "22 debtor_opened reminder_2", "22 channel_opened reminder_2",
    ]
    assert "2 branch check_opened -> wait_pre_due" in lines(timeline)
    assert not [line for line in lines(timeline) if "sms_invoice" in line]
    assert lines(timeline)[-1] == "45 escalated escalate_no_response"


async def test_pays_after_the_sms(simulator):
    timeline = await simulator.run(STANDARD, "pays_after_sms")
    assert lines(timeline) == [
        "0 started", "0 email_sent send_invoice",
        "2 branch check_opened -> sms_invoice (otherwise)", "2 sms_sent sms_invoice",
        "2 debtor_pay sms_invoice", "2 payment", "2 ended",
    ]
    assert (timeline["status"], timeline["outcome"]) == ("paid", "paid")
    payment = [event for event in timeline["days"][-1]["events"] if event["kind"] == "payment"]
    assert payment[0]["time"] == "13:00"  # four hours after the SMS at 09:00


async def test_disputes_and_the_dispute_is_rejected(simulator):
    timeline = await simulator.run(STANDARD, "disputes")
    assert lines(timeline)[4:] == [
        "13 email_sent pre_due_reminder",
        "15 email_sent reminder_1",
        "16 debtor_dispute", "16 dispute_opened", "16 paused",
        "30 debtor_dispute_rejected", "30 dispute_resolved", "30 resumed",
        # the 14 paused days move every later date by 14 days
        "36 email_sent reminder_2", "36 sms_sent sms_reminder_2",
        "42 call_sent robo_call",
        "43 branch check_call_key -> final_notice (otherwise)", "43 letter_sent final_notice",
        "43 notice_sent final_notice", "59 costs_charged charge_costs", "59 escalated escalate_no_response",
    ]


async def test_promises_and_breaks_it(simulator):
    timeline = await simulator.run(STANDARD, "promises_and_breaks")
    assert lines(timeline)[4:10] == [
        "13 email_sent pre_due_reminder",
        "15 email_sent reminder_1",
        "16 debtor_promise", "16 promise_to_pay", "16 paused",
        "24 promise_broken",
    ]
    assert lines(timeline)[10:14] == ["24 route", "24 resumed", "24 email_sent reminder_2", "24 sms_sent sms_reminder_2"]
    assert [e["detail"] for e in timeline["days"][5]["events"] if e["kind"] == "route"] == ["broken_promise -> reminder_2"]


async def test_presses_1_in_the_call(simulator):
    timeline = await simulator.run(STANDARD, "presses_1")
    assert lines(timeline)[-7:] == [
        "28 call_sent robo_call",
        "28 debtor_key_1 robo_call", "28 channel_key_pressed robo_call",
        "28 branch check_call_key -> offer_plan", "28 sms_sent offer_plan", "28 plan_offered offer_plan",
        "35 escalated escalate_plan_not_accepted",
    ]


def test_every_scenario_is_tested():
    tested = {"never_opens", "opens_never_pays", "pays_after_sms", "disputes", "promises_and_breaks", "presses_1"}
    assert set(SCENARIOS) == tested
