"""`dunflow worker` as operations run it: JSON logs with case ids, its metrics port, and a
bounded, clean stop on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from dunflow.settings import PROJECT_ROOT
from tests.api.test_cases_api import eventually, open_case
from tests.e2e.test_dev_stack import free_port, wait_until

DUNFLOW = str(Path(sys.executable).parent / "dunflow")
SHUTDOWN_SECONDS = 5


async def test_the_worker_logs_json_serves_metrics_and_stops_cleanly(api_without_worker, settings, tmp_path):
    api = api_without_worker
    metrics_port = free_port()
    env = os.environ | {
        "DUNFLOW_DATABASE_URL": settings.effective_database_url, "DUNFLOW_TEMPORAL_ADDRESS": settings.temporal_address,
        "DUNFLOW_TASK_QUEUE": settings.task_queue, "DUNFLOW_PAYLOAD_KEYS": settings.payload_keys,
        "DUNFLOW_DATA_DIR": str(settings.data_dir), "DUNFLOW_METRICS_PORT": str(metrics_port),
        "DUNFLOW_TEMPORAL_METRICS_PORT": str(free_port()), "DUNFLOW_LOG_FORMAT": "json",
        "DUNFLOW_WORKER_SHUTDOWN_SECONDS": str(SHUTDOWN_SECONDS), "PYTHONPATH": str(PROJECT_ROOT),
    }
    log_path = tmp_path / "worker.log"
    with open(log_path, "w") as log:
        worker = subprocess.Popen([DUNFLOW, "worker"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=2).status_code == 200,
                   30, "the worker's metrics port")
        case_id = await open_case(api, "F-WORKER-1")

        async def invoice_sent():
            return (await api.get("/api/messages", params={"case_id": case_id})).json()

        await eventually(invoice_sent)
        metrics = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=2).text
        assert 'dunflow_messages_sent_total{channel="email",outcome="sent",provider="outbox"} 1.0' in metrics

        worker.send_signal(signal.SIGTERM)
        started = time.monotonic()
        assert worker.wait(timeout=SHUTDOWN_SECONDS + 15) == 0
        assert time.monotonic() - started < SHUTDOWN_SECONDS + 15
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    text = log_path.read_text()
    assert "Traceback" not in text, text[-3000:]
    lines = [line for line in text.splitlines() if line.startswith("{")]
    entries = [json.loads(line) for line in lines]
    assert any(entry.get("case_id") == case_id and entry["workflow_id"] == f"case-{case_id}" for entry in entries)
    assert entries[-1]["message"] == "stopped", text[-2000:]
