"""What the chaos tests share: a Temporal dev server with file persistence, `dunflow worker` as a
process of its own (to kill), a short flow on compressed time, and a wave of cases to run it."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, select
from temporalio.client import Client, WorkflowHandle

from api.intake import case_input, start_workflow, store_case
from api.schemas import CaseIn
from dunflow.case import CaseState
from dunflow.flow import parse_flow
from dunflow.settings import PROJECT_ROOT, Settings
from dunflow.store import CaseEvent, Message, workflow_id_for
from dunflow.temporal import connect
from tests.e2e.test_dev_stack import free_port
from tests.e2e.test_signal_redelivery import TemporalServer, until
from workflows.collection import CollectionWorkflow

DUNFLOW = str(Path(sys.executable).parent / "dunflow")
DAY_SECONDS = 2.0  # one flow day: the wave's cases run their whole flow in a few seconds

# Three messages on three channels, a flow day apart, then the case ends.
CHAOS_FLOW = parse_flow({
    "name": "chaos", "start": "invoice",
    "steps": {
        "invoice": {"type": "send", "channel": "email", "template": "invoice", "next": "wait_1"},
        "wait_1": {"type": "wait", "days": 1, "next": "sms"},
        "sms": {"type": "send", "channel": "sms", "template": "reminder_sms", "next": "wait_2"},
        "wait_2": {"type": "wait", "days": 1, "next": "reminder"},
        "reminder": {"type": "send", "channel": "email", "template": "friendly_reminder", "next": "done"},
        "done": {"type": "end", "outcome": "closed"},
    },
    "signals": {
        "full_payment": {"action": "end", "outcome": "paid"}, "partial_payment": {"action": "continue"},
        "dispute_opened": {"action": "pause"}, "dispute_upheld": {"action": "end", "outcome": "dispute_upheld"},
        "dispute_rejected": {"action": "continue"}, "promise_to_pay": {"action": "pause"},
        "broken_promise": {"action": "goto", "step": "reminder"},
    },
    "contact_rules": {},
})
SENDING_STEPS = ("invoice", "sms", "reminder")


def worker_env(settings: Settings) -> dict[str, str]:
    return os.environ | {
        "DUNFLOW_DATA_DIR": str(settings.data_dir), "DUNFLOW_DATABASE_URL": settings.effective_database_url,
        "DUNFLOW_TEMPORAL_ADDRESS": settings.temporal_address, "DUNFLOW_TASK_QUEUE": settings.task_queue,
        "DUNFLOW_PAYLOAD_KEYS": settings.payload_keys, "DUNFLOW_METRICS_PORT": "0",
        "DUNFLOW_TEMPORAL_METRICS_PORT": "0", "PYTHONPATH": str(PROJECT_ROOT),
    }


@dataclass
class Chaos:
    settings: Settings
    engine: object
    temporal: TemporalServer
    log_path: Path
    client: Client | None = None
    worker: subprocess.Popen | None = None
    handles: list[WorkflowHandle] = field(default_factory=list)

    def start_worker(self) -> None:
        with open(self.log_path, "a") as log:
            self.worker = subprocess.Popen([DUNFLOW, "worker"], env=worker_env(self.settings),
                                           stdout=log, stderr=subprocess.STDOUT)

    def kill_worker(self) -> None:
        """SIGKILL: no shutdown, running activities die half-way."""
        self.worker.send_signal(signal.SIGKILL)
        self.worker.wait(timeout=30)

    def stop_worker(self) -> None:
        if self.worker is not None and self.worker.poll() is None:
            self.worker.terminate()
            try:
                self.worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.worker.kill()
                self.worker.wait()

    async def connect(self) -> Client:
        async def connected():
            try:
                return await connect(self.settings)
            except RuntimeError:
                return None

        self.client = await until(connected, 60, "the Temporal dev server")
        return self.client

    async def start_wave(self, count: int, prefix: str) -> list[WorkflowHandle]:
        """`count` cases of the chaos flow, started side by side (as a bulk import does)."""
        inputs = []
        with Session(self.engine) as session:
            for number in range(count):
                case = store_case(session, case_body(f"{prefix}-{number:04d}")).case
                pinned = case_input(session, case, self.settings)
                pinned.flow = CHAOS_FLOW
                inputs.append(pinned)
        for chunk in range(0, count, 50):
            await asyncio.gather(*(start_workflow(self.client, self.settings, pinned)
                                   for pinned in inputs[chunk:chunk + 50]))
        handles = [self.client.get_workflow_handle_for(CollectionWorkflow.run, workflow_id_for(pinned.case_id))
                   for pinned in inputs]
        self.handles += handles
        return handles

    def message_count(self) -> int:
        with Session(self.engine) as session:
            return len(session.exec(select(Message.id)).all())

    async def until_messages(self, count: int, seconds: float) -> None:
        async def enough():
            return await asyncio.to_thread(self.message_count) >= count

        await until(enough, seconds, f"{count} messages")

    async def results(self, seconds: float) -> list[CaseState]:
        """Every case's end state: all must finish within `seconds`."""
        async def result(handle: WorkflowHandle) -> CaseState:
            return await handle.result(rpc_timeout=timedelta(seconds=seconds))

        return await asyncio.wait_for(asyncio.gather(*(result(h) for h in self.handles)), timeout=seconds)


def case_body(number: str) -> CaseIn:
    today = date.today()
    return CaseIn.model_validate({
        "debtor": {"id": f"D-{number}", "name": "Jan de Vries", "email": f"{number.lower()}@example.nl",
                   "phone": "+31612345678", "address": "Dorpsstraat 1\n1234 AB Ergens"},
        "invoice": {"number": number, "amount_cents": 12_500, "currency": "EUR",
                    "issued_on": today.isoformat(), "due_on": (today + timedelta(days=14)).isoformat()},
        "flow": "gentle",  # stored as a gentle case; the chaos flow is pinned in its input
    })


def messages_per_step(engine) -> Counter:
    """How many messages each (case, step) has in the outbox."""
    with Session(engine) as session:
        return Counter((message.case_id, message.step_id) for message in session.exec(select(Message)))


def history_gaps(engine, states: list[CaseState]) -> dict[str, str]:
    """Cases whose stored history is not exactly seq 1..n of the workflow's n entries."""
    stored: dict[str, list[int]] = {}
    with Session(engine) as session:
        for key in session.exec(select(CaseEvent.key)):
            workflow_id, seq = key.rsplit(":", 1)
            stored.setdefault(workflow_id, []).append(int(seq))
    gaps = {}
    for state in states:
        seqs = sorted(stored.get(workflow_id_for(state.case_id), []))
        if seqs != list(range(1, len(state.history) + 1)):
            gaps[state.case_id] = f"stored seq {seqs}, the workflow has {len(state.history)} entries"
    return gaps


def assert_every_case_closed_with_one_message_per_step(chaos: Chaos, states: list[CaseState], count: int) -> None:
    assert len(states) == count
    assert Counter(state.outcome for state in states) == Counter({"closed": count})
    per_step = messages_per_step(chaos.engine)
    expected = {(state.case_id, step) for state in states for step in SENDING_STEPS}
    assert set(per_step) == expected, f"missing: {sorted(expected - set(per_step))[:5]}, extra: {sorted(set(per_step) - expected)[:5]}"
    duplicated = {key: n for key, n in per_step.items() if n != 1}
    assert not duplicated, f"more than one message for {duplicated}"
    with Session(chaos.engine) as session:
        statuses = Counter(message.status for message in session.exec(select(Message)))
    assert statuses == Counter({"sent": 3 * count}), statuses
    for state in states:
        assert [m.step_id for m in state.messages] == list(SENDING_STEPS), state.case_id


@pytest.fixture
async def chaos(tmp_path, settings, engine):
    """A dev server on a file of its own, a worker process, and a client; all stopped afterwards."""
    settings.temporal_address = f"127.0.0.1:{free_port()}"
    settings.temporal_ui_port = free_port()
    settings.task_queue = f"chaos-{uuid.uuid4().hex[:8]}"
    settings.day_seconds = DAY_SECONDS
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    temporal = TemporalServer(settings, tmp_path / "temporal.log")
    temporal.start()
    chaos = Chaos(settings=settings, engine=engine, temporal=temporal, log_path=tmp_path / "worker.log")
    try:
        await chaos.connect()
        chaos.start_worker()
        yield chaos
    finally:
        chaos.stop_worker()
        if temporal.process.poll() is None:
            temporal.stop()
        log = chaos.log_path.read_text() if chaos.log_path.exists() else ""
        print(log[-3000:])
