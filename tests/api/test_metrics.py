"""Prometheus metrics after a flow ran, the worker's metrics ports, JSON logs with case ids."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
from prometheus_client.parser import text_string_to_metric_families

from activities.providers import RateLimiter
from dunflow.logs import JsonFormatter
from dunflow.temporal import connect
from tests.api.conftest import point_at
from tests.api.test_cases_api import eventually, open_case, payment
from tests.e2e.test_dev_stack import free_port
from worker import build_activities, build_worker, serve_metrics, temporal_runtime


def samples(text: str) -> dict[tuple, float]:
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


async def scrape(api) -> dict[tuple, float]:
    response = await api.get("/metrics", headers={"Authorization": ""})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return samples(response.text)


def delta(before: dict, after: dict, name: str, **labels) -> float:
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0) - before.get(key, 0)


async def test_metrics_count_what_a_flow_did(api, caplog):
    caplog.set_level(logging.INFO, logger="dunflow")
    before = await scrape(api)
    case_id = await open_case(api, "F-METRICS-1")

    async def invoice_sent():
        return (await api.get("/api/messages", params={"case_id": case_id})).json()

    await eventually(invoice_sent)
    paid = await api.post(f"/api/cases/{case_id}/payments", json=payment("P-METRICS-1"))
    assert paid.status_code == 202, paid.text
    refused = await api.post("/webhooks/sendgrid", content=b"[]", headers={"Authorization": ""})
    assert refused.status_code == 403
    after = await scrape(api)

    assert delta(before, after, "dunflow_cases_started_total") == 1
    assert delta(before, after, "dunflow_messages_sent_total", channel="email", provider="outbox", outcome="sent") == 1
    assert delta(before, after, "dunflow_signals_received_total", signal="payment_received") == 1
    assert delta(before, after, "dunflow_webhook_verification_failures_total", provider="sendgrid") == 1
    assert delta(before, after, "dunflow_provider_seconds_count", channel="email", provider="outbox") == 1

    sent_logs = [json.loads(JsonFormatter().format(record)) for record in caplog.records
                 if record.name == "dunflow.activities"]
    assert any(entry["case_id"] == case_id and entry["workflow_id"] == f"case-{case_id}"
               and entry["message"].startswith("email message") for entry in sent_logs), sent_logs


def test_json_logs_carry_the_ids_the_temporal_sdk_attaches():
    record = logging.LogRecord("temporalio.activity", logging.WARNING, __file__, 1, "retrying %s", ("send",), None)
    record.temporal_activity = {"workflow_id": "case-abc123", "activity_type": "send_message"}
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "retrying send" and entry["level"] == "WARNING"
    assert (entry["case_id"], entry["workflow_id"], entry["activity_type"]) == ("abc123", "case-abc123", "send_message")


async def test_the_worker_serves_sdk_and_dunflow_metrics(dev_server, settings):
    point_at(settings, dev_server)
    settings.metrics_port, settings.temporal_metrics_port = free_port(), free_port()
    serve_metrics(settings)
    client = await connect(settings, runtime=temporal_runtime(settings))
    with ThreadPoolExecutor(max_workers=2) as executor:
        async with build_worker(client, settings, build_activities(settings), executor):
            await asyncio.sleep(1.5)  # the pollers report in
            async with httpx.AsyncClient() as http:
                sdk = (await http.get(f"http://127.0.0.1:{settings.temporal_metrics_port}/metrics")).text
                own = (await http.get(f"http://127.0.0.1:{settings.metrics_port}/metrics")).text
    assert "temporal_worker_start" in sdk or "temporal_long_request" in sdk, sdk[:500]
    assert "dunflow_messages_sent" in own


def test_a_taken_metrics_port_only_turns_metrics_off(settings, caplog):
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings.metrics_port = settings.temporal_metrics_port = port
        assert temporal_runtime(settings) is None
        serve_metrics(settings)
    assert "metrics are off" in caplog.text


def test_the_rate_limiter_spaces_sends():
    limiter = RateLimiter(20)
    started = time.monotonic()
    for _ in range(5):
        limiter.wait_turn()
    assert 0.19 <= time.monotonic() - started < 1
    unlimited = RateLimiter(0)
    started = time.monotonic()
    for _ in range(100):
        unlimited.wait_turn()
    assert time.monotonic() - started < 0.1
