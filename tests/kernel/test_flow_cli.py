"""`dunflow flow validate` and `dunflow flow publish` from the shell, for flows kept in git."""

from __future__ import annotations

import pytest
from sqlmodel import Session
from typer.testing import CliRunner

from dunflow.bpmn import flow_to_bpmn
from dunflow.cli import app as cli
from dunflow.flow import load_flow_yaml
from dunflow.flows import latest_flow, version_history
from dunflow.settings import PROJECT_ROOT, get_settings

STANDARD = (PROJECT_ROOT / "flows" / "standard.yaml").read_text()


@pytest.fixture
def runner(settings, engine, monkeypatch):
    monkeypatch.setenv("DUNFLOW_DATABASE_URL", settings.effective_database_url)
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def test_validate_a_bpmn_file_and_see_the_element(runner, tmp_path):
    good = tmp_path / "standard.bpmn"
    good.write_text(flow_to_bpmn(load_flow_yaml(STANDARD)))
    broken = tmp_path / "broken.bpmn"
    broken.write_text(good.read_text().replace('template="reminder_sms"', 'template="nope"'))
    result = runner.invoke(cli, ["flow", "validate", str(good), str(broken)])
    assert result.exit_code == 1
    assert f"{good}: ok (standard, 24 steps)" in result.stdout
    assert f"{broken}: steps.sms_reminder_2: template sms/nope does not exist for language(s) nl, en" in result.stderr


def test_publish_a_file_records_who_and_refuses_an_invalid_one(runner, tmp_path, engine):
    changed = tmp_path / "standard.yaml"
    changed.write_text(STANDARD.replace("days: 7", "days: 8"))
    result = runner.invoke(cli, ["flow", "publish", str(changed), "--by", "release 2026-11"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"{changed}: standard published as version 2"
    again = runner.invoke(cli, ["flow", "publish", str(changed)])
    assert again.stdout.strip() == f"{changed}: standard unchanged, still version 2"

    broken = tmp_path / "broken.yaml"
    broken.write_text(STANDARD.replace("next: reminder_2", "next: reminder_two"))
    refused = runner.invoke(cli, ["flow", "publish", str(broken)])
    assert refused.exit_code == 2
    assert "steps.wait_reminder_2: leads to unknown step 'reminder_two'" in refused.stderr
    assert "nothing was published" in refused.stderr
    unknown = runner.invoke(cli, ["flow", "publish", str(tmp_path / "flow.txt")])
    assert unknown.exit_code == 2 and "name it .yaml, .bpmn or .json" in unknown.stderr
    with Session(engine) as session:
        assert latest_flow(session, "standard").definition.steps["wait_plan_answer"].days == 8
        assert [v["published_by"] for v in version_history(session, "standard")] == ["flows/standard.yaml", "release 2026-11"]
