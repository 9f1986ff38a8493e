"""Signal API latency: `POST /api/cases/{id}/payments` under many concurrent clients, and the time
from a full payment's POST until the case's query shows it paid.

The API and the worker run as their own processes (`dunflow api`, `dunflow worker`), as in
production, against a Temporal dev server this script starts.

    .venv/bin/python -m bench.signal_latency --clients 100 --seconds 30
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import httpx
from temporalio import workflow
from temporalio.worker import UnsandboxedWorkflowRunner, Worker
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from dunflow.apikeys import create_key
from dunflow.search_attributes import ALL_KEYS
from dunflow.migrations import upgrade
from dunflow.store import Case, Message, make_engine
from tests.support.binaries import temporal_cli

AMOUNT_CENTS = 100_000
LOG = Path(tempfile.gettempdir()) / "dunflow-bench-processes.log"  # what the API and worker printed


@dataclass
class Figures:
    latencies: list[float] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)

    def fail(self, reason: str) -> None:
        self.failures[reason] = self.failures.get(reason, 0) + 1


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


RUN = uuid.uuid4().hex[:8]  # invoice numbers of this run, so a reused database does not matter


def case_line(n: int) -> str:
    today = date.today()
    return json.dumps({
        "debtor": {"id": f"D-{n}", "name": f"Debiteur {n}", "email": f"d{n}@example.nl"},
        "invoice": {"number": f"LAT-{RUN}-{n:06d}", "amount_cents": AMOUNT_CENTS, "currency": "EUR",
                    "issued_on": today.isoformat(), "due_on": (today + timedelta(days=14)).isoformat()},
    })


def payment(amount_cents: int) -> dict:
    return {"payment_id": uuid.uuid4().hex, "amount_cents": amount_cents, "currency": "EUR",
            "paid_at": datetime.now(timezone.utc).isoformat()}


def start_processes(env_vars: dict[str, str]) -> list[subprocess.Popen]:
    env = os.environ | env_vars
    log = open(LOG, "wb")
    return [subprocess.Popen([sys.executable, "-m", "dunflow.cli", part], env=env, stdout=log, stderr=log)
            for part in ("worker", "api")]


async def wait_for_api(http: httpx.AsyncClient, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if (await http.get("/openapi.json")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError(f"the API did not come up; see {LOG}")


async def open_cases(http: httpx.AsyncClient, engine: Engine, count: int) -> list[str]:
    body = "\n".join(case_line(n) for n in range(count))
    response = await http.post("/api/cases/bulk", content=body, headers={"content-type": "application/x-ndjson"},
                               timeout=600)
    response.raise_for_status()
    summary = response.json()
    if summary["started"] != count:
        raise RuntimeError(f"only {summary['started']} of {count} cases started: {summary}")
    with Session(engine) as session:
        query = select(Case.id).where(Case.invoice_number.startswith(f"LAT-{RUN}-")).order_by(Case.invoice_number)
        return list(session.exec(query))


async def settled(engine: Engine, ids: list[str], seconds: float = 600) -> None:
    """Until every case has sent its invoice and waits: the measurement is of payments alone,
    not of the wave of starts that comes before it."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with Session(engine) as session:
            sent = session.exec(select(func.count()).select_from(Message).where(Message.case_id.in_(ids))).one()
        if sent >= len(ids):
            await asyncio.sleep(2)  # and their progress recorded
            return
        await asyncio.sleep(0.5)
    raise RuntimeError(f"the cases did not all send their invoice within {seconds:.0f} s")


async def client_loop(http: httpx.AsyncClient, cases: list[str], offset: int, deadline: float,
                      figures: Figures) -> None:
    """One client: small partial payments, one after the other, round the cases it is given."""
    n = offset
    while time.monotonic() < deadline:
        case_id = cases[n % len(cases)]
        n += 1
        began = time.perf_counter()
        try:
            response = await http.post(f"/api/cases/{case_id}/payments", json=payment(1))
        except httpx.HTTPError as error:
            figures.fail(type(error).__name__)
            continue
        if response.status_code == 202 and response.json()["status"] == "accepted":
            figures.latencies.append(time.perf_counter() - began)
        else:
            figures.fail(f"{response.status_code} {response.json().get('status', response.text[:80])}")


async def until_paid(http: httpx.AsyncClient, case_id: str, timeout: float = 30) -> float:
    """Pay the rest of a case, then ask it (a Temporal query) until it says paid."""
    began = time.perf_counter()
    response = await http.post(f"/api/cases/{case_id}/payments", json=payment(AMOUNT_CENTS))
    response.raise_for_status()
    while time.perf_counter() - began < timeout:
        state = (await http.get(f"/api/cases/{case_id}")).json().get("state") or {}
        if state.get("status") == "paid":
            return time.perf_counter() - began
        await asyncio.sleep(0.02)
    raise RuntimeError(f"case {case_id} was not paid {timeout} s after its payment")


async def paid_sampler(http: httpx.AsyncClient, cases: list[str], deadline: float, figures: Figures) -> None:
    for case_id in cases:
        if time.monotonic() >= deadline:
            return
        try:
            figures.latencies.append(await until_paid(http, case_id))
        except (RuntimeError, httpx.HTTPError) as error:
            figures.fail(f"{type(error).__name__}: {error}"[:80])
        await asyncio.sleep(0.25)


async def measure(http: httpx.AsyncClient, clients: int, seconds: float, cases: list[str],
                  samples: list[str]) -> tuple[Figures, Figures, float]:
    posts, paid = Figures(), Figures()
    began = time.monotonic()
    deadline = began + seconds
    await asyncio.gather(paid_sampler(http, samples, deadline, paid),
                         *(client_loop(http, cases, n * 7, deadline, posts) for n in range(clients)))
    return posts, paid, time.monotonic() - began


def summary(clients: int, seconds: float, posts: Figures, paid: Figures, database: str) -> dict:
    ms = lambda value: round(value * 1000, 1)  # noqa: E731
    return {
        "clients": clients, "seconds": round(seconds, 1), "database": database,
        "payments_accepted": len(posts.latencies), "payments_per_s": round(len(posts.latencies) / seconds, 1),
        "post_p50_ms": ms(percentile(posts.latencies, 0.5)), "post_p99_ms": ms(percentile(posts.latencies, 0.99)),
        "post_max_ms": ms(max(posts.latencies, default=float("nan"))), "post_failures": posts.failures,
        "paid_samples": len(paid.latencies), "paid_p50_ms": ms(percentile(paid.latencies, 0.5)),
        "paid_p99_ms": ms(percentile(paid.latencies, 0.99)), "paid_failures": paid.failures,
    }


async def main(clients: int, seconds: float, cases: int, database_url: str) -> dict:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli(), search_attributes=ALL_KEYS, data_converter=pydantic_data_converter)
    try:
        with tempfile.TemporaryDirectory() as name:
            figures = await measured_run(env, Path(name), clients, seconds, cases, database_url)
        return figures | {"baseline": await baseline(env, clients, seconds, cases)}
    finally:
        await env.shutdown()


@workflow.defn(name="SignalSink")
class SignalSink:
    """The baseline: a workflow that only counts the signals it gets."""

    def __init__(self) -> None:
        self.count = 0

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)

    @workflow.signal
    def payment(self, _: str) -> None:
        self.count += 1


async def baseline(env: WorkflowEnvironment, clients: int, seconds: float, cases: int) -> dict:
    """Plain signals from `clients` concurrent callers to `cases` sink workflows, same server."""
    queue = f"sink-{uuid.uuid4().hex}"
    async with Worker(env.client, task_queue=queue, workflows=[SignalSink],
                      workflow_runner=UnsandboxedWorkflowRunner()):  # it imports nothing to guard
        handles = [await env.client.start_workflow(SignalSink.run, id=f"{queue}-{n}", task_queue=queue)
                   for n in range(cases)]
        figures, deadline = Figures(), time.monotonic() + seconds

        async def caller(offset: int) -> None:
            n = offset
            while time.monotonic() < deadline:
                began = time.perf_counter()
                await handles[n % len(handles)].signal(SignalSink.payment, "1")
                figures.latencies.append(time.perf_counter() - began)
                n += 1

        began = time.monotonic()
        await asyncio.gather(*(caller(n * 7) for n in range(clients)))
        took = time.monotonic() - began
        for handle in handles:
            await handle.terminate("baseline done")
    return {"signals_per_s": round(len(figures.latencies) / took, 1),
            "signal_p50_ms": round(percentile(figures.latencies, 0.5) * 1000, 1),
            "signal_p99_ms": round(percentile(figures.latencies, 0.99) * 1000, 1)}


async def measured_run(env: WorkflowEnvironment, folder: Path, clients: int, seconds: float, cases: int,
                       database_url: str) -> dict:
    url = database_url or f"sqlite:///{folder}/bench.db"
    engine = make_engine(url)
    upgrade(engine)  # as the API and the worker do at start-up
    key = create_key(engine, "bench", ["admin"]).key
    port = free_port()
    processes = start_processes({
        "DUNFLOW_DATA_DIR": str(folder), "DUNFLOW_DATABASE_URL": url, "DUNFLOW_API_PORT": str(port),
        "DUNFLOW_TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
        "DUNFLOW_TASK_QUEUE": f"bench-{uuid.uuid4().hex}", "DUNFLOW_METRICS_PORT": "0",
        "DUNFLOW_TEMPORAL_METRICS_PORT": "0",
    })
    try:
        limits = httpx.Limits(max_connections=clients + 10, max_keepalive_connections=clients + 10)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=30,
                                     headers={"Authorization": f"Bearer {key}"}) as http:
            await wait_for_api(http)
            ids = await open_cases(http, engine, cases + int(seconds * 4) + 10)
            await settled(engine, ids)
            posts, paid, took = await measure(http, clients, seconds, ids[:cases], ids[cases:])
        return summary(clients, took, posts, paid, "postgresql" if url.startswith("postgresql") else "sqlite")
    finally:
        stop(processes)
        engine.dispose()


def stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--cases", type=int, default=500, help="cases the clients pay small amounts into")
    parser.add_argument("--database-url", default="", help="the store; default SQLite in a temporary folder")
    args = parser.parse_args()
    figures = asyncio.run(main(args.clients, args.seconds, args.cases, args.database_url))
    print(json.dumps(figures, indent=2))
    base = figures["baseline"]
    print(f"\n| clients | store | payments/s | POST p50 | POST p99 | until paid p50 | until paid p99 "
          f"| plain signals/s | signal p50 | signal p99 |\n|---|---|---|---|---|---|---|---|---|---|\n"
          f"| {figures['clients']} | {figures['database']} | {figures['payments_per_s']} | {figures['post_p50_ms']} ms "
          f"| {figures['post_p99_ms']} ms | {figures['paid_p50_ms']} ms | {figures['paid_p99_ms']} ms "
          f"| {base['signals_per_s']} | {base['signal_p50_ms']} ms | {base['signal_p99_ms']} ms |")
