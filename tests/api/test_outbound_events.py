"""Outbound events: subscribers get signed POSTs for what happens to cases, retried until they answer."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
import time
from datetime import datetime, timedelta

import httpx
import pytest
from sqlmodel import Session, select

from activities.collection import CollectionActivities
from api.intake import store_case
from api.schemas import CaseIn
from dunflow.case import HistoryEntry, ProgressReport
from dunflow.outbound import BACKOFF, MAX_ATTEMPTS, deliver_due, emit
from dunflow.store import EventDelivery, OutboundEvent, Subscriber, utcnow
from dunflow.templates import TemplateCatalog
from tests.api.test_cases_api import new_case, payment
from tests.support.webhook_receiver import WebhookReceiver


@pytest.fixture
def receiver():
    with WebhookReceiver() as server:
        yield server


async def subscribe(api, url: str, events: list[str], **extra) -> dict:
    response = await api.post("/api/subscribers", json={"name": "erp", "url": url, "events": events} | extra)
    assert response.status_code == 201, response.text
    return response.json()


async def open_case(api, number: str = "F-2026-001") -> str:
    response = await api.post("/api/cases", json=new_case(number))
    assert response.status_code == 201, response.text
    return response.json()["case_id"]


async def deliver(api, now: datetime | None = None) -> int:
    async with httpx.AsyncClient() as http:
        return await deliver_due(api.app.state.engine, http, now=now)


async def received(api, receiver: WebhookReceiver, count: int, seconds: float = 20):
    """Deliver what is due until the receiver has `count` requests (the worker records progress
    asynchronously, so an event can appear a moment after the API answered)."""
    for _ in range(int(seconds * 10)):
        await deliver(api)
        if len(receiver.requests) >= count:
            return receiver.requests
        await asyncio.sleep(0.1)
    raise AssertionError(f"the receiver got {len(receiver.requests)} request(s), not {count}")


async def deliveries(api, subscriber_id: int) -> list[dict]:
    response = await api.get(f"/api/subscribers/{subscriber_id}/deliveries")
    assert response.status_code == 200, response.text
    return response.json()


def assert_signed(request, secret: str) -> None:
    """Check the signature as a receiver would: HMAC-SHA256 over "<t>." + the raw body."""
    parts = dict(part.split("=", 1) for part in request.header("X-Dunflow-Signature").split(","))
    expected = hmac.new(secret.encode(), parts["t"].encode() + b"." + request.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(parts["v1"], expected)
    assert abs(int(parts["t"]) - time.time()) < 120


async def test_a_started_and_a_paid_case_are_posted_signed(api, receiver):
    subscriber = await subscribe(api, receiver.url, ["*"])
    assert len(subscriber["secret"]) >= 32
    case_id = await open_case(api)

    [started] = await received(api, receiver, 1)
    assert started.route == "/dunflow-events"
    assert started.header("Content-Type") == "application/json"
    assert started.header("X-Dunflow-Event") == "case.started"
    assert_signed(started, subscriber["secret"])
    body = started.json()
    assert (body["type"], body["case_id"]) == ("case.started", case_id)
    assert len(body["id"]) == 32 and datetime.fromisoformat(body["created_at"]).tzinfo is not None
    assert body["data"]["invoice_number"] == "F-2026-001" and body["data"]["amount_open_cents"] == 24_500

    paid = await api.post(f"/api/cases/{case_id}/payments", json=payment())
    assert paid.status_code == 202, paid.text
    _, paid_event = await received(api, receiver, 2)
    assert paid_event.header("X-Dunflow-Event") == "case.paid"
    assert_signed(paid_event, subscriber["secret"])
    assert paid_event.json()["data"] | {"case_id": paid_event.json()["case_id"]} == {
        "invoice_number": "F-2026-001", "amount_open_cents": 0, "currency": "EUR", "case_id": case_id}

    log = await deliveries(api, subscriber["id"])
    assert [(d["event_type"], d["status"], d["attempts"], d["last_status_code"]) for d in log] == [
        ("case.paid", "delivered", 1, 200), ("case.started", "delivered", 1, 200)]
    assert log[1]["event_id"] == body["id"] and started.header("X-Dunflow-Delivery") == str(log[1]["id"])


async def test_a_refused_delivery_is_sent_again_after_its_backoff(api, receiver):
    receiver.answer_next(500)
    subscriber = await subscribe(api, receiver.url, ["case.started"])
    await open_case(api)
    await received(api, receiver, 1)
    [pending] = await deliveries(api, subscriber["id"])
    assert (pending["status"], pending["attempts"], pending["last_status_code"]) == ("pending", 1, 500)
    assert "500" in pending["last_error"] and pending["delivered_at"] is None

    assert await deliver(api) == 0 and len(receiver.requests) == 1  # not due yet
    assert await deliver(api, now=utcnow() + BACKOFF[0] + timedelta(seconds=1)) == 1
    first, second = receiver.requests
    assert first.json()["id"] == second.json()["id"]  # the same event, for the receiver to deduplicate
    assert first.header("X-Dunflow-Delivery") == second.header("X-Dunflow-Delivery")
    assert_signed(second, subscriber["secret"])
    [delivered] = await deliveries(api, subscriber["id"])
    assert (delivered["status"], delivered["attempts"], delivered["last_status_code"]) == ("delivered", 2, 200)
    assert delivered["last_error"] is None and delivered["delivered_at"]


async def test_only_the_subscribed_event_types_are_sent(api, receiver):
    with WebhookReceiver() as everything:
        only_disputes = await subscribe(api, receiver.url, ["case.disputed"])
        await subscribe(api, everything.url, ["*"])
        case_id = await open_case(api)
        await received(api, everything, 1)
        assert receiver.requests == [] and await deliveries(api, only_disputes["id"]) == []

        dispute = await api.post(f"/api/cases/{case_id}/disputes", json={"reason": "never delivered"})
        assert dispute.status_code == 202, dispute.text
        [disputed] = await received(api, receiver, 1)
    assert disputed.header("X-Dunflow-Event") == "case.disputed"
    assert disputed.json()["data"]["reason"] == "never delivered"
    assert disputed.json()["data"]["invoice_number"] == "F-2026-001"
    assert [d["event_type"] for d in await deliveries(api, only_disputes["id"])] == ["case.disputed"]


async def test_cases_opened_in_bulk_are_posted_once_each(api, receiver):
    subscriber = await subscribe(api, receiver.url, ["case.started"])
    lines = [json.dumps(new_case(f"F-2026-1{n:02d}")) for n in range(3)]
    for _ in range(2):  # the second import starts nothing, so it announces nothing
        response = await api.post("/api/cases/bulk", content="\n".join(lines),
                                  headers={"content-type": "application/x-ndjson"})
        assert response.status_code == 200, response.text
    requests = await received(api, receiver, 3)
    await deliver(api, now=utcnow() + timedelta(days=1))
    assert len(receiver.requests) == 3
    for request in requests:
        assert_signed(request, subscriber["secret"])
    numbers = sorted(request.json()["data"]["invoice_number"] for request in requests)
    assert numbers == ["F-2026-100", "F-2026-101", "F-2026-102"]
    assert all(request.json()["data"]["flow"] == "standard" for request in requests)


async def test_a_deleted_subscriber_gets_nothing_more(api, receiver):
    subscriber = await subscribe(api, receiver.url, ["*"], secret="a-secret-of-our-own-choosing")
    assert subscriber["secret"] == "a-secret-of-our-own-choosing"
    await open_case(api, "F-2026-001")  # its case.started is pending until the next delivery run
    deleted = await api.delete(f"/api/subscribers/{subscriber['id']}")
    assert deleted.status_code == 200 and deleted.json()["active"] is False
    await open_case(api, "F-2026-002")

    assert await deliver(api, now=utcnow() + timedelta(days=1)) == 0
    assert receiver.requests == []
    [given_up] = await deliveries(api, subscriber["id"])
    assert (given_up["status"], given_up["attempts"], given_up["last_error"]) == (
        "failed", 0, "the subscriber was deleted")
    [listed] = (await api.get("/api/subscribers")).json()
    assert listed["active"] is False and "secret" not in listed


@pytest.mark.parametrize(("change", "where"), [
    ({"url": "ftp://erp.example.nl/in"}, "url"),
    ({"url": "not a url"}, "url"),
    ({"events": ["case.started", "case.vanished"]}, "events"),
    ({"events": []}, "events"),
    ({"name": ""}, "name"),
    ({"secret": "short"}, "secret"),
    ({"colour": "blue"}, "colour"),
])
async def test_a_bad_subscriber_is_refused_with_where(api, change, where):
    body = {"name": "erp", "url": "https://erp.example.nl/in", "events": ["*"]} | change
    response = await api.post("/api/subscribers", json=body)
    assert response.status_code == 422, response.text
    assert where in [problem["where"] for problem in response.json()["problems"]]


async def test_an_unknown_subscriber_is_404(api):
    for response in (await api.delete("/api/subscribers/999"), await api.get("/api/subscribers/999/deliveries")):
        assert response.status_code == 404
        assert response.json()["problems"] == [{"where": "subscriber_id", "problem": "no subscriber with id 999"}]


# --- the delivery kernel alone, without Temporal ------------------------------------------------


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/gone"


def only_delivery(engine) -> EventDelivery:
    with Session(engine) as session:
        [delivery] = session.exec(select(EventDelivery)).all()
        return delivery


async def test_a_delivery_gives_up_after_the_last_attempt(engine):
    with Session(engine) as session:
        session.add(Subscriber(name="down", url=closed_port_url(), secret="s" * 32, events="*"))
        session.commit()
        emit(session, "plan.broken", None, {"note": "no case needed"})
        session.commit()
    moment = utcnow()
    async with httpx.AsyncClient() as http:
        for attempt in range(1, MAX_ATTEMPTS + 1):
            assert await deliver_due(engine, http, now=moment) == 0
            assert only_delivery(engine).attempts == attempt
            moment += BACKOFF[min(attempt, len(BACKOFF)) - 1]
            await deliver_due(engine, http, now=moment - timedelta(seconds=1))  # a second early: not due
            assert only_delivery(engine).attempts == attempt
    delivery = only_delivery(engine)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("failed", MAX_ATTEMPTS, None)
    assert delivery.last_error.startswith("ConnectError")


def test_emit_refuses_an_unknown_type(engine):
    with Session(engine) as session, pytest.raises(ValueError, match="case.vanished"):
        emit(session, "case.vanished", None, {})


def test_progress_recorded_twice_emits_each_event_once(engine, settings):
    with Session(engine) as session:
        session.add(Subscriber(name="erp", url="http://127.0.0.1:9/in", secret="s" * 32, events="*"))
        case = store_case(session, CaseIn.model_validate(new_case("F-2026-009"))).case
        session.commit()
        case_id = case.id
    at = utcnow()
    report = ProgressReport(case_id=case_id, workflow_id=f"case-{case_id}", status="escalated",
                            current_step="hand_over", amount_open_cents=24_500, entries=[
                                HistoryEntry(seq=1, at=at, kind="started"),
                                HistoryEntry(seq=2, at=at, kind="escalated", step="hand_over", detail="no answer")])
    activities = CollectionActivities(engine, settings, TemplateCatalog(settings.templates_dir), providers={})
    activities.record_progress(report)
    activities.record_progress(report)  # an activity retried after it wrote but before it answered
    with Session(engine) as session:
        events = session.exec(select(OutboundEvent)).all()
        assert [(e.type, e.case_id) for e in events] == [("case.escalated", case_id)]
        assert json.loads(events[0].payload) == {"invoice_number": "F-2026-009", "amount_open_cents": 24_500,
                                                 "currency": "EUR", "reason": "no answer"}
        assert len(session.exec(select(EventDelivery)).all()) == 1

