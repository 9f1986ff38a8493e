"""API keys: random secrets shown once, stored only as a SHA-256 hash, each with scopes."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from dunflow.store import ApiKey, utcnow

# operator: may decode Temporal payloads (debtor data) through the codec endpoint;
# designer: drafts and publishes flows; admin may do everything
SCOPES = ("cases:write", "signals:write", "read", "designer", "operator", "admin")
KEY_PREFIX = "dfk_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class NewKey:
    id: int
    key: str  # the only time the secret exists outside its owner's hands


def check_scopes(scopes: list[str]) -> list[str]:
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise ValueError(f"unknown scope(s) {', '.join(unknown) or '(none given)'}: choose from {', '.join(SCOPES)}")
    return sorted(set(scopes))


def create_key(engine: Engine, name: str, scopes: list[str]) -> NewKey:
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(name=name, prefix=key[:12], key_hash=hash_key(key), scopes=" ".join(check_scopes(scopes)))
    with Session(engine) as session:
        session.add(row)
        session.commit()
        session.refresh(row)
        return NewKey(id=row.id, key=key)


def find_active_key(session: Session, key: str) -> ApiKey | None:
    row = session.exec(select(ApiKey).where(ApiKey.key_hash == hash_key(key))).first()
    return row if row is not None and row.revoked_at is None else None


def allows(row: ApiKey, scope: str) -> bool:
    granted = row.scopes.split()
    return "admin" in granted or scope in granted


def list_keys(engine: Engine) -> list[ApiKey]:
    with Session(engine) as session:
        return list(session.exec(select(ApiKey).order_by(ApiKey.id)))


def revoke_key(engine: Engine, key_id: int) -> ApiKey | None:
    with Session(engine) as session:
        row = session.get(ApiKey, key_id)
        if row is not None and row.revoked_at is None:
            row.revoked_at = utcnow()
            session.add(row)
            session.commit()
            session.refresh(row)
        return row
