"""Cases: open one, read its state, and signal it (payments, disputes, promises, operator actions)."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

from fastapi import APIRouter, Response, status
from sqlmodel import Session, select
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from api.auth import require_scope
from api.channel_events import IncomingEvent, deliver
from api.deps import LazyTemporalDep, SessionDep, SettingsDep, TemporalDep
from api.errors import ApiError
from api.intake import open_case
from api.schemas import CaseIn, ChannelEventIn, DisputeIn, DisputeResolutionIn, OperatorActionIn, PaymentIn, PromiseIn
from dunflow.case import (
    FINAL_STATUSES,
    CaseState,
    DisputeOpened,
    DisputeResolved,
    OperatorAction,
    PaymentReceived,
    PromiseToPay,
)
from dunflow.signal_outbox import queue_signal, send_signal, temporal_unreachable
from dunflow.store import (
    Case,
    Debtor,
    Invoice,
    Message,
    Payment,
    PendingSignal,
    as_utc,
    events_of_case,
    messages_of_case,
)
from workflows.collection import CollectionWorkflow

router = APIRouter(prefix="/api/cases", tags=["cases"])
QUICK = timedelta(seconds=5)  # a request asks Temporal this long before it answers 503 or queues
CASES_WRITE, SIGNALS_WRITE, READ = [require_scope("cases:write")], [require_scope("signals:write")], [require_scope("read")]



@router.post("", status_code=status.HTTP_201_CREATED, dependencies=CASES_WRITE)
async def create_case(body: CaseIn, response: Response, session: SessionDep, client: TemporalDep,
                      settings: SettingsDep) -> dict:
    """Open a case for an invoice and start its collection flow. The same invoice again returns
    the existing case (200) and starts nothing."""
    opened = await open_case(session, client, settings, body)
    if not opened.created:
        response.status_code = status.HTTP_200_OK
    return _case_summary(opened.case) | {"created": opened.created}


@router.get("/{case_id}", dependencies=READ)
async def get_case(case_id: str, session: SessionDep, client: TemporalDep) -> dict:
    """The case: where its flow stands (from Temporal), its messages and events (from the store)."""
    case = _case_or_404(session, case_id)
    state, state_error = None, None
    if case.workflow_started:
        try:
            state = await _handle(client, case).query(CollectionWorkflow.state)
        except RPCError as error:
            state_error = f"Temporal could not be asked: {error.message}"
    return _case_summary(case) | {
        "debtor": session.get(Debtor, case.debtor_id).model_dump(),
        "invoice": session.get(Invoice, case.invoice_number).model_dump(mode="json"),
        "state": state.model_dump(mode="json") if state else None,
        "state_error": state_error,
        "messages": [message_view(m) for m in messages_of_case(session, case_id)],
        "events": [
            {"kind": e.kind, "detail": e.detail, "at": as_utc(e.at).isoformat()} for e in events_of_case(session, case_id)
        ],
    }


@router.post("/{case_id}/payments", status_code=status.HTTP_202_ACCEPTED, dependencies=SIGNALS_WRITE)
async def post_payment(case_id: str, body: PaymentIn, response: Response, session: SessionDep,
                       client: LazyTemporalDep) -> dict:
    """Record a payment (unique by payment_id) and signal it to the case. A repeat changes nothing.
    While Temporal is unreachable the payment is stored and answered `queued`; it is sent later."""
    case = _case_or_404(session, case_id)
    if body.currency != case.currency:
        raise ApiError(422, f"case {case_id} is in {case.currency}, the payment in {body.currency}", where="currency")
    key = f"payment:{body.payment_id}"
    existing = session.get(Payment, body.payment_id)
    if existing is not None:
        if (existing.case_id, existing.amount_cents, existing.currency) != (case_id, body.amount_cents, body.currency):
            raise ApiError(409, f"payment {body.payment_id} was already recorded with other data "
                                f"(case {existing.case_id}, {existing.amount_cents} {existing.currency})",
                           where="payment_id")
        response.status_code = status.HTTP_200_OK
        pending = session.exec(select(PendingSignal).where(PendingSignal.key == key)).one()
        if pending.delivered_at is not None:
            return {"payment_id": body.payment_id, "status": "duplicate", "case_id": case_id}
        return {"payment_id": body.payment_id, "case_id": case_id, "status": await _send_now(session, client, pending)}
    await _open_state_unless_away(client, case)
    pending = queue_signal(session, case_id, "payment_received", PaymentReceived(**body.model_dump()), key)
    session.add(Payment(case_id=case_id, **body.model_dump()))
    session.commit()
    return {"payment_id": body.payment_id, "case_id": case_id, "status": await _send_now(session, client, pending)}


@router.post("/{case_id}/disputes", status_code=status.HTTP_202_ACCEPTED, dependencies=SIGNALS_WRITE)
async def open_dispute(case_id: str, body: DisputeIn, session: SessionDep, client: LazyTemporalDep) -> dict:
    """The debtor disputes the invoice: the flow pauses (per the flow's route) until resolved."""
    case = _case_or_404(session, case_id)
    state = await _open_state_unless_away(client, case)
    if state is not None and state.status == "disputed":
        raise ApiError(409, f"case {case_id} already has an open dispute: {state.dispute}")
    return await _queue_and_send(session, client, case_id, "dispute_opened", DisputeOpened(reason=body.reason))


@router.post("/{case_id}/disputes/resolve", status_code=status.HTTP_202_ACCEPTED, dependencies=SIGNALS_WRITE)
async def resolve_dispute(case_id: str, body: DisputeResolutionIn, session: SessionDep,
                          client: LazyTemporalDep) -> dict:
    """Close the open dispute: `upheld` (the debtor is right) or `rejected` (collection goes on)."""
    case = _case_or_404(session, case_id)
    state = await _open_state_unless_away(client, case)
    if state is not None and state.status != "disputed":
        raise ApiError(409, f"case {case_id} has no open dispute (status {state.status})")
    return await _queue_and_send(session, client, case_id, "dispute_resolved", DisputeResolved(**body.model_dump()))


@router.post("/{case_id}/promises", status_code=status.HTTP_202_ACCEPTED, dependencies=SIGNALS_WRITE)
async def promise_to_pay(case_id: str, body: PromiseIn, session: SessionDep, client: LazyTemporalDep) -> dict:
    """The debtor promises to pay an amount by a date: the flow pauses until then."""
    if body.promised_on < date.today():
        raise ApiError(422, f"promised_on {body.promised_on} is in the past", where="promised_on")
    case = _case_or_404(session, case_id)
    state = await _open_state_unless_away(client, case)
    open_cents = state.amount_open_cents if state is not None else case.amount_open_cents
    if body.amount_cents > open_cents:
        raise ApiError(422, f"amount_cents {body.amount_cents} is more than the {open_cents} open",
                       where="amount_cents")
    return await _queue_and_send(session, client, case_id, "promise_to_pay", PromiseToPay(**body.model_dump()))


@router.post("/{case_id}/pause", status_code=status.HTTP_202_ACCEPTED, dependencies=SIGNALS_WRITE)
async def pause_case(case_id: str, session: SessionDep, client: TemporalDep, body: OperatorActionIn | None = None) -> dict:
    """An operator holds the case until resumed."""
    return await _operator_action(session, client, case_id, CollectionWorkflow.pause, body,
                                  allowed=("active", "escalated"), what="paused")


@router.post("/{case_id}/resume", status_code=status.HTTP_202_ACCEPTED, dependencies=SIGNALS_WRITE)
async def resume_case(case_id: str, session: SessionDep, client: TemporalDep, body: OperatorActionIn | None = None) -> dict:
    """Resume a paused, disputed or promised case, or take an escalated case on to its next step."""
    return await _operator_action(session, client, case_id, CollectionWorkflow.resume, body,
                                  allowed=("paused", "disputed", "promised", "escalated"), what="resumed")


@router.post("/{case_id}/cancel", status_code=status.HTTP_202_ACCEPTED, dependencies=SIGNALS_WRITE)
async def cancel_case(case_id: str, session: SessionDep, client: TemporalDep, body: OperatorActionIn | None = None) -> dict:
    """Stop collecting this case for good."""
    return await _operator_action(session, client, case_id, CollectionWorkflow.cancel, body,
                                  allowed=None, what="cancelled")


@router.post("/{case_id}/channel-events", status_code=status.HTTP_202_ACCEPTED, dependencies=SIGNALS_WRITE)
async def channel_event(case_id: str, body: ChannelEventIn, session: SessionDep, client: TemporalDep) -> dict:
    """Report what happened to a message the case sent (delivered, opened, a key pressed, ...)."""
    case = _case_or_404(session, case_id)
    message = session.get(Message, body.message_id)
    if message is None or message.case_id != case_id:
        raise ApiError(404, f"case {case_id} has no message {body.message_id}", where="message_id")
    await _open_handle(client, case)
    event_id = body.event_id or uuid.uuid4().hex
    try:
        outcome = await deliver(session, client, IncomingEvent(
            event_id=event_id, provider="api", kind=body.kind, message_id=message.id, key=body.key,
            payload=body.model_dump()))
    except RPCError as error:
        raise _temporal_error(error, case) from None
    return {"case_id": case_id, "status": "accepted", "event_id": event_id, "outcome": outcome}


# --- helpers ---------------------------------------------------------------------------------


def message_view(message: Message) -> dict:
    return {
        "id": message.id, "case_id": message.case_id, "step_id": message.step_id, "channel": message.channel,
        "template": message.template, "language": message.language, "recipient": message.recipient,
        "subject": message.subject, "body": message.body, "provider": message.provider,
        "status": message.status, "error": message.error,
        "created_at": as_utc(message.created_at).isoformat(),
        "sent_at": as_utc(message.sent_at).isoformat() if message.sent_at else None,
    }


def _case_summary(case: Case) -> dict:
    return {
        "case_id": case.id, "workflow_id": case.workflow_id, "flow": case.flow_name,
        "flow_version": case.flow_version, "invoice_number": case.invoice_number, "status": case.status,
        "current_step": case.current_step, "amount_open_cents": case.amount_open_cents, "currency": case.currency,
    }


def _case_or_404(session: Session, case_id: str) -> Case:
    case = session.get(Case, case_id)
    if case is None:
        raise ApiError(404, f"no case with id {case_id}", where="case_id")
    return case


def _handle(client: Client, case: Case) -> WorkflowHandle:
    return client.get_workflow_handle_for(CollectionWorkflow.run, case.workflow_id)


async def _open_handle(client: Client, case: Case) -> WorkflowHandle:
    """The case's workflow, if it is still running; a 409 saying so if it has finished."""
    if not case.workflow_started:
        raise ApiError(409, f"case {case.id} has not started yet; post the case again to start it")
    handle = _handle(client, case)
    try:
        description = await handle.describe(rpc_timeout=QUICK)
    except RPCError as error:
        if temporal_unreachable(error):
            raise  # answered 503 by the app, or queued by the signal routes
        raise _temporal_error(error, case) from None
    if description.status != WorkflowExecutionStatus.RUNNING:
        closed_as = case.status if case.status in FINAL_STATUSES else description.status.name.lower()
        raise ApiError(409, f"case {case.id} is closed ({closed_as}); only open cases take signals")
    return handle


async def _open_state(handle: WorkflowHandle, case_id: str) -> CaseState:
    """The state of a running case; a 409 when its flow has just ended."""
    state = await handle.query(CollectionWorkflow.state, rpc_timeout=QUICK)
    if state.status in FINAL_STATUSES:
        raise ApiError(409, f"case {case_id} is closed ({state.status}); only open cases take signals")
    return state


async def _open_state_unless_away(client: Client, case: Case) -> CaseState | None:
    """The state of the running case; None while Temporal cannot be reached (the signal will wait)."""
    try:
        return await _open_state(await _open_handle(client, case), case.id)
    except Exception as error:
        if temporal_unreachable(error):
            return None
        raise


async def _queue_and_send(session: Session, client: Client, case_id: str, signal: str, payload) -> dict:
    pending = queue_signal(session, case_id, signal, payload, key=f"{signal}:{uuid.uuid4().hex}")
    session.commit()
    return {"case_id": case_id, "status": await _send_now(session, client, pending)}


async def _send_now(session: Session, client: Client, pending: PendingSignal) -> str:
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


async def _signal(handle: WorkflowHandle, signal, payload) -> None:
    try:
        await handle.signal(signal, payload)
    except RPCError as error:
        raise ApiError(503 if error.status == RPCStatusCode.UNAVAILABLE else 409,
                       f"the signal could not be delivered: {error.message}") from None


def _temporal_error(error: RPCError, case: Case) -> ApiError:
    if error.status == RPCStatusCode.NOT_FOUND:
        return ApiError(409, f"case {case.id} has no workflow in Temporal; it may have been removed")
    return ApiError(503, f"Temporal is unreachable: {error.message}; try again")


async def _operator_action(session: Session, client: Client, case_id: str, signal, body: OperatorActionIn | None,
                           allowed: tuple[str, ...] | None, what: str) -> dict:
    handle = await _open_handle(client, _case_or_404(session, case_id))
    if allowed is not None:
        state = await _open_state(handle, case_id)
        if state.status not in allowed:
            raise ApiError(409, f"case {case_id} is {state.status} and cannot be {what}")
    await _signal(handle, signal, OperatorAction(**(body or OperatorActionIn()).model_dump()))
    return {"case_id": case_id, "status": "accepted"}
