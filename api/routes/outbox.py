"""The outbox page: every message dunflow sent or would have sent, newest first."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from sqlmodel import select

from api.deps import SessionDep, SettingsDep
from dunflow.store import Message, as_utc

router = APIRouter(include_in_schema=False)
pages = Jinja2Templates(directory=str(Path(__file__).resolve().parent.parent / "templates"))


@router.get("/outbox", response_class=HTMLResponse)
def outbox_page(request: Request, session: SessionDep, settings: SettingsDep, case_id: str | None = None):
    query = select(Message).order_by(Message.id.desc()).limit(200)
    if case_id is not None:
        query = query.where(Message.case_id == case_id)
    messages = list(session.exec(query))
    return pages.TemplateResponse(request, "outbox.html", {
        "messages": messages, "case_id": case_id, "as_utc": as_utc,
        "temporal_ui": f"http://127.0.0.1:{settings.temporal_ui_port}/namespaces/{settings.temporal_namespace}/workflows",
    })
