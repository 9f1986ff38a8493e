"""Nothing is lost while Temporal is down: a payment posted then is stored, answered `queued`,
and delivered by the worker's redelivery loop once the server is back."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session, select

from api.app import create_app
from dunflow.apikeys import create_key
from dunflow.devstack import temporal_dev_command
from dunflow.settings import PROJECT_ROOT
from dunflow.store import PendingSignal
from tests.e2e.test_dev_stack import free_port

DUNFLOW = str(Path(sys.executable).parent / "dunflow")


async def until(check, seconds: float, what: str):
    for _ in range(int(seconds * 4)):
        result = await check()
        if result:
            return result
        await asyncio.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


class TemporalServer:
    """The CLI dev server with file persistence, stopped and started again on the same file."""

    def __init__(self, settings, log_path: Path):
        self.command = temporal_dev_command(settings) + ["--headless"]
        self.log = open(log_path, "a")
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(self.command, stdout=self.log, stderr=subprocess.STDOUT)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


@pytest.fixture
def stack(tmp_path, settings):
    settings.temporal_address = f"127.0.0.1:{free_port()}"
    settings.temporal_ui_port = free_port()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings.day_seconds = 3600
    temporal = TemporalServer(settings, tmp_path / "temporal.log")
    temporal.start()
    env = os.environ | {
        "DUNFLOW_DATA_DIR": str(settings.data_dir), "DUNFLOW_DATABASE_URL": settings.effective_database_url,
        "DUNFLOW_TEMPORAL_ADDRESS": settings.temporal_address, "DUNFLOW_DAY_SECONDS": "3600",
        "DUNFLOW_PAYLOAD_KEYS": settings.payload_keys, "PYTHONPATH": str(PROJECT_ROOT),
    }
    worker_log = open(tmp_path / "worker.log", "w")
    worker = subprocess.Popen([DUNFLOW, "worker"], env=env, stdout=worker_log, stderr=subprocess.STDOUT)
    try:
        yield temporal, worker
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        if temporal.process.poll() is None:
            temporal.stop()
        print((tmp_path / "worker.log").read_text()[-3000:])


async def test_a_payment_posted_while_temporal_is_down_ends_the_case_paid(stack, settings):
    temporal, worker = stack
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        key = create_key(app.state.engine, "bank", ["admin"]).key
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://dunflow.test",
                                     headers={"Authorization": f"Bearer {key}"}) as api:
            today = date.today()

            async def created():
                response = await api.post("/api/cases", json={
                    "debtor": {"id": "D-9", "name": "Piet Bakker", "email": "piet@example.nl"},
                    "invoice": {"number": "INV-DOWN-1", "amount_cents": 5_000, "currency": "EUR",
                                "issued_on": today.isoformat(), "due_on": (today + timedelta(days=14)).isoformat()}})
                return response if response.status_code in (200, 201) else None

            case_id = (await until(created, 60, "Temporal to take the case")).json()["case_id"]

            async def invoice_sent():
                return (await api.get("/api/messages", params={"case_id": case_id})).json()

            await until(invoice_sent, 30, "the invoice email")

            temporal.stop()
            payment = {"payment_id": "BANK-77", "amount_cents": 5_000, "currency": "EUR",
                       "paid_at": f"{today.isoformat()}T09:00:00Z"}
            response = await api.post(f"/api/cases/{case_id}/payments", json=payment)
            assert response.status_code == 202, response.text
            assert response.json()["status"] == "queued"
            with Session(app.state.engine) as session:
                [pending] = session.exec(select(PendingSignal)).all()
                assert pending.delivered_at is None and pending.key == "payment:BANK-77"

            temporal.start()

            async def paid():
                state = (await api.get(f"/api/cases/{case_id}")).json().get("state") or {}
                return state if state.get("status") == "paid" else None

            state = await until(paid, 90, "the queued payment to end the case")
            assert (state["outcome"], state["amount_open_cents"]) == ("paid", 0)
            with Session(app.state.engine) as session:
                [pending] = session.exec(select(PendingSignal)).all()
                assert pending.outcome == "delivered" and pending.attempts >= 1
            assert worker.poll() is None, "the worker must ride out the outage"
