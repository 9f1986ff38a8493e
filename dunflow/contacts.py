"""Contacts with a debtor across all their cases: the weekly maximum and per-channel opt-outs."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, func, select

from dunflow.store import Contact, ContactOptOut, Debtor, as_utc

CHANNELS = ("email", "sms", "call", "letter")


def opted_out(session: Session, debtor_id: str, channel: str) -> bool:
    """Opted out of the channel; an SMS STOP recorded on the debtor counts too."""
    if channel == "sms":
        debtor = session.get(Debtor, debtor_id)
        if debtor is not None and debtor.sms_opt_out:
            return True
    row = session.exec(select(ContactOptOut).where(ContactOptOut.debtor_id == debtor_id,
                                                   ContactOptOut.channel == channel)).first()
    return row is not None


def set_opt_out(session: Session, debtor_id: str, channel: str, out: bool, reason: str = "") -> None:
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel!r}: one of {', '.join(CHANNELS)}")
    row = session.exec(select(ContactOptOut).where(ContactOptOut.debtor_id == debtor_id,
                                                   ContactOptOut.channel == channel)).first()
    if out and row is None:
        session.add(ContactOptOut(debtor_id=debtor_id, channel=channel, reason=reason))
    elif not out and row is not None:
        session.delete(row)
    if not out and channel == "sms" and (debtor := session.get(Debtor, debtor_id)) is not None:
        debtor.sms_opt_out = False
        session.add(debtor)
    session.commit()


def note_contact(session: Session, key: str, debtor_id: str, channel: str, at: datetime) -> None:
    """Note a contact once per key, in the caller's transaction: it commits (a clash on the key
    means another attempt of the same message, which the caller's retry finds)."""
    if session.exec(select(Contact.id).where(Contact.key == key)).first() is None:
        session.add(Contact(key=key, debtor_id=debtor_id, channel=channel, at=at))


def reserve_contact(session: Session, key: str, debtor_id: str, channel: str, at: datetime, since: datetime,
                    limit: int) -> datetime | None:
    """Take one of the debtor's `limit` contacts in (since, at]; None when taken (or taken before by
    this key), else the moment a contact frees up. The debtor's row is locked (PostgreSQL) and the
    contact is written before counting (SQLite), so two cases cannot both take the last one."""
    if session.exec(select(Contact.id).where(Contact.key == key)).first() is not None:
        return None
    session.exec(select(Debtor).where(Debtor.id == debtor_id).with_for_update()).first()
    session.add(Contact(key=key, debtor_id=debtor_id, channel=channel, at=at))
    session.flush()
    window = select(Contact.at).where(Contact.debtor_id == debtor_id, Contact.at > since, Contact.at <= at)
    count = session.exec(select(func.count()).select_from(window.subquery())).one()
    if count <= limit:
        session.commit()
        return None
    session.rollback()
    oldest = as_utc(session.exec(window.order_by(Contact.at)).first())
    return oldest + (at - since)
