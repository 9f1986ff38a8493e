"""Provider webhooks. Each request is verified with the provider's own scheme before anything
is stored or signalled; an unverified one gets 403 and leaves no trace."""

from __future__ import annotations

import binascii
import json
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request, Response
from sendgrid.helpers.eventwebhook import EventWebhook
from sqlmodel import Session, select
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse
from twilio.twiml.voice_response import VoiceResponse

from activities.providers.twilio_channels import VOICE_LANGUAGES
from api.channel_events import IncomingEvent, deliver, open_cases_of_phone
from api.deps import SessionDep, SettingsDep, TemporalDep
from api.errors import ApiError
from dunflow.metrics import WEBHOOK_REJECTED
from dunflow.settings import Settings
from dunflow.store import CaseEvent, ChannelEventRecord, Debtor, Message

router = APIRouter(prefix="/webhooks", tags=["webhooks"])

SENDGRID_KINDS = {"delivered": "delivered", "open": "opened", "click": "clicked", "bounce": "bounced",
                  "dropped": "failed"}  # spamreport, unsubscribe, deferred...: recorded only
SMS_KINDS = {"delivered": "delivered", "undelivered": "failed", "failed": "failed"}
CALL_KINDS = {"completed": "answered", "in-progress": "answered", "no-answer": "no_answer", "busy": "no_answer",
              "failed": "failed", "canceled": "no_answer"}
STOP_WORDS = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "STOPPEN"}
TWIML = "application/xml"


# --- SendGrid ------------------------------------------------------------------------------


@router.post("/sendgrid")
async def sendgrid_events(request: Request, session: SessionDep, client: TemporalDep, settings: SettingsDep) -> dict:
    """SendGrid's signed Event Webhook: a batch of events, correlated by our custom args."""
    raw = await request.body()
    _verify_sendgrid(request, raw, settings)
    try:
        events = json.loads(raw)
    except ValueError:
        raise ApiError(400, "the body is not a JSON array of SendGrid events") from None
    if not isinstance(events, list):
        raise ApiError(400, "the body is not a JSON array of SendGrid events")
    outcomes: dict[str, int] = {}
    for item in events:
        if not isinstance(item, dict) or not item.get("sg_event_id"):
            outcome = "malformed"
        else:
            outcome = await deliver(session, client, IncomingEvent(
                event_id=item["sg_event_id"], provider="sendgrid",
                kind=SENDGRID_KINDS.get(item.get("event"), str(item.get("event"))),
                message_id=_int(item.get("message_id")), payload=item,
            ))
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return {"received": len(events), "outcomes": outcomes}


def _refused(provider: str, reason: str) -> ApiError:
    WEBHOOK_REJECTED.labels(provider).inc()
    return ApiError(403, reason)


def _verify_sendgrid(request: Request, raw: bytes, settings: Settings) -> None:
    if not settings.sendgrid_webhook_public_key:
        raise _refused("sendgrid", "SendGrid webhooks are refused: DUNFLOW_SENDGRID_WEBHOOK_PUBLIC_KEY is not set")
    signature = request.headers.get("X-Twilio-Email-Event-Webhook-Signature", "")
    timestamp = request.headers.get("X-Twilio-Email-Event-Webhook-Timestamp", "")
    verifier = EventWebhook(settings.sendgrid_webhook_public_key)
    try:
        valid = bool(signature and timestamp) and verifier.verify_signature(raw.decode("utf-8"), signature, timestamp)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        valid = False
    if not valid:
        raise _refused("sendgrid", "the SendGrid event webhook signature does not verify")


# --- Twilio --------------------------------------------------------------------------------


async def _verified_twilio_form(request: Request, settings: Settings) -> dict[str, str]:
    """The form Twilio posted, after checking X-Twilio-Signature against the URL Twilio called."""
    if not settings.twilio_auth_token:
        raise _refused("twilio", "Twilio webhooks are refused: DUNFLOW_TWILIO_AUTH_TOKEN is not set")
    form = dict(parse_qsl((await request.body()).decode("utf-8"), keep_blank_values=True))
    url = settings.effective_public_url + request.url.path
    if request.url.query:
        url += "?" + request.url.query
    signature = request.headers.get("X-Twilio-Signature", "")
    if not RequestValidator(settings.twilio_auth_token).validate(url, form, signature):
        raise _refused("twilio", "the X-Twilio-Signature does not verify for this URL and body "
                            "(is DUNFLOW_PUBLIC_URL the address Twilio calls?)")
    return form


@router.post("/twilio/status")
async def twilio_status(request: Request, session: SessionDep, client: TemporalDep, settings: SettingsDep) -> dict:
    """Status callbacks of SMS (MessageStatus) and calls (CallStatus)."""
    form = await _verified_twilio_form(request, settings)
    if "CallStatus" in form:
        sid, status, kinds = form.get("CallSid", ""), form["CallStatus"], CALL_KINDS
    else:
        sid, status, kinds = form.get("MessageSid", form.get("SmsSid", "")), form.get("MessageStatus", ""), SMS_KINDS
    outcome = await deliver(session, client, IncomingEvent(
        event_id=f"{sid}:{status}", provider="twilio", kind=kinds.get(status, status),
        message_id=_int(request.query_params.get("message_id")), payload=form,
    ))
    return {"outcome": outcome}


@router.post("/twilio/voice")
async def twilio_voice(request: Request, session: SessionDep, client: TemporalDep, settings: SettingsDep) -> Response:
    """The robo-call's <Gather> action: the key the debtor pressed. Answers TwiML."""
    form = await _verified_twilio_form(request, settings)
    message_id = _int(request.query_params.get("message_id"))
    digit = form.get("Digits", "")[:1]
    if digit:
        await deliver(session, client, IncomingEvent(
            event_id=f"{form.get('CallSid', '')}:digits:{digit}", provider="twilio", kind="key_pressed",
            message_id=message_id, key=digit, payload=form,
        ))
    message = session.get(Message, message_id) if message_id is not None else None
    return Response(_voice_answer(digit, message.language if message else "nl"), media_type=TWIML)


def _voice_answer(digit: str, language: str) -> str:
    replies = {
        "nl": {"1": "Dank u wel. U ontvangt zo een bericht met de mogelijkheden om in termijnen te betalen.",
               "2": "Dank u wel. Een medewerker belt u zo snel mogelijk terug.",
               "": "Wij hebben geen geldige keuze ontvangen. U hoort van ons."},
        "en": {"1": "Thank you. You will shortly receive a message with the options to pay in instalments.",
               "2": "Thank you. One of us will call you back as soon as possible.",
               "": "We did not receive a valid choice. You will hear from us."},
    }[language if language in VOICE_LANGUAGES else "nl"]
    response = VoiceResponse()
    response.say(replies.get(digit, replies[""]), language=VOICE_LANGUAGES.get(language, "nl-NL"))
    response.hangup()
    return str(response)


@router.post("/twilio/inbound-sms")
async def twilio_inbound_sms(request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    """A text from a debtor: STOP opts the number out of SMS; anything else goes to an operator."""
    form = await _verified_twilio_form(request, settings)
    sid, sender, text = form.get("MessageSid", ""), form.get("From", ""), form.get("Body", "").strip()
    event_id = f"twilio:inbound:{sid}"
    if _seen(session, event_id):  # Twilio delivered it again
        return Response(str(MessagingResponse()), media_type=TWIML)
    opted_out = text.upper() in STOP_WORDS
    cases = open_cases_of_phone(session, sender)
    if opted_out:
        for debtor in session.exec(_debtors_with_phone(sender)):
            debtor.sms_opt_out = True
            session.add(debtor)
    for case in cases:
        kind, detail = ("sms_opt_out", "debtor answered STOP") if opted_out else ("reply_needs_operator", text)
        session.add(CaseEvent(key=f"{event_id}:{case.id}", case_id=case.id, kind=kind,
                              detail=f"SMS from {sender}: {detail}"))
    session.add(ChannelEventRecord(
        event_id=event_id, provider="twilio", kind="opt_out" if opted_out else "inbound_sms",
        outcome="recorded" if cases else "unknown_sender", payload=json.dumps(form)))
    session.commit()
    return Response(str(MessagingResponse()), media_type=TWIML)


def _seen(session: Session, event_id: str) -> bool:
    return session.exec(select(ChannelEventRecord.id).where(ChannelEventRecord.event_id == event_id)).first() is not None


def _debtors_with_phone(phone: str):
    return select(Debtor).where(Debtor.phone == phone)


def _int(value) -> int | None:
    """A message id from a provider's callback; None when it cannot be one."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if 1 <= number < 2**63 else None
