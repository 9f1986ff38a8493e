"""SMS and robo-calls through Twilio's REST API. A call reads the script and gathers one key."""

from __future__ import annotations

from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client
from twilio.twiml.voice_response import Gather, VoiceResponse

from activities.providers import OutgoingMessage, PermanentSendError
from dunflow.settings import Settings

# Twilio error codes that no retry will fix: invalid, unreachable or opted-out numbers.
PERMANENT_TWILIO_CODES = {21211, 21214, 21217, 21401, 21407, 21408, 21421, 21610, 21612, 21614, 13223, 13224}
VOICE_LANGUAGES = {"nl": "nl-NL", "en": "en-GB"}


def twilio_client(settings: Settings) -> Client:
    client = Client(settings.twilio_account_sid, settings.twilio_auth_token,
                    http_client=TwilioHttpClient(timeout=settings.twilio_timeout_seconds))
    client.api.base_url = settings.twilio_api_base.rstrip("/")
    return client


def _callback(settings: Settings, route: str, message: OutgoingMessage) -> str:
    return f"{settings.effective_public_url}/webhooks/twilio/{route}?message_id={message.message_id}"


def _raise_for(error: TwilioRestException, what: str) -> None:
    if error.code in PERMANENT_TWILIO_CODES:
        raise PermanentSendError(f"Twilio refused the {what} (code {error.code}): {error.msg}") from None
    raise RuntimeError(f"Twilio answered HTTP {error.status} for the {what}: {error.msg}") from None


class _TwilioChannel:
    name = "twilio"
    records_in_store = False

    def __init__(self, settings: Settings, client: Client):
        self._settings = settings
        self._client = client

    def find_sent(self, message: OutgoingMessage) -> str | None:
        return None  # a call's script is not in Twilio's call list: nothing to recognise it by


class TwilioSms(_TwilioChannel):
    def send(self, message: OutgoingMessage) -> str:
        try:
            sent = self._client.messages.create(
                to=message.recipient,
                from_=self._settings.twilio_from,
                body=message.body,
                status_callback=_callback(self._settings, "status", message),
            )
        except TwilioRestException as error:
            _raise_for(error, "SMS")
        return sent.sid

    def find_sent(self, message: OutgoingMessage) -> str | None:
        """A text with this body to this number among our latest: an earlier attempt that Twilio
        took although its answer never arrived. Raises while Twilio cannot be asked (retried)."""
        recent = self._client.messages.list(to=message.recipient, from_=self._settings.twilio_from, limit=50)
        return next((sent.sid for sent in recent if sent.body == message.body), None)


def call_script(message: OutgoingMessage, gather_url: str) -> str:
    """TwiML that reads the script once, gathers one key, and says goodbye when none is pressed."""
    language = VOICE_LANGUAGES.get(message.language, "nl-NL")
    response = VoiceResponse()
    gather = Gather(num_digits=1, action=gather_url, method="POST", timeout=8)
    gather.say(message.body, language=language)
    response.append(gather)
    goodbye = "We hebben geen keuze ontvangen. Tot ziens." if message.language == "nl" else "We received no choice. Goodbye."
    response.say(goodbye, language=language)
    return str(response)


class TwilioVoice(_TwilioChannel):
    def send(self, message: OutgoingMessage) -> str:
        try:
            call = self._client.calls.create(
                to=message.recipient,
                from_=self._settings.twilio_from,
                twiml=call_script(message, _callback(self._settings, "voice", message)),
                status_callback=_callback(self._settings, "status", message),
            )
        except TwilioRestException as error:
            _raise_for(error, "call")
        return call.sid
