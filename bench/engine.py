"""Engine overhead, the wave and memory, with dunflow's worker as its own process (bench/worker.py)
so its memory can be read, against a Temporal dev server started here.

- Engine overhead: N cases of the `standard` flow (time compressed, providers on the outbox) until
  each stands escalated at its end, against a no-op baseline with the same activities and timers
  in the same order (taken from one case's history), on the same server and worker. The baseline
  runs half before and half after dunflow, because the server slows as it fills.
- Memory: the worker's RSS with all wave cases asleep after their invoice.
- Wave: the worker stops while those cases sleep; once every case's wait has ended it starts again,
  and every case sends its next message (the SMS) at once: the time from that moment until all
  are in the outbox. Without the stop, cases started over minutes would fall due over minutes.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from api.bulk import START_CONCURRENCY, import_cases
from bench.baseline import Baseline, Shape
from dunflow.flows import publish_shipped_flows
from dunflow.migrations import upgrade
from dunflow.search_attributes import ALL_KEYS
from dunflow.settings import PROJECT_ROOT, Settings
from dunflow.store import Case, Message, make_engine, workflow_id_for
from dunflow.templates import TemplateCatalog
from tests.support.binaries import temporal_cli

LOG = Path(tempfile.gettempdir()) / "dunflow-bench-worker.log"  # what the worker printed
RUN = uuid.uuid4().hex[:6]  # invoice numbers of this run, so a reused database does not matter


@dataclass
class Bench:
    client: Client
    engine: Engine
    folder: Path
    database_url: str
    queue: str
    worker: subprocess.Popen | None = None

    def settings(self, day_seconds: float) -> Settings:
        return Settings(_env_file=None, data_dir=self.folder, database_url=self.database_url,
                        task_queue=self.queue, day_seconds=day_seconds)


# --- the worker process ------------------------------------------------------------------


def start_worker(bench: Bench) -> None:
    # with bytecode, as installed workers have it: without, the sandbox compiles the workflow
    # module again for every case it loads, which is most of what a worker does
    env = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"} | {
        "DUNFLOW_DATA_DIR": str(bench.folder), "DUNFLOW_DATABASE_URL": bench.database_url,
        "DUNFLOW_TEMPORAL_ADDRESS": bench.client.service_client.config.target_host,
        "DUNFLOW_TASK_QUEUE": bench.queue, "DUNFLOW_METRICS_PORT": "0", "DUNFLOW_TEMPORAL_METRICS_PORT": "0",
        "DUNFLOW_SENDGRID_API_KEY": "", "DUNFLOW_TWILIO_ACCOUNT_SID": "", "DUNFLOW_PAYLOAD_KEYS": "",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")])),
    }
    with open(LOG, "ab") as log:
        bench.worker = subprocess.Popen([sys.executable, "-m", "bench.worker"], env=env, cwd=bench.folder,
                                        stdout=log, stderr=log)


def stop_worker(bench: Bench) -> None:
    process, bench.worker = bench.worker, None
    if process is None:
        return
    process.terminate()
    try:
        process.wait(timeout=40)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def memory_mb(process: subprocess.Popen) -> dict[str, float]:
    """Resident memory now and at its peak, from /proc (Linux)."""
    if process.poll() is not None:
        raise RuntimeError(f"the worker stopped (exit {process.returncode}); see {LOG}")
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{process.pid}/status").read_text().splitlines())
    kb = lambda name: int(fields[name].split()[0])  # noqa: E731
    return {"rss_mb": round(kb("VmRSS") / 1024, 1), "peak_rss_mb": round(kb("VmHWM") / 1024, 1)}


# --- cases and counting ------------------------------------------------------------------


def case_lines(prefix: str, count: int) -> bytes:
    today = date.today()
    return "\n".join(json.dumps({
        "debtor": {"id": f"{prefix}-D{n}", "name": f"Debiteur {n}", "email": f"d{n}@example.nl",
                   "phone": f"+316{n % 100_000_000:08d}", "address": f"Dorpsstraat {n}\n1234 AB Ergens"},
        "invoice": {"number": f"{prefix}-{n:06d}", "amount_cents": 10_000 + n, "currency": "EUR",
                    "issued_on": today.isoformat(), "due_on": (today + timedelta(days=14)).isoformat()},
    }) for n in range(count)).encode()


async def open_cases(bench: Bench, prefix: str, count: int, day_seconds: float) -> None:
    """Through the bulk path, as the ERP's file would come in."""
    summary = await import_cases(bench.engine, bench.client, bench.settings(day_seconds),
                                 case_lines(prefix, count), "application/x-ndjson")
    if summary.started != count:
        raise RuntimeError(f"only {summary.started} of {count} cases started: {summary.as_dict()['rejected'][:3]}")


def cases_where(engine: Engine, prefix: str, **columns: str) -> int:
    with Session(engine) as session:
        query = select(func.count()).select_from(Case).where(Case.invoice_number.startswith(f"{prefix}-"))
        for name, value in columns.items():
            query = query.where(getattr(Case, name) == value)
        return session.exec(query).one()


def messages_of(engine: Engine, prefix: str, channel: str) -> int:
    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(Message).join(Case, Case.id == Message.case_id).where(
            Case.invoice_number.startswith(f"{prefix}-"), Message.channel == channel)).one()


def case_ids(engine: Engine, prefix: str) -> list[str]:
    with Session(engine) as session:
        return list(session.exec(select(Case.id).where(Case.invoice_number.startswith(f"{prefix}-"))))


async def until(check, goal: int, seconds: float, what: str, bench: Bench) -> None:
    """Until `check` (a count; a function, or a coroutine function) reaches `goal`."""
    count = check if asyncio.iscoroutinefunction(check) else lambda: asyncio.to_thread(check)
    deadline = time.monotonic() + seconds
    while (done := await count()) < goal:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: {done} of {goal} after {seconds:.0f} s; see {LOG}")
        if bench.worker is not None and bench.worker.poll() is not None:
            raise RuntimeError(f"the worker stopped (exit {bench.worker.returncode}); see {LOG}")
        await asyncio.sleep(0.25)


async def in_parallel(calls) -> None:
    gate = asyncio.Semaphore(START_CONCURRENCY)

    async def one(call) -> None:
        async with gate:
            await call()

    await asyncio.gather(*(one(call) for call in calls))


# --- engine overhead ---------------------------------------------------------------------


async def case_shape(client: Client, case_id: str) -> Shape:
    """The activities and timers of one finished case, in order."""
    shape: Shape = []
    async for event in client.get_workflow_handle(workflow_id_for(case_id)).fetch_history_events():
        if event.HasField("activity_task_scheduled_event_attributes"):
            shape.append(("activity", 0.0))
        elif event.HasField("timer_started_event_attributes"):
            fire = event.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta()
            shape.append(("timer", fire.total_seconds()))
    return shape


async def baseline_run(bench: Bench, shape: Shape, count: int, label: str, done_before: int) -> float:
    began = time.perf_counter()
    await in_parallel(lambda n=n: bench.client.start_workflow(
        Baseline.run, shape, id=f"baseline-{RUN}-{label}-{n}", task_queue=bench.queue) for n in range(count))

    async def completed() -> int:
        query = "WorkflowType = 'BenchBaseline' AND ExecutionStatus = 'Completed'"
        return (await bench.client.count_workflows(query)).count - done_before

    await until(completed, count, 60 + count * 2, "baseline cases done", bench)
    return time.perf_counter() - began


async def finish_cases(bench: Bench, prefix: str) -> None:
    """Terminate the escalated cases, so they weigh on nothing that follows."""
    ids = await asyncio.to_thread(case_ids, bench.engine, prefix)
    await in_parallel(lambda case_id=case_id: bench.client.get_workflow_handle(workflow_id_for(case_id)).terminate(
        "benchmark done") for case_id in ids)


async def engine_overhead(bench: Bench, cases: int, day_seconds: float) -> dict:
    probe = f"P{RUN}"
    await open_cases(bench, probe, 1, day_seconds)
    await until(lambda: cases_where(bench.engine, probe, status="escalated"), 1, 120, "the probe case", bench)
    shape = await case_shape(bench.client, case_ids(bench.engine, probe)[0])
    await finish_cases(bench, probe)
    first = await baseline_run(bench, shape, cases // 2, "a", 0)

    prefix = f"E{RUN}"
    began = time.perf_counter()
    await open_cases(bench, prefix, cases, day_seconds)
    await until(lambda: cases_where(bench.engine, prefix, status="escalated"), cases, 120 + cases * 2,
                "standard cases at their end", bench)
    dunflow_seconds = time.perf_counter() - began
    await finish_cases(bench, prefix)

    second = await baseline_run(bench, shape, cases - cases // 2, "b", cases // 2)
    steps = len(shape)
    dunflow_rate, baseline_rate = cases / dunflow_seconds, cases / (first + second)
    return {
        "cases": cases, "day_seconds": day_seconds,
        "activities_per_case": sum(kind == "activity" for kind, _ in shape),
        "timers_per_case": sum(kind == "timer" for kind, _ in shape),
        "flow_seconds_per_case": round(sum(seconds for _, seconds in shape), 2),
        "dunflow_seconds": round(dunflow_seconds, 1), "baseline_seconds": round(first + second, 1),
        "dunflow_cases_per_s": round(dunflow_rate, 2), "baseline_cases_per_s": round(baseline_rate, 2),
        "dunflow_steps_per_s": round(dunflow_rate * steps, 1), "baseline_steps_per_s": round(baseline_rate * steps, 1),
        "ratio": round(dunflow_rate / baseline_rate, 3),
    }


# --- memory and the wave -----------------------------------------------------------------


async def asleep_and_wave(bench: Bench, cases: int, day_seconds: float) -> tuple[dict, dict]:
    prefix = f"W{RUN}"
    began = time.perf_counter()
    await open_cases(bench, prefix, cases, day_seconds)
    await until(lambda: cases_where(bench.engine, prefix, current_step="wait_for_open"), cases, 120 + cases,
                "cases asleep after their invoice", bench)
    settled = time.perf_counter()
    await asyncio.sleep(2)
    asleep = memory_mb(bench.worker) | {"cases": cases, "seconds_to_open": round(settled - began, 1)}

    stop_worker(bench)
    fired_early = messages_of(bench.engine, prefix, "sms")
    # every case started, and so began its 2-day wait, before `settled`
    await asyncio.sleep(max(0.0, settled + 2 * day_seconds + 1 - time.perf_counter()))
    moment = time.perf_counter()
    start_worker(bench)
    await until(lambda: messages_of(bench.engine, prefix, "sms"), cases, 120 + cases, "wave messages", bench)
    took = time.perf_counter() - moment
    wave = {"cases": cases, "day_seconds": day_seconds, "sent_before_the_moment": fired_early,
            "seconds": round(took, 1), "messages_per_s": round((cases - fired_early) / took, 1),
            "worker_peak_rss_mb": memory_mb(bench.worker)["peak_rss_mb"]}
    await finish_cases(bench, prefix)
    return asleep, wave


def wave_day_seconds(cases: int) -> float:
    """Long enough that every case sent its invoice before the first case's wait ends, so none
    falls due before the worker stops (on the shared machine of bench/RESULTS.md about 8 cases/s
    opened and sent their invoice; a case due early is counted in the figures)."""
    return max(5.0, cases / 8)


async def main(cases: int, day_seconds: float, wave_cases: int, wave_seconds: float | None,
               database_url: str = "") -> dict:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli(), search_attributes=ALL_KEYS, data_converter=pydantic_data_converter)
    try:
        with tempfile.TemporaryDirectory() as name:
            folder = Path(name)
            url = database_url or f"sqlite:///{folder}/bench.db"
            engine = make_engine(url)
            upgrade(engine)
            settings = Settings(_env_file=None, data_dir=folder, database_url=url)
            publish_shipped_flows(engine, settings.flows_dir, TemplateCatalog(settings.templates_dir))
            bench = Bench(env.client, engine, folder, url, f"bench-{RUN}")
            start_worker(bench)
            try:
                figures = {"store": url.split(":", 1)[0].split("+")[0]}
                if cases:
                    figures["engine"] = await engine_overhead(bench, cases, day_seconds)
                if wave_cases:
                    figures["memory"], figures["wave"] = await asleep_and_wave(
                        bench, wave_cases, wave_seconds or wave_day_seconds(wave_cases))
                return figures
            finally:
                stop_worker(bench)
                engine.dispose()
    finally:
        await env.shutdown()
