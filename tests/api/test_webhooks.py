"""Channel webhooks, signed the way SendGrid and Twilio sign them (SendGrid's documented ECDSA
scheme, Twilio's own SDK helper), never by calling dunflow's verifier."""

from __future__ import annotations

import base64
import json
import time
from urllib.parse import urlencode

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlmodel import Session, select
from twilio.request_validator import RequestValidator

from dunflow.store import CaseEvent, ChannelEventRecord, Debtor, Message
from tests.api.test_cases_api import eventually, new_case, state_of

PUBLIC_URL = "https://dunflow.example.nl"
TWILIO_TOKEN = "twilio-webhook-test-token"


@pytest.fixture
def sendgrid_key():
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def signing(settings, sendgrid_key):
    """Settings the providers' keys; requested before `api` so the app is made with them."""
    public_der = sendgrid_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    settings.sendgrid_webhook_public_key = base64.b64encode(public_der).decode()
    settings.twilio_auth_token = TWILIO_TOKEN
    settings.public_url = PUBLIC_URL
    settings.day_seconds = 2  # two flow days pass in four seconds: the opened-check comes quickly
    return settings


@pytest.fixture
def hooks(signing, api):
    return api


def sendgrid_headers(private_key, body: bytes) -> dict:
    timestamp = str(int(time.time()))
    signature = private_key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {"X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": timestamp, "content-type": "application/json"}


def twilio_post(api, path: str, form: dict, token: str = TWILIO_TOKEN):
    signature = RequestValidator(token).compute_signature(PUBLIC_URL + path, form)
    return api.post(path, content=urlencode(form), headers={
        "X-Twilio-Signature": signature, "content-type": "application/x-www-form-urlencoded"})


async def first_message(api, case_id: str, step_id: str) -> dict:
    async def sent():
        messages = (await api.get("/api/messages", params={"case_id": case_id})).json()
        return next((m for m in messages if m["step_id"] == step_id), None)

    return await eventually(sent)


async def open_case(api) -> str:
    response = await api.post("/api/cases", json=new_case())
    assert response.status_code == 201, response.text
    return response.json()["case_id"]


def sendgrid_event(kind: str, message: dict, event_id: str) -> dict:
    return {"email": "jan@example.nl", "timestamp": int(time.time()), "event": kind, "sg_event_id": event_id,
            "sg_message_id": "sg-1", "case_id": message["case_id"], "message_id": str(message["id"])}


def records(api) -> list[ChannelEventRecord]:
    with Session(api.app.state.engine) as session:
        return list(session.exec(select(ChannelEventRecord)))


async def test_an_opened_email_takes_the_opened_branch(hooks, sendgrid_key):
    case_id = await open_case(hooks)
    invoice = await first_message(hooks, case_id, "send_invoice")
    body = json.dumps([sendgrid_event("delivered", invoice, "ev-1"), sendgrid_event("open", invoice, "ev-2")]).encode()
    response = await hooks.post("/webhooks/sendgrid", content=body, headers=sendgrid_headers(sendgrid_key, body))
    assert response.status_code == 200, response.text
    assert response.json()["outcomes"] == {"signalled": 2}

    async def past_the_check():
        state = await state_of(hooks, case_id)
        return state if state["current_step"] == "wait_pre_due" else None

    state = await eventually(past_the_check, seconds=20)
    assert [m["step_id"] for m in state["messages"]] == ["send_invoice"]  # no SMS
    assert any(e["kind"] == "branch" and "wait_pre_due" in e["detail"] for e in state["history"])
    assert (await hooks.get(f"/api/messages?case_id={case_id}")).json()[-1]["status"] == "opened"

    replay = await hooks.post("/webhooks/sendgrid", content=body, headers=sendgrid_headers(sendgrid_key, body))
    assert replay.json()["outcomes"] == {"duplicate": 2}
    history = (await state_of(hooks, case_id))["history"]
    assert sum(1 for e in history if e["kind"] == "channel_opened") == 1


async def test_a_bad_sendgrid_signature_is_refused_and_leaves_no_trace(hooks, sendgrid_key):
    case_id = await open_case(hooks)
    invoice = await first_message(hooks, case_id, "send_invoice")
    body = json.dumps([sendgrid_event("open", invoice, "ev-9")]).encode()
    headers = sendgrid_headers(sendgrid_key, body)
    tampered = body.replace(b'"open"', b'"click"')
    for content, sent_headers in ((tampered, headers), (body, {"content-type": "application/json"}),
                                  (body, headers | {"X-Twilio-Email-Event-Webhook-Signature": "bm90IGEgc2ln"})):
        response = await hooks.post("/webhooks/sendgrid", content=content, headers=sent_headers)
        assert response.status_code == 403
    assert records(hooks) == []
    other_key = ec.generate_private_key(ec.SECP256R1())
    response = await hooks.post("/webhooks/sendgrid", content=body, headers=sendgrid_headers(other_key, body))
    assert response.status_code == 403 and records(hooks) == []


async def test_events_for_unknown_messages_are_recorded_and_answered(hooks, sendgrid_key):
    body = json.dumps([{"event": "open", "sg_event_id": "ev-x", "message_id": "424242"},
                       {"event": "open", "sg_event_id": "ev-y"}, "junk"]).encode()
    response = await hooks.post("/webhooks/sendgrid", content=body, headers=sendgrid_headers(sendgrid_key, body))
    assert response.status_code == 200
    assert response.json()["outcomes"] == {"unknown_message": 2, "malformed": 1}
    assert {r.outcome for r in records(hooks)} == {"unknown_message"}


async def test_twilio_sms_status_callback(hooks):
    case_id = await open_case(hooks)
    sms = await first_message(hooks, case_id, "sms_invoice")  # two flow days: four seconds
    path = f"/webhooks/twilio/status?message_id={sms['id']}"
    form = {"MessageSid": "SM123", "MessageStatus": "delivered", "To": "+31612345678", "AccountSid": "AC1"}
    bad = await twilio_post(hooks, path, form, token="someone-elses-token")
    assert bad.status_code == 403 and records(hooks) == []
    good = await twilio_post(hooks, path, form)
    assert good.status_code == 200 and good.json()["outcome"] == "signalled"
    again = await twilio_post(hooks, path, form)
    assert again.json()["outcome"] == "duplicate"
    with Session(hooks.app.state.engine) as session:
        assert session.get(Message, sms["id"]).status == "delivered"


async def test_twilio_gather_returns_twiml_and_signals_the_key(hooks):
    case_id = await open_case(hooks)
    invoice = await first_message(hooks, case_id, "send_invoice")  # any message of the case will do
    path = f"/webhooks/twilio/voice?message_id={invoice['id']}"
    response = await twilio_post(hooks, path, {"CallSid": "CA77", "Digits": "1", "AccountSid": "AC1"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/xml")
    assert response.text.startswith("<?xml") and '<Say language="nl-NL">' in response.text and "<Hangup" in response.text
    [record] = records(hooks)
    assert (record.kind, record.key, record.outcome) == ("key_pressed", "1", "signalled")
    history = (await state_of(hooks, case_id))["history"]
    assert any(e["kind"] == "channel_key_pressed" and e["detail"].endswith("1") for e in history)


async def test_inbound_stop_opts_out_and_other_replies_go_to_an_operator(hooks):
    case_id = await open_case(hooks)
    await first_message(hooks, case_id, "send_invoice")
    path = "/webhooks/twilio/inbound-sms"
    question = await twilio_post(hooks, path, {"MessageSid": "SM1", "From": "+31612345678", "Body": "Ik heb al betaald"})
    assert question.status_code == 200 and "<Response" in question.text
    stop = await twilio_post(hooks, path, {"MessageSid": "SM2", "From": "+31612345678", "Body": "stop"})
    assert stop.status_code == 200
    with Session(hooks.app.state.engine) as session:
        assert session.get(Debtor, "D-42").sms_opt_out is True
        kinds = {e.kind: e.detail for e in session.exec(select(CaseEvent).where(CaseEvent.case_id == case_id))}
    assert "Ik heb al betaald" in kinds["reply_needs_operator"]
    assert "sms_opt_out" in kinds
    unsigned = await hooks.post(path, content="MessageSid=SM3&From=%2B31612345678&Body=STOP",
                                headers={"content-type": "application/x-www-form-urlencoded"})
    assert unsigned.status_code == 403
