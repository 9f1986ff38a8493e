"""InstallmentPlanWorkflow: one agreed payment plan, run as a child of its case.

The case owns the money: it passes on the running total paid toward the plan, and this
workflow only watches the terms fall due. Before each term a reminder; a term unpaid at the
end of its day gets one more reminder, and unpaid `GRACE_DAYS` later the plan is broken.
It returns `completed` once every term is paid, `broken` otherwise, and tells its case what
it sent, for the case's timeline.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from dunflow.calendar import FlowClock, next_contact_moment
    from dunflow.case import PlanInput, SendRequest
    from dunflow.plans import GRACE_DAYS, PLAN_STEP, REMINDER_DAYS_BEFORE, PlanEvent, PlanPaid, TermNotice, paid_through

from workflows.sending import NotSent, send_message

@workflow.defn(name="InstallmentPlanWorkflow")
class InstallmentPlanWorkflow:
    @workflow.init
    def __init__(self, plan: PlanInput) -> None:
        self._plan = plan
        self._clock = FlowClock(plan.clock_origin, plan.day_seconds)
        self._paid = 0

    @workflow.run
    async def run(self, plan: PlanInput) -> str:
        for index, term in enumerate(plan.terms):
            reminder_at = self._clock.at_date(term.due_on - timedelta(days=REMINDER_DAYS_BEFORE))
            due_end = self._clock.at_date(term.due_on + timedelta(days=1))  # the due day itself counts
            if not await self._paid_by(index, reminder_at) and workflow.now() < due_end:
                await self._remind(index, "plan_term_reminder")
            if await self._paid_by(index, due_end):
                continue
            await self._remind(index, "plan_term_missed")
            if not await self._paid_by(index, due_end + self._clock.duration(days=GRACE_DAYS)):
                return "broken"
        return "completed"

    @workflow.signal
    def paid(self, paid: PlanPaid) -> None:
        self._paid = max(self._paid, paid.paid_cents)  # a running total: a late or repeated one changes nothing

    @workflow.query
    def terms_paid(self) -> int:
        return paid_through(self._plan.terms, self._paid)

    def _covered(self, index: int) -> bool:
        return paid_through(self._plan.terms, self._paid) > index

    async def _paid_by(self, index: int, moment: datetime) -> bool:
        """Whether term `index` is paid in full by `moment` (returns as soon as it is)."""
        remaining = moment - workflow.now()
        if remaining > timedelta(0) and not self._covered(index):
            try:
                await workflow.wait_condition(lambda: self._covered(index), timeout=remaining)
            except TimeoutError:
                pass
        return self._covered(index)

    async def _remind(self, index: int, kind: str) -> None:
        plan, term = self._plan, self._plan.terms[index]
        if plan.reminder_channel is None:
            await self._tell("plan_reminder_failed", index, "the debtor has no email address or phone number")
            return
        await self._within_contact_hours()
        due_now = sum(t.amount_cents for t in plan.terms[:index + 1]) - self._paid
        request = SendRequest(
            key=f"{workflow.info().workflow_id}:{kind}:{index + 1}", case_id=plan.case_id, step_id=PLAN_STEP,
            channel=plan.reminder_channel, template=kind, debtor=plan.debtor, invoice=plan.invoice,
            amount_open_cents=sum(t.amount_cents for t in plan.terms) - self._paid,
            term=TermNotice(number=index + 1, of=len(plan.terms), due_on=term.due_on,
                            amount_cents=min(term.amount_cents, due_now)),
            on=self._clock.today(workflow.now()), at=workflow.now(),
        )
        try:
            result = await send_message(request)
        except NotSent as failure:
            await self._tell("plan_reminder_failed", index, f"{plan.reminder_channel} {kind}: {failure}")
            return
        await self._tell(kind, index, f"{plan.reminder_channel} {result.status}")

    async def _within_contact_hours(self) -> None:
        """Wait for the flow's hours for the reminder's channel (an SMS never on a Sunday night)."""
        hours = self._plan.reminder_hours
        if hours is None or self._plan.day_seconds is not None:  # compressed time has no clock hours
            return
        moment = next_contact_moment(workflow.now(), hours, self._plan.debtor.time_zone)
        if moment > workflow.now():
            await workflow.sleep(moment - workflow.now())

    async def _tell(self, kind: str, index: int, detail: str) -> None:
        parent = workflow.info().parent
        event = PlanEvent(plan_id=self._plan.plan_id, kind=kind, term=index + 1, detail=detail)
        await workflow.get_external_workflow_handle(parent.workflow_id).signal("plan_event", event)
