"""Flow drafts, validation and versioned publishing through the API."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from dunflow.apikeys import create_key
from dunflow.bpmn import flow_to_bpmn
from dunflow.flow import load_flow_yaml
from dunflow.flows import publish_shipped_flows
from dunflow.settings import PROJECT_ROOT
from dunflow.templates import TemplateCatalog
from tests.api.test_cases_api import eventually, new_case

STANDARD = (PROJECT_ROOT / "flows" / "standard.yaml").read_text()
MODELER_FILE = Path(__file__).parent.parent / "kernel" / "data" / "modeler_saved.bpmn"
YAML = {"Content-Type": "application/yaml"}
XML = {"Content-Type": "application/xml"}


def standard_with_sms_invoice() -> str:
    """v2 of standard: the invoice goes by SMS first."""
    data = yaml.safe_load(STANDARD)
    data["steps"]["send_invoice"] |= {"channel": "sms", "template": "invoice_sms"}
    data["steps"]["check_opened"] = {"type": "branch", "cases": [
        {"when": {"fact": "debtor_type", "is": "business"}, "next": "wait_pre_due"}], "otherwise": "sms_invoice"}
    return yaml.safe_dump(data, sort_keys=False)


def standard_opened_on_sms() -> str:
    """A broken standard: it branches on `opened` of the SMS step."""
    bpmn = flow_to_bpmn(load_flow_yaml(STANDARD))
    return bpmn.replace('<dunflow:when fact="opened" step="send_invoice" />',
                        '<dunflow:when fact="opened" step="sms_invoice" />')


async def versions_of(api, name: str) -> list[dict]:
    response = await api.get(f"/api/flows/{name}/versions")
    assert response.status_code == 200, response.text
    return response.json()


async def test_list_shows_the_shipped_flows(api):
    response = await api.get("/api/flows")
    assert response.status_code == 200
    flows = {flow["name"]: flow for flow in response.json()}
    assert set(flows) == {"standard", "gentle"}
    assert flows["standard"]["published_version"] == 1
    assert flows["standard"]["draft"] is None
    assert flows["standard"]["title"] == "Standaard incassoflow (consument)"


async def test_save_a_draft_and_publish_it_as_a_new_version_with_who_and_diff(api):
    designer = create_key(api.app.state.engine, "Petra (credit dept)", ["designer", "read"]).key
    auth = {"Authorization": f"Bearer {designer}"}
    saved = await api.put("/api/flows/standard/draft", content=standard_with_sms_invoice(), headers=YAML | auth)
    assert saved.status_code == 200, saved.text
    assert saved.json()["valid"] is True and saved.json()["saved_by"] == "Petra (credit dept)"
    listed = {flow["name"]: flow for flow in (await api.get("/api/flows")).json()}
    assert listed["standard"]["draft"]["format"] == "yaml"
    assert listed["standard"]["published_version"] == 1

    published = await api.post("/api/flows/standard/publish", headers=auth)
    assert published.status_code == 200, published.text
    assert published.json() == {"name": "standard", "version": 2, "created": True}
    history = await versions_of(api, "standard")
    assert [(v["version"], v["published_by"], v["source"]) for v in history] == [
        (1, "flows/standard.yaml", "file"), (2, "Petra (credit dept)", "designer")]
    assert "\n-    channel: email\n" in history[1]["diff"] and "\n+    channel: sms\n" in history[1]["diff"]
    assert "--- v1\n+++ v2\n" in history[1]["diff"]

    again = await api.post("/api/flows/standard/publish", headers=auth)
    assert again.status_code == 409 and again.json()["problems"] == [
        {"where": "draft", "problem": "flow 'standard' has no draft to publish: save one first "
                                      "(PUT /api/flows/standard/draft)"}]
    exported = await api.get("/api/flows/standard/versions/2")
    assert exported.headers["content-type"].startswith("application/yaml")
    assert load_flow_yaml(exported.text).steps["send_invoice"].channel == "sms"


async def test_an_invalid_draft_is_kept_but_never_published(api):
    before = await versions_of(api, "standard")
    saved = await api.put("/api/flows/standard/draft", content=standard_opened_on_sms(), headers=XML)
    assert saved.status_code == 422
    body = saved.json()
    assert body["draft_saved"] is True
    assert body["errors"] == [{"step": "check_opened", "message": "only an email can be opened; 'sms_invoice' is sms"}]
    assert body["problems"] == [{"where": "steps.check_opened.cases[0]",
                                 "problem": "only an email can be opened; 'sms_invoice' is sms"}]
    draft = (await api.get("/api/flows/standard/draft")).json()
    assert draft["draft"] is True and draft["valid"] is False and draft["source"] == standard_opened_on_sms()

    published = await api.post("/api/flows/standard/publish")
    assert published.status_code == 422
    assert published.json()["errors"][0]["step"] == "check_opened"
    assert await versions_of(api, "standard") == before


async def test_unsupported_bpmn_is_rejected_naming_the_element(api):
    bpmn = flow_to_bpmn(load_flow_yaml(STANDARD)).replace(
        "<bpmn:startEvent", '<bpmn:subProcess id="Sub_1" /><bpmn:startEvent')
    response = await api.post("/api/flows/validate", content=bpmn, headers=XML)
    assert response.status_code == 200
    assert response.json()["valid"] is False
    assert response.json()["errors"] == [{"step": "Sub_1", "message": "subProcess is not supported; use tasks, timer "
                                          "catch events, exclusive gateways, end events and sequence flows"}]


async def test_wrong_content_type_and_scopes(api):
    response = await api.put("/api/flows/standard/draft", content=STANDARD, headers={"Content-Type": "text/plain"})
    assert response.status_code == 415
    assert response.json()["problems"][0]["where"] == "content-type"
    reader = create_key(api.app.state.engine, "reader", ["read"]).key
    response = await api.put("/api/flows/standard/draft", content=STANDARD,
                             headers=YAML | {"Authorization": f"Bearer {reader}"})
    assert response.status_code == 403 and "'designer'" in response.json()["error"]
    other_name = STANDARD.replace("name: standard", "name: strict")
    response = await api.put("/api/flows/standard/draft", content=other_name, headers=YAML)
    assert response.json()["errors"] == [{"step": "name", "message": "the flow is named 'strict', not 'standard'"}]


async def test_a_new_flow_from_a_modeler_file_runs_cases(api):
    created = await api.post("/api/flows", content=MODELER_FILE.read_text(), headers=XML)
    assert created.status_code == 201, created.text
    assert (await api.post("/api/flows", content=MODELER_FILE.read_text(), headers=XML)).status_code == 409
    assert (await api.post("/api/flows/short_reminders/publish")).json()["version"] == 1
    case = await api.post("/api/cases", json=new_case("F-SHORT-1") | {"flow": "short_reminders"})
    assert case.status_code == 201, case.text

    async def invoice_sent():
        messages = (await api.get(f"/api/cases/{case.json()['case_id']}")).json()["messages"]
        return [(m["step_id"], m["channel"]) for m in messages]
    assert await eventually(invoice_sent) == [("invoice", "email")]
    exported = await api.get("/api/flows/short_reminders/versions/1", params={"format": "bpmn"})
    assert exported.text == MODELER_FILE.read_text()  # the designer's layout is kept


async def test_running_cases_keep_their_version_and_new_cases_take_the_latest(api):
    first = (await api.post("/api/cases", json=new_case("F-V1"))).json()
    assert first["flow_version"] == 1
    await api.put("/api/flows/standard/draft", content=standard_with_sms_invoice(), headers=YAML)
    assert (await api.post("/api/flows/standard/publish")).json()["version"] == 2
    second = (await api.post("/api/cases", json=new_case("F-V2"))).json()
    assert second["flow_version"] == 2

    async def first_message(case_id):
        messages = (await api.get(f"/api/cases/{case_id}")).json()["messages"]
        return messages and messages[0]["channel"]
    assert await eventually(lambda: first_message(first["case_id"])) == "email"
    assert await eventually(lambda: first_message(second["case_id"])) == "sms"
    counts = {flow["name"]: flow["running_cases"] for flow in (await api.get("/api/flows")).json()}
    assert counts["standard"] == {"1": 1, "2": 1}


async def test_start_up_does_not_overwrite_a_designer_version(api):
    await api.put("/api/flows/gentle/draft", content=(PROJECT_ROOT / "flows" / "gentle.yaml").read_text()
                  .replace("days: 7", "days: 5"), headers=YAML)
    assert (await api.post("/api/flows/gentle/publish")).json()["version"] == 2
    settings = api.app.state.settings
    published = publish_shipped_flows(api.app.state.engine, settings.flows_dir, TemplateCatalog(settings.templates_dir))
    assert {flow.name: flow.version for flow in published}["gentle"] == 2
    assert len(await versions_of(api, "gentle")) == 2


async def test_simulate_a_draft_before_publishing(api):
    assert "presses_1" in (await api.get("/api/flows/scenarios")).json()
    await api.put("/api/flows/standard/draft", content=standard_with_sms_invoice(), headers=YAML)
    response = await api.post("/api/flows/standard/simulate", json={"scenario": "pays_after_sms"})
    assert response.status_code == 200, response.text
    timeline = response.json()
    assert timeline["source"] == "draft"
    # the simulation starts on a Monday at 09:00; a holiday Monday would hold the SMS a day
    kinds = [e["kind"] for day in timeline["days"] for e in day["events"] if e["kind"] != "send_deferred"]
    assert kinds == ["started", "sms_sent", "debtor_pay", "payment", "ended"]
    assert timeline["outcome"] == "paid"
    published = await api.post("/api/flows/standard/simulate", json={"scenario": "pays_after_sms", "version": 1})
    assert [e["kind"] for e in published.json()["days"][0]["events"]] == ["started", "email_sent"]
    assert published.json()["source"] == "version 1"

    unknown = await api.post("/api/flows/standard/simulate", json={"scenario": "wins_the_lottery"})
    assert unknown.status_code == 422 and unknown.json()["problems"][0]["where"] == "scenario"
    await api.put("/api/flows/standard/draft", content=standard_opened_on_sms(), headers=XML)
    broken = await api.post("/api/flows/standard/simulate", json={"scenario": "never_opens"})
    assert broken.status_code == 422 and broken.json()["errors"][0]["step"] == "check_opened"


@pytest.fixture
def days_of_a_second(settings):
    settings.day_seconds = 1.5  # the first wait (2 days) lasts 3 s: time to move a case inside it


async def test_an_operator_moves_a_running_case_to_the_new_version(days_of_a_second, api):
    moved, stays = [(await api.post("/api/cases", json=new_case(number))).json()["case_id"] for number in ("F-M1", "F-M2")]
    data = yaml.safe_load(STANDARD)
    data["steps"]["sms_invoice"] |= {"channel": "email", "template": "reminder_1"}  # v2: no SMS at all
    await api.put("/api/flows/standard/draft", content=yaml.safe_dump(data, sort_keys=False), headers=YAML)
    assert (await api.post("/api/flows/standard/publish")).json()["version"] == 2

    async def waiting(case_id):
        return (await api.get(f"/api/cases/{case_id}")).json()["current_step"] == "wait_for_open"
    await eventually(lambda: waiting(moved))
    response = await api.post("/api/flows/standard/move",
                              json={"from_version": 1, "to_version": 2, "case_ids": [moved, "no-such-case"]})
    assert response.status_code == 200, response.text
    assert response.json()["requested"] == [moved]
    assert response.json()["skipped"] == [{"case_id": "no-such-case", "reason": "not an open case on version 1"}]

    async def sent(case_id):
        messages = (await api.get(f"/api/cases/{case_id}")).json()["messages"]
        return [(m["step_id"], m["channel"]) for m in messages if m["step_id"] == "sms_invoice"]
    assert await eventually(lambda: sent(moved), seconds=20) == [("sms_invoice", "email")]
    assert await eventually(lambda: sent(stays), seconds=20) == [("sms_invoice", "sms")]
    case = (await api.get(f"/api/cases/{moved}")).json()
    assert case["flow_version"] == 2 and case["state"]["flow_version"] == 2
    assert [e["kind"] for e in case["events"] if e["kind"].startswith("move")] == ["move_requested", "moved"]
    assert (await api.get(f"/api/cases/{stays}")).json()["flow_version"] == 1
    log = (await api.get("/api/flows/standard/moves")).json()
    assert [(m["case_id"], m["from_version"], m["to_version"], m["moved_by"], m["note"]) for m in log] == [
        (moved, 1, 2, "tests", "requested")]
    same = await api.post("/api/flows/standard/move", json={"from_version": 2, "to_version": 2})
    assert same.status_code == 422 and same.json()["problems"] == [
        {"where": "to_version", "problem": "from_version and to_version are the same"}]


async def test_template_preview_for_the_side_panel(api):
    english = await api.get("/api/flows/preview/email/invoice", params={"language": "en"})
    assert english.status_code == 200, english.text
    assert "F-2026-001" in english.json()["subject"] + english.json()["body"]
    dutch = await api.get("/api/flows/preview/sms/reminder_sms")
    assert dutch.json()["subject"] == "" and "€ 245,00" in dutch.json()["body"]
    missing = await api.get("/api/flows/preview/sms/nope")
    assert missing.status_code == 404
    assert missing.json()["problems"] == [{"where": "template", "problem": "template sms/nope.nl.j2 does not exist"}]
