"""The send activity through the real SendGrid and Twilio SDKs, answered by a local HTTP server:
the requests they make, and that a retried send never sends twice."""

from __future__ import annotations

import base64
from datetime import date

import pytest
from sqlmodel import Session, select
from temporalio.exceptions import ApplicationError

from activities.collection import CollectionActivities
from activities.providers import build_providers
from api.intake import store_case
from api.schemas import CaseIn
from dunflow.case import DebtorInfo, InvoiceInfo, SendRequest
from dunflow.store import Message
from dunflow.templates import TemplateCatalog
from tests.support.fake_provider_server import FakeProviderServer

SID = "AC" + "0123456789abcdef" * 2
TOKEN = "twilio-test-token"
SENDGRID_KEY = "SG.test-key"


@pytest.fixture
def provider_server():
    with FakeProviderServer() as server:
        yield server


@pytest.fixture
def case_id(engine) -> str:
    body = CaseIn.model_validate({
        "debtor": {"id": "D-1", "name": "Jan de Vries", "email": "jan@example.nl", "phone": "+31612345678"},
        "invoice": {"number": "2026-0042", "amount_cents": 24_500, "currency": "EUR",
                    "issued_on": "2026-11-23", "due_on": "2026-12-07"},
    })
    with Session(engine) as session:
        return store_case(session, body).case.id


def activities_for(engine, settings) -> CollectionActivities:
    return CollectionActivities(engine=engine, settings=settings, templates=TemplateCatalog(settings.templates_dir),
                                providers=build_providers(settings))


@pytest.fixture
def connected(engine, settings, provider_server) -> CollectionActivities:
    settings.sendgrid_api_key, settings.sendgrid_api_host = SENDGRID_KEY, provider_server.url
    settings.twilio_account_sid, settings.twilio_auth_token = SID, TOKEN
    settings.twilio_from, settings.twilio_api_base = "+3197010000000", provider_server.url
    settings.public_url = "https://dunflow.example.nl"
    return activities_for(engine, settings)


def request(case_id: str, channel: str, template: str, step_id: str) -> SendRequest:
    return SendRequest(
        key=f"case-{case_id}:{step_id}:1", case_id=case_id, step_id=step_id, channel=channel, template=template,
        debtor=DebtorInfo(id="D-1", name="Jan de Vries", email="jan@example.nl", phone="+31612345678"),
        invoice=InvoiceInfo(number="2026-0042", amount_cents=24_500, currency="EUR",
                            issued_on=date(2026, 11, 23), due_on=date(2026, 12, 7)),
        amount_open_cents=24_500,
    )


def stored(engine, message_id: int) -> Message:
    with Session(engine) as session:
        return session.get(Message, message_id)


def test_email_through_sendgrid_carries_case_and_message_ids(connected, provider_server, engine, case_id):
    result = connected.send_message(request(case_id, "email", "invoice", "send_invoice"))

    [sent] = provider_server.requests
    assert sent.path == "/v3/mail/send"
    assert sent.headers["Authorization"] == f"Bearer {SENDGRID_KEY}"
    mail = sent.json()
    assert mail["personalizations"][0]["to"] == [{"email": "jan@example.nl"}]
    assert mail["from"] == {"email": "debiteuren@example.nl", "name": "Voorbeeld B.V."}
    assert mail["subject"] == "Factuur 2026-0042 van Voorbeeld B.V."
    assert mail["content"][0]["type"] == "text/plain" and "€ 245,00" in mail["content"][0]["value"]
    assert mail["custom_args"] == {"case_id": case_id, "message_id": str(result.message_id)}

    message = stored(engine, result.message_id)
    assert (result.status, result.provider) == ("sent", "sendgrid")
    assert (message.status, message.provider) == ("sent", "sendgrid")
    assert message.provider_message_id.startswith("sg-")


def test_sms_through_twilio_with_a_status_callback(connected, provider_server, engine, case_id):
    result = connected.send_message(request(case_id, "sms", "invoice_sms", "sms_invoice"))

    [sent] = provider_server.requests
    assert sent.path == f"/2010-04-01/Accounts/{SID}/Messages.json"
    assert sent.headers["Authorization"] == "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
    form = sent.form()
    assert (form["To"], form["From"]) == ("+31612345678", "+3197010000000")
    assert "2026-0042" in form["Body"] and "€ 245,00" in form["Body"]
    assert form["StatusCallback"] == f"https://dunflow.example.nl/webhooks/twilio/status?message_id={result.message_id}"
    assert stored(engine, result.message_id).provider_message_id.startswith("SM")


def test_robo_call_reads_the_script_and_gathers_one_key(connected, provider_server, engine, case_id):
    result = connected.send_message(request(case_id, "call", "robo_call", "robo_call"))

    [sent] = provider_server.requests
    assert sent.path == f"/2010-04-01/Accounts/{SID}/Calls.json"
    twiml = sent.form()["Twiml"]
    assert '<Gather' in twiml and 'numDigits="1"' in twiml
    assert f'action="https://dunflow.example.nl/webhooks/twilio/voice?message_id={result.message_id}"' in twiml
    assert '<Say language="nl-NL">' in twiml and "Toets dan 1" in twiml
    assert stored(engine, result.message_id).provider_message_id.startswith("CA")


def test_a_retried_send_does_not_send_twice(connected, provider_server, case_id):
    first = connected.send_message(request(case_id, "sms", "invoice_sms", "sms_invoice"))
    again = connected.send_message(request(case_id, "sms", "invoice_sms", "sms_invoice"))
    assert len(provider_server.requests) == 1
    assert again.message_id == first.message_id and again.status == "sent"


def test_a_provider_error_is_retried_and_then_sent_once(connected, provider_server, engine, case_id):
    provider_server.answer_next(500, {"code": 20500, "message": "Internal Server Error", "status": 500})
    with pytest.raises(RuntimeError, match="HTTP 500"):
        connected.send_message(request(case_id, "sms", "invoice_sms", "sms_invoice"))
    with Session(engine) as session:
        [failed] = session.exec(select(Message)).all()
        assert failed.status == "failed" and "500" in failed.error

    result = connected.send_message(request(case_id, "sms", "invoice_sms", "sms_invoice"))
    assert result.status == "sent" and result.message_id == failed.id
    assert len(provider_server.requests) == 2


def test_an_invalid_number_is_a_permanent_failure(connected, provider_server, engine, case_id):
    provider_server.answer_next(400, {"code": 21211, "message": "The 'To' number is not a valid phone number.",
                                      "status": 400, "more_info": "https://www.twilio.com/docs/errors/21211"})
    with pytest.raises(ApplicationError) as raised:
        connected.send_message(request(case_id, "sms", "invoice_sms", "sms_invoice"))
    assert raised.value.non_retryable and raised.value.type == "PermanentSendError"
    assert "21211" in str(raised.value)
    with Session(engine) as session:
        [message] = session.exec(select(Message)).all()
        assert message.status == "failed" and "not a valid phone number" in message.error


def test_sendgrid_refusing_the_address_is_permanent(connected, provider_server, case_id):
    provider_server.answer_next(400, {"errors": [{"message": "Does not contain a valid address.", "field": "to"}]})
    with pytest.raises(ApplicationError) as raised:
        connected.send_message(request(case_id, "email", "invoice", "send_invoice"))
    assert raised.value.non_retryable and "valid address" in str(raised.value)


def test_without_credentials_everything_goes_to_the_outbox(engine, settings, provider_server, case_id):
    outbox = activities_for(engine, settings)
    results = [outbox.send_message(request(case_id, channel, template, step))
               for channel, template, step in (("email", "invoice", "a"), ("sms", "invoice_sms", "b"),
                                               ("call", "robo_call", "c"), ("letter", "final_notice", "d"))]
    assert provider_server.requests == []
    assert {(r.status, r.provider) for r in results} == {("sent", "outbox")}
    assert outbox.send_message(request(case_id, "email", "invoice", "a")).message_id == results[0].message_id
