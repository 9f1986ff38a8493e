"""BPMN ⇄ flow model: shipped flows survive the round trip, modeler files compile, and anything
outside the subset is rejected naming the element."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from dunflow.bpmn import BPMN, BPMNDI, DC, bpmn_to_flow, flow_to_bpmn
from dunflow.flow import FlowInvalid, dump_flow_yaml, load_flow_yaml, parse_flow
from dunflow.settings import PROJECT_ROOT
from dunflow.templates import TemplateCatalog

TEMPLATES = TemplateCatalog(PROJECT_ROOT / "templates")
FLOWS = sorted((PROJECT_ROOT / "flows").glob("*.yaml"))
DATA = Path(__file__).parent / "data"


def standard_bpmn() -> str:
    return flow_to_bpmn(load_flow_yaml((PROJECT_ROOT / "flows" / "standard.yaml").read_text()))


def problems_of(xml: str) -> list[str]:
    with pytest.raises(FlowInvalid) as raised:
        bpmn_to_flow(xml, TEMPLATES.exists)
    return [str(problem) for problem in raised.value.problems]


@pytest.mark.parametrize("path", FLOWS, ids=lambda path: Path(path).stem)
def test_every_shipped_flow_survives_yaml_to_bpmn_to_yaml(path):
    flow = load_flow_yaml(path.read_text(), TEMPLATES.exists)
    back = bpmn_to_flow(flow_to_bpmn(flow), TEMPLATES.exists)
    assert back == flow
    assert dump_flow_yaml(back) == dump_flow_yaml(flow)
    assert list(back.steps) == list(flow.steps)


@pytest.mark.parametrize("path", FLOWS, ids=lambda path: Path(path).stem)
def test_the_generated_diagram_draws_every_element_once_without_overlap(path):
    flow = load_flow_yaml(path.read_text())
    root = ET.fromstring(flow_to_bpmn(flow))
    process = root.find(f"{{{BPMN}}}process")
    element_ids = {child.get("id") for child in process if child.get("id")}
    shapes = root.findall(f".//{{{BPMNDI}}}BPMNShape")
    edges = root.findall(f".//{{{BPMNDI}}}BPMNEdge")
    drawn = [shape.get("bpmnElement") for shape in shapes + edges]
    assert sorted(drawn) == sorted(element_ids)
    assert set(flow.steps) < element_ids
    boxes = [tuple(int(shape.find(f"{{{DC}}}Bounds").get(k)) for k in ("x", "y", "width", "height"))
             for shape in shapes]
    for i, (x, y, w, h) in enumerate(boxes):
        for (x2, y2, w2, h2) in boxes[i + 1:]:
            assert x + w <= x2 or x2 + w2 <= x or y + h <= y2 or y2 + h2 <= y, "shapes overlap"
    for edge in edges:
        assert len(edge.findall("{http://www.omg.org/spec/DD/20100524/DI}waypoint")) >= 2


def test_a_file_saved_by_a_modeler_compiles():
    flow = bpmn_to_flow((DATA / "modeler_saved.bpmn").read_text(), TEMPLATES.exists)
    assert flow.name == "short_reminders" and flow.title == "Short reminders"
    assert flow.start == "invoice"
    assert flow.steps["two_days"].days == 2  # from the plain BPMN timer duration
    assert flow.steps["until_overdue"].until.offset_days == 1
    branch = flow.steps["opened"]
    assert [(case.when.fact, case.when.step, case.next) for case in branch.cases] == [("opened", "invoice", "until_overdue")]
    assert branch.otherwise == "sms"
    assert flow.steps["to_a_person"].reason == "Not paid after one reminder"
    assert flow.steps["to_a_person"].next is None
    assert flow.signals.broken_promise.step == "reminder"


def test_unsupported_elements_are_named():
    xml = standard_bpmn().replace(
        '<bpmn:exclusiveGateway id="check_opened"', '<bpmn:parallelGateway id="check_opened"'
    ).replace("</bpmn:exclusiveGateway>", "</bpmn:parallelGateway>", 1)
    assert problems_of(xml)[0] == (
        "check_opened: parallelGateway is not supported; use tasks, timer catch events, exclusive gateways, "
        "end events and sequence flows")


def test_boundary_events_and_message_events_are_rejected():
    xml = standard_bpmn().replace(
        "<bpmn:startEvent",
        '<bpmn:boundaryEvent id="Boundary_1" attachedToRef="robo_call" />'
        '<bpmn:intermediateCatchEvent id="Catch_1"><bpmn:messageEventDefinition id="Msg_1" /></bpmn:intermediateCatchEvent>'
        "<bpmn:startEvent")
    problems = problems_of(xml)
    assert "Boundary_1: boundaryEvent is not supported; use tasks, timer catch events, exclusive gateways, " \
           "end events and sequence flows" in problems
    assert "Catch_1: messageEventDefinition is not supported here; use tasks, timer catch events, exclusive " \
           "gateways, end events and sequence flows" in problems
    assert "Catch_1: an intermediate event must be a timer (a wait); message or signal events are not supported" in problems


def test_a_task_without_dunflow_properties():
    xml = standard_bpmn().replace('<dunflow:step type="send" channel="sms" template="invoice_sms" />', "")
    assert problems_of(xml) == ["sms_invoice: a task needs dunflow step properties (type send, offer_plan, escalate, ...)"]


def test_a_task_with_two_outgoing_flows():
    xml = standard_bpmn().replace(
        '<bpmn:sequenceFlow id="Flow_reminder_1_wait_reminder_2"',
        '<bpmn:sequenceFlow id="Extra_1" sourceRef="reminder_1" targetRef="final_notice" />'
        '<bpmn:sequenceFlow id="Flow_reminder_1_wait_reminder_2"')
    assert problems_of(xml) == ["reminder_1: 2 outgoing sequence flows; only an exclusive gateway may branch"]


def test_a_gateway_without_a_default_flow():
    xml = standard_bpmn().replace(' default="Flow_check_opened_sms_invoice"', "")
    xml = xml.replace('<bpmn:sequenceFlow id="Flow_check_opened_wait_pre_due" name="send_invoice opened" '
                      'sourceRef="check_opened" targetRef="wait_pre_due">',
                      '<bpmn:sequenceFlow id="Flow_check_opened_wait_pre_due" sourceRef="check_opened" '
                      'targetRef="wait_pre_due"><bpmn:documentation>no condition</bpmn:documentation>')
    xml = re.sub(r'<dunflow:when fact="opened" step="send_invoice" />', "", xml)
    assert problems_of(xml) == [
        "check_opened: a gateway needs exactly one default flow (otherwise), found 2; every other outgoing flow "
        "needs a dunflow:when condition"]


def test_a_wrong_step_type_for_the_element():
    xml = standard_bpmn().replace('<dunflow:step type="end" outcome="handed_over" />',
                                  '<dunflow:step type="send" channel="sms" template="x" />')
    assert problems_of(xml) == ["handed_over: dunflow step type 'send' does not fit a endEvent; use end"]


def test_condition_expressions_and_flows_to_nowhere():
    xml = standard_bpmn().replace(
        '<bpmn:sequenceFlow id="Flow_Start_send_invoice"',
        '<bpmn:sequenceFlow id="Dangling" sourceRef="reminder_2" targetRef="Gone_1" />'
        '<bpmn:sequenceFlow id="Flow_Start_send_invoice"')
    xml = xml.replace('targetRef="wait_for_open" />',
                      'targetRef="wait_for_open"><bpmn:conditionExpression>${x}</bpmn:conditionExpression></bpmn:sequenceFlow>')
    problems = problems_of(xml)
    assert "Dangling: targetRef 'Gone_1' is not a task, event or gateway of this process" in problems
    assert "Flow_send_invoice_wait_for_open: condition expressions are not supported: put a dunflow:when " \
           "condition on the flow" in problems


def test_flow_model_problems_name_the_element():
    xml = standard_bpmn().replace('template="reminder_sms"', 'template="no_such_sms"')
    xml = xml.replace('<dunflow:when fact="opened" step="send_invoice" />', '<dunflow:when fact="opened" step="sms_invoice" />')
    assert problems_of(xml) == [
        "steps.check_opened.cases[0]: only an email can be opened; 'sms_invoice' is sms",
        "steps.sms_reminder_2: template sms/no_such_sms does not exist for language(s) nl, en",
    ]


def test_not_bpmn_and_hostile_xml():
    assert problems_of("<flow/>") == ["xml: not a BPMN 2.0 document (root is flow)"]
    assert problems_of("<bpmn:definitions")[0].startswith("xml: not well-formed XML")
    bomb = ('<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>'
            '<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL">&b;</definitions>')
    assert problems_of(bomb)[0].startswith("xml: refused")


def test_on_failure_is_a_marked_flow_and_survives_the_round_trip():
    data = yaml.safe_load((PROJECT_ROOT / "flows" / "standard.yaml").read_text())
    data["steps"]["sms_reminder_2"]["on_failure"] = "escalate_callback"
    flow = parse_flow(data, TEMPLATES.exists)
    xml = flow_to_bpmn(flow)
    assert ('<bpmn:sequenceFlow id="Flow_sms_reminder_2_escalate_callback" sourceRef="sms_reminder_2" '
            'targetRef="escalate_callback" name="on failure">') in xml
    assert "<dunflow:onFailure />" in xml
    assert bpmn_to_flow(xml, TEMPLATES.exists) == flow


def test_on_failure_only_leaves_a_send():
    xml = standard_bpmn().replace(
        '<bpmn:sequenceFlow id="Flow_reminder_1_wait_reminder_2"',
        '<bpmn:sequenceFlow id="Extra_1" sourceRef="wait_past_due" targetRef="final_notice"><bpmn:extensionElements>'
        '<dunflow:onFailure /></bpmn:extensionElements></bpmn:sequenceFlow>'
        '<bpmn:sequenceFlow id="Flow_reminder_1_wait_reminder_2"')
    assert problems_of(xml) == ["wait_past_due: only a send has one `on failure` flow"]
