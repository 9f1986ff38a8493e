"""Bank statements through the API and the CLI: matched credits pay their cases, the rest is
listed with a reason, a second import changes nothing, and bad or hostile files get a 422."""

from __future__ import annotations

import asyncio
import json

from sqlmodel import Session, func, select
from typer.testing import CliRunner

from dunflow.cli import app as cli
from dunflow.store import Payment
from tests.api.test_cases_api import eventually, new_case, state_of
from tests.kernel.test_statements import BILLION_LAUGHS, camt053, camt_entry, mt940_file

XML = {"content-type": "application/xml"}


async def open_case(api, number: str) -> str:
    response = await api.post("/api/cases", json=new_case(number))
    assert response.status_code == 201, response.text
    return response.json()["case_id"]


async def ends_paid(api, case_id: str) -> None:
    async def paid():
        return (await state_of(api, case_id))["status"] == "paid"

    await eventually(paid)


def payments_stored(api) -> int:
    with Session(api.app.state.engine) as session:
        return session.exec(select(func.count()).select_from(Payment)).one()


def sample_camt(number: str) -> bytes:
    return camt053(
        camt_entry("245.00", remittance=f"Betaling factuur {number}", ref="20261201-0001",
                   end_to_end="E2E-4711"),
        camt_entry("99.95", remittance="Factuur X-0000-999", ref="20261201-0002"),
        camt_entry("1500.00", side="DBIT", remittance="Huur december", ref="20261201-0003"),
    )


async def test_a_camt053_statement_pays_the_matched_case_and_lists_the_rest(api):
    case_id = await open_case(api, "F-2026-101")
    response = await api.post("/api/statements", content=sample_camt("F-2026-101"), headers=XML)
    assert response.status_code == 200, response.text
    summary = response.json()
    assert (summary["format"], summary["lines"], summary["skipped_debits"]) == ("camt.053", 3, 1)
    (paid,) = summary["paid"]
    assert (paid["line_no"], paid["case_id"], paid["invoice_number"], paid["amount_cents"], paid["status"]) == (
        1, case_id, "F-2026-101", 24_500, "accepted")
    (unmatched,) = summary["unmatched"]
    assert (unmatched["line_no"], unmatched["amount_cents"], unmatched["currency"]) == (2, 9_995, "EUR")
    assert unmatched["remittance"] == "Factuur X-0000-999"
    assert "no invoice number of an open case" in unmatched["reason"]
    await ends_paid(api, case_id)


async def test_importing_the_same_statement_again_changes_nothing(api):
    case_id = await open_case(api, "F-2026-102")
    data = sample_camt("F-2026-102")
    first = (await api.post("/api/statements", content=data, headers=XML)).json()
    await ends_paid(api, case_id)
    stored = payments_stored(api)
    again = await api.post("/api/statements", content=data, headers=XML)
    assert again.status_code == 200
    body = again.json()
    assert body["paid"] == [] and [line["status"] for line in body["duplicates"]] == ["duplicate"]
    assert body["duplicates"][0]["payment_id"] == first["paid"][0]["payment_id"]
    assert [line["line_no"] for line in body["unmatched"]] == [2]
    assert payments_stored(api) == stored
    state = await state_of(api, case_id)
    assert (state["status"], state["amount_open_cents"]) == ("paid", 0)


async def test_an_mt940_statement_pays_the_matched_case(api):
    case_id = await open_case(api, "F-2026-103")
    data = mt940_file(
        ("C245,00", "BANKREF0001", "/TRTP/SEPA OVERBOEKING/NAME/J. de Vries/REMI/F-2026-103/EREF/NOTPROVIDED"),
        ("C12,50", "BANKREF0002", "/NAME/Onbekend/REMI/Gift/"),
        ("D10,00", "BANKREF0003", "Bankkosten"),
    )
    response = await api.post("/api/statements", content=data, headers={"content-type": "text/plain"})
    assert response.status_code == 200, response.text
    summary = response.json()
    assert (summary["format"], summary["skipped_debits"]) == ("mt940", 1)
    assert [(line["invoice_number"], line["amount_cents"]) for line in summary["paid"]] == [("F-2026-103", 24_500)]
    (unmatched,) = summary["unmatched"]
    assert (unmatched["line_no"], unmatched["amount_cents"], unmatched["counterparty"]) == (2, 1_250, "Onbekend")
    assert unmatched["reason"]
    await ends_paid(api, case_id)


async def test_a_payment_in_another_currency_is_left_to_an_operator(api):
    await open_case(api, "F-2026-104")
    data = camt053(camt_entry("245.00", remittance="F-2026-104", ref="R-USD-1", currency="USD"))
    (unmatched,) = (await api.post("/api/statements", content=data, headers=XML)).json()["unmatched"]
    assert "is in EUR, the payment in USD" in unmatched["reason"]


async def test_malformed_and_hostile_files_get_422_on_the_body(api):
    for data in (b"<Document><BkToCstmrStmt><Stmt>", BILLION_LAUGHS, b"just some text"):
        response = await api.post("/api/statements", content=data, headers=XML)
        assert response.status_code == 422, response.text
        assert response.json()["problems"][0]["where"] == "body"
    bomb = await api.post("/api/statements", content=BILLION_LAUGHS, headers=XML)
    assert "refused" in bomb.json()["error"]


async def test_too_large_or_wrong_kind_of_body_is_refused(api):
    huge = await api.post("/api/statements", content=b"<" + b" " * (20 * 1024 * 1024), headers=XML)
    assert huge.status_code == 413 and "20 MB" in huge.json()["error"]
    as_json = await api.post("/api/statements", json={"x": 1})
    assert as_json.status_code == 415


async def test_the_cli_imports_a_statement(api, settings, tmp_path, monkeypatch):
    case_id = await open_case(api, "F-2026-105")
    statement = tmp_path / "statement.xml"
    statement.write_bytes(sample_camt("F-2026-105"))
    monkeypatch.setenv("DUNFLOW_DATABASE_URL", settings.effective_database_url)
    monkeypatch.setenv("DUNFLOW_TEMPORAL_ADDRESS", settings.temporal_address)
    monkeypatch.setenv("DUNFLOW_PAYLOAD_KEYS", settings.payload_keys)
    from dunflow.settings import get_settings

    get_settings.cache_clear()
    runner = CliRunner()

    def run(*args: str):  # the command runs its own event loop: keep it off the test's
        return asyncio.to_thread(runner.invoke, cli, ["import-statement", *args])

    try:
        done = await run(str(statement))
        assert done.exit_code == 0, done.output
        assert "paid 1" in done.stdout and "unmatched 1" in done.stdout
        assert "line 2: 99.95 EUR 'Factuur X-0000-999'" in done.stdout
        await ends_paid(api, case_id)
        again = json.loads((await run(str(statement), "--json")).stdout)
        assert (len(again["paid"]), len(again["duplicates"])) == (0, 1)
        missing = await run(str(tmp_path / "nope.xml"))
        assert missing.exit_code == 2 and "cannot read" in missing.output and "Traceback" not in missing.output
        garbage = tmp_path / "garbage.txt"
        garbage.write_text("not a statement")
        bad = await run(str(garbage))
        assert bad.exit_code == 2 and "CAMT.053" in bad.output
    finally:
        get_settings.cache_clear()
