"""Signals that lose nothing: stored with the change they carry, sent at once when Temporal is
reachable, and sent again by the worker's redelivery loop when it was not."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from pydantic import BaseModel
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from dunflow.case import DisputeOpened, DisputeResolved, PaymentReceived, PromiseToPay
from dunflow.plans import PlanRequest
from dunflow.metrics import SIGNALS_RECEIVED
from dunflow.store import PendingSignal, release, utcnow, workflow_id_for

log = logging.getLogger("dunflow.signals")

PAYLOADS: dict[str, type[BaseModel]] = {
    "payment_received": PaymentReceived,
    "dispute_opened": DisputeOpened,
    "dispute_resolved": DisputeResolved,
    "promise_to_pay": PromiseToPay,
    "accept_plan": PlanRequest,
}
REDELIVERY_INTERVAL_SECONDS = 5.0
RPC_TIMEOUT = timedelta(seconds=5)


def temporal_unreachable(error: Exception) -> bool:
    """True for errors that mean "try again later", not "this signal is wrong". CANCELLED is what
    a call gets when its own rpc_timeout runs out."""
    if isinstance(error, RPCError):
        return error.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.UNKNOWN,
                                RPCStatusCode.CANCELLED)
    return isinstance(error, RuntimeError) and "connect" in str(error).lower()  # a lazy client's first connect


def queue_signal(session: Session, case_id: str, signal: str, payload: BaseModel, key: str) -> PendingSignal:
    """Add the signal to the session; the caller commits it together with what it records."""
    if signal not in PAYLOADS:
        raise ValueError(f"unknown signal {signal!r}")
    row = PendingSignal(key=key, case_id=case_id, signal=signal, payload=payload.model_dump_json())
    session.add(row)
    SIGNALS_RECEIVED.labels(signal).inc()
    return row


async def send_signal(session: Session, client: Client, row: PendingSignal) -> str:
    """Send one stored signal and mark it. Raises when Temporal is unreachable (it stays pending)."""
    payload = PAYLOADS[row.signal].model_validate_json(row.payload)
    handle = client.get_workflow_handle(workflow_id_for(row.case_id))
    release(session)  # nothing is held while Temporal is asked (the row itself is already stored)
    row.attempts += 1
    try:
        await handle.signal(row.signal, payload, rpc_timeout=RPC_TIMEOUT)
        row.outcome = "delivered"
    except RPCError as error:  # NOT_FOUND: the flow has ended; the row is kept for an operator
        if temporal_unreachable(error):
            row.last_error = error.message
            await save(session, row)
            raise
        row.outcome, row.last_error = "case_closed", error.message
    row.delivered_at = utcnow()
    await save(session, row)
    return row.outcome


async def save(session: Session, row: PendingSignal) -> None:
    """Commit the row in a thread: a store that is busy must not stop the event loop."""
    def commit() -> None:
        session.add(row)
        session.commit()

    await asyncio.to_thread(commit)


async def redeliver_pending(engine: Engine, client: Client, limit: int = 500) -> int:
    """Send what is still pending, oldest first; stop at the first sign Temporal is still away."""
    sent = 0
    with Session(engine, expire_on_commit=False) as session:
        for row in await asyncio.to_thread(_pending, session, limit):
            try:
                await send_signal(session, client, row)
            except Exception as error:
                if temporal_unreachable(error):
                    break
                raise
            sent += 1
    return sent


def _pending(session: Session, limit: int) -> list[PendingSignal]:
    query = select(PendingSignal).where(PendingSignal.delivered_at.is_(None)).order_by(PendingSignal.id).limit(limit)
    rows = list(session.exec(query))
    session.commit()  # ends the read; the rows stay loaded
    return rows


async def redelivery_loop(engine: Engine, client: Client, stop: asyncio.Event,
                          interval: float = REDELIVERY_INTERVAL_SECONDS) -> None:
    while not stop.is_set():
        try:
            sent = await redeliver_pending(engine, client)
            if sent:
                log.info("redelivered %d signal(s)", sent)
        except Exception:
            log.exception("redelivery failed; trying again in %.0f s", interval)
        try:
            await asyncio.wait_for(stop.wait(), timeout=interval)
        except asyncio.TimeoutError:
            pass
