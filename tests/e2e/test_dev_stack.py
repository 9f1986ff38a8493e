"""End to end: `dunflow dev` (Temporal dev server, worker, API as one group) with compressed
flow time, from POST /api/cases to a payment that ends the workflow."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest
from temporalio.client import Client, WorkflowExecutionStatus

from dunflow import migrations
from dunflow.search_attributes import AMOUNT_OPEN_CENTS, CASE_STATUS, CURRENT_STEP, DEBTOR_ID, FLOW_NAME, INVOICE_NUMBER
from dunflow.settings import PROJECT_ROOT
from dunflow.store import make_engine

DUNFLOW = str(Path(sys.executable).parent / "dunflow")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(check, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            result = check()
        except httpx.HTTPError:
            result = None
        if result:
            return result
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def dev_stack(tmp_path):
    ports = {"api": free_port(), "temporal": free_port(), "ui": free_port()}
    env = os.environ | {
        "DUNFLOW_DATA_DIR": str(tmp_path / "data"),
        "DUNFLOW_DATABASE_URL": "",
        "DUNFLOW_API_PORT": str(ports["api"]),
        "DUNFLOW_TEMPORAL_ADDRESS": f"127.0.0.1:{ports['temporal']}",
        "DUNFLOW_TEMPORAL_UI_PORT": str(ports["ui"]),
        "DUNFLOW_DAY_SECONDS": "1",
        "PYTHONPATH": str(PROJECT_ROOT),  # this checkout's code, whichever one the installed script points at
    }
    log = open(tmp_path / "dev.log", "w")
    process = subprocess.Popen([DUNFLOW, "dev"], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    api = httpx.Client(base_url=f"http://127.0.0.1:{ports['api']}", timeout=10)
    try:
        def api_up():
            assert process.poll() is None, f"dunflow dev exited with code {process.returncode}"
            return api.get("/docs").status_code == 200

        wait_until(api_up, 90, "the API")
        api.headers["Authorization"] = "Bearer " + (tmp_path / "data" / "dev-admin-key").read_text().strip()
        yield process, api, ports
    finally:
        api.close()
        if process.poll() is None:
            process.kill()
            process.wait()
        log.close()
        print((tmp_path / "dev.log").read_text()[-3000:])


async def test_a_case_from_intake_to_payment(dev_stack, tmp_path):
    process, api, ports = dev_stack
    today = date.today()
    created = api.post("/api/cases", json={
        "debtor": {"id": "D-7", "name": "Anna Jansen", "email": "anna@example.nl", "phone": "+31612345678"},
        "invoice": {"number": "INV-E2E-1", "amount_cents": 12_100, "currency": "EUR",
                    "issued_on": today.isoformat(), "due_on": (today + timedelta(days=14)).isoformat()},
    })
    assert created.status_code == 201, created.text
    case_id, workflow_id = created.json()["case_id"], created.json()["workflow_id"]

    # two flow days (two seconds) later the unopened invoice is followed by an SMS
    def sms_sent():
        messages = api.get("/api/messages", params={"case_id": case_id}).json()
        return messages if any(m["channel"] == "sms" for m in messages) else None

    messages = wait_until(sms_sent, 30, "the SMS")
    assert [(m["channel"], m["step_id"]) for m in reversed(messages)][:2] == [("email", "send_invoice"), ("sms", "sms_invoice")]
    assert httpx.get(f"http://127.0.0.1:{ports['ui']}/", timeout=10).status_code == 200  # the Temporal UI is up
    ui_settings = httpx.get(f"http://127.0.0.1:{ports['ui']}/api/v1/settings", timeout=10).json()
    store = make_engine(f"sqlite:///{tmp_path}/data/dunflow.db")
    assert migrations.current(store) is not None  # dunflow dev migrated the store before starting
    store.dispose()
    assert ui_settings["Codec"]["Endpoint"] == f"http://127.0.0.1:{ports['api']}/codec"  # decodes through dunflow

    client = await Client.connect(f"127.0.0.1:{ports['temporal']}")  # no keys: sees what Temporal stores
    handle = client.get_workflow_handle(workflow_id)
    raw = b"".join(event.SerializeToString() for event in (await handle.fetch_history()).events)
    assert b"binary/encrypted" in raw and b"Anna Jansen" not in raw and b"anna@example.nl" not in raw
    attributes = (await handle.describe()).typed_search_attributes
    assert attributes.get(FLOW_NAME) == "standard"
    assert attributes.get(INVOICE_NUMBER) == "INV-E2E-1"
    assert attributes.get(DEBTOR_ID) == "D-7"
    assert attributes.get(CASE_STATUS) == "active"
    assert attributes.get(CURRENT_STEP)

    paid = api.post(f"/api/cases/{case_id}/payments", json={
        "payment_id": "BANK-2026-0001", "amount_cents": 12_100, "currency": "EUR", "paid_at": f"{today}T12:00:00Z"})
    assert paid.status_code == 202, paid.text

    def case_paid():
        case = api.get(f"/api/cases/{case_id}").json()
        return case if case["state"] and case["state"]["status"] == "paid" and case["status"] == "paid" else None

    case = wait_until(case_paid, 30, "the case to be paid")
    assert case["state"]["outcome"] == "paid" and case["amount_open_cents"] == 0
    assert any(event["kind"] == "payment" for event in case["events"])

    description = await handle.describe()
    assert description.status == WorkflowExecutionStatus.COMPLETED
    assert description.typed_search_attributes.get(CASE_STATUS) == "paid"
    assert description.typed_search_attributes.get(AMOUNT_OPEN_CENTS) == 0

    async def listed_as_paid():
        found = [w.id async for w in client.list_workflows('CaseStatus = "paid" AND FlowName = "standard"')]
        return workflow_id in found

    deadline = time.monotonic() + 15
    while not await listed_as_paid():
        assert time.monotonic() < deadline, "the paid case never showed up in a search on CaseStatus"
        time.sleep(0.5)

    process.send_signal(signal.SIGINT)  # Ctrl-C stops the whole group
    assert process.wait(timeout=30) == 0
    for port in ports.values():
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still in use after Ctrl-C"
