"""`dunflow costs`: the scale for a principal, as text and as JSON; bad amounts exit 2."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from dunflow.cli import app as cli
from dunflow.settings import get_settings


@pytest.fixture(autouse=True)
def fresh_settings(monkeypatch):
    monkeypatch.delenv("DUNFLOW_CREDITOR_RECLAIMS_VAT", raising=False)
    monkeypatch.delenv("DUNFLOW_BUSINESS_COSTS_PER_MILLE", raising=False)
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


def test_json_breakdown_for_3000_euros():
    result = CliRunner().invoke(cli, ["costs", "3000.00", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (data["principal_cents"], data["costs_cents"], data["vat_cents"], data["total_cents"]) == (300_000, 42_500, 0, 42_500)
    assert [band["cents"] for band in data["bands"]] == [37_500, 5_000, 0, 0, 0]


def test_text_breakdown_lists_the_bands_used():
    result = CliRunner().invoke(cli, ["costs", "12000"])
    assert result.exit_code == 0, result.output
    assert "15% of      2500.00 (0.00 - 2500.00) =    375.00" in result.output
    assert "1% of      2000.00 (10000.00 - 200000.00) =     20.00" in result.output
    assert result.output.strip().endswith("costs 895.00, VAT 0.00, total 895.00")


def test_vat_and_agreed_business_percentage_come_from_the_settings(fresh_settings):
    fresh_settings.setenv("DUNFLOW_CREDITOR_RECLAIMS_VAT", "false")
    fresh_settings.setenv("DUNFLOW_BUSINESS_COSTS_PER_MILLE", "100")
    data = json.loads(CliRunner().invoke(cli, ["costs", "3000", "--business", "--json"]).output)
    assert (data["debtor_type"], data["rule"], data["costs_cents"], data["vat_cents"]) == ("business", "agreed", 30_000, 6_300)


@pytest.mark.parametrize("amount", ["3.000,00", "abc", "0"])
def test_a_bad_amount_says_how_to_write_it(amount):
    result = CliRunner().invoke(cli, ["costs", amount])
    assert result.exit_code == 2
    assert "e.g. 3000.00" in result.output
    assert "Traceback" not in result.output
