"""Portal links: a signed token bound to one case (and, for a link in a message, the step that
sent it), valid for a limited time. The token carries the case's random id and an expiry,
signed with HMAC-SHA256; nothing in it can be guessed or changed without the secret."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from dunflow.settings import Settings

SIGNATURE_BYTES = 18  # 144 bits: enough against forgery, short enough for an SMS


class PortalLinkError(ValueError):
    """The token is not one of ours, was changed (`invalid`), or has expired (`expired`)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"the portal link is {reason}")
        self.reason = reason


@dataclass(frozen=True)
class PortalLink:
    case_id: str
    step: str  # the step whose message carried the link; empty for a plain portal link
    expires: datetime


def portal_secret(settings: Settings) -> bytes:
    """DUNFLOW_PORTAL_SECRET, or one made once and kept in the data folder (shared there by the
    worker, which writes links, and the API, which reads them)."""
    if settings.portal_secret:
        return settings.portal_secret.encode()
    kept = settings.data_dir / "portal-secret"
    if not kept.is_file():
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        try:  # exclusive: when the API and the worker race, one secret wins and both read it
            with os.fdopen(os.open(kept, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as file:
                file.write(secrets.token_urlsafe(32) + "\n")
        except FileExistsError:
            pass
    return kept.read_text().strip().encode()


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(secret: bytes, body: bytes) -> bytes:
    return hmac.new(secret, body, hashlib.sha256).digest()[:SIGNATURE_BYTES]


def sign(secret: bytes, *parts: str) -> str:
    """A signature over some values, for forms the portal hands out and takes back."""
    return _encode(_signature(secret, "|".join(parts).encode()))


def make_token(secret: bytes, case_id: str, now: datetime, days: int, step: str = "") -> str:
    expires = int((now + timedelta(days=days)).timestamp())
    body = f"{case_id}|{step}|{expires}".encode()
    return f"{_encode(body)}.{_encode(_signature(secret, body))}"


def read_token(secret: bytes, token: str, now: datetime) -> PortalLink:
    """The link a token stands for; PortalLinkError when it is forged, changed or expired."""
    try:
        body_text, signature_text = token.split(".")
        body, signature = _decode(body_text), _decode(signature_text)
    except (ValueError, binascii.Error):
        raise PortalLinkError("invalid") from None
    if not hmac.compare_digest(signature, _signature(secret, body)):
        raise PortalLinkError("invalid")
    case_id, step, expires_text = body.decode().split("|")
    expires = datetime.fromtimestamp(int(expires_text), tz=timezone.utc)
    if now >= expires:
        raise PortalLinkError("expired")
    return PortalLink(case_id=case_id, step=step, expires=expires)
