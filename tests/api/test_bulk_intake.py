"""Bulk intake: mixed good and bad rows, a 10,000-row file, and re-imports that start nothing twice."""

from __future__ import annotations

import json
import time
from datetime import date, timedelta

from sqlmodel import Session, func, select
from temporalio.client import WorkflowExecutionStatus
from typer.testing import CliRunner

from dunflow.store import Case

TODAY = date.today()
DUE = TODAY + timedelta(days=14)
HEADER = "invoice_number;amount;currency;issued_on;due_on;debtor_id;debtor_name;email;phone;language;debtor_type\n"


def csv_row(number: str, amount: str = "245,00", currency: str = "EUR", due: str = DUE.isoformat(),
            phone: str = "+31612345678") -> str:
    return f"{number};{amount};{currency};{TODAY.isoformat()};{due};D-{number};Klant {number};k@example.nl;{phone};nl;consumer\n"


def count_cases(api) -> int:
    with Session(api.app.state.engine) as session:
        return session.exec(select(func.count()).select_from(Case)).one()


async def test_good_rows_start_and_bad_rows_are_listed(api):
    body = HEADER + "".join([
        csv_row("B-1"),
        csv_row("B-2", amount="12,345"),             # three decimals
        csv_row("B-3", currency="GLD"),              # unknown currency
        csv_row("B-4", due="2020-01-01"),            # due before issued
        csv_row("B-5", phone="0612345678"),          # not international
        csv_row("B-6", amount="1.234,56"),           # thousands separator: refused, not guessed
        csv_row("B-7", amount="99.95"),
    ])
    response = await api.post("/api/cases/bulk", content=body, headers={"content-type": "text/csv"})
    assert response.status_code == 200, response.text
    summary = response.json()
    assert (summary["rows"], summary["started"], summary["existing"]) == (7, 2, 0)
    reasons = {item["row"]: item["reason"] for item in summary["rejected"]}
    assert sorted(reasons) == [3, 4, 5, 6, 7]
    assert "more than two decimals" in reasons[3]
    assert "unknown currency" in reasons[4]
    assert "before issued_on" in reasons[5]
    assert "international format" in reasons[6]
    assert "not an amount" in reasons[7]

    with Session(api.app.state.engine) as session:
        cases = {c.invoice_number: c for c in session.exec(select(Case))}
    assert set(cases) == {"B-1", "B-7"} and cases["B-7"].amount_open_cents == 9_995
    handle = api.app.state.temporal.get_workflow_handle(cases["B-1"].workflow_id)
    assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING

    again = (await api.post("/api/cases/bulk", content=body, headers={"content-type": "text/csv"})).json()
    assert (again["started"], again["existing"], again["rejected_count"]) == (0, 2, 5)
    assert count_cases(api) == 2


async def test_json_lines_and_a_repeated_invoice_in_one_file(api):
    case = {"debtor": {"id": "D-1", "name": "Jan"}, "invoice": {
        "number": "J-1", "amount_cents": 100, "currency": "EUR", "issued_on": TODAY.isoformat(), "due_on": DUE.isoformat()}}
    lines = [json.dumps(case), json.dumps(case), "{broken", json.dumps(case | {"flow": "nope"} | {
        "invoice": case["invoice"] | {"number": "J-2"}})]
    response = await api.post("/api/cases/bulk", content="\n".join(lines), headers={"content-type": "application/x-ndjson"})
    summary = response.json()
    assert (summary["started"], summary["existing"]) == (1, 1)
    assert [r["row"] for r in summary["rejected"]] == [3, 4]
    assert "not valid JSON" in summary["rejected"][0]["reason"] and "unknown flow" in summary["rejected"][1]["reason"]


async def test_a_file_without_the_needed_columns_is_refused(api):
    response = await api.post("/api/cases/bulk", content="number,total\nX,1\n", headers={"content-type": "text/csv"})
    assert response.status_code == 422
    assert response.json()["problems"] == [{"where": "body", "problem": response.json()["error"]}]
    assert "invoice_number" in response.json()["error"] and "amount_cents (or amount)" in response.json()["error"]


async def test_ten_thousand_rows(api_without_worker):
    api = api_without_worker
    rows = [csv_row(f"T-{n:05d}", amount=f"{10 + n % 500},{n % 100:02d}") for n in range(10_000)]
    rows[1234] = csv_row("T-BAD", amount="veel")
    started = time.monotonic()
    response = await api.post("/api/cases/bulk", content=HEADER + "".join(rows), headers={"content-type": "text/csv"})
    elapsed = time.monotonic() - started
    summary = response.json()
    assert (summary["rows"], summary["started"], summary["rejected_count"]) == (10_000, 9_999, 1)
    assert summary["rejected"][0]["row"] == 1236  # header is row 1, and rows count from there
    assert count_cases(api) == 9_999
    print(f"10,000 rows imported in {elapsed:.1f} s")


def test_the_cli_imports_with_a_summary(settings, tmp_path, monkeypatch, dev_server):
    from dunflow.cli import app as cli
    from dunflow.settings import get_settings

    path = tmp_path / "cases.csv"
    path.write_text(HEADER + csv_row("C-1") + csv_row("C-2", amount="x"))
    monkeypatch.setenv("DUNFLOW_DATABASE_URL", settings.effective_database_url)
    monkeypatch.setenv("DUNFLOW_TEMPORAL_ADDRESS", dev_server.client.service_client.config.target_host)
    monkeypatch.setenv("DUNFLOW_PAYLOAD_KEYS", settings.payload_keys)
    monkeypatch.setenv("DUNFLOW_TASK_QUEUE", "cli-import-test")
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        first = runner.invoke(cli, ["import", str(path)])
        assert first.exit_code == 0, first.output
        assert "2 rows: 1 started, 0 already existing, 1 rejected" in first.stdout
        assert "row 3: amount: 'x' is not an amount" in first.stdout
        second = runner.invoke(cli, ["import", str(path), "--json"])
        assert json.loads(second.stdout)["existing"] == 1
        missing = runner.invoke(cli, ["import", str(tmp_path / "nope.csv")])
        assert missing.exit_code == 2 and "cannot read" in missing.output
    finally:
        get_settings.cache_clear()
