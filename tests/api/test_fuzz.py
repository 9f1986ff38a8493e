"""API fuzzing: requests generated from the OpenAPI schema of every route, against the API and a
worker running as their own processes. No request may get a 5xx, and a request that is refused
(4xx) may not have written anything."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as fuzz_settings
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from dunflow.apikeys import create_key
from dunflow.flows import publish_shipped_flows
from dunflow.store import (
    ApiKey,
    Case,
    ChannelEventRecord,
    Debtor,
    Invoice,
    Payment,
    PendingSignal,
    Subscriber,
    create_schema,
    make_engine,
)
from dunflow.templates import TemplateCatalog
from tests.e2e.test_dev_stack import DUNFLOW, free_port, wait_until

WRITTEN_BY_REQUESTS = (ApiKey, Case, ChannelEventRecord, Debtor, Invoice, Payment, PendingSignal, Subscriber)


@dataclass
class LiveApi:
    base_url: str
    key: str
    engine: Engine
    case_id: str
    log: Path

    def last_error(self) -> str:
        """The end of the last traceback the API or the worker logged, to say what went wrong."""
        text = self.log.read_text(errors="replace")
        start = text.rfind("Traceback")
        return text[start:][-3000:] if start >= 0 else "(nothing logged)"

    def snapshot(self) -> dict:
        """What a request could have written: row counts, and the known case's standing."""
        with Session(self.engine) as session:
            counts = {table.__name__: session.exec(select(func.count()).select_from(table)).one()
                      for table in WRITTEN_BY_REQUESTS}
            return counts | {"payments_of_case": sorted(session.exec(
                select(Payment.payment_id).where(Payment.case_id == self.case_id)))}


@pytest.fixture(scope="module")
def live_api(dev_server, tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz")
    database_url = f"sqlite:///{folder}/store.db"
    engine = make_engine(database_url)
    create_schema(engine)
    publish_shipped_flows(engine, *_shipped(folder))
    key = create_key(engine, "fuzz", ["admin"]).key
    port = free_port()
    env = os.environ | {
        "DUNFLOW_DATA_DIR": str(folder), "DUNFLOW_DATABASE_URL": database_url, "DUNFLOW_API_PORT": str(port),
        "DUNFLOW_TEMPORAL_ADDRESS": dev_server.client.service_client.config.target_host,
        "DUNFLOW_TASK_QUEUE": "fuzz", "DUNFLOW_DAY_SECONDS": "3600",  # nothing moves on by itself
    }
    log = open(folder / "processes.log", "w")
    processes = [subprocess.Popen([DUNFLOW, part], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=folder)
                 for part in ("worker", "api")]
    base_url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as http:
            wait_until(lambda: http.get("/openapi.json").status_code == 200, 60, "the API to start")
            opened = http.post("/api/cases", json=_a_case())
            assert opened.status_code == 201, opened.text
        yield LiveApi(base_url, key, engine, opened.json()["case_id"], folder / "processes.log")
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)
        log.close()
        engine.dispose()


def _shipped(folder):
    from dunflow.settings import Settings

    settings = Settings(_env_file=None, data_dir=folder)
    return settings.flows_dir, TemplateCatalog(settings.templates_dir)


def _a_case() -> dict:
    today = date.today()
    return {"debtor": {"id": "D-FUZZ", "name": "Fuzz Test", "email": "fuzz@example.nl", "phone": "+31612345678"},
            "invoice": {"number": "FUZZ-1", "amount_cents": 24_500, "currency": "EUR",
                        "issued_on": today.isoformat(), "due_on": (today + timedelta(days=14)).isoformat()}}


def test_no_request_gets_a_5xx_or_writes_when_refused(live_api):
    schema = schemathesis.openapi.from_url(f"{live_api.base_url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20, "the schema lost its routes"
    failures = []
    for operation in operations:
        try:
            _fuzz(operation, live_api)
        except AssertionError as error:
            failures.append(f"{operation.method.upper()} {operation.path}: {error}")
    assert not failures, "\n".join(failures) + "\n\nlast error logged:\n" + live_api.last_error()


def _fuzz(operation, live_api: LiveApi) -> None:
    @given(case=operation.as_strategy())
    @fuzz_settings(max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def check(case) -> None:
        if "case_id" in (case.path_parameters or {}):
            case.path_parameters["case_id"] = live_api.case_id  # aim at a real case, not only at 404s
        before = live_api.snapshot()
        response = case.call(headers={"Authorization": f"Bearer {live_api.key}"}, timeout=30)
        where = f"{response.status_code} for {case.method} {case.formatted_path}: {response.text[:300]}"
        assert response.status_code < 500, where
        if response.status_code >= 400:
            assert live_api.snapshot() == before, f"a refused request wrote to the store: {where}"

    check()
