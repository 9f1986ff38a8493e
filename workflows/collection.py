"""CollectionWorkflow: interprets the flow definition pinned in its input, one step at a time.

Deterministic code only: time comes from `workflow.now()`, all I/O happens in activities.
Signals never act in the middle of a step: they queue an event in the inbox, and the inbox is
applied between steps and whenever the case is waiting (a wait wakes for every signal).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ChildWorkflowError

from workflows.sending import NotSent, send_message

with workflow.unsafe.imports_passed_through():
    from dunflow.calendar import FlowClock, add_business_days, local_time, next_contact_moment, notice_term_ends
    from dunflow.case import (
        CaseInput,
        CaseState,
        ChannelEvent,
        ContactDecision,
        ContactRequest,
        DisputeOpened,
        DisputeResolved,
        HistoryEntry,
        NextAction,
        OperatorAction,
        PaymentReceived,
        PlanInput,
        PlanProposal,
        ProgressReport,
        PromiseToPay,
        SendRequest,
        SendResult,
        SentMessage,
        VersionMove,
    )
    from dunflow.flow import (
        AmountOpenAbove,
        BranchStep,
        ChargeCostsStep,
        Clicked,
        DebtorIs,
        EndStep,
        EscalateStep,
        KeyPressed,
        OfferPlanStep,
        Opened,
        Route,
        SendStep,
        WaitStep,
    )
    from dunflow.interest import interest_so_far
    from dunflow.money import collection_costs, format_amount, split_into_terms
    from dunflow.plans import (
        PLAN_STEP,
        PlanEvent,
        PlanPaid,
        PlanRequest,
        PlanState,
        TermSpec,
        monthly_terms,
        plan_offer,
        plan_state,
        term_counts,
        term_problems,
        with_payments,
    )
    from dunflow.search_attributes import case_search_attributes

RECORD_RETRY = RetryPolicy(initial_interval=timedelta(seconds=2), maximum_interval=timedelta(minutes=5))

# Inbox events that are not flow signal routes but operator actions.
OPERATOR_EVENTS = ("operator_pause", "operator_resume", "operator_cancel")
PLAN_ACCEPTED = "plan_accepted"  # inbox event: a plan request waits in `_plan_requests`
PAYMENT_EVENTS = ("full_payment", "partial_payment")
STAY = "__stay__"  # returned by the inbox while waiting: keep waiting where we are
RESUMED = "__resumed__"  # returned for an escalated case an operator resumed

PauseReason = Literal["dispute", "promise", "operator"]
PAUSE_STATUS = {"dispute": "disputed", "promise": "promised", "operator": "paused"}
PAUSE_BY_EVENT = {"dispute_opened": "dispute", "promise_to_pay": "promise"}
# Events that end a pause of the given reason (operator_resume ends any pause).
PAUSE_ENDERS = {"dispute": ("dispute_upheld", "dispute_rejected"), "promise": ("promise_due",), "operator": ()}


@dataclass(frozen=True)
class Notice:
    step_id: str
    term_ends: date
    costs_cents: int  # the costs the notice stated: a consumer is never charged more


@workflow.defn(name="CollectionWorkflow")
class CollectionWorkflow:
    @workflow.init
    def __init__(self, case: CaseInput) -> None:
        self._case = case
        self._flow = case.flow
        self._clock = FlowClock(workflow.now(), case.day_seconds)
        self._status = "active"
        self._outcome: str | None = None
        self._step = case.flow.start
        self._next_action: NextAction | None = None
        self._amount_open = case.invoice.amount_cents
        self._amount_paid = 0
        self._payment_ids: set[str] = set()
        self._event_ids: set[str] = set()
        self._facts: dict[str, set[str]] = {}  # step id -> {"opened", "key:1", ...}
        self._wake_kinds: tuple[str, ...] = ()
        self._last_send_step: str | None = None
        self._events_since_send: set[str] = set()  # event kinds of the last message sent
        self._woken = False
        self._inbox: list[str] = []
        self._dispute: str | None = None
        self._promise: PromiseToPay | None = None
        self._paid_at_promise = 0
        self._escalation: str | None = None
        self._visits: Counter[str] = Counter()
        self._paused_for = timedelta(0)  # total time the case stood still (dispute, promise, operator)
        self._pause_depth = 0
        self._messages: list[SentMessage] = []
        self._history: list[HistoryEntry] = []
        self._recorded = 0
        self._move: VersionMove | None = None  # asked for by an operator, applied at the next wait
        self._notice: Notice | None = None  # the 14-day notice, once sent
        self._costs = 0  # collection costs charged
        self._deferred: str | None = None  # why and until when the current send waits (contact rules)
        self._publish_when_waiting = False  # set in run: cases started before that change upsert at once
        self._attributes_stale = False
        self._plan: PlanState | None = None  # the installment plan running, or the last one
        self._plan_requests: list[PlanRequest] = []
        self._plan_ids: set[str] = set()
        self._plan_missed: set[int] = set()  # terms of the running plan that passed their day unpaid
        self._plan_news = False  # the plan workflow told something that should reach the timeline
        self._paid_before_plan = 0
        self._plans_started = 0

    # --- run ---------------------------------------------------------------------------------

    @workflow.run
    async def run(self, case: CaseInput) -> CaseState:
        self._publish_when_waiting = workflow.patched("search-attributes-when-waiting")
        self._note("started", detail=f"flow {self._flow.name} v{case.flow_version}")
        step_id: str | None = self._flow.start
        while step_id is not None and self._outcome is None:
            step_id = await self._run_step(step_id)
        self._publish_stale_attributes()
        await workflow.wait_condition(workflow.all_handlers_finished)
        while self._recorded < len(self._history):  # what signals add meanwhile is recorded too
            await self._record()
        return self.state()

    async def _run_step(self, step_id: str) -> str | None:
        step = self._flow.steps[step_id]
        self._enter(step_id)
        if isinstance(step, EndStep):
            self._finish(step.outcome)
            return None
        if isinstance(step, WaitStep):
            return await self._wait(step_id, step)
        if isinstance(step, EscalateStep):
            return await self._escalate(step_id, step)
        if isinstance(step, ChargeCostsStep):
            return await self._charge_costs(step_id, step)
        if isinstance(step, BranchStep):
            return await self._apply_inbox(self._branch(step_id, step))
        gate = await self._contact_gate(step_id, step.channel)
        if gate != STAY:
            return gate  # a signal moved the case while the message waited for its moment
        if isinstance(step, SendStep):
            result = await self._send(step_id, step.channel, step.template)
            if step.notice:
                self._count_notice(step_id, step, result)
            if result is None and step.on_failure:
                self._note("route", step_id, f"not sent -> {step.on_failure}")
                return await self._apply_inbox(step.on_failure)
        else:
            await self._offer_plan(step_id, step)
        return await self._apply_inbox(step.next)

    # --- steps -------------------------------------------------------------------------------

    def _enter(self, step_id: str) -> None:
        self._step = step_id
        self._visits[step_id] += 1
        self._next_action = None
        self._publish()

    async def _send(self, step_id: str, channel: str, template: str,
                    plans: list[PlanProposal] | None = None) -> SendResult | None:
        missing = self._missing_recipient(channel)
        if missing:
            self._note("send_skipped", step_id, f"{channel} {template}: {missing}")
            return None
        self._last_send_step, self._events_since_send = step_id, set()
        request = SendRequest(
            key=self._message_key(step_id),
            case_id=self._case.case_id,
            step_id=step_id,
            channel=channel,
            template=template,
            debtor=self._case.debtor,
            invoice=self._case.invoice,
            amount_open_cents=self._amount_open,
            plans=plans or [],
            on=self._clock.today(workflow.now()),
            at=workflow.now(),
            combine=getattr(self._flow.steps[step_id], "combine", False),
        )
        try:
            result = await send_message(request)
        except NotSent as failure:
            self._note("send_failed", step_id, f"{channel} {template}: {failure}")
            return None
        self._messages.append(SentMessage(
            step_id=step_id, channel=channel, template=template,
            message_id=result.message_id, status=result.status, at=workflow.now(),
        ))
        self._note(f"{channel}_{result.status}", step_id, f"{template} via {result.provider}")
        return result

    # --- the 14-day notice and collection costs ----------------------------------------------

    def _count_notice(self, step_id: str, step: SendStep, result: SendResult | None) -> None:
        """A notice counts once it was sent with a template marked as the notice; a later one restarts the term."""
        if result is None or result.status != "sent":
            self._note("notice_not_counted", step_id, "it was not sent")
            return
        if not result.notice_template:
            self._note("notice_not_counted", step_id, f"template {step.template} is not marked as the 14-day notice")
            return
        term_ends = notice_term_ends(self._clock.today(workflow.now()), step.channel)
        self._notice = Notice(step_id, term_ends, self._costs_now().total_cents)
        self._note("notice_sent", step_id, f"14-day term ends {term_ends.isoformat()}")

    def _principal_open(self) -> int:
        return max(0, min(self._amount_open - self._costs, self._case.invoice.amount_cents))

    def _costs_now(self):
        case = self._case
        return collection_costs(self._principal_open(), case.debtor.type, vat=case.costs_vat,
                                agreed_per_mille=case.business_costs_per_mille)

    def _costs_refusal(self) -> str | None:
        if self._costs:
            return "collection costs were charged already"
        if self._case.invoice.currency != "EUR":
            return "the statutory scale is in euros; this invoice is in " + self._case.invoice.currency
        if self._case.debtor.type == "business":
            return None
        if self._notice is None:
            return "no 14-day notice was sent to this consumer"
        if self._clock.today(workflow.now()) <= self._notice.term_ends:
            return f"the 14-day term of the notice runs until {self._notice.term_ends.isoformat()}"
        return None

    async def _charge_costs(self, step_id: str, step: ChargeCostsStep) -> str | None:
        refusal = self._costs_refusal()
        if refusal is not None:
            self._note("costs_refused", step_id, refusal)
            reason = f"Incassokosten niet in rekening gebracht: {refusal}"
            return await self._escalate(step_id, EscalateStep(type="escalate", reason=reason, next=step.next))
        costs = self._costs_now()
        if self._notice is not None and self._case.debtor.type == "consumer":
            charged = min(costs.total_cents, self._notice.costs_cents)
        else:
            charged = costs.total_cents
        self._costs = charged
        self._amount_open += charged
        self._note("costs_charged", step_id, costs.describe(self._case.invoice.currency)
                   + ("" if charged == costs.total_cents else f"; charged as stated in the notice: "
                      f"{format_amount(charged, self._case.invoice.currency, 'en')}"))
        self._publish()
        return await self._apply_inbox(step.next)

    # --- contact rules -----------------------------------------------------------------------

    async def _contact_gate(self, step_id: str, channel: str) -> str | None:
        """STAY when the message may go out now; otherwise wait for the next allowed moment (a
        deferral on the timeline) and return where a signal took the case meanwhile, if it did."""
        rules = self._flow.contact_rules
        if rules is None:
            return STAY
        while True:
            moment, why = self._contact_hours_allow(channel, rules), "outside contact hours"
            if moment <= workflow.now() and rules.max_per_week:
                decision = await self._reserve_contact(step_id, channel, rules.max_per_week)
                if not decision.allowed:
                    moment, why = decision.retry_at, f"{rules.max_per_week} contacts this week already"
            if moment <= workflow.now():
                self._deferred = None
                return STAY
            following = await self._defer(step_id, channel, moment, why)
            if following != STAY:
                self._deferred = None
                return following

    def _contact_hours_allow(self, channel: str, rules) -> datetime:
        hours = rules.hours.get(channel)
        if hours is None or self._case.day_seconds is not None:  # compressed time has no clock hours
            return workflow.now()
        return next_contact_moment(workflow.now(), hours, self._case.debtor.time_zone)

    async def _reserve_contact(self, step_id: str, channel: str, limit: int) -> ContactDecision:
        now = workflow.now()
        request = ContactRequest(
            key=self._message_key(step_id), debtor_id=self._case.debtor.id, channel=channel,
            at=now, since=now - self._clock.duration(days=7), limit=limit,
        )
        return await workflow.execute_activity(
            "reserve_contact", request, result_type=ContactDecision,
            start_to_close_timeout=timedelta(seconds=30), retry_policy=RECORD_RETRY,
        )

    async def _defer(self, step_id: str, channel: str, moment: datetime, why: str) -> str | None:
        deferral = f"{channel} until {local_time(moment, self._case.debtor.time_zone)}: {why}"
        if deferral != self._deferred:
            self._deferred = deferral
            self._note("send_deferred", step_id, deferral)
        self._next_action = NextAction(step=step_id, description=f"send {channel} (deferred: {why})", at=moment)
        self._publish()
        await self._block(moment - workflow.now())
        return await self._apply_inbox(STAY) if self._inbox else STAY

    def _message_key(self, step_id: str) -> str:
        return f"{workflow.info().workflow_id}:{step_id}:{self._visits[step_id]}"

    def _missing_recipient(self, channel: str) -> str | None:
        debtor = self._case.debtor
        needed = {"email": debtor.email, "sms": debtor.phone, "call": debtor.phone, "letter": debtor.address}
        if not needed[channel]:
            what = {"email": "email address", "sms": "phone number", "call": "phone number", "letter": "postal address"}
            return f"debtor has no {what[channel]}"
        return None

    async def _wait(self, step_id: str, step: WaitStep) -> str | None:
        """Wait until a date or for a duration. Time spent paused does not count: after a dispute
        or a promise the flow goes on where it stood, its dates shifted by the pause."""
        started, paused_before = workflow.now(), self._paused_for
        if step.until is not None and step.until.date == "notice_term_end" and self._notice is None:
            self._note("wait_skipped", step_id, "no 14-day notice was sent")
            return await self._apply_inbox(step.next)
        if step.if_passed and self._wait_deadline(step, started, paused_before) <= started:
            self._note("wait_skipped", step_id, "its date had already passed")
            return await self._apply_inbox(step.if_passed)
        self._wake_kinds = tuple(step.wake_on)
        self._woken = bool(self._events_since_send & set(step.wake_on))  # e.g. a key pressed during the send
        try:
            while True:
                if self._move is not None and self._apply_move(step_id):
                    return step_id  # the same wait, in the version the case was moved to
                deadline = self._wait_deadline(step, started, paused_before)
                remaining = deadline - workflow.now()
                if remaining <= timedelta(0) or self._woken:
                    return step.next
                self._next_action = NextAction(step=step.next, description=f"{step.next} after {step_id}", at=deadline)
                self._publish()
                await self._block(remaining, wake=True)
                if self._inbox:
                    following = await self._apply_inbox(STAY)
                    if following != STAY:
                        return following
        finally:
            self._wake_kinds = ()

    def _wait_deadline(self, step: WaitStep, started: datetime, paused_before: timedelta) -> datetime:
        """Dates move by all the time the case stood still; durations by the pauses during the wait."""
        if step.business_days is not None:
            last = add_business_days(self._clock.today(started), step.business_days)
            return self._clock.at_date(last) + (self._paused_for - paused_before)
        if step.until is not None and step.until.date == "notice_term_end":
            return self._clock.at_date(self._notice.term_ends + timedelta(days=step.until.offset_days))
        if step.until is not None:
            anchor = self._case.invoice.due_on if step.until.date == "due_date" else self._case.invoice.issued_on
            return self._clock.at_date(anchor + timedelta(days=step.until.offset_days)) + self._paused_for
        return started + self._clock.duration(hours=step.duration_hours) + (self._paused_for - paused_before)

    def _branch(self, step_id: str, step: BranchStep) -> str:
        for case in step.cases:
            if self._holds(case.when):
                self._note("branch", step_id, f"-> {case.next}")
                return case.next
        self._note("branch", step_id, f"-> {step.otherwise} (otherwise)")
        return step.otherwise

    def _holds(self, condition) -> bool:
        if isinstance(condition, Opened):
            return bool({"opened", "clicked"} & self._facts.get(condition.step, set()))
        if isinstance(condition, Clicked):
            return "clicked" in self._facts.get(condition.step, set())
        if isinstance(condition, KeyPressed):
            return f"key:{condition.key}" in self._facts.get(condition.step, set())
        if isinstance(condition, AmountOpenAbove):
            return self._amount_open > condition.cents
        if isinstance(condition, DebtorIs):
            return self._case.debtor.type == condition.is_
        raise ValueError(f"unknown condition {condition!r}")

    async def _offer_plan(self, step_id: str, step: OfferPlanStep) -> None:
        plans = [
            PlanProposal(terms=terms, term_amounts_cents=split_into_terms(self._amount_open, terms))
            for terms in term_counts(step, self._amount_open)
        ]
        if not plans:
            self._note("plan_not_offered", step_id, "amount open too small for the minimum term amount")
            return
        await self._send(step_id, step.channel, step.template, plans)
        self._note("plan_offered", step_id, f"2 to {plans[-1].terms} terms")

    async def _escalate(self, step_id: str, step: EscalateStep) -> str | None:
        self._escalation = step.reason
        self._note("escalated", step_id, step.reason)
        try:
            while True:
                self._status = "escalated"
                self._next_action = NextAction(step=step.next or "end", description="waiting for an operator")
                self._publish()
                await self._block(None)
                following = await self._apply_inbox(STAY, resumable=True)
                if following == RESUMED and step.next is None:
                    self._finish("closed_by_operator")
                    return None
                if following == RESUMED:
                    self._status = "active"
                    return step.next
                if following != STAY:
                    return following
        finally:
            self._escalation = None

    # --- installment plans -------------------------------------------------------------------

    async def _run_plans(self, following: str | None) -> str | None:
        """Run the plan asked for; returns where the case goes once the plan is over (None: ended)."""
        request = self._plan_requests.pop(0)
        terms = self._plan_terms(request)
        if terms is None:
            return following
        return await self._follow_plan(request, terms, following)

    def _plan_terms(self, request: PlanRequest) -> list[TermSpec] | None:
        """The terms of a requested plan, checked against the amount open now; None (noted) if refused."""
        today = self._clock.today(workflow.now())
        terms = request.terms
        if request.term_count is not None:
            offered = term_counts(plan_offer(self._flow), self._amount_open)
            if request.term_count not in offered:
                choice = f"{offered[0]} to {offered[-1]} terms" if offered else "no plan"
                self._refuse_plan(request, f"{request.term_count} terms are not offered; this amount allows {choice}")
                return None
            terms = monthly_terms(self._amount_open, request.term_count, today)
        problems = term_problems(terms, self._amount_open, today)
        if problems:
            self._refuse_plan(request, "; ".join(f"{where}: {problem}" for where, problem in problems))
            return None
        return terms

    def _refuse_plan(self, request: PlanRequest, why: str) -> None:
        self._note("plan_refused", detail=f"{request.plan_id} ({request.source}): {why}")

    async def _follow_plan(self, request: PlanRequest, terms: list[TermSpec], following: str | None) -> str | None:
        handle = await self._start_plan(request, terms)
        forwarded = 0
        while True:
            paid = self._amount_paid - self._paid_before_plan
            if paid != forwarded:
                forwarded = paid
                self._update_plan()
                if not handle.done():
                    await handle.signal("paid", PlanPaid(paid_cents=paid))
            if paid >= self._plan.total_cents:
                await self._end_plan(handle, "completed")
                self._finish("paid")
                return None
            if handle.done():
                await self._end_plan(handle, "broken")
                return await self._follow_route("broken_plan", following)
            if not self._inbox:
                await self._block_in_plan(handle, forwarded)
                continue
            event = self._inbox.pop(0)
            if event in PAYMENT_EVENTS:
                continue  # paid toward the plan: forwarded above
            if event == PLAN_ACCEPTED:
                replacement = self._plan_requests.pop(0)
                replacement_terms = self._plan_terms(replacement)
                if replacement_terms is not None:
                    await self._end_plan(handle, "replaced")
                    return await self._follow_plan(replacement, replacement_terms, following)
            elif event == "operator_cancel":
                await self._end_plan(handle, "stopped")
                self._finish("cancelled")
                return None
            elif event == "dispute_opened" or (event not in OPERATOR_EVENTS
                                               and getattr(self._flow.signals, event).action == "end"):
                await self._end_plan(handle, "stopped")
                return await self._follow_route(event, following)
            else:
                self._note("noted_during_plan", detail=event)

    async def _start_plan(self, request: PlanRequest, terms: list[TermSpec]):
        self._plan = plan_state(request, terms, self._case.invoice.currency, workflow.now())
        self._plan_missed, self._paid_before_plan = set(), self._amount_paid
        self._plans_started += 1
        self._status = "in_plan"
        schedule = ", ".join(f"{format_amount(t.amount_cents, self._plan.currency, 'en')} on {t.due_on.isoformat()}"
                             for t in terms)
        self._note("plan_accepted", detail=f"{request.plan_id} ({request.source}{', by ' + request.by if request.by else ''}):"
                                           f" {len(terms)} terms: {schedule}")
        self._next_action = NextAction(step=self._step, description="installment plan: first term",
                                       at=self._clock.at_date(terms[0].due_on))
        self._publish()
        debtor, rules = self._case.debtor, self._flow.contact_rules
        channel = "email" if debtor.email else "sms" if debtor.phone else None
        plan_input = PlanInput(
            plan_id=request.plan_id, case_id=self._case.case_id, debtor=debtor, invoice=self._case.invoice,
            terms=terms, reminder_channel=channel, reminder_hours=rules.hours.get(channel) if rules and channel else None,
            clock_origin=self._clock.origin, day_seconds=self._case.day_seconds,
        )
        return await workflow.start_child_workflow(
            "InstallmentPlanWorkflow", plan_input, result_type=str,
            id=f"{workflow.info().workflow_id}-plan-{self._plans_started}",
            parent_close_policy=workflow.ParentClosePolicy.REQUEST_CANCEL,
        )

    async def _block_in_plan(self, handle, forwarded: int) -> None:
        self._plan_news = False
        self._publish_stale_attributes()
        await self._record()
        await workflow.wait_condition(lambda: bool(self._inbox) or handle.done() or self._plan_news
                                      or self._amount_paid - self._paid_before_plan != forwarded)

    async def _end_plan(self, handle, status: str) -> None:
        if not handle.done():
            handle.cancel()
        try:
            await handle
        except (ChildWorkflowError, asyncio.CancelledError):
            pass  # a plan stopped from here
        self._plan = self._plan.model_copy(update={"status": status})
        self._status = "active"
        self._note(f"plan_{status}", detail=self._plan.plan_id)
        self._publish()

    def _update_plan(self) -> None:
        self._plan = with_payments(self._plan, self._amount_paid - self._paid_before_plan, self._plan_missed)
        open_terms = [term for term in self._plan.terms if term.status != "paid"]
        self._next_action = NextAction(
            step=self._step, description=f"installment plan: term {open_terms[0].number} of {len(self._plan.terms)}",
            at=self._clock.at_date(open_terms[0].due_on)) if open_terms else None
        self._publish()

    # --- signals: the inbox ------------------------------------------------------------------

    async def _apply_inbox(self, following: str | None, resumable: bool = False) -> str | None:
        """Apply queued events in order. Returns the step to go to, STAY, or None when finished.
        With `resumable` (an escalated case), operator_resume returns RESUMED."""
        while self._inbox and self._outcome is None:
            event = self._inbox.pop(0)
            if event == "operator_cancel":
                self._finish("cancelled")
            elif event == "operator_resume":
                if resumable:
                    return RESUMED
                self._note("ignored", detail="resume: case was not paused")
            elif event == "operator_pause":
                following = await self._pause("operator", following)
            elif event == PLAN_ACCEPTED:
                following = await self._run_plans(following)
            else:
                following = await self._follow_route(event, following)
        return None if self._outcome is not None else following

    async def _follow_route(self, event: str, following: str | None) -> str | None:
        route: Route = getattr(self._flow.signals, event) or self._flow.signals.broken_promise  # broken_plan is optional
        if route.action == "end":
            self._finish(route.outcome)
            return None
        if route.action == "goto":
            self._note("route", detail=f"{event} -> {route.step}")
            return route.step
        if route.action == "pause":
            return await self._pause(PAUSE_BY_EVENT.get(event, "operator"), following)
        return following

    async def _pause(self, reason: PauseReason, following: str | None) -> str | None:
        """Hold the case until what paused it is over; then go on to `following` (or a route's step)."""
        self._status = PAUSE_STATUS[reason]
        self._note("paused", detail=reason)
        started = workflow.now()
        self._pause_depth += 1
        try:
            return await self._hold_paused(reason, following)
        finally:
            self._pause_depth -= 1
            if self._pause_depth == 0:  # a pause inside a pause is counted once
                self._paused_for += workflow.now() - started

    async def _hold_paused(self, reason: PauseReason, following: str | None) -> str | None:
        while self._outcome is None:
            self._next_action = self._pause_next_action(reason)
            self._publish()
            await self._block(self._until_promise_due() if reason == "promise" else None)
            if reason == "promise" and (self._promise_kept() or self._until_promise_due() <= timedelta(0)):
                self._inbox.insert(0, "promise_due")
            if not self._inbox:
                continue
            event = self._inbox.pop(0)
            if event == "operator_cancel":
                self._finish("cancelled")
            elif event == "operator_resume" or event in PAUSE_ENDERS[reason]:
                resumed = await self._end_pause(reason, event, following)
                if self._outcome is None and self._status == PAUSE_STATUS[reason]:
                    self._status = "active"
                    self._note("resumed", detail=event)
                return resumed
            elif event == "dispute_opened" and reason != "dispute":
                return await self._follow_route(event, following)
            elif event == PLAN_ACCEPTED and reason == "dispute":
                self._refuse_plan(self._plan_requests.pop(0), "the case is disputed")
            elif event == PLAN_ACCEPTED:  # the pause ends; the plan runs once it has
                self._promise, self._status = None, "active"
                self._note("resumed", detail="a payment plan was agreed")
                self._inbox.insert(0, PLAN_ACCEPTED)
                return following
            elif event not in OPERATOR_EVENTS and getattr(self._flow.signals, event).action == "end":
                await self._follow_route(event, following)
            else:
                self._note("noted_while_paused", detail=event)
        return None

    async def _end_pause(self, reason: PauseReason, event: str, following: str | None) -> str | None:
        if event == "promise_due":
            kept = self._promise_kept()
            self._promise = None
            self._note("promise_kept" if kept else "promise_broken")
            return following if kept else await self._follow_route("broken_promise", following)
        self._dispute = None
        self._promise = None
        if reason == "dispute" and event != "operator_resume":
            return await self._follow_route(event, following)
        return following

    def _promise_kept(self) -> bool:
        promise = self._promise
        return promise is not None and self._amount_paid - self._paid_at_promise >= promise.amount_cents

    def _until_promise_due(self) -> timedelta:
        if self._promise is None:
            return timedelta(0)
        # the promised day itself counts: the promise is due at the end of it
        due = self._clock.at_date(self._promise.promised_on + timedelta(days=1))
        return due - workflow.now()

    def _pause_next_action(self, reason: PauseReason) -> NextAction:
        if reason == "promise" and self._promise is not None:
            return NextAction(step=self._step, description="check the promise to pay",
                              at=workflow.now() + self._until_promise_due())
        waiting_for = {"dispute": "the dispute to be resolved", "operator": "an operator to resume"}
        return NextAction(step=self._step, description=f"waiting for {waiting_for.get(reason, reason)}")

    async def _block(self, timeout: timedelta | None, wake: bool = False) -> None:
        """Wait until a signal arrives (or, with `wake`, a `wake_on` channel event), at most `timeout`."""
        self._publish_stale_attributes()
        await self._record()
        try:
            await workflow.wait_condition(
                lambda: bool(self._inbox) or (wake and (self._woken or self._move is not None)), timeout=timeout)
        except TimeoutError:
            pass

    @workflow.signal
    def payment_received(self, payment: PaymentReceived) -> None:
        if payment.payment_id in self._payment_ids or self._outcome is not None:
            return
        if payment.currency != self._case.invoice.currency or payment.amount_cents <= 0:
            self._note("payment_rejected", detail=f"{payment.payment_id}: wrong currency or amount")
            return
        self._payment_ids.add(payment.payment_id)
        self._amount_paid += payment.amount_cents
        self._amount_open -= payment.amount_cents
        amount = format_amount(payment.amount_cents, payment.currency, "en")
        self._note("payment", detail=f"{payment.payment_id}: {amount}")
        self._inbox.append("full_payment" if self._amount_open <= 0 else "partial_payment")

    @workflow.signal
    def dispute_opened(self, dispute: DisputeOpened) -> None:
        self._dispute = dispute.reason
        self._note("dispute_opened", detail=dispute.reason)
        self._inbox.append("dispute_opened")

    @workflow.signal
    def dispute_resolved(self, resolution: DisputeResolved) -> None:
        self._note("dispute_resolved", detail=f"{resolution.outcome} {resolution.note}".strip())
        self._inbox.append(f"dispute_{resolution.outcome}")

    @workflow.signal
    def promise_to_pay(self, promise: PromiseToPay) -> None:
        self._promise = promise
        self._paid_at_promise = self._amount_paid
        amount = format_amount(promise.amount_cents, self._case.invoice.currency, "en")
        self._note("promise_to_pay", detail=f"{amount} on {promise.promised_on.isoformat()}")
        self._inbox.append("promise_to_pay")

    @workflow.signal
    def channel_event(self, event: ChannelEvent) -> None:
        if event.event_id in self._event_ids:
            return
        self._event_ids.add(event.event_id)
        fact = f"key:{event.key}" if event.kind == "key_pressed" else event.kind
        self._facts.setdefault(event.step_id, set()).add(fact)
        self._note(f"channel_{event.kind}", event.step_id, event.key or "")
        if event.step_id == self._last_send_step:  # a wait wakes only for the message it follows
            self._events_since_send.add(event.kind)
            self._woken = self._woken or event.kind in self._wake_kinds

    @workflow.signal
    def accept_plan(self, request: PlanRequest) -> None:
        if request.plan_id in self._plan_ids or self._outcome is not None:
            return  # the same request again (a double click, a redelivery)
        self._plan_ids.add(request.plan_id)
        self._plan_requests.append(request)
        self._inbox.append(PLAN_ACCEPTED)

    @workflow.signal
    def plan_event(self, event: PlanEvent) -> None:
        if self._plan is None or event.plan_id != self._plan.plan_id or self._plan.status != "active":
            return
        if event.kind == "plan_term_missed":
            self._plan_missed.add(event.term)
            self._update_plan()
        self._note(event.kind, PLAN_STEP, f"term {event.term}: {event.detail}")
        self._plan_news = True

    @workflow.signal
    def pause(self, action: OperatorAction) -> None:
        self._operator("operator_pause", action)

    @workflow.signal
    def resume(self, action: OperatorAction) -> None:
        self._operator("operator_resume", action)

    @workflow.signal
    def cancel(self, action: OperatorAction) -> None:
        self._operator("operator_cancel", action)

    @workflow.signal
    def move_to_version(self, move: VersionMove) -> None:
        if self._outcome is None:
            self._move = move
            self._note("move_requested", detail=f"v{self._case.flow_version} -> v{move.version} by {move.by}")

    def _apply_move(self, step_id: str) -> bool:
        """Switch to the moved-to version if it has this wait; the wait then starts again there."""
        move, self._move = self._move, None
        if not isinstance(move.flow.steps.get(step_id), WaitStep):
            self._note("move_refused", step_id, f"v{move.version} has no wait {step_id}; stays on v{self._case.flow_version}")
            return False
        self._note("moved", step_id, f"v{self._case.flow_version} -> v{move.version} by {move.by}")
        self._flow = move.flow
        self._case = self._case.model_copy(update={"flow": move.flow, "flow_version": move.version})
        return True

    def _operator(self, event: str, action: OperatorAction) -> None:
        self._note(event, detail=f"by {action.by} {action.note}".strip())
        self._inbox.append(event)

    @workflow.query
    def status(self) -> str:
        """Only the status: a cheap question for callers that need no more (the API, per payment)."""
        return self._status

    @workflow.query
    def state(self) -> CaseState:
        return CaseState(
            case_id=self._case.case_id,
            flow_name=self._flow.name,
            flow_version=self._case.flow_version,
            status=self._status,
            outcome=self._outcome,
            current_step=self._step,
            next_action=self._next_action,
            amount_open_cents=self._amount_open,
            amount_paid_cents=self._amount_paid,
            currency=self._case.invoice.currency,
            interest_cents=self._interest().cents,
            interest_on=self._clock.today(workflow.now()),
            costs_cents=self._costs,
            notice_term_ends=self._notice.term_ends if self._notice else None,
            deferred=self._deferred,
            dispute=self._dispute,
            promise=self._promise,
            escalation_reason=self._escalation,
            plan=self._plan,
            messages=list(self._messages),
            history=list(self._history),
        )

    def _interest(self):
        invoice = self._case.invoice
        return interest_so_far(self._principal_open(), invoice.due_on, self._clock.today(workflow.now()), self._case.debtor.type)

    # --- bookkeeping -------------------------------------------------------------------------

    def _finish(self, outcome: str) -> None:
        self._outcome = outcome
        self._status = {"paid": "paid", "cancelled": "cancelled"}.get(outcome, "closed")
        self._next_action = None
        self._note("ended", detail=outcome)
        self._publish()

    def _note(self, kind: str, step: str | None = None, detail: str = "") -> None:
        self._history.append(HistoryEntry(
            seq=len(self._history) + 1, at=workflow.now(), kind=kind, step=step, detail=detail))

    def _publish(self) -> None:
        """Keep the search attributes and the one-line summary in the Temporal UI current. Cases
        started on this code send the attributes when they next wait: steps passed in one go (a
        branch, a send) are not worth a visibility update each."""
        if self._publish_when_waiting:
            self._attributes_stale = True
        else:
            self._upsert_attributes()
        amount = format_amount(self._amount_open, self._case.invoice.currency, "en")
        summary = f"{self._status} at {self._step}, {amount} open"
        if self._next_action is not None:
            when = f" at {self._next_action.at:%Y-%m-%d %H:%M} UTC" if self._next_action.at else ""
            summary += f"; next: {self._next_action.description}{when}"
        workflow.set_current_details(summary)

    def _publish_stale_attributes(self) -> None:
        if self._attributes_stale:
            self._attributes_stale = False
            self._upsert_attributes()

    def _upsert_attributes(self) -> None:
        workflow.upsert_search_attributes(case_search_attributes(
            status=self._status, step=self._step, amount_open_cents=self._amount_open,
            flow_name=self._flow.name, flow_version=self._case.flow_version,
            debtor_id=self._case.debtor.id, invoice_number=self._case.invoice.number,
            plan_status=self._plan.status if self._plan is not None else None,
        ))

    async def _record(self) -> None:
        """Write new history entries and the case's standing to the store (idempotent by seq)."""
        upto = len(self._history)  # a signal may add entries while the activity runs: those wait for the next time
        if self._recorded == upto:
            return
        report = ProgressReport(
            case_id=self._case.case_id, workflow_id=workflow.info().workflow_id,
            status=self._status, current_step=self._step, amount_open_cents=self._amount_open,
            entries=self._history[self._recorded:upto], flow_version=self._case.flow_version,
        )
        await workflow.execute_activity(
            "record_progress", report, start_to_close_timeout=timedelta(seconds=30), retry_policy=RECORD_RETRY,
        )
        self._recorded = upto

