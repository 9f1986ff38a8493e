"""What dunflow sent: every message, whichever provider carried it."""

from __future__ import annotations

from fastapi import APIRouter, Query
from sqlmodel import select

from api.auth import require_scope
from api.deps import SessionDep
from api.routes.cases import message_view
from dunflow.store import Message

router = APIRouter(prefix="/api/messages", tags=["messages"])


@router.get("", dependencies=[require_scope("read")])
def list_messages(session: SessionDep, case_id: str | None = None,
                  limit: int = Query(default=100, ge=1, le=1000)) -> list[dict]:
    """Messages, newest first; `case_id` narrows them to one case."""
    query = select(Message).order_by(Message.id.desc()).limit(limit)
    if case_id is not None:
        query = query.where(Message.case_id == case_id)
    return [message_view(message) for message in session.exec(query)]
