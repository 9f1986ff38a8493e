"""Simulation: run the real CollectionWorkflow on Temporal's time-skipping test server against a
scenario (how the debtor behaves) and read back the timeline, day by day, before publishing.

Messages are rendered with the real templates but sent nowhere and stored nowhere: the
simulation's activities answer in memory. One test server per process, started on first use;
simulations take turns because skipping time moves the server's one clock.
"""

from __future__ import annotations

import asyncio
import time as clock
import uuid
from dataclasses import dataclass, field
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Literal

from temporalio import activity
from temporalio.client import WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.collection import CollectionActivities
from dunflow.calendar import AMSTERDAM
from dunflow.case import (
    FINAL_STATUSES,
    CaseInput,
    CaseState,
    ContactDecision,
    ContactRequest,
    ChannelEvent,
    DebtorInfo,
    DisputeOpened,
    DisputeResolved,
    InvoiceInfo,
    PaymentReceived,
    ProgressReport,
    PromiseToPay,
    SendRequest,
    SendResult,
)
from dunflow.devstack import find_binary
from dunflow.flow import FlowDefinition
from dunflow.search_attributes import register_search_attributes
from dunflow.settings import Settings
from dunflow.templates import TemplateCatalog
from workflows.collection import CollectionWorkflow
from workflows.registry import WORKFLOWS

Action = Literal["opened", "key_1", "pay", "dispute", "dispute_rejected", "promise"]
HORIZON_DAYS = 120
START_TIME = time(9, 0)


def is_monday(day: date) -> bool:
    return day.weekday() == 0


@dataclass(frozen=True)
class Reaction:
    """What the debtor does: after a message on `channel` (each one, or only the first), or at
    10:00 on a day relative to the due date when `channel` is None."""

    action: Action
    channel: str | None = None
    after: timedelta = timedelta(0)
    first_only: bool = False
    due_offset_days: int = 0


@dataclass(frozen=True)
class Scenario:
    title: str
    reactions: tuple[Reaction, ...]


SCENARIOS = {
    "never_opens": Scenario("never opens the email, never pays", ()),
    "opens_never_pays": Scenario("opens every email an hour after it arrives, never pays",
                                 (Reaction("opened", "email", timedelta(hours=1)),)),
    "pays_after_sms": Scenario("pays in full four hours after the first SMS",
                               (Reaction("pay", "sms", timedelta(hours=4), first_only=True),)),
    "disputes": Scenario("disputes the invoice two days after the due date; rejected two weeks later",
                         (Reaction("dispute", due_offset_days=2), Reaction("dispute_rejected", due_offset_days=16))),
    "promises_and_breaks": Scenario("promises two days after the due date to pay a week later, then does not",
                                    (Reaction("promise", due_offset_days=2),)),
    "presses_1": Scenario("presses 1 in the robo-call (payment plan)",
                          (Reaction("key_1", "call", timedelta(minutes=2)),)),
}


@dataclass(order=True)
class _Due:
    at: datetime
    order: int
    reaction: Reaction = field(compare=False)
    step_id: str | None = field(default=None, compare=False)
    message_id: int | None = field(default=None, compare=False)


class SimulatedChannels:
    """The activities of a simulated case: render with the real templates, send and store nothing."""

    def __init__(self, settings: Settings):
        self.renderer = CollectionActivities(engine=None, settings=settings,
                                             templates=TemplateCatalog(settings.templates_dir), providers={})
        self.sent = 0

    def all(self) -> list:
        return [self.send_message, self.record_progress, self.reserve_contact]

    @activity.defn(name="send_message")
    async def send_message(self, request: SendRequest) -> SendResult:
        try:
            rendered = self.renderer.render(request)
            summary = rendered.subject or rendered.body.split("\n", 1)[0]
        except LookupError as error:
            summary = str(error)
        self.sent += 1
        notice = self.renderer.templates.is_notice(request.channel, request.template, request.debtor.language)
        return SendResult(message_id=self.sent, status="sent", provider="simulation", detail=summary,
                          notice_template=notice)

    @activity.defn(name="reserve_contact")
    async def reserve_contact(self, request: ContactRequest) -> ContactDecision:
        return ContactDecision(allowed=True)  # one simulated debtor, no other cases to count

    @activity.defn(name="record_progress")
    async def record_progress(self, report: ProgressReport) -> None:
        return None


class Simulator:
    def __init__(self, settings: Settings):
        self.settings = settings
        self._env: WorkflowEnvironment | None = None
        self._lock = asyncio.Lock()

    async def _environment(self) -> WorkflowEnvironment:
        if self._env is None:
            self._env = await WorkflowEnvironment.start_time_skipping(
                test_server_existing_path=find_binary("temporal-test-server"),
                data_converter=pydantic_data_converter)
            await register_search_attributes(self._env.client)
        return self._env

    async def close(self) -> None:
        if self._env is not None:
            await self._env.shutdown()
            self._env = None

    async def run(self, flow: FlowDefinition, scenario: str, *, debtor_type: str = "consumer",
                  amount_cents: int = 24_500, due_in_days: int = 14, language: str = "nl",
                  starts_on: Callable[[date], bool] = is_monday) -> dict:
        """The timeline of a case that starts at 09:00 on the next day `starts_on` accepts (by
        default the next Monday): a working morning, as a case from the ERP would."""
        async with self._lock:
            started = clock.perf_counter()
            env = await self._environment()
            channels = SimulatedChannels(self.settings)
            queue = f"simulation-{uuid.uuid4().hex}"
            async with Worker(env.client, task_queue=queue, workflows=WORKFLOWS, activities=channels.all()):
                run = _Run(env, SCENARIOS[scenario])
                case = await run.start(flow, queue, debtor_type, amount_cents, due_in_days, language, starts_on)
                state = await run.drive()
                if state.status not in FINAL_STATUSES:
                    await run.handle.terminate("simulation finished")
            return _timeline(flow, scenario, case, state, run.actions, clock.perf_counter() - started)


@dataclass
class _Run:
    env: WorkflowEnvironment
    scenario: Scenario
    handle: WorkflowHandle | None = None
    invoice: InvoiceInfo | None = None
    due: list[_Due] = field(default_factory=list)
    seen: set[int] = field(default_factory=set)
    used_once: set[int] = field(default_factory=set)
    actions: list[dict] = field(default_factory=list)

    async def start(self, flow: FlowDefinition, queue: str, debtor_type: str, amount_cents: int,
                    due_in_days: int, language: str, starts_on: Callable[[date], bool]) -> CaseInput:
        now = (await self.env.get_current_time()).astimezone(AMSTERDAM)
        today = now.date() + timedelta(days=1)
        while not starts_on(today):
            today += timedelta(days=1)
        await self.env.sleep(datetime.combine(today, START_TIME, tzinfo=AMSTERDAM) - now)
        case_id = f"sim-{uuid.uuid4().hex[:12]}"
        self.invoice = InvoiceInfo(number="SIM-1", amount_cents=amount_cents, currency="EUR", issued_on=today,
                                   due_on=today + timedelta(days=due_in_days))
        case = CaseInput(
            case_id=case_id, flow=flow, flow_version=0, invoice=self.invoice,
            debtor=DebtorInfo(id="SIM", name="Simulated Debtor", email="debtor@example.invalid",
                              phone="+31600000000", address="Voorbeeldstraat 1\n1234 AB Ergens",
                              language=language, type=debtor_type))
        for order, reaction in enumerate(self.scenario.reactions):
            if reaction.channel is None:
                day = self.invoice.due_on + timedelta(days=reaction.due_offset_days)
                self.due.append(_Due(datetime.combine(day, time(10, 0), tzinfo=AMSTERDAM), order, reaction))
        self.handle = await self.env.client.start_workflow(
            CollectionWorkflow.run, case, id=f"simulation-{case_id}", task_queue=queue)
        return case

    async def drive(self) -> CaseState:
        """Move the clock from one thing to the next (a wait ending, the debtor acting) until the
        case ends, waits for a person with nothing else coming, or the horizon passes."""
        horizon = datetime.combine(self.invoice.issued_on + timedelta(days=HORIZON_DAYS), time(0), tzinfo=AMSTERDAM)
        while True:
            state = await self.handle.query(CollectionWorkflow.state)
            self._react_to_messages(state)
            now = await self.env.get_current_time()
            if state.status not in FINAL_STATUSES and await self._fire(now):
                continue
            if state.status not in FINAL_STATUSES and state.next_action is None:
                await self.env.sleep(timedelta(seconds=1))  # between steps: let it reach its next wait
                continue
            upcoming = [d.at for d in self.due]
            if state.next_action is not None and state.next_action.at is not None:
                upcoming.append(state.next_action.at)
            upcoming = [moment for moment in upcoming if moment <= horizon]
            if state.status in FINAL_STATUSES or not upcoming:
                return state
            await self.env.sleep(max(min(upcoming) - now, timedelta(0)) + timedelta(seconds=1))

    def _react_to_messages(self, state: CaseState) -> None:
        for sent in state.messages:
            if sent.message_id is None or sent.message_id in self.seen:
                continue
            self.seen.add(sent.message_id)
            for order, reaction in enumerate(self.scenario.reactions):
                if reaction.channel != sent.channel or order in self.used_once:
                    continue
                if reaction.first_only:
                    self.used_once.add(order)
                self.due.append(_Due(sent.at + reaction.after, order, reaction, sent.step_id, sent.message_id))

    async def _fire(self, now: datetime) -> bool:
        ready = sorted(d for d in self.due if d.at <= now)
        for due in ready:
            self.due.remove(due)
            await self._act(due)
            self.actions.append({"at": due.at, "action": due.reaction.action, "step": due.step_id})
        if ready:
            await self.env.sleep(timedelta(seconds=1))  # let the workflow take what was signalled
        return bool(ready)

    async def _act(self, due: _Due) -> None:
        handle, invoice, action = self.handle, self.invoice, due.reaction.action
        if action in ("opened", "key_1"):
            kind, key = ("opened", None) if action == "opened" else ("key_pressed", "1")
            await handle.signal(CollectionWorkflow.channel_event, ChannelEvent(
                event_id=uuid.uuid4().hex, step_id=due.step_id, message_id=due.message_id, kind=kind, key=key))
        elif action == "pay":
            await handle.signal(CollectionWorkflow.payment_received, PaymentReceived(
                payment_id="SIM-PAY-1", amount_cents=invoice.amount_cents, currency=invoice.currency, paid_at=due.at))
        elif action == "dispute":
            await handle.signal(CollectionWorkflow.dispute_opened, DisputeOpened(reason="the debtor disputes the invoice"))
        elif action == "dispute_rejected":
            await handle.signal(CollectionWorkflow.dispute_resolved, DisputeResolved(outcome="rejected"))
        else:
            promised_on = due.at.astimezone(AMSTERDAM).date() + timedelta(days=7)
            await handle.signal(CollectionWorkflow.promise_to_pay,
                                PromiseToPay(promised_on=promised_on, amount_cents=invoice.amount_cents))


def _day(moment: datetime, start: date) -> int:
    return (moment.astimezone(AMSTERDAM).date() - start).days


def _entry(at: datetime, start: date, kind: str, step: str | None, detail: str) -> dict:
    return {"day": _day(at, start), "time": at.astimezone(AMSTERDAM).strftime("%H:%M"), "kind": kind,
            "step": step, "detail": detail}


def _timeline(flow: FlowDefinition, scenario: str, case: CaseInput, state: CaseState, actions: list[dict],
              seconds: float) -> dict:
    """The case's history with the debtor's actions, grouped by day since the invoice."""
    start = case.invoice.issued_on
    entries = [_entry(a["at"], start, f"debtor_{a['action']}", a["step"], "scenario") for a in actions]
    entries += [_entry(e.at, start, e.kind, e.step, e.detail) for e in state.history]
    entries.sort(key=lambda e: (e["day"], e["time"]))  # stable: what the debtor did comes first
    days: dict[int, list] = {}
    for entry in entries:
        days.setdefault(entry.pop("day"), []).append(entry)
    return {
        "flow": flow.name, "scenario": scenario, "scenario_title": SCENARIOS[scenario].title,
        "issued_on": start.isoformat(), "due_on": case.invoice.due_on.isoformat(),
        "status": state.status, "outcome": state.outcome, "current_step": state.current_step,
        "days": [{"day": day, "date": (start + timedelta(days=day)).isoformat(), "events": events}
                 for day, events in sorted(days.items())],
        "seconds": round(seconds, 3),
    }
