"""A case's installment plan: read it, or agree one on the debtor's behalf (an operator)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from api.auth import require_scope
from api.deps import SessionDep, TemporalDep
from api.errors import ApiError
from api.plans import planned_terms, send_plan
from api.routes.cases import case_or_404
from api.schemas import PlanIn
from api.signalling import open_handle, open_state, workflow_handle
from dunflow.plans import PlanRequest, TermSpec
from workflows.collection import CollectionWorkflow

router = APIRouter(prefix="/api/cases", tags=["plans"])


@router.get("/{case_id}/plan", dependencies=[require_scope("read")])
async def get_plan(case_id: str, session: SessionDep, client: TemporalDep) -> dict:
    """The plan the case runs (or ran last): its terms, what is paid of each, and its status."""
    case = case_or_404(session, case_id)
    if not case.workflow_started:
        raise ApiError(404, f"case {case_id} has no payment plan (it has not started)")
    state = await workflow_handle(client, case).query(CollectionWorkflow.state)
    if state.plan is None:
        raise ApiError(404, f"case {case_id} has no payment plan")
    return {"case_id": case_id, "case_status": state.status} | state.plan.model_dump(mode="json")


@router.post("/{case_id}/plan", status_code=status.HTTP_202_ACCEPTED, dependencies=[require_scope("signals:write")])
async def post_plan(case_id: str, body: PlanIn, response: Response, session: SessionDep, client: TemporalDep) -> dict:
    """Agree a plan for the whole amount open: explicit terms, or a number of monthly terms the
    flow allows. A plan already running is replaced. The same plan_id again changes nothing."""
    case = case_or_404(session, case_id)
    state = await open_state(await open_handle(client, case), case_id)
    if state.status == "disputed":
        raise ApiError(409, f"case {case_id} is disputed; resolve the dispute before agreeing a plan")
    request = PlanRequest(
        plan_id=body.plan_id or f"operator:{uuid.uuid4().hex}", source="operator", by=body.by,
        term_count=body.term_count,
        terms=[TermSpec(**term.model_dump()) for term in body.terms or []],
    )
    terms = planned_terms(session, case, request, state.amount_open_cents)
    outcome = await send_plan(session, client, case, request)
    if outcome == "duplicate":
        response.status_code = status.HTTP_200_OK
    return {"case_id": case_id, "plan_id": request.plan_id, "status": outcome,
            "terms": [term.model_dump(mode="json") for term in terms]}
