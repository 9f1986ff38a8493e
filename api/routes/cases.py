"""Cases: open one, read its state, and signal it (payments, disputes, promises, operator actions)."""

from __future__ import annotations

import asyncio

import uuid
from datetime import date

from fastapi import APIRouter, Response, status
from sqlmodel import Session
from temporalio.client import Client
from temporalio.service import RPCError

from api.auth import require_scope
from api.channel_events import IncomingEvent, deliver
from api.deps import LazyTemporalDep, SessionDep, SettingsDep, TemporalDep
from api.errors import ApiError
from api.intake import open_case
from api.schemas import CaseIn, ChannelEventIn, DisputeIn, DisputeResolutionIn, OperatorActionIn, PaymentIn, PromiseIn
from api.signalling import (
    open_handle,
    open_state,
    open_state_unless_away,
    queue_and_send,
    record_payment,
    signal_now,
    temporal_error,
    workflow_handle,
)
from dunflow.case import DisputeOpened, DisputeResolved, OperatorAction, PromiseToPay
from dunflow.store import Case, Debtor, Invoice, Message, as_utc, events_of_case, messages_of_case, release
from workflows.collection import CollectionWorkflow

router = APIRouter(prefix="/api/cases", tags=["cases"])
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
    case = case_or_404(session, case_id)
    state, state_error = None, None
    if case.workflow_started:
        try:
            state = await workflow_handle(client, case).query(CollectionWorkflow.state)
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
    case = await asyncio.to_thread(case_or_404, session, case_id)  # the loop serves others meanwhile
    status_now = await record_payment(session, client, case, body)
    if status_now == "duplicate":
        response.status_code = status.HTTP_200_OK
    return {"payment_id": body.payment_id, "case_id": case_id, "status": status_now}


@router.post("/{case_id}/disputes", status_code=status.HTTP_202_ACCEPTED, dependencies=SIGNALS_WRITE)
async def open_dispute(case_id: str, body: DisputeIn, session: SessionDep, client: LazyTemporalDep) -> dict:
    """The debtor disputes the invoice: the flow pauses (per the flow's route) until resolved."""
    case = case_or_404(session, case_id)
    state = await open_state_unless_away(client, case)
    if state is not None and state.status == "disputed":
        raise ApiError(409, f"case {case_id} already has an open dispute: {state.dispute}")
    return await queue_and_send(session, client, case_id, "dispute_opened", DisputeOpened(reason=body.reason))


@router.post("/{case_id}/disputes/resolve", status_code=status.HTTP_202_ACCEPTED, dependencies=SIGNALS_WRITE)
async def resolve_dispute(case_id: str, body: DisputeResolutionIn, session: SessionDep,
                          client: LazyTemporalDep) -> dict:
    """Close the open dispute: `upheld` (the debtor is right) or `rejected` (collection goes on)."""
    case = case_or_404(session, case_id)
    state = await open_state_unless_away(client, case)
    if state is not None and state.status != "disputed":
        raise ApiError(409, f"case {case_id} has no open dispute (status {state.status})")
    return await queue_and_send(session, client, case_id, "dispute_resolved", DisputeResolved(**body.model_dump()))


@router.post("/{case_id}/promises", status_code=status.HTTP_202_ACCEPTED, dependencies=SIGNALS_WRITE)
async def promise_to_pay(case_id: str, body: PromiseIn, session: SessionDep, client: LazyTemporalDep) -> dict:
    """The debtor promises to pay an amount by a date: the flow pauses until then."""
    if body.promised_on < date.today():
        raise ApiError(422, f"promised_on {body.promised_on} is in the past", where="promised_on")
    case = case_or_404(session, case_id)
    state = await open_state_unless_away(client, case)
    open_cents = state.amount_open_cents if state is not None else case.amount_open_cents
    if body.amount_cents > open_cents:
        raise ApiError(422, f"amount_cents {body.amount_cents} is more than the {open_cents} open",
                       where="amount_cents")
    return await queue_and_send(session, client, case_id, "promise_to_pay", PromiseToPay(**body.model_dump()))


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
    case = case_or_404(session, case_id)
    message = session.get(Message, body.message_id)
    if message is None or message.case_id != case_id:
        raise ApiError(404, f"case {case_id} has no message {body.message_id}", where="message_id")
    release(session)
    await open_handle(client, case)
    event_id = body.event_id or uuid.uuid4().hex
    try:
        outcome = await deliver(session, client, IncomingEvent(
            event_id=event_id, provider="api", kind=body.kind, message_id=message.id, key=body.key,
            payload=body.model_dump()))
    except RPCError as error:
        raise temporal_error(error, case) from None
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


def case_or_404(session: Session, case_id: str) -> Case:
    """The case, with the session released: the caller may await Temporal next."""
    case = session.get(Case, case_id)
    if case is None:
        raise ApiError(404, f"no case with id {case_id}", where="case_id")
    release(session)
    return case


async def _operator_action(session: Session, client: Client, case_id: str, signal, body: OperatorActionIn | None,
                           allowed: tuple[str, ...] | None, what: str) -> dict:
    handle = await open_handle(client, case_or_404(session, case_id))
    if allowed is not None:
        state = await open_state(handle, case_id)
        if state.status not in allowed:
            raise ApiError(409, f"case {case_id} is {state.status} and cannot be {what}")
    await signal_now(handle, signal, OperatorAction(**(body or OperatorActionIn()).model_dump()))
    return {"case_id": case_id, "status": "accepted"}
