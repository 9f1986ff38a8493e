"""The SMS provider failing, through Twilio's real SDK against a local server: errors and
timeouts are retried with backoff until it recovers, and the text goes out once; an invalid
number is not retried but recorded, and the flow takes its `on_failure` step (email instead)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import Session, select

from dunflow.flow import parse_flow
from dunflow.store import Message
from tests.support.fake_provider_server import CannedResponse, FakeProviderServer, twilio_error
from tests.workflows.harness import flow_harness

TWILIO_SID = "AC" + "0123456789abcdef" * 2
MESSAGES_PATH = f"/2010-04-01/Accounts/{TWILIO_SID}/Messages.json"
CLIENT_TIMEOUT = 0.5


def sms_flow(on_failure: bool):
    """A text, or an email when the text cannot go out, then the case ends a day later."""
    steps = {
        "sms": {"type": "send", "channel": "sms", "template": "reminder_sms", "next": "wait"},
        "wait": {"type": "wait", "days": 1, "next": "done"},
        "done": {"type": "end", "outcome": "closed"},
    }
    if on_failure:
        steps["sms"]["on_failure"] = "email_instead"
        steps["email_instead"] = {"type": "send", "channel": "email", "template": "friendly_reminder", "next": "wait"}
    return parse_flow({
        "name": "sms_first", "start": "sms", "steps": steps,
        "signals": {
            "full_payment": {"action": "end", "outcome": "paid"}, "partial_payment": {"action": "continue"},
            "dispute_opened": {"action": "pause"}, "dispute_upheld": {"action": "end", "outcome": "upheld"},
            "dispute_rejected": {"action": "continue"}, "promise_to_pay": {"action": "pause"},
            "broken_promise": {"action": "goto", "step": "done"},
        },
        "contact_rules": {},
    })


@pytest.fixture
def twilio(settings):
    with FakeProviderServer() as server:
        settings.twilio_account_sid, settings.twilio_auth_token = TWILIO_SID, "fake-auth-token"
        settings.twilio_from, settings.twilio_api_base = "+3197010000000", server.url
        settings.twilio_rate_per_second, settings.twilio_timeout_seconds = 0, CLIENT_TIMEOUT
        yield server


def sms_requests(server: FakeProviderServer, method: str = "POST"):
    return [request for request in server.requests if request.route == MESSAGES_PATH and request.method == method]


def stored(engine, case_id: str) -> list[Message]:
    with Session(engine) as session:
        return list(session.exec(select(Message).where(Message.case_id == case_id).order_by(Message.id)))


async def send_attempts(handle) -> tuple[int, timedelta]:
    """The send activity's last attempt number and the time from its scheduling to its end."""
    history = await handle.fetch_history()
    scheduled = started = None
    for event in history.events:
        if event.HasField("activity_task_scheduled_event_attributes"):
            if event.activity_task_scheduled_event_attributes.activity_type.name == "send_message":
                scheduled = event.event_time.ToDatetime()
        elif event.HasField("activity_task_started_event_attributes") and scheduled and started is None:
            started = event.activity_task_started_event_attributes.attempt
        elif event.HasField("activity_task_completed_event_attributes") and started is not None:
            return started, event.event_time.ToDatetime() - scheduled
    raise AssertionError("the send activity never completed")


async def test_errors_and_timeouts_are_retried_with_backoff_and_the_text_goes_out_once(
        time_skipping_env, engine, settings, twilio):
    for failure in (CannedResponse(500, {"code": 20500, "message": "Internal Server Error", "status": 500}),
                    CannedResponse(504, delay=CLIENT_TIMEOUT * 4),
                    CannedResponse(503, {"code": 20503, "message": "Service Unavailable", "status": 503}),
                    CannedResponse(504, delay=CLIENT_TIMEOUT * 4)):
        twilio.answer_next(failure)
    async with flow_harness(time_skipping_env, engine, settings) as harness:
        handle = await harness.start_case(definition=sms_flow(on_failure=True))
        state = await handle.result()
        attempts, took = await send_attempts(handle)

    assert state.outcome == "closed"
    [message] = stored(engine, state.case_id)
    assert (message.step_id, message.status, message.provider) == ("sms", "sent", "twilio")
    requests = sms_requests(twilio)
    assert [request.response.status for request in requests] == [500, 504, 503, 504, 201]
    assert {request.message_id for request in requests} == {str(message.id)}
    assert attempts == 5
    assert took >= timedelta(seconds=5 + 10 + 20 + 40)  # the send policy's backoff between the five attempts
    kinds = [entry.kind for entry in state.history]
    assert "send_failed" not in kinds and kinds.count("sms_sent") == 1


async def test_a_text_twilio_took_although_its_answer_was_lost_is_not_sent_again(
        time_skipping_env, engine, settings, twilio):
    twilio.answer_next(CannedResponse(504, delay=CLIENT_TIMEOUT * 4, accepts=True))
    async with flow_harness(time_skipping_env, engine, settings) as harness:
        handle = await harness.start_case(definition=sms_flow(on_failure=True))
        state = await handle.result()

    [taken] = sms_requests(twilio)  # one text reached Twilio; the retry looked it up instead of sending
    [lookup] = sms_requests(twilio, "GET")
    assert lookup.response.body["messages"][0]["to"] == taken.form()["To"]
    [message] = stored(engine, state.case_id)
    assert (message.status, message.provider_message_id) == ("sent", lookup.response.body["messages"][0]["sid"])
    assert [entry.kind for entry in state.history].count("sms_sent") == 1


async def test_an_invalid_number_is_not_retried_and_the_flow_sends_an_email_instead(
        time_skipping_env, engine, settings, twilio):
    twilio.answer_next(twilio_error(21211, "The 'To' number +3161234 is not a valid phone number."))
    async with flow_harness(time_skipping_env, engine, settings) as harness:
        handle = await harness.start_case(definition=sms_flow(on_failure=True), phone="+31612345678")
        state = await handle.result()

    assert len(sms_requests(twilio)) == 1
    sms, email = stored(engine, state.case_id)
    assert (sms.step_id, sms.status) == ("sms", "failed") and "code 21211" in sms.error
    assert (email.step_id, email.channel, email.status) == ("email_instead", "email", "sent")
    failed = [entry for entry in state.history if entry.kind == "send_failed"]
    assert len(failed) == 1 and "21211" in failed[0].detail
    assert [(e.kind, e.detail) for e in state.history if e.kind == "route"] == [("route", "not sent -> email_instead")]
    assert state.outcome == "closed"


async def test_without_on_failure_the_failure_is_noted_and_the_flow_goes_on(
        time_skipping_env, engine, settings, twilio):
    twilio.answer_next(twilio_error(21211, "The 'To' number is not a valid phone number."))
    async with flow_harness(time_skipping_env, engine, settings) as harness:
        handle = await harness.start_case(definition=sms_flow(on_failure=False))
        state = await handle.result()

    assert len(sms_requests(twilio)) == 1
    [sms] = stored(engine, state.case_id)
    assert sms.status == "failed"
    assert [e.kind for e in state.history if e.kind in ("send_failed", "route")] == ["send_failed"]
    assert state.outcome == "closed"
