"""Asking a case to run an installment plan, from the API or the portal. Checked here against
the amount open and the case's flow, so a caller hears at once what is wrong; the case checks
it again when it applies it (a payment may arrive in between)."""

from __future__ import annotations

from datetime import date, datetime

from sqlmodel import Session, select
from temporalio.client import Client

from api.errors import ApiError
from api.signalling import queue_and_send
from dunflow.calendar import AMSTERDAM
from dunflow.flows import pinned_flow
from dunflow.plans import PlanRequest, TermSpec, monthly_terms, plan_offer, term_counts, term_problems
from dunflow.store import Case, PendingSignal


def plan_today() -> date:
    return datetime.now(AMSTERDAM).date()


def offered_counts(session: Session, case: Case, amount_open_cents: int) -> list[int]:
    """The numbers of monthly terms the case's flow allows for this amount (none: no plans)."""
    return term_counts(plan_offer(pinned_flow(session, case.flow_name, case.flow_version).definition),
                       amount_open_cents)


def planned_terms(session: Session, case: Case, request: PlanRequest, amount_open_cents: int) -> list[TermSpec]:
    """The terms the request makes from today, or a 422 saying which part is wrong."""
    if request.term_count is not None:
        offered = offered_counts(session, case, amount_open_cents)
        if request.term_count not in offered:
            allowed = f"{offered[0]} to {offered[-1]}" if offered else "no plan (the flow offers none for this amount)"
            raise ApiError(422, f"{request.term_count} terms are not offered; this case allows {allowed}",
                           where="term_count")
        return monthly_terms(amount_open_cents, request.term_count, plan_today())
    problems = term_problems(request.terms, amount_open_cents, plan_today())
    if problems:
        summary = "; ".join(f"{where}: {problem}" for where, problem in problems)
        raise ApiError(422, f"the terms do not make a plan: {summary}",
                       problems=[{"where": where, "problem": problem} for where, problem in problems])
    return request.terms


async def send_plan(session: Session, client: Client, case: Case, request: PlanRequest) -> str:
    """`accepted`, `queued` (Temporal is away) or `duplicate` (this plan id was sent before)."""
    key = f"plan:{case.id}:{request.plan_id}"
    if session.exec(select(PendingSignal.id).where(PendingSignal.key == key)).first() is not None:
        return "duplicate"
    return (await queue_and_send(session, client, case.id, "accept_plan", request, key=key))["status"]
