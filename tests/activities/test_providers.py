"""`send_message` through the real SendGrid and Twilio SDKs, against a local server that answers
like their APIs (tests/support/fake_provider_server.py), and through the outbox without credentials.

The templates and the one published flow are written to a temporary folder per test, so these
tests depend neither on the shipped templates nor on the shipped flows.
"""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET
from datetime import date

import pytest
from sqlmodel import Session, select
from temporalio.exceptions import ApplicationError

from activities.collection import CollectionActivities
from activities.providers import OutboxProvider, build_providers
from api.intake import store_case
from api.schemas import CaseIn
from dunflow.case import DebtorInfo, InvoiceInfo, SendRequest, SendResult
from dunflow.settings import Settings
from dunflow.store import Message
from dunflow.templates import TemplateCatalog
from tests.support.fake_provider_server import FakeProviderServer, sendgrid_error, twilio_error

PUBLIC_URL = "https://dunflow.example.nl"
SENDGRID_KEY = "SG.fake-key-for-tests"
SENDGRID_FROM = "incasso@voorbeeld.nl"
CREDITOR = "Voorbeeld B.V."
TWILIO_SID = "AC" + "0123456789abcdef" * 2
TWILIO_TOKEN = "fake-auth-token"
TWILIO_FROM = "+3197010000000"

DEBTOR = DebtorInfo(id="D-1", name="Jan de Vries", email="jan@example.nl", phone="+31612345678",
                    address="Dorpsstraat 1\n1234 AB Ergens", language="nl", type="consumer")
INVOICE = InvoiceInfo(number="F-2024-001", amount_cents=24_500, currency="EUR",
                      issued_on=date(2024, 3, 1), due_on=date(2024, 3, 15))

# What the templates below render to for DEBTOR and INVOICE, all open.
EMAIL_SUBJECT = "Factuur F-2024-001"
EMAIL_BODY = "Beste Jan de Vries,\n\nEr staat nog € 245,00 open.\n\nMet vriendelijke groet,\nVoorbeeld B.V."
SMS_BODY = "Voorbeeld B.V.: factuur F-2024-001, open € 245,00."
CALL_SCRIPT = "Goedendag Jan de Vries. Factuur F-2024-001 staat open voor € 245,00. Toets 1 voor een regeling."

TEMPLATES = {
    "email/invoice.nl.j2": "Subject: Factuur {{ invoice.number }}\n\nBeste {{ debtor.name }},\n\n"
                           "Er staat nog {{ amount_open }} open.\n\nMet vriendelijke groet,\n{{ creditor.name }}\n",
    "email/invoice.en.j2": "Subject: Invoice {{ invoice.number }}\n\nDear {{ debtor.name }},\n\n"
                           "{{ amount_open }} is still open.\n\nKind regards,\n{{ creditor.name }}\n",
    "sms/invoice_sms.nl.j2": "{{ creditor.name }}: factuur {{ invoice.number }}, open {{ amount_open }}.\n",
    "sms/invoice_sms.en.j2": "{{ creditor.name }}: invoice {{ invoice.number }}, open {{ amount_open }}.\n",
    "call/robo_call.nl.j2": "Goedendag {{ debtor.name }}. Factuur {{ invoice.number }} staat open voor "
                            "{{ amount_open }}. Toets 1 voor een regeling.\n",
    "call/robo_call.en.j2": "Hello {{ debtor.name }}. Invoice {{ invoice.number }} is open for "
                            "{{ amount_open }}. Press 1 for a plan.\n",
    "letter/final_notice.nl.j2": "Subject: Laatste aanmaning {{ invoice.number }}\n\n"
                                 "{{ debtor.name }}, betaal {{ amount_open }}.\n",
    "letter/final_notice.en.j2": "Subject: Final notice {{ invoice.number }}\n\n"
                                 "{{ debtor.name }}, please pay {{ amount_open }}.\n",
}

FLOW = """\
name: provider_test
title: Provider test
description: One message per channel, then the end.
start: send_invoice
contact_rules: {}
steps:
  send_invoice: {type: send, channel: email, template: invoice, next: sms_invoice}
  sms_invoice: {type: send, channel: sms, template: invoice_sms, next: robo_call}
  robo_call: {type: send, channel: call, template: robo_call, next: final_notice}
  final_notice: {type: send, channel: letter, template: final_notice, next: closed}
  closed: {type: end, outcome: closed_by_operator}
signals:
  full_payment: {action: end, outcome: paid}
  partial_payment: {action: continue}
  dispute_opened: {action: pause}
  dispute_upheld: {action: end, outcome: dispute_upheld}
  dispute_rejected: {action: continue}
  promise_to_pay: {action: pause}
  broken_promise: {action: goto, step: closed}
"""

STEP_OF = {  # channel: (step id, template)
    "email": ("send_invoice", "invoice"),
    "sms": ("sms_invoice", "invoice_sms"),
    "call": ("robo_call", "robo_call"),
    "letter": ("final_notice", "final_notice"),
}


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture
def settings(tmp_path) -> Settings:
    """Overrides the shared fixture: temporary templates and flows, and no credentials (the outbox)."""
    templates_dir, flows_dir = tmp_path / "templates", tmp_path / "flows"
    for name, text in TEMPLATES.items():
        (templates_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (templates_dir / name).write_text(text, encoding="utf-8")
    flows_dir.mkdir()
    (flows_dir / "provider_test.yaml").write_text(FLOW, encoding="utf-8")
    return Settings(
        _env_file=None, data_dir=tmp_path / "data", database_url=f"sqlite:///{tmp_path}/store.db",
        templates_dir=templates_dir, flows_dir=flows_dir, public_url=PUBLIC_URL, creditor_name=CREDITOR,
        sendgrid_api_key="", sendgrid_from="", twilio_account_sid="", twilio_auth_token="", twilio_from="",
    )


@pytest.fixture
def server():
    with FakeProviderServer() as server:
        yield server


@pytest.fixture
def live_settings(settings, server) -> Settings:
    """Fake credentials, and both SDKs pointed at the local server."""
    return settings.model_copy(update={
        "sendgrid_api_key": SENDGRID_KEY, "sendgrid_api_host": server.url, "sendgrid_from": SENDGRID_FROM,
        "twilio_account_sid": TWILIO_SID, "twilio_auth_token": TWILIO_TOKEN, "twilio_from": TWILIO_FROM,
        "twilio_api_base": server.url,
    })


@pytest.fixture
def case_id(engine) -> str:
    """A stored case for DEBTOR and INVOICE: messages refer to it."""
    body = CaseIn.model_validate({
        "debtor": DEBTOR.model_dump(mode="json", exclude={"time_zone"}),
        "invoice": INVOICE.model_dump(mode="json"),
        "flow": "provider_test",
    })
    with Session(engine) as session:
        return store_case(session, body).case.id


@pytest.fixture
def live(engine, live_settings) -> CollectionActivities:
    return activities_for(engine, live_settings)


# --- helpers ---------------------------------------------------------------------------------


def activities_for(engine, settings: Settings) -> CollectionActivities:
    return CollectionActivities(engine=engine, settings=settings, templates=TemplateCatalog(settings.templates_dir),
                                providers=build_providers(settings))


def send_request(case_id: str, channel: str, visit: int = 1) -> SendRequest:
    step_id, template = STEP_OF[channel]
    return SendRequest(key=f"case-{case_id}:{step_id}:{visit}", case_id=case_id, step_id=step_id, channel=channel,
                       template=template, debtor=DEBTOR, invoice=INVOICE, amount_open_cents=INVOICE.amount_cents)


def messages(engine, case_id: str) -> list[Message]:
    with Session(engine) as session:
        return list(session.exec(select(Message).where(Message.case_id == case_id).order_by(Message.id)))


def only_message(engine, case_id: str) -> Message:
    rows = messages(engine, case_id)
    assert len(rows) == 1, f"expected one message row, found {[(m.key, m.status) for m in rows]}"
    return rows[0]


def basic_auth(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def twilio_path(resource: str) -> str:
    return f"/2010-04-01/Accounts/{TWILIO_SID}/{resource}.json"


# --- SendGrid --------------------------------------------------------------------------------


def test_email_goes_through_sendgrid_with_case_and_message_ids(live, engine, server, case_id):
    result = live.send_message(send_request(case_id, "email"))

    [request] = server.requests
    assert (request.method, request.route) == ("POST", "/v3/mail/send")
    assert request.header("Authorization") == f"Bearer {SENDGRID_KEY}"
    mail = request.json()
    assert mail["from"] == {"email": SENDGRID_FROM, "name": CREDITOR}
    assert [p["to"] for p in mail["personalizations"]] == [[{"email": "jan@example.nl"}]]
    assert mail["subject"] == EMAIL_SUBJECT
    assert mail["content"] == [{"type": "text/plain", "value": EMAIL_BODY}]
    assert mail["custom_args"] == {"case_id": case_id, "message_id": str(result.message_id)}

    row = only_message(engine, case_id)
    assert result == SendResult(message_id=row.id, status="sent", provider="sendgrid")
    assert (row.status, row.provider, row.channel, row.recipient) == ("sent", "sendgrid", "email", "jan@example.nl")
    assert row.provider_message_id == request.response.headers["X-Message-Id"]
    assert (row.subject, row.body) == (EMAIL_SUBJECT, EMAIL_BODY)
    assert row.sent_at is not None and row.error is None


def test_sendgrid_bad_request_is_permanent(live, engine, server, case_id):
    server.answer_next(sendgrid_error("The to array is required for all personalization objects.", field_name="to"))

    with pytest.raises(ApplicationError) as raised:
        live.send_message(send_request(case_id, "email"))

    assert raised.value.type == "PermanentSendError"
    assert raised.value.non_retryable is True
    assert "The to array is required" in raised.value.message
    row = only_message(engine, case_id)
    assert row.status == "failed" and row.provider_message_id is None
    assert "SendGrid refused the email" in row.error and "The to array is required" in row.error
    assert len(server.requests) == 1


# --- Twilio ----------------------------------------------------------------------------------


def test_sms_goes_through_twilio_with_status_callback(live, engine, server, case_id):
    result = live.send_message(send_request(case_id, "sms"))

    [request] = server.requests
    assert (request.method, request.route) == ("POST", twilio_path("Messages"))
    assert request.header("Authorization") == basic_auth(TWILIO_SID, TWILIO_TOKEN)
    assert request.form() == {
        "To": "+31612345678",
        "From": TWILIO_FROM,
        "Body": SMS_BODY,
        "StatusCallback": f"{PUBLIC_URL}/webhooks/twilio/status?message_id={result.message_id}",
    }

    row = only_message(engine, case_id)
    assert result == SendResult(message_id=row.id, status="sent", provider="twilio")
    assert (row.status, row.provider, row.channel, row.recipient, row.body) == (
        "sent", "twilio", "sms", "+31612345678", SMS_BODY)
    assert row.provider_message_id == request.response.body["sid"]
    assert row.provider_message_id.startswith("SM")


def test_call_reads_the_script_and_gathers_one_key(live, engine, server, case_id):
    result = live.send_message(send_request(case_id, "call"))

    [request] = server.requests
    assert (request.method, request.route) == ("POST", twilio_path("Calls"))
    assert request.header("Authorization") == basic_auth(TWILIO_SID, TWILIO_TOKEN)
    form = request.form()
    assert (form["To"], form["From"]) == ("+31612345678", TWILIO_FROM)
    assert form["StatusCallback"] == f"{PUBLIC_URL}/webhooks/twilio/status?message_id={result.message_id}"

    twiml = ET.fromstring(form["Twiml"])
    assert twiml.tag == "Response"
    gather = twiml.find("Gather")
    assert gather is not None, form["Twiml"]
    assert gather.get("numDigits") == "1"
    assert gather.get("action") == f"{PUBLIC_URL}/webhooks/twilio/voice?message_id={result.message_id}"
    assert gather.get("method") == "POST"
    [script] = gather.findall("Say")
    assert script.get("language") == "nl-NL"
    assert script.text == CALL_SCRIPT
    goodbye = twiml.find("Say")  # after the gather: nobody pressed a key
    assert goodbye is not None and goodbye.get("language") == "nl-NL"

    row = only_message(engine, case_id)
    assert (row.status, row.provider, row.channel, row.body) == ("sent", "twilio", "call", CALL_SCRIPT)
    assert row.provider_message_id == request.response.body["sid"]
    assert row.provider_message_id.startswith("CA")


def test_invalid_number_is_permanent_and_a_later_attempt_sends_again(live, engine, server, case_id):
    server.answer_next(twilio_error(21211, "The 'To' number is not a valid phone number."))
    request = send_request(case_id, "sms")

    with pytest.raises(ApplicationError) as raised:
        live.send_message(request)

    assert raised.value.type == "PermanentSendError"
    assert raised.value.non_retryable is True
    assert "code 21211" in raised.value.message
    row = only_message(engine, case_id)
    assert row.status == "failed" and row.provider_message_id is None
    assert "Twilio refused the SMS (code 21211)" in row.error
    assert "The 'To' number is not a valid phone number." in row.error
    assert len(server.requests) == 1

    # Temporal never retries a non-retryable error; an explicit new attempt with the same key (a
    # person resending) reuses the failed row and sends again.
    result = live.send_message(request)

    lookup, sent = server.requests[1:]  # first: did the failed attempt reach Twilio after all? (no)
    assert (lookup.method, lookup.response.body["messages"], sent.method) == ("GET", [], "POST")
    row = only_message(engine, case_id)
    assert result == SendResult(message_id=row.id, status="sent", provider="twilio")
    assert row.status == "sent" and row.error is None
    assert row.provider_message_id == sent.response.body["sid"]


# --- idempotency -----------------------------------------------------------------------------


@pytest.mark.parametrize("channel", ["email", "sms", "call"])
def test_the_same_key_sends_once(live, engine, server, case_id, channel):
    request = send_request(case_id, channel)

    first = live.send_message(request)
    second = live.send_message(request)

    assert len(server.requests) == 1
    assert second == first
    assert first.status == "sent"
    assert only_message(engine, case_id).id == first.message_id


def test_another_visit_of_the_same_step_is_another_message(live, engine, server, case_id):
    first = live.send_message(send_request(case_id, "sms", visit=1))
    second = live.send_message(send_request(case_id, "sms", visit=2))

    assert len(server.requests) == 2
    assert first.message_id != second.message_id
    assert [m.status for m in messages(engine, case_id)] == ["sent", "sent"]


@pytest.mark.parametrize(("channel", "error_body", "error_text"), [
    pytest.param("email", {"errors": [{"message": "internal error"}]}, "RuntimeError: SendGrid answered HTTP 500",
                 id="sendgrid"),
    pytest.param("sms", {"code": 20500, "message": "Internal Server Error", "status": 500},
                 "RuntimeError: Twilio answered HTTP 500", id="twilio"),
])
def test_a_server_error_fails_the_attempt_and_the_retry_sends(live, engine, server, case_id,
                                                             channel, error_body, error_text):
    server.answer_next(500, error_body)
    request = send_request(case_id, channel)

    with pytest.raises(RuntimeError) as raised:
        live.send_message(request)

    assert not isinstance(raised.value, ApplicationError)  # an ordinary error: Temporal retries it
    failed = only_message(engine, case_id)
    assert failed.status == "failed" and failed.provider_message_id is None
    assert failed.error.startswith(error_text)

    result = live.send_message(request)

    posts = [sent for sent in server.requests if sent.method == "POST"]  # an SMS retry looks Twilio up first
    assert len(posts) == 2 and len(server.requests) == (2 if channel == "email" else 3)
    assert posts[0].body == posts[1].body  # the same message, rendered once
    row = only_message(engine, case_id)
    assert result.message_id == failed.id == row.id
    assert (result.status, row.status, row.error) == ("sent", "sent", None)
    answer = posts[1].response
    assert row.provider_message_id == (answer.headers["X-Message-Id"] if channel == "email" else answer.body["sid"])


# --- the outbox ------------------------------------------------------------------------------


def test_letters_go_to_the_outbox_even_with_credentials(live, engine, server, case_id):
    result = live.send_message(send_request(case_id, "letter"))

    assert server.requests == []
    row = only_message(engine, case_id)
    assert result == SendResult(message_id=row.id, status="sent", provider="outbox")
    assert (row.status, row.provider_message_id) == ("sent", f"outbox-{row.id}")


def test_without_credentials_every_channel_uses_the_outbox(settings, engine, server, case_id):
    # The SDKs would reach the local server, if anything tried to use them.
    settings = settings.model_copy(update={"sendgrid_api_host": server.url, "twilio_api_base": server.url})
    providers = build_providers(settings)
    assert {channel: type(provider) for channel, provider in providers.items()} == {
        "email": OutboxProvider, "sms": OutboxProvider, "call": OutboxProvider, "letter": OutboxProvider}
    activities = activities_for(engine, settings)

    channels = ("email", "sms", "call", "letter")
    results = {channel: activities.send_message(send_request(case_id, channel)) for channel in channels}

    assert server.requests == []
    rows = {row.channel: row for row in messages(engine, case_id)}
    assert set(rows) == set(channels)
    for channel, row in rows.items():
        assert results[channel] == SendResult(message_id=row.id, status="sent", provider="outbox")
        assert (row.status, row.provider, row.provider_message_id) == ("sent", "outbox", f"outbox-{row.id}")
        assert row.sent_at is not None
    assert (rows["email"].subject, rows["email"].body) == (EMAIL_SUBJECT, EMAIL_BODY)
    assert rows["sms"].body == SMS_BODY
    assert rows["call"].body == CALL_SCRIPT
    assert rows["letter"].recipient == "Jan de Vries\nDorpsstraat 1\n1234 AB Ergens"


def test_the_outbox_records_a_key_once(settings, engine, server, case_id):
    activities = activities_for(engine, settings)
    request = send_request(case_id, "email")

    assert activities.send_message(request) == activities.send_message(request)
    assert only_message(engine, case_id).status == "sent"
    assert server.requests == []
