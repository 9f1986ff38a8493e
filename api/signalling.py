"""Talking to a case's workflow from the API: is it open, what is its state, send a signal now
or queue it while Temporal is away. Shared by the case routes and the bank statement import."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from sqlmodel import Session, select
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from api.errors import ApiError
from api.schemas import PaymentIn
from dunflow.case import FINAL_STATUSES, CaseState, PaymentReceived
from dunflow.signal_outbox import queue_signal, send_signal, temporal_unreachable
from dunflow.store import Case, Payment, PendingSignal
from workflows.collection import CollectionWorkflow

QUICK = timedelta(seconds=5)  # a request asks Temporal this long before it answers 503 or queues


def workflow_handle(client: Client, case: Case) -> WorkflowHandle:
    return client.get_workflow_handle_for(CollectionWorkflow.run, case.workflow_id)


async def open_handle(client: Client, case: Case) -> WorkflowHandle:
    """The case's workflow, if it is still running; a 409 saying so if it has finished."""
    if not case.workflow_started:
        raise ApiError(409, f"case {case.id} has not started yet; post the case again to start it")
    handle = workflow_handle(client, case)
    try:
        description = await handle.describe(rpc_timeout=QUICK)
    except RPCError as error:
        if temporal_unreachable(error):
            raise  # answered 503 by the app, or queued by the signal routes
        raise temporal_error(error, case) from None
    if description.status != WorkflowExecutionStatus.RUNNING:
        closed_as = case.status if case.status in FINAL_STATUSES else description.status.name.lower()
        raise ApiError(409, f"case {case.id} is closed ({closed_as}); only open cases take signals")
    return handle


async def open_state(handle: WorkflowHandle, case_id: str) -> CaseState:
    """The state of a running case; a 409 when its flow has just ended."""
    state = await handle.query(CollectionWorkflow.state, rpc_timeout=QUICK)
    if state.status in FINAL_STATUSES:
        raise ApiError(409, f"case {case_id} is closed ({state.status}); only open cases take signals")
    return state


async def check_open_unless_away(client: Client, case: Case) -> None:
    """A 409 when the case's flow has ended, even while its workflow is still closing; nothing
    when it is open or Temporal cannot be asked. Asks for the status alone, not the whole state."""
    try:
        status = await (await open_handle(client, case)).query(CollectionWorkflow.status, rpc_timeout=QUICK)
    except Exception as error:
        if temporal_unreachable(error):
            return
        raise
    if status in FINAL_STATUSES:
        raise ApiError(409, f"case {case.id} is closed ({status}); only open cases take signals")


async def open_state_unless_away(client: Client, case: Case) -> CaseState | None:
    """The state of the running case; None while Temporal cannot be reached (the signal will wait)."""
    try:
        return await open_state(await open_handle(client, case), case.id)
    except Exception as error:
        if temporal_unreachable(error):
            return None
        raise


async def queue_and_send(session: Session, client: Client, case_id: str, signal: str, payload,
                         key: str | None = None) -> dict:
    """Store the signal (under `key`, unique; a fresh one by default), then send it."""
    pending = queue_signal(session, case_id, signal, payload, key=key or f"{signal}:{uuid.uuid4().hex}")
    session.commit()
    return {"case_id": case_id, "status": await send_now(session, client, pending)}


async def send_now(session: Session, client: Client, pending: PendingSignal) -> str:
    """`accepted` when sent; `queued` when Temporal is away (the worker sends it when it is back)."""
    try:
        outcome = await send_signal(session, client, pending)
    except Exception as error:
        if temporal_unreachable(error):
            return "queued"
        raise
    if outcome == "case_closed":
        raise ApiError(409, f"case {pending.case_id} is closed; only open cases take signals")
    return "accepted"


async def signal_now(handle: WorkflowHandle, signal, payload) -> None:
    try:
        await handle.signal(signal, payload)
    except RPCError as error:
        raise ApiError(503 if error.status == RPCStatusCode.UNAVAILABLE else 409,
                       f"the signal could not be delivered: {error.message}") from None


def temporal_error(error: RPCError, case: Case) -> ApiError:
    if error.status == RPCStatusCode.NOT_FOUND:
        return ApiError(409, f"case {case.id} has no workflow in Temporal; it may have been removed")
    return ApiError(503, f"Temporal is unreachable: {error.message}; try again")


async def record_payment(session: Session, client: Client, case: Case, payment: PaymentIn) -> str:
    """Store a payment (unique by payment_id) with its signal, and send it. Returns `accepted`,
    `queued` (Temporal is away; the worker sends it later) or `duplicate` (nothing changed)."""
    if payment.currency != case.currency:
        raise ApiError(422, f"case {case.id} is in {case.currency}, the payment in {payment.currency}",
                       where="currency")
    key = f"payment:{payment.payment_id}"
    existing = await in_thread(session, lambda: session.get(Payment, payment.payment_id))
    if existing is not None:
        if (existing.case_id, existing.amount_cents, existing.currency) != (case.id, payment.amount_cents,
                                                                            payment.currency):
            raise ApiError(409, f"payment {payment.payment_id} was already recorded with other data "
                                f"(case {existing.case_id}, {existing.amount_cents} {existing.currency})",
                           where="payment_id")
        pending = session.exec(select(PendingSignal).where(PendingSignal.key == key)).one()
        return "duplicate" if pending.delivered_at is not None else await send_now(session, client, pending)
    await check_open_unless_away(client, case)

    def store() -> PendingSignal:
        pending = queue_signal(session, case.id, "payment_received", PaymentReceived(**payment.model_dump()), key)
        session.add(Payment(case_id=case.id, **payment.model_dump()))
        return pending

    return await send_now(session, client, await in_thread(session, store))


async def in_thread(session: Session, work):
    """Run `work` (store calls) and commit, in a thread: the event loop serves other requests
    while the database answers and writes to disk. Nothing is held afterwards."""
    def run():
        result = work()
        session.commit()
        return result

    return await asyncio.to_thread(run)
