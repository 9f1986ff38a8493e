"""Bulk intake throughput: dunflow's import of N rows against a plain loop of start_workflow for
a no-op workflow, on the same Temporal dev server, same concurrency, in the same run.

    .venv/bin/python -m bench.bulk_intake --rows 10000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

from temporalio import workflow
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from api.bulk import START_CONCURRENCY, import_cases
from dunflow.flows import publish_shipped_flows
from dunflow.search_attributes import ALL_KEYS
from dunflow.settings import Settings
from dunflow.store import create_schema, make_engine
from dunflow.templates import TemplateCatalog
from tests.support.binaries import temporal_cli


@workflow.defn(name="NoOp")
class NoOp:
    @workflow.run
    async def run(self, _: str) -> None:
        return None


def csv_file(rows: int) -> bytes:
    today, due = date.today(), date.today() + timedelta(days=14)
    lines = ["invoice_number,amount_cents,currency,issued_on,due_on,debtor_id,debtor_name,email"]
    lines += [f"BENCH-{n},{1000 + n},EUR,{today},{due},D-{n % 997},Debiteur {n},d{n}@example.nl" for n in range(rows)]
    return "\n".join(lines).encode()


async def raw_starts(env: WorkflowEnvironment, rows: int) -> float:
    gate = asyncio.Semaphore(START_CONCURRENCY)
    queue = f"noop-{uuid.uuid4().hex}"

    async def start(n: int) -> None:
        async with gate:
            await env.client.start_workflow(NoOp.run, "x", id=f"noop-{queue}-{n}", task_queue=queue)

    began = time.perf_counter()
    await asyncio.gather(*(start(n) for n in range(rows)))
    return time.perf_counter() - began


async def dunflow_import(env: WorkflowEnvironment, rows: int, folder: Path) -> tuple[float, dict]:
    settings = Settings(_env_file=None, data_dir=folder, database_url=f"sqlite:///{folder}/bench.db",
                        task_queue=f"bench-{uuid.uuid4().hex}")
    engine = make_engine(settings.effective_database_url)
    create_schema(engine)
    publish_shipped_flows(engine, settings.flows_dir, TemplateCatalog(settings.templates_dir))
    raw = csv_file(rows)
    began = time.perf_counter()
    summary = await import_cases(engine, env.client, settings, raw, "text/csv")
    return time.perf_counter() - began, summary.as_dict()


async def main(rows: int) -> dict:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli(), search_attributes=ALL_KEYS, data_converter=pydantic_data_converter)
    try:
        # the server slows as it fills, so the raw loop runs half before and half after dunflow
        raw_seconds = await raw_starts(env, rows // 2)
        with tempfile.TemporaryDirectory() as folder:
            dunflow_seconds, summary = await dunflow_import(env, rows, Path(folder))
        raw_seconds += await raw_starts(env, rows - rows // 2)
    finally:
        await env.shutdown()
    result = {
        "rows": rows, "started": summary["started"], "rejected": summary["rejected_count"],
        "dunflow_cases_per_s": round(rows / dunflow_seconds, 1),
        "raw_start_workflow_per_s": round(rows / raw_seconds, 1),
        "ratio": round(raw_seconds / dunflow_seconds, 3),
    }
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000)
    args = parser.parse_args()
    figures = asyncio.run(main(args.rows))
    print(json.dumps(figures, indent=2))
    print(f"\n| rows | dunflow cases/s | raw start_workflow/s | ratio |\n|---|---|---|---|\n"
          f"| {figures['rows']} | {figures['dunflow_cases_per_s']} | {figures['raw_start_workflow_per_s']} "
          f"| {figures['ratio']} |")
