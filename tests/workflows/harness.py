"""Runs real collection workflows with real activities (outbox provider, SQLite store) on the
time-skipping test server, and reads back what they sent."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Callable
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

from sqlmodel import Session, select
from temporalio.client import WorkflowHandle, WorkflowHistory
from temporalio.testing import WorkflowEnvironment
from temporalio.service import RPCError
from temporalio.worker import Replayer, Worker

from activities.collection import CollectionActivities
from activities.providers import build_providers
from api.intake import case_input, store_case
from api.schemas import CaseIn
from dunflow.calendar import AMSTERDAM, is_holiday
from dunflow.case import CaseState, ChannelEvent, PaymentReceived
from dunflow.flow import FlowDefinition
from dunflow.settings import Settings
from dunflow.store import Message
from dunflow.templates import TemplateCatalog
from workflows.collection import CollectionWorkflow
from workflows.registry import WORKFLOWS


def plain_monday(day: date) -> bool:
    """A Monday with no holiday in the eight weeks from it: contact hours then defer nothing in
    the shipped flows, whose messages fall on weekdays at fixed offsets from the start."""
    return day.weekday() == 0 and not any(is_holiday(day + timedelta(days=n)) for n in range(56))


@dataclass
class FlowHarness:
    env: WorkflowEnvironment
    engine: object
    settings: Settings
    handles: list[WorkflowHandle] = field(default_factory=list)

    async def today(self) -> date:
        return (await self.env.get_current_time()).astimezone(AMSTERDAM).date()

    async def start_case(self, *, amount_cents: int = 24_500, due_in_days: int = 14, issued_days_ago: int = 0,
                         flow: str = "standard", definition: FlowDefinition | None = None,
                         start_on: Callable[[date], bool] = plain_monday,
                         number: str | None = None, **debtor) -> WorkflowHandle:
        """Start a case of a published flow (`definition`: one never published) just after
        midnight of the first day from tomorrow that `start_on` accepts."""
        await self._to_start_of(start_on)
        today = await self.today()
        body = CaseIn.model_validate({
            "debtor": {"id": "D-1", "name": "Jan de Vries", "email": "jan@example.nl", "phone": "+31612345678",
                       "address": "Dorpsstraat 1\n1234 AB Ergens", "language": "nl", "type": "consumer"} | debtor,
            "invoice": {"number": number or f"F-{uuid.uuid4().hex[:8]}", "amount_cents": amount_cents,
                        "currency": "EUR", "issued_on": (today - timedelta(days=issued_days_ago)).isoformat(),
                        "due_on": (today + timedelta(days=due_in_days)).isoformat()},
            "flow": flow,
        })
        with Session(self.engine) as session:
            case = store_case(session, body).case
            pinned = case_input(session, case, self.settings)
            if definition is not None:
                pinned.flow = definition
            handle = await self.env.client.start_workflow(
                CollectionWorkflow.run, pinned,
                id=case.workflow_id, task_queue=self.settings.task_queue,
            )
        self.handles.append(handle)
        return handle

    async def _to_start_of(self, start_on: Callable[[date], bool]) -> None:
        """Start every case just after midnight in Amsterdam, so flow dates fall at fixed offsets:
        an action on date D happens at day (D - today) + 9 hours."""
        now = (await self.env.get_current_time()).astimezone(AMSTERDAM)
        day = now.date() + timedelta(days=1)
        while not start_on(day):
            day += timedelta(days=1)
        await self.env.sleep(datetime.combine(day, time(0, 0, 1), tzinfo=AMSTERDAM) - now)

    async def advance(self, days: float = 0, hours: float = 0) -> None:
        await self.env.sleep(timedelta(days=days, hours=hours))

    def plan_handle(self, handle: WorkflowHandle, number: int = 1) -> WorkflowHandle:
        """The case's `number`th plan workflow, kept so it is stopped and replayed like the case."""
        plan_id = f"{handle.id}-plan-{number}"
        known = next((known for known in self.handles if known.id == plan_id), None)
        if known is None:
            known = self.env.client.get_workflow_handle(plan_id)
            self.handles.append(known)
        return known

    async def add_plans(self) -> None:
        """Every plan workflow the cases started, so none is left running (it would hold the
        test server's clock) and each is replayed too."""
        for case in [handle for handle in self.handles if "-plan-" not in handle.id]:
            for number in range(1, 100):
                try:
                    await self.env.client.get_workflow_handle(f"{case.id}-plan-{number}").describe()
                except RPCError:
                    break
                self.plan_handle(case, number)

    async def state(self, handle: WorkflowHandle) -> CaseState:
        return await handle.query(CollectionWorkflow.state)

    async def state_when(self, handle: WorkflowHandle, holds: Callable[[CaseState], bool],
                         wait_seconds: float = 10) -> CaseState:
        """The state once `holds` is true of it: skipped time passes at once, but the worker
        may still be busy with what it brought (e.g. a plan stopping) for a moment of real time."""
        for _ in range(int(wait_seconds * 20)):
            state = await self.state(handle)
            if holds(state):
                return state
            await asyncio.sleep(0.05)
        raise AssertionError(f"the case never got there; it stands at {state.status} {state.current_step}")

    def messages(self, handle: WorkflowHandle) -> list[Message]:
        case_id = handle.id.removeprefix("case-")
        with Session(self.engine) as session:
            return list(session.exec(select(Message).where(Message.case_id == case_id).order_by(Message.id)))

    def sent_steps(self, handle: WorkflowHandle) -> list[str]:
        return [f"{m.channel}:{m.step_id}" for m in self.messages(handle)]

    async def message_of(self, handle: WorkflowHandle, step_id: str, wait_seconds: float = 10) -> Message:
        """The message a step sent, waiting (in real time) for its activity to have run."""
        for _ in range(int(wait_seconds * 20)):
            found = [m for m in self.messages(handle) if m.step_id == step_id]
            if found:
                return found[-1]
            await asyncio.sleep(0.05)
        raise AssertionError(f"step {step_id} sent nothing; sent so far: {self.sent_steps(handle)}")

    async def channel_event(self, handle: WorkflowHandle, step_id: str, kind: str, key: str | None = None) -> None:
        message = await self.message_of(handle, step_id)
        event = ChannelEvent(event_id=uuid.uuid4().hex, step_id=step_id, message_id=message.id, kind=kind, key=key)
        await handle.signal(CollectionWorkflow.channel_event, event)


def payment(payment_id: str, cents: int) -> PaymentReceived:
    return PaymentReceived(payment_id=payment_id, amount_cents=cents, currency="EUR", paid_at=datetime.now(timezone.utc))


HISTORIES = Path(__file__).parent.parent / "histories"
RECORD_HISTORIES = os.environ.get("DUNFLOW_RECORD_HISTORIES") == "1"


@asynccontextmanager
async def flow_harness(env: WorkflowEnvironment, engine, settings: Settings, name: str | None = None):
    """`name` names the histories of the test's cases when they are recorded (see tests/histories)."""
    settings.task_queue = f"test-{uuid.uuid4().hex}"
    activities = CollectionActivities(
        engine=engine, settings=settings, templates=TemplateCatalog(settings.templates_dir),
        providers=build_providers(settings),
    )
    harness = FlowHarness(env=env, engine=engine, settings=settings)
    with ThreadPoolExecutor(max_workers=8) as executor:
        async with Worker(env.client, task_queue=settings.task_queue, workflows=WORKFLOWS,
                          activities=activities.all(), activity_executor=executor,
                          max_concurrent_activities=8):
            try:
                yield harness
            finally:
                await harness.add_plans()
                for handle in harness.handles:  # leave nothing running for the next test
                    try:
                        await handle.terminate("test finished")
                    except RPCError:
                        pass  # it had already finished
    histories = [await handle.fetch_history() for handle in harness.handles]
    await replay_all(env, histories)
    if RECORD_HISTORIES and name:
        record(histories, name)


async def replay_all(env: WorkflowEnvironment, histories: list[WorkflowHistory]) -> None:
    """Every history a test produced replays against the workflow code: proof it is deterministic."""
    replayer = Replayer(workflows=WORKFLOWS, data_converter=env.client.data_converter)
    for history in histories:
        await replayer.replay_workflow(history)


def record(histories: list[WorkflowHistory], name: str) -> None:
    """Keep the histories for the replay guard (tests/workflows/test_replay_guard.py)."""
    HISTORIES.mkdir(exist_ok=True)
    for number, history in enumerate(histories, start=1):
        suffix = f"-{number}" if len(histories) > 1 else ""
        recording = {"workflow_id": history.workflow_id} | json.loads(history.to_json())  # a plan's id names its case's
        (HISTORIES / f"{name}{suffix}.json").write_text(json.dumps(recording))
