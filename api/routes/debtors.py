"""Debtors: the channels a debtor opted out of (SMS STOP arrives by webhook; the rest by an operator)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlmodel import select

from api.auth import require_scope
from api.deps import SessionDep
from api.errors import ApiError
from dunflow.contacts import CHANNELS, opted_out, set_opt_out
from dunflow.store import ContactOptOut, Debtor

router = APIRouter(prefix="/api/debtors", tags=["debtors"])
WRITE, READ = [require_scope("cases:write")], [require_scope("read")]


class OptOutIn(BaseModel):
    reason: str = Field(default="", max_length=200)


def _debtor_or_404(session, debtor_id: str) -> Debtor:
    debtor = session.get(Debtor, debtor_id)
    if debtor is None:
        raise ApiError(404, f"there is no debtor {debtor_id!r}; debtors come with their first case", where="debtor_id")
    return debtor


def _channel(channel: str) -> str:
    if channel not in CHANNELS:
        raise ApiError(422, f"unknown channel {channel!r}: use one of {', '.join(CHANNELS)}", where="channel")
    return channel


def _opt_outs(session, debtor_id: str) -> dict:
    reasons = {row.channel: row.reason for row in
               session.exec(select(ContactOptOut).where(ContactOptOut.debtor_id == debtor_id))}
    out = [{"channel": c, "reason": reasons.get(c) or ("answered STOP" if c == "sms" else "")}
           for c in CHANNELS if opted_out(session, debtor_id, c)]
    return {"debtor_id": debtor_id, "opt_outs": out}


@router.get("/{debtor_id}/opt-outs", dependencies=READ)
def list_opt_outs(debtor_id: str, session: SessionDep) -> dict:
    """The channels on which the debtor is not contacted."""
    _debtor_or_404(session, debtor_id)
    return _opt_outs(session, debtor_id)


@router.put("/{debtor_id}/opt-outs/{channel}", dependencies=WRITE)
def add_opt_out(debtor_id: str, channel: str, body: OptOutIn, session: SessionDep) -> dict:
    """Stop contacting the debtor on a channel, in all their cases; a send there then fails with the reason."""
    _debtor_or_404(session, debtor_id)
    set_opt_out(session, debtor_id, _channel(channel), True, reason=body.reason)
    return _opt_outs(session, debtor_id)


@router.delete("/{debtor_id}/opt-outs/{channel}", dependencies=WRITE)
def remove_opt_out(debtor_id: str, channel: str, session: SessionDep) -> dict:
    """The debtor may be contacted on the channel again."""
    _debtor_or_404(session, debtor_id)
    set_opt_out(session, debtor_id, _channel(channel), False)
    return _opt_outs(session, debtor_id)
