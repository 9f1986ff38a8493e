"""Channel providers: one small interface, a real implementation per channel, and the outbox.

With no credentials configured, every channel uses the outbox: the message is only recorded
in the store (and shown on the outbox page). Letters always go to the outbox, the print queue.
"""

from __future__ import annotations

import threading
import time
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

    def find_sent(self, message: OutgoingMessage) -> str | None:
        """Before a retry: the provider's id if an earlier attempt did reach it after all (e.g. its
        answer came too late), so the retry sends nothing; None when it has no such message."""


class OutboxProvider:
    name = "outbox"
    records_in_store = True

    def send(self, message: OutgoingMessage) -> str:
        return f"outbox-{message.message_id}"

    def find_sent(self, message: OutgoingMessage) -> str | None:
        return None  # the store row is the delivery: there is no earlier attempt elsewhere


class RateLimiter:
    """At most `per_second` sends from this worker process (0: no limit); a send waits its turn."""

    def __init__(self, per_second: float):
        self.gap = 1 / per_second if per_second > 0 else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def wait_turn(self) -> None:
        with self._lock:
            now = time.monotonic()
            turn = max(now, self._next)
            self._next = turn + self.gap
        if turn > now:
            time.sleep(turn - now)


def rate_limits(settings: Settings) -> dict[str, RateLimiter]:
    """One limiter per provider; SMS and calls share the Twilio account's limiter."""
    return {"sendgrid": RateLimiter(settings.sendgrid_rate_per_second),
            "twilio": RateLimiter(settings.twilio_rate_per_second),
            "outbox": RateLimiter(0)}


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
