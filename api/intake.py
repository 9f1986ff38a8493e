"""Opening a case: store debtor, invoice and case first, then start its workflow.

The invoice number is unique, so the same invoice posted again finds its case and never starts a
second workflow; a case whose start failed (Temporal unreachable) is started by the next attempt.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select
from temporalio.client import Client
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.service import RPCError

from api.errors import ApiError
from api.schemas import CaseIn
from dunflow.case import CaseInput, DebtorInfo, InvoiceInfo
from dunflow.flows import PublishedFlow, flow_names, latest_flow, pinned_flow
from dunflow.metrics import CASES_STARTED
from dunflow.outbound import emit_case_started
from dunflow.settings import Settings
from dunflow.store import Case, Debtor, Invoice, release, workflow_id_for
from workflows.collection import CollectionWorkflow

log = logging.getLogger("dunflow.intake")

DEFAULT_FLOW = "standard"
INVOICE_FIELDS = ("debtor_id", "amount_cents", "currency", "issued_on", "due_on")


@dataclass
class OpenedCase:
    case: Case
    created: bool


def flow_for(session: Session, name: str | None) -> PublishedFlow:
    flow = latest_flow(session, name or DEFAULT_FLOW)
    if flow is None:
        known = ", ".join(flow_names(session)) or "none"
        raise ApiError(422, f"unknown flow {name!r}; published flows: {known}", where="flow")
    return flow


def invoice_conflicts(invoice: Invoice, wanted: Invoice) -> list[str]:
    return [
        f"{field} is {getattr(invoice, field)!s}, not {getattr(wanted, field)!s}"
        for field in INVOICE_FIELDS
        if getattr(invoice, field) != getattr(wanted, field)
    ]


def _store_debtor(session: Session, body: CaseIn) -> None:
    debtor = session.get(Debtor, body.debtor.id) or Debtor(id=body.debtor.id, name=body.debtor.name)
    for field, value in body.debtor.model_dump(exclude={"id"}).items():
        setattr(debtor, field, value)
    session.add(debtor)


def store_case(session: Session, body: CaseIn) -> OpenedCase:
    wanted = Invoice(debtor_id=body.debtor.id, **body.invoice.model_dump())
    existing = session.get(Invoice, wanted.number)
    if existing is not None:
        conflicts = invoice_conflicts(existing, wanted)
        if conflicts:
            raise ApiError(409, f"invoice {wanted.number} already exists with other data: {'; '.join(conflicts)}",
                           where="invoice.number")
        case = session.exec(select(Case).where(Case.invoice_number == wanted.number)).one()
        return OpenedCase(case=case, created=False)
    flow = flow_for(session, body.flow)
    try:
        _store_debtor(session, body)
        session.flush()  # rows without relationships are flushed in the order they must exist
        session.add(wanted)
        session.flush()
        case = Case(
            invoice_number=wanted.number, debtor_id=wanted.debtor_id, flow_name=flow.name, flow_version=flow.version,
            amount_open_cents=wanted.amount_cents, currency=wanted.currency,
        )
        session.add(case)
        session.commit()
    except IntegrityError:
        session.rollback()
        if session.get(Invoice, wanted.number) is None:
            raise
        return store_case(session, body)  # the same invoice posted at the same moment: that one won
    session.refresh(case)
    return OpenedCase(case=case, created=True)


def case_input(session: Session, case: Case, settings: Settings) -> CaseInput:
    pinned = pinned_flow(session, case.flow_name, case.flow_version)
    return CaseInput(
        case_id=case.id,
        flow=pinned.definition,
        flow_version=pinned.version,
        debtor=DebtorInfo.model_validate(session.get(Debtor, case.debtor_id), from_attributes=True),
        invoice=InvoiceInfo.model_validate(session.get(Invoice, case.invoice_number), from_attributes=True),
        day_seconds=settings.day_seconds,
        costs_vat=not settings.creditor_reclaims_vat,
        business_costs_per_mille=settings.business_costs_per_mille,
    )


async def start_workflow(client: Client, settings: Settings, case: CaseInput) -> None:
    """Start the case's workflow; one already running or finished under its id is left as it is."""
    try:
        await client.start_workflow(
            CollectionWorkflow.run,
            case,
            id=workflow_id_for(case.case_id),
            task_queue=settings.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )
        CASES_STARTED.inc()
        log.info("case started", extra={"case_id": case.case_id, "workflow_id": workflow_id_for(case.case_id)})
    except WorkflowAlreadyStartedError:
        pass  # it ran before and has finished: the case exists, nothing to start


async def open_case(session: Session, client: Client, settings: Settings, body: CaseIn) -> OpenedCase:
    opened = store_case(session, body)
    case = opened.case
    if case.workflow_started:
        return opened
    started_with = case_input(session, case, settings)
    release(session)
    try:
        await start_workflow(client, settings, started_with)
    except RPCError as error:
        raise ApiError(503, f"the case is stored (id {case.id}) but Temporal could not start it: {error.message}. "
                            "Post the same case again to start it; nothing will be duplicated.") from None
    case.workflow_started = True
    if case.status == "starting":
        case.status = "active"
    session.add(case)
    emit_case_started(session, case)  # in the commit that marks the start: once per case
    session.commit()
    session.refresh(case)
    return opened
