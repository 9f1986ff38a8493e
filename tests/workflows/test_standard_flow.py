"""The `standard` flow through every branch, on the time-skipping test server with real activities.

Timeline for an invoice issued today and due in 14 days (day 0 = a Monday with no holiday in
the eight weeks after it, the case starts at midnight, date-anchored actions happen at 09:00;
the flow's contact rules hold an SMS, call or letter until its hours):
invoice email (0) - SMS if not opened (2) - pre-due reminder (13) - reminder 1 (15) -
reminder 2 by email and SMS (22) - robo-call (28) - 14-day letter (29) - collection costs and
escalation the day after the letter's term: received the next business day, then 14 days
(45 at the earliest, 53 at most around Easter or Christmas).
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import WorkflowExecutionStatus

from dunflow.case import DisputeOpened, DisputeResolved, OperatorAction, PromiseToPay
from tests.workflows.harness import payment
from workflows.collection import CollectionWorkflow

NOT_OPENED_UNTIL_CALL = [
    "email:send_invoice", "sms:sms_invoice", "email:pre_due_reminder", "email:reminder_1",
    "email:reminder_2", "sms:sms_reminder_2", "call:robo_call",
]


async def test_never_opened_never_paid_runs_every_channel_then_hands_over(flows):
    case = await flows.start_case()
    await flows.advance(days=54)
    state = await flows.state(case)
    assert flows.sent_steps(case) == NOT_OPENED_UNTIL_CALL + ["letter:final_notice"]
    assert (state.status, state.current_step) == ("escalated", "escalate_no_response")
    assert state.escalation_reason.startswith("Geen reactie")
    assert (state.costs_cents, state.amount_open_cents) == (4_000, 28_500)  # the minimum costs for € 245

    await case.signal(CollectionWorkflow.resume, OperatorAction(by="anna"))
    result = await case.result()
    assert (result.status, result.outcome) == ("closed", "handed_over")


async def test_opened_invoice_skips_the_sms(flows):
    case = await flows.start_case()
    await flows.advance(days=1)
    await flows.channel_event(case, "send_invoice", "opened")
    await flows.advance(days=16)
    assert flows.sent_steps(case) == ["email:send_invoice", "email:pre_due_reminder", "email:reminder_1"]
    assert (await flows.state(case)).status == "active"


async def test_delivered_is_not_opened(flows):
    case = await flows.start_case()
    await flows.channel_event(case, "send_invoice", "delivered")
    await flows.advance(days=3)
    assert flows.sent_steps(case) == ["email:send_invoice", "sms:sms_invoice"]


async def test_paid_early_ends_the_case_at_once(flows):
    case = await flows.start_case(amount_cents=10_000)
    await flows.advance(days=1)
    await case.signal(CollectionWorkflow.payment_received, payment("P-1", 10_000))
    result = await case.result()
    assert (result.status, result.outcome, result.amount_open_cents) == ("paid", "paid", 0)
    assert flows.sent_steps(case) == ["email:send_invoice"]
    assert (await case.describe()).status == WorkflowExecutionStatus.COMPLETED


async def test_partial_then_full_payment(flows):
    case = await flows.start_case(amount_cents=30_000)
    await flows.advance(days=3)
    await case.signal(CollectionWorkflow.payment_received, payment("P-1", 10_000))
    await case.signal(CollectionWorkflow.payment_received, payment("P-1", 10_000))  # a repeat: ignored
    await flows.advance(days=13)
    state = await flows.state(case)
    assert (state.status, state.amount_open_cents, state.amount_paid_cents) == ("active", 20_000, 10_000)
    assert flows.sent_steps(case) == ["email:send_invoice", "sms:sms_invoice", "email:pre_due_reminder", "email:reminder_1"]
    reminder = flows.messages(case)[-1]
    assert "200,00" in reminder.body  # the reminder asks for what is still open

    await case.signal(CollectionWorkflow.payment_received, payment("P-2", 20_000))
    result = await case.result()
    assert (result.status, result.amount_open_cents, result.amount_paid_cents) == ("paid", 0, 30_000)
    assert len(flows.sent_steps(case)) == 4


async def test_dispute_pauses_and_rejection_resumes_where_it_stood(flows):
    case = await flows.start_case()
    await flows.advance(days=3)
    await case.signal(CollectionWorkflow.dispute_opened, DisputeOpened(reason="niet besteld"))
    await flows.advance(days=30)
    state = await flows.state(case)
    assert (state.status, state.dispute) == ("disputed", "niet besteld")
    assert flows.sent_steps(case) == ["email:send_invoice", "sms:sms_invoice"]

    await case.signal(CollectionWorkflow.dispute_resolved, DisputeResolved(outcome="rejected"))
    await flows.advance(days=1)
    state = await flows.state(case)
    assert (state.status, state.current_step) == ("active", "wait_pre_due")
    # the 30 days of the dispute do not count: the pre-due reminder (day 13) comes on day 43
    await flows.advance(days=10)
    assert flows.sent_steps(case) == ["email:send_invoice", "sms:sms_invoice", "email:pre_due_reminder"]


async def test_dispute_upheld_ends_the_case(flows):
    case = await flows.start_case()
    await case.signal(CollectionWorkflow.dispute_opened, DisputeOpened(reason="al betaald"))
    await flows.advance(days=2)
    await case.signal(CollectionWorkflow.dispute_resolved, DisputeResolved(outcome="upheld", note="klopt"))
    result = await case.result()
    assert (result.status, result.outcome) == ("closed", "dispute_upheld")
    assert flows.sent_steps(case) == ["email:send_invoice"]


async def test_promise_kept_by_paying_in_full(flows):
    case = await flows.start_case(amount_cents=20_000)
    await flows.advance(days=16)  # reminder 1 has gone out
    today = await flows.today()
    await case.signal(CollectionWorkflow.promise_to_pay, PromiseToPay(promised_on=today + timedelta(days=5), amount_cents=20_000))
    await flows.advance(days=3)
    assert (await flows.state(case)).status == "promised"
    await case.signal(CollectionWorkflow.payment_received, payment("P-9", 20_000))
    result = await case.result()
    assert (result.status, result.outcome) == ("paid", "paid")
    assert flows.sent_steps(case)[-1] == "email:reminder_1"
    assert len(flows.sent_steps(case)) == 4


async def test_promise_of_part_kept_resumes_the_flow(flows):
    case = await flows.start_case(amount_cents=20_000)
    await flows.advance(days=16)
    today = await flows.today()
    await case.signal(CollectionWorkflow.promise_to_pay, PromiseToPay(promised_on=today + timedelta(days=5), amount_cents=5_000))
    await case.signal(CollectionWorkflow.payment_received, payment("P-1", 5_000))
    await flows.advance(days=1)
    state = await flows.state(case)
    assert state.status == "active" and any(entry.kind == "promise_kept" for entry in state.history)


async def test_promise_broken_takes_the_broken_promise_route(flows):
    case = await flows.start_case()
    await flows.advance(days=16)
    today = await flows.today()
    await case.signal(CollectionWorkflow.promise_to_pay, PromiseToPay(promised_on=today + timedelta(days=3), amount_cents=24_500))
    await flows.advance(days=2)
    assert flows.sent_steps(case)[-1] == "email:reminder_1"
    await flows.advance(days=3, hours=9)  # broken on Sunday (day 20): the SMS waits for Monday 08:00
    state = await flows.state(case)
    assert any(entry.kind == "promise_broken" for entry in state.history)
    assert flows.sent_steps(case)[-2:] == ["email:reminder_2", "sms:sms_reminder_2"]
    assert state.status == "active"


async def test_robo_call_key_1_offers_a_plan(flows):
    case = await flows.start_case(amount_cents=30_000)
    await flows.advance(days=28, hours=12)
    assert flows.sent_steps(case) == NOT_OPENED_UNTIL_CALL
    await flows.channel_event(case, "robo_call", "key_pressed", key="1")
    await flows.advance(hours=1)
    assert flows.sent_steps(case) == NOT_OPENED_UNTIL_CALL + ["sms:offer_plan"]
    offer = flows.messages(case)[-1]
    assert "2 tot 6 maandelijkse termijnen" in offer.body  # € 300: at least € 25 a term
    await flows.advance(days=8)
    state = await flows.state(case)
    assert (state.status, state.current_step) == ("escalated", "escalate_plan_not_accepted")


async def test_robo_call_key_2_asks_a_person_to_call_back(flows):
    case = await flows.start_case()
    await flows.advance(days=28, hours=12)
    await flows.channel_event(case, "robo_call", "key_pressed", key="2")
    await flows.advance(hours=1)
    state = await flows.state(case)
    assert (state.status, state.current_step) == ("escalated", "escalate_callback"), state.history
    assert flows.sent_steps(case) == NOT_OPENED_UNTIL_CALL


async def test_robo_call_without_answer_sends_the_14_day_letter(flows):
    case = await flows.start_case()
    await flows.advance(days=30)
    assert flows.sent_steps(case) == NOT_OPENED_UNTIL_CALL + ["letter:final_notice"]
    letter = flows.messages(case)[-1]
    assert letter.recipient.startswith("Jan de Vries\nDorpsstraat 1")
    assert "€ 40,00" in letter.body  # the statutory minimum collection costs for € 245


async def test_operator_cancel(flows):
    case = await flows.start_case()
    await flows.advance(days=5)
    await case.signal(CollectionWorkflow.cancel, OperatorAction(by="anna", note="afgeboekt"))
    result = await case.result()
    assert (result.status, result.outcome) == ("cancelled", "cancelled")
    assert flows.sent_steps(case) == ["email:send_invoice", "sms:sms_invoice"]


async def test_operator_pause_and_resume(flows):
    case = await flows.start_case()
    await flows.advance(days=1)
    await case.signal(CollectionWorkflow.pause, OperatorAction())
    await flows.advance(days=20)
    assert (await flows.state(case)).status == "paused"
    assert flows.sent_steps(case) == ["email:send_invoice"]
    await case.signal(CollectionWorkflow.resume, OperatorAction())
    await flows.advance(days=1, hours=1)
    assert flows.sent_steps(case) == ["email:send_invoice"]  # due at midnight: the SMS waits for 08:00
    assert (await flows.state(case)).deferred.endswith("08:00 Europe/Amsterdam: outside contact hours")
    await flows.advance(hours=8)
    assert flows.sent_steps(case) == ["email:send_invoice", "sms:sms_invoice"]


async def test_invoice_already_overdue_skips_the_pre_due_reminder(flows):
    case = await flows.start_case(issued_days_ago=19, due_in_days=-5)
    await flows.advance(days=3)
    assert flows.sent_steps(case) == ["email:send_invoice", "sms:sms_invoice", "email:reminder_1"], (await flows.state(case)).history


async def test_debtor_without_phone_gets_no_sms_and_the_skip_is_noted(flows):
    case = await flows.start_case(phone=None)
    await flows.advance(days=3)
    state = await flows.state(case)
    assert flows.sent_steps(case) == ["email:send_invoice"]
    assert any(e.kind == "send_skipped" and "phone number" in e.detail for e in state.history)


async def test_gentle_flow_one_reminder_then_a_person(flows):
    case = await flows.start_case(flow="gentle")
    await flows.advance(days=30)
    state = await flows.state(case)
    assert flows.sent_steps(case) == ["email:send_invoice", "email:friendly_reminder"]
    assert (state.status, state.current_step) == ("escalated", "escalate_to_person")
