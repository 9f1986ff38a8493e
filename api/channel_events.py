"""What happened to a message (delivered, opened, a key pressed, ...): recorded once, then told
to its case. The one path for provider webhooks and for the API's channel-events route."""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError

from dunflow.case import FINAL_STATUSES, ChannelEvent
from dunflow.store import Case, ChannelEventRecord, Debtor, Message, release, workflow_id_for
from workflows.collection import CollectionWorkflow

# A message's status only moves forward: a late "delivered" never hides an "opened".
STATUS_RANK = {"sending": 0, "failed": 0, "unconfirmed": 1, "sent": 1, "delivered": 2, "answered": 2,
               "no_answer": 2, "bounced": 3, "opened": 3, "clicked": 4, "key_pressed": 4}
SIGNALLED_KINDS = {"delivered", "opened", "clicked", "bounced", "failed", "answered", "no_answer", "key_pressed"}


@dataclass(frozen=True)
class IncomingEvent:
    event_id: str  # unique per provider event; a replay carries the same id
    provider: str
    kind: str  # dunflow's kind (see SIGNALLED_KINDS), or the provider's own for events only recorded
    message_id: int | None
    key: str | None = None
    payload: object = None


async def deliver(session: Session, client: Client, event: IncomingEvent) -> str:
    """Record the event (once) and signal its case. Returns what happened to it."""
    event_id = f"{event.provider}:{event.event_id}"
    if session.exec(select(ChannelEventRecord.id).where(ChannelEventRecord.event_id == event_id)).first():
        return "duplicate"
    message = session.get(Message, event.message_id) if event.message_id is not None else None
    outcome = "unknown_message" if message is None else "recorded"
    if message is not None and event.kind in SIGNALLED_KINDS:
        release(session)
        outcome = await _signal_case(client, message, event, event_id)
        if STATUS_RANK.get(event.kind, 0) > STATUS_RANK.get(message.status, 0):
            message.status = event.kind
            session.add(message)
    session.add(ChannelEventRecord(
        event_id=event_id, provider=event.provider, kind=event.kind, key=event.key,
        message_id=message.id if message else None, case_id=message.case_id if message else None,
        outcome=outcome, payload=json.dumps(event.payload, default=str) if event.payload is not None else "",
    ))
    try:
        session.commit()
    except IntegrityError:  # the same event delivered twice at the same moment
        session.rollback()
        return "duplicate"
    return outcome


async def _signal_case(client: Client, message: Message, event: IncomingEvent, event_id: str) -> str:
    handle = client.get_workflow_handle(workflow_id_for(message.case_id))
    signal = ChannelEvent(event_id=event_id, step_id=message.step_id, message_id=message.id,
                          kind=event.kind, key=event.key)
    try:
        if (await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
            return "case_closed"
        await handle.signal(CollectionWorkflow.channel_event, signal)
    except RPCError:
        raise  # Temporal unreachable: answer 5xx so the provider delivers it again
    return "signalled"


def open_cases_of_phone(session: Session, phone: str) -> list[Case]:
    query = (select(Case).join(Debtor, Debtor.id == Case.debtor_id)
             .where(Debtor.phone == phone, Case.status.not_in(FINAL_STATUSES)))
    return list(session.exec(query))
