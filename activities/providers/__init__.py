"""Channel providers: one small interface, a real implementation per channel, and the outbox.

With no credentials configured, every channel uses the outbox: the message is only recorded
in the store (and shown on the outbox page). Letters always go to the outbox, the print queue.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from dunflow.settings import Settings


@dataclass(frozen=True)
class OutgoingMessage:
    message_id: int
    case_id: str
    channel: str
    recipient: str
    subject: str
    body: str
    language: str


class PermanentSendError(Exception):
    """The provider refused the message for good (e.g. an invalid number): never retried."""


class ChannelProvider(Protocol):
    name: str
    records_in_store: bool  # True: the store row is the delivery; nothing leaves the machine

    def send(self, message: OutgoingMessage) -> str:
        """Send and return the provider's id for the message; raise PermanentSendError when refused."""


class OutboxProvider:
    name = "outbox"
    records_in_store = True

    def send(self, message: OutgoingMessage) -> str:
        return f"outbox-{message.message_id}"


def build_providers(settings: Settings) -> dict[str, ChannelProvider]:
    outbox = OutboxProvider()
    providers: dict[str, ChannelProvider] = {"email": outbox, "sms": outbox, "call": outbox, "letter": outbox}
    if settings.uses_sendgrid:
        from activities.providers.sendgrid_email import SendGridEmail

        providers["email"] = SendGridEmail(settings)
    if settings.uses_twilio:
        from activities.providers.twilio_channels import TwilioSms, TwilioVoice, twilio_client

        client = twilio_client(settings)
        providers["sms"] = TwilioSms(settings, client)
        providers["call"] = TwilioVoice(settings, client)
    return providers
