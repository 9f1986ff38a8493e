"""Outbound events for other systems (an ERP, a ledger): stored with the change that caused them,
then POSTed, signed, to every subscriber that wants them, by the worker's delivery loop.

Delivery is at least once: a receiver deduplicates on the event id (the body's `id`).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
import uuid
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import httpx
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from dunflow.store import Case, EventDelivery, OutboundEvent, Subscriber, as_utc, utcnow

log = logging.getLogger("dunflow.outbound")

EVENT_TYPES = ("case.started", "case.paid", "case.escalated", "case.disputed", "plan.accepted", "plan.broken")
ALL_EVENTS = "*"
# The wait after the 1st, 2nd, ... failed attempt; the last wait repeats until MAX_ATTEMPTS.
BACKOFF = (timedelta(seconds=10), timedelta(seconds=30), timedelta(minutes=2), timedelta(minutes=10),
           timedelta(hours=1), timedelta(hours=6))
MAX_ATTEMPTS = 8
REQUEST_TIMEOUT_SECONDS = 10.0
DELIVERY_INTERVAL_SECONDS = 2.0
BATCH_SIZE = 100
ERROR_TEXT_LIMIT = 500


# --- emitting ----------------------------------------------------------------------------------


def wants(subscriber: Subscriber, event_type: str) -> bool:
    chosen = subscriber.events.split()
    return ALL_EVENTS in chosen or event_type in chosen


def emit(session: Session, event_type: str, case_id: str | None, data: dict) -> OutboundEvent:
    """Add the event and one pending delivery per interested subscriber; the caller commits, so
    the event is stored together with the change that caused it (or not at all)."""
    [event] = emit_many(session, event_type, [(case_id, data)])
    return event


def emit_many(session: Session, event_type: str, items: list[tuple[str | None, dict]]) -> list[OutboundEvent]:
    """`emit` for many events of one type at once (a bulk import): one query, one flush."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type!r}")
    events = [OutboundEvent(event_id=uuid.uuid4().hex, type=event_type, case_id=case_id, payload=json.dumps(data))
              for case_id, data in items]
    session.add_all(events)
    session.flush()  # gives the events their ids
    active = session.exec(select(Subscriber).where(Subscriber.active == True))  # noqa: E712
    interested = [subscriber.id for subscriber in active if wants(subscriber, event_type)]
    session.add_all(EventDelivery(outbound_event_id=event.id, subscriber_id=subscriber_id)
                    for event in events for subscriber_id in interested)
    return events


def case_facts(case: Case | None, amount_open_cents: int | None = None) -> dict:
    """What every case event carries, as far as it is known."""
    if case is None:
        return {} if amount_open_cents is None else {"amount_open_cents": amount_open_cents}
    open_cents = case.amount_open_cents if amount_open_cents is None else amount_open_cents
    return {"invoice_number": case.invoice_number, "amount_open_cents": open_cents, "currency": case.currency}


def started_facts(case: Case) -> tuple[str, dict]:
    return case.id, case_facts(case) | {"debtor_id": case.debtor_id, "flow": case.flow_name}


def emit_case_started(session: Session, case: Case) -> OutboundEvent:
    [event] = emit_many(session, "case.started", [started_facts(case)])
    return event


def history_event(kind: str, detail: str) -> tuple[str, dict] | None:
    """The outbound event (type, extra data) for a workflow history entry, if it has one."""
    if kind == "ended" and detail == "paid":
        return "case.paid", {}
    if kind == "escalated":
        return "case.escalated", {"reason": detail}
    if kind == "dispute_opened":
        return "case.disputed", {"reason": detail}
    if kind == "plan_accepted":
        return "plan.accepted", {"plan": detail}
    if kind == "plan_broken":
        return "plan.broken", {"plan_id": detail}
    return None


# --- delivering --------------------------------------------------------------------------------


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """HMAC-SHA256, hex, over "<timestamp>." followed by the body, keyed with the subscriber's secret."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def event_body(event: OutboundEvent) -> bytes:
    return json.dumps({
        "id": event.event_id, "type": event.type, "created_at": as_utc(event.created_at).isoformat(),
        "case_id": event.case_id, "data": json.loads(event.payload),
    }).encode()


def delivery_headers(delivery: EventDelivery, event: OutboundEvent, secret: str, body: bytes) -> dict[str, str]:
    timestamp = int(time.time())
    return {
        "Content-Type": "application/json",
        "X-Dunflow-Event": event.type,
        "X-Dunflow-Delivery": str(delivery.id),
        "X-Dunflow-Signature": f"t={timestamp},v1={sign(secret, timestamp, body)}",
    }


@dataclass
class Attempt:
    status_code: int | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


async def post_event(http: httpx.AsyncClient, delivery: EventDelivery, event: OutboundEvent,
                     subscriber: Subscriber) -> Attempt:
    body = event_body(event)
    try:
        response = await http.post(subscriber.url, content=body, timeout=REQUEST_TIMEOUT_SECONDS,
                                   headers=delivery_headers(delivery, event, subscriber.secret, body))
    except Exception as error:  # network error, timeout, a URL that no longer resolves: try again later
        return Attempt(error=f"{type(error).__name__}: {error}"[:ERROR_TEXT_LIMIT])
    if 200 <= response.status_code < 300:
        return Attempt(status_code=response.status_code)
    return Attempt(status_code=response.status_code,
                   error=f"HTTP {response.status_code}: {response.text}"[:ERROR_TEXT_LIMIT])


def backoff_after(attempts: int) -> timedelta:
    return BACKOFF[min(attempts, len(BACKOFF)) - 1]


def record_attempt(delivery: EventDelivery, attempt: Attempt, now: datetime) -> None:
    delivery.attempts += 1
    delivery.last_status_code, delivery.last_error = attempt.status_code, attempt.error
    if attempt.ok:
        delivery.status, delivery.delivered_at = "delivered", now
    elif delivery.attempts >= MAX_ATTEMPTS:
        delivery.status = "failed"
    else:
        delivery.next_attempt_at = now + backoff_after(delivery.attempts)


def due_deliveries(session: Session, now: datetime, limit: int) -> list[tuple[EventDelivery, OutboundEvent, Subscriber]]:
    query = (
        select(EventDelivery, OutboundEvent, Subscriber)
        .join(OutboundEvent, OutboundEvent.id == EventDelivery.outbound_event_id)
        .join(Subscriber, Subscriber.id == EventDelivery.subscriber_id)
        .where(EventDelivery.status == "pending", EventDelivery.next_attempt_at <= now,
               Subscriber.active == True)  # noqa: E712
        .order_by(EventDelivery.id)
        .limit(limit)
    )
    return list(session.exec(query))


async def deliver_due(engine: Engine, http: httpx.AsyncClient, now: datetime | None = None,
                      limit: int = BATCH_SIZE) -> int:
    """POST every pending delivery that is due (side by side) and record how each went. `now`
    defaults to the present; a later one makes retries due without waiting. Returns how many
    were delivered."""
    now = (now or utcnow()).astimezone(timezone.utc)
    due = await asyncio.to_thread(_load_due, engine, now, limit)  # the store in a thread, never on the loop
    attempts = await asyncio.gather(*(post_event(http, *row) for row in due))  # no transaction held meanwhile
    await asyncio.to_thread(_record_attempts, engine, due, attempts, now)
    return sum(attempt.ok for attempt in attempts)


def _load_due(engine: Engine, now: datetime, limit: int) -> list[tuple[EventDelivery, OutboundEvent, Subscriber]]:
    with Session(engine, expire_on_commit=False) as session:
        return due_deliveries(session, now, limit)


def _record_attempts(engine: Engine, due: list, attempts: list[Attempt], now: datetime) -> None:
    with Session(engine) as session:
        for (delivery, _event, _subscriber), attempt in zip(due, attempts):
            record_attempt(delivery, attempt, now)
            session.add(delivery)
        session.commit()


async def delivery_loop(engine: Engine, stop: asyncio.Event, interval: float = DELIVERY_INTERVAL_SECONDS,
                        http: httpx.AsyncClient | None = None) -> None:
    """Deliver what is due every `interval` seconds until `stop` is set. Without `http`, the loop
    makes a client of its own and closes it at the end."""
    async with AsyncExitStack() as stack:
        client = http or await stack.enter_async_context(httpx.AsyncClient())
        while not stop.is_set():
            try:
                delivered = await deliver_due(engine, client)
                if delivered:
                    log.info("delivered %d outbound event(s)", delivered)
            except Exception:
                log.exception("outbound delivery failed; trying again in %.0f s", interval)
            try:
                await asyncio.wait_for(stop.wait(), timeout=interval)
            except asyncio.TimeoutError:
                pass
