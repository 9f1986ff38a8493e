"""Subscribers: other systems that get dunflow's outbound events (signed HTTP POSTs)."""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Query, status
from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, field_validator
from sqlmodel import Session, select, update

from api.auth import require_scope
from api.deps import SessionDep
from api.errors import ApiError
from api.schemas import RowId
from dunflow.outbound import ALL_EVENTS, EVENT_TYPES
from dunflow.store import EventDelivery, OutboundEvent, Subscriber, as_utc

router = APIRouter(prefix="/api/subscribers", tags=["subscribers"])
ADMIN = [require_scope("admin")]
URL_MAX_LENGTH = 2000


class SubscriberIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=100)
    url: AnyHttpUrl = Field(description="where events are POSTed; http or https")
    events: list[str] = Field(min_length=1, description=f"event types ({', '.join(EVENT_TYPES)}) or \"*\" for all")
    secret: str | None = Field(default=None, min_length=16, max_length=200,
                               description="signs every delivery; made for you when left out")

    @field_validator("url")
    @classmethod
    def _short_enough(cls, url: AnyHttpUrl) -> AnyHttpUrl:
        if len(str(url)) > URL_MAX_LENGTH:
            raise ValueError(f"url is longer than {URL_MAX_LENGTH} characters")
        return url

    @field_validator("events")
    @classmethod
    def _known_events(cls, events: list[str]) -> list[str]:
        unknown = [event for event in events if event not in EVENT_TYPES and event != ALL_EVENTS]
        if unknown:
            raise ValueError(f"unknown event type(s) {', '.join(unknown)}; known: {', '.join(EVENT_TYPES)} or \"*\"")
        return list(dict.fromkeys(events))  # without repeats, in the order given


@router.post("", status_code=status.HTTP_201_CREATED, dependencies=ADMIN)
def create_subscriber(body: SubscriberIn, session: SessionDep) -> dict:
    """Register a subscriber. The answer holds its secret: the only time it is shown."""
    subscriber = Subscriber(name=body.name, url=str(body.url), events=" ".join(body.events),
                            secret=body.secret or secrets.token_urlsafe(32))
    session.add(subscriber)
    session.commit()
    session.refresh(subscriber)
    return subscriber_view(subscriber) | {"secret": subscriber.secret}


@router.get("", dependencies=ADMIN)
def list_subscribers(session: SessionDep) -> list[dict]:
    """Every subscriber, deleted ones too (inactive), without secrets."""
    return [subscriber_view(s) for s in session.exec(select(Subscriber).order_by(Subscriber.id))]


@router.delete("/{subscriber_id}", dependencies=ADMIN)
def delete_subscriber(subscriber_id: RowId, session: SessionDep) -> dict:
    """Deactivate a subscriber: nothing more is sent to it, what was pending is given up."""
    subscriber = _subscriber_or_404(session, subscriber_id)
    subscriber.active = False
    session.add(subscriber)
    session.exec(update(EventDelivery)
                 .where(EventDelivery.subscriber_id == subscriber_id, EventDelivery.status == "pending")
                 .values(status="failed", last_error="the subscriber was deleted"))
    session.commit()
    session.refresh(subscriber)
    return subscriber_view(subscriber)


@router.get("/{subscriber_id}/deliveries", dependencies=ADMIN)
def list_deliveries(subscriber_id: RowId, session: SessionDep,
                    limit: int = Query(default=100, ge=1, le=1000)) -> list[dict]:
    """What was sent to the subscriber, or is still to be sent, newest first."""
    _subscriber_or_404(session, subscriber_id)
    rows = session.exec(
        select(EventDelivery, OutboundEvent)
        .join(OutboundEvent, OutboundEvent.id == EventDelivery.outbound_event_id)
        .where(EventDelivery.subscriber_id == subscriber_id)
        .order_by(EventDelivery.id.desc())
        .limit(limit))
    return [delivery_view(delivery, event) for delivery, event in rows]


# --- helpers ---------------------------------------------------------------------------------


def subscriber_view(subscriber: Subscriber) -> dict:
    return {
        "id": subscriber.id, "name": subscriber.name, "url": subscriber.url,
        "events": subscriber.events.split(), "active": subscriber.active,
        "created_at": as_utc(subscriber.created_at).isoformat(),
    }


def delivery_view(delivery: EventDelivery, event: OutboundEvent) -> dict:
    return {
        "id": delivery.id, "event_type": event.type, "event_id": event.event_id, "case_id": event.case_id,
        "status": delivery.status, "attempts": delivery.attempts,
        "next_attempt_at": as_utc(delivery.next_attempt_at).isoformat() if delivery.status == "pending" else None,
        "last_status_code": delivery.last_status_code, "last_error": delivery.last_error,
        "delivered_at": as_utc(delivery.delivered_at).isoformat() if delivery.delivered_at else None,
    }


def _subscriber_or_404(session: Session, subscriber_id: int) -> Subscriber:
    subscriber = session.get(Subscriber, subscriber_id)
    if subscriber is None:
        raise ApiError(404, f"no subscriber with id {subscriber_id}", where="subscriber_id")
    return subscriber
