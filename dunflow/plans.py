"""Installment plans: schedules, what a plan may look like, and how payments fall on its terms.

Pure functions shared by the case workflow, the plan workflow, the API and the portal, so all
of them agree to the cent on what a plan is and how much of it is paid.
"""

from __future__ import annotations

import calendar
from datetime import date, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, Field

from dunflow.flow import FlowDefinition, OfferPlanStep
from dunflow.money import split_into_terms

FIRST_TERM_AFTER_DAYS = 7  # a plan agreed today has its first term a week later, then one a month
REMINDER_DAYS_BEFORE = 3  # a reminder goes out this many days before each term
GRACE_DAYS = 7  # a missed term gets one reminder; unpaid this many days later, the plan is broken
MAX_TERMS = 36
PLAN_STEP = "installment_plan"  # the step id of plan messages and timeline entries

PlanSource = Literal["portal", "call", "operator"]
PlanStatus = Literal["active", "completed", "broken", "replaced", "stopped"]
TermStatus = Literal["open", "paid", "missed"]


class TermSpec(BaseModel):
    due_on: date
    amount_cents: int


class PlanRequest(BaseModel):
    """Asks a case to run a plan: explicit terms (an operator), or a number of monthly terms
    that the case schedules from its own today (the portal, the robo-call)."""

    plan_id: str = Field(min_length=1, max_length=80)  # the same id twice is one plan
    source: PlanSource
    by: str = ""
    term_count: int | None = None
    terms: list[TermSpec] = Field(default_factory=list)


class PlanTerm(TermSpec):
    number: int
    paid_cents: int = 0
    status: TermStatus = "open"


class PlanState(BaseModel):
    plan_id: str
    source: PlanSource
    status: PlanStatus
    accepted_at: datetime
    total_cents: int
    paid_cents: int = 0
    currency: str
    terms: list[PlanTerm]


class PlanPaid(BaseModel):
    paid_cents: int  # everything paid toward the plan so far (a running total, so repeats are harmless)


class PlanEvent(BaseModel):
    """What the plan workflow tells its case, for the case timeline."""

    plan_id: str
    kind: Literal["plan_term_reminder", "plan_term_missed", "plan_reminder_failed"]
    term: int
    detail: str = ""


class TermNotice(BaseModel):
    """A term named in a plan message: which, when, how much is still due of it."""

    number: int
    of: int
    due_on: date
    amount_cents: int


def monthly_terms(total_cents: int, count: int, agreed_on: date) -> list[TermSpec]:
    """`count` terms adding up to `total_cents` exactly: the first a week after `agreed_on`,
    the next ones on the same day of the following months (or those months' last day)."""
    first = agreed_on + timedelta(days=FIRST_TERM_AFTER_DAYS)
    amounts = split_into_terms(total_cents, count)
    return [TermSpec(due_on=_months_later(first, index), amount_cents=amount) for index, amount in enumerate(amounts)]


def _months_later(day: date, months: int) -> date:
    year, month = divmod(day.month - 1 + months, 12)
    year, month = day.year + year, month + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def plan_offer(flow: FlowDefinition) -> OfferPlanStep | None:
    """The flow's limits for plans: its first offer_plan step, or None when it offers none."""
    return next((step for step in flow.steps.values() if isinstance(step, OfferPlanStep)), None)


def term_counts(offer: OfferPlanStep | None, total_cents: int) -> list[int]:
    """The numbers of terms a debtor may choose for this amount under the flow's limits."""
    if offer is None:
        return []
    return [count for count in range(2, offer.max_terms + 1) if total_cents // count >= offer.min_term_cents]


def term_problems(terms: list[TermSpec], total_cents: int, today: date, where: str = "terms") -> list[tuple[str, str]]:
    """(where, problem) for every way these terms do not make a plan for `total_cents` from `today`."""
    if not 1 <= len(terms) <= MAX_TERMS:
        return [(where, f"a plan has 1 to {MAX_TERMS} terms, not {len(terms)}")]
    problems = []
    for index, term in enumerate(terms):
        if term.amount_cents <= 0:
            problems.append((f"{where}[{index}].amount_cents", "a term's amount must be above zero"))
        if term.due_on < today:
            problems.append((f"{where}[{index}].due_on", f"lies before today ({today.isoformat()})"))
        if index and term.due_on <= terms[index - 1].due_on:
            problems.append((f"{where}[{index}].due_on", "terms must fall on ascending dates"))
    total = sum(term.amount_cents for term in terms)
    if total != total_cents:
        problems.append((where, f"the terms add up to {total} cents; the amount open is {total_cents}"))
    return problems


def allocate(terms: list[TermSpec], paid_cents: int) -> list[int]:
    """What of `paid_cents` falls on each term: in order, each filled before the next; a part
    payment stays on the term it reached, anything beyond the last term is not on the plan."""
    allocated = []
    for term in terms:
        share = max(0, min(term.amount_cents, paid_cents))
        allocated.append(share)
        paid_cents -= share
    return allocated


def paid_through(terms: list[TermSpec], paid_cents: int) -> int:
    """How many terms, from the first, are paid in full."""
    shares = allocate(terms, paid_cents)
    return next((index for index, (term, share) in enumerate(zip(terms, shares)) if share < term.amount_cents),
                len(terms))


def plan_state(request: PlanRequest, terms: list[TermSpec], currency: str, accepted_at: datetime) -> PlanState:
    return PlanState(
        plan_id=request.plan_id, source=request.source, status="active", accepted_at=accepted_at,
        total_cents=sum(term.amount_cents for term in terms), currency=currency,
        terms=[PlanTerm(number=index + 1, **term.model_dump()) for index, term in enumerate(terms)],
    )


def next_term(plan: PlanState) -> PlanTerm | None:
    """The first term not paid in full: the one a payment toward the plan goes to now."""
    return next((term for term in plan.terms if term.paid_cents < term.amount_cents), None)


def with_payments(plan: PlanState, paid_cents: int, missed: set[int]) -> PlanState:
    """The plan with `paid_cents` allocated to its terms; `missed` are the terms already overdue."""
    shares = allocate(plan.terms, paid_cents)
    terms = [
        term.model_copy(update={
            "paid_cents": share,
            "status": "paid" if share >= term.amount_cents else "missed" if term.number in missed else "open",
        })
        for term, share in zip(plan.terms, shares)
    ]
    return plan.model_copy(update={"terms": terms, "paid_cents": min(paid_cents, plan.total_cents)})
