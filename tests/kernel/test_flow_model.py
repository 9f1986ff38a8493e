"""The flow validator: every invalid definition is rejected with the step and the problem named."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from dunflow.flow import FlowInvalid, dump_flow_yaml, load_flow_yaml, parse_flow
from dunflow.settings import PROJECT_ROOT
from dunflow.templates import TemplateCatalog

TEMPLATES = TemplateCatalog(PROJECT_ROOT / "templates")
FLOWS = sorted((PROJECT_ROOT / "flows").glob("*.yaml"))


def standard() -> dict:
    return yaml.safe_load((PROJECT_ROOT / "flows" / "standard.yaml").read_text())


def problems_of(data: dict, templates=None) -> list[str]:
    with pytest.raises(FlowInvalid) as raised:
        parse_flow(data, templates)
    return [str(problem) for problem in raised.value.problems]


@pytest.mark.parametrize("path", FLOWS, ids=lambda path: Path(path).stem)
def test_shipped_flows_are_valid_and_survive_a_yaml_round_trip(path):
    flow = load_flow_yaml(path.read_text(), TEMPLATES.exists)
    assert load_flow_yaml(dump_flow_yaml(flow), TEMPLATES.exists) == flow


def test_unknown_step_reference():
    data = standard()
    data["steps"]["reminder_1"]["next"] = "reminder_one"
    assert problems_of(data) == ["steps.reminder_1: leads to unknown step 'reminder_one'"]


def test_unknown_step_in_a_signal_route_and_in_a_condition():
    data = standard()
    data["signals"]["broken_promise"]["step"] = "nowhere"
    data["steps"]["check_opened"]["cases"][0]["when"]["step"] = "send_invoce"
    assert problems_of(data) == [
        "steps.check_opened.cases[0]: condition refers to unknown step 'send_invoce'",
        "signals.broken_promise: goes to unknown step 'nowhere'",
    ]


def test_unreachable_step():
    data = standard()
    data["steps"]["forgotten"] = {"type": "end", "outcome": "paid"}
    assert problems_of(data) == ["steps.forgotten: unreachable: no step, start or signal route leads here"]


def test_loop_without_a_wait():
    data = standard()
    data["steps"]["check_again"] = {
        "type": "branch", "otherwise": "reminder_2",
        "cases": [{"when": {"fact": "opened", "step": "reminder_2"}, "next": "wait_robo_call"}],
    }
    data["steps"]["sms_reminder_2"]["next"] = "check_again"
    problems = problems_of(data)
    assert len(problems) == 1
    assert "loop without a wait: " in problems[0]
    assert all(step in problems[0] for step in ("reminder_2", "sms_reminder_2", "check_again"))


def test_a_loop_through_a_wait_is_fine():
    data = standard()
    data["steps"]["wait_final_notice"]["next"] = "final_notice"
    assert problems_of(data) == [  # no loop complaint; only what the change cut off
        "steps.charge_costs: unreachable: no step, start or signal route leads here",
        "steps.escalate_no_response: unreachable: no step, start or signal route leads here",
        "steps.handed_over: unreachable: no step, start or signal route leads here",
    ]


def test_missing_template():
    data = standard()
    data["steps"]["reminder_1"]["template"] = "reminder_one"
    assert problems_of(data, TEMPLATES.exists) == [
        "steps.reminder_1: template email/reminder_one does not exist for language(s) nl, en"
    ]


def test_missing_signal_route():
    data = standard()
    del data["signals"]["broken_promise"]
    problems = problems_of(data)
    assert problems == ["signals.broken_promise: missing route: say what this signal does (end, pause, continue or goto)"]


def test_route_arguments_must_fit_the_action():
    data = standard()
    data["signals"]["full_payment"] = {"action": "end"}
    assert "outcome` is required with action end" in problems_of(data)[0]


def test_unknown_step_type_and_channel():
    data = standard()
    data["steps"]["reminder_1"]["channel"] = "fax"
    data["steps"]["sms_invoice"]["type"] = "tweet"
    problems = " | ".join(problems_of(data))
    assert "steps.reminder_1.send.channel" in problems and "'email', 'sms', 'call' or 'letter'" in problems
    assert "steps.sms_invoice" in problems and "tweet" in problems


def test_opened_only_for_email_and_keys_only_for_calls():
    data = standard()
    data["steps"]["check_opened"]["cases"][0]["when"]["step"] = "sms_invoice"
    data["steps"]["check_call_key"]["cases"][0]["when"]["step"] = "reminder_2"
    assert problems_of(data) == [
        "steps.check_opened.cases[0]: only an email can be opened; 'sms_invoice' is sms",
        "steps.check_call_key.cases[0]: keys are pressed only in a call; 'reminder_2' is email",
    ]


def test_wait_needs_exactly_one_kind_of_duration():
    data = standard()
    data["steps"]["wait_for_open"] = {"type": "wait", "days": 2, "until": {"date": "due_date"}, "next": "check_opened"}
    assert "a wait needs one of: a duration" in problems_of(data)[0]


def test_start_must_exist_and_yaml_must_parse():
    data = copy.deepcopy(standard())
    data["start"] = "begin"
    assert problems_of(data) == ["start: unknown step 'begin'"]
    with pytest.raises(FlowInvalid) as raised:
        load_flow_yaml("name: [unclosed")
    assert raised.value.problems[0].where == "yaml"


# --- collection costs only after the 14-day notice ------------------------------------------


def test_costs_right_after_the_letter_are_refused():
    data = standard()
    data["steps"]["final_notice"]["next"] = "charge_costs"
    del data["steps"]["wait_final_notice"]
    assert problems_of(data) == [
        "steps.charge_costs: charges costs too early: a consumer can get here 0 days after the 14-day notice; "
        "wait at least 16 days (receipt the next business day, then 14 days)"]


def test_costs_after_a_wait_of_15_days_are_too_early():
    data = standard()
    data["steps"]["wait_final_notice"] = {"type": "wait", "days": 15, "next": "charge_costs"}
    assert problems_of(data) == [
        "steps.charge_costs: charges costs too early: a consumer can get here 15 days after the 14-day notice; "
        "wait at least 16 days (receipt the next business day, then 14 days)"]


def test_a_wait_of_16_days_or_until_after_the_term_is_enough():
    data = standard()
    data["steps"]["wait_final_notice"] = {"type": "wait", "days": 16, "next": "charge_costs"}
    parse_flow(data)
    data["steps"]["wait_final_notice"] = {"type": "wait", "until": {"date": "notice_term_end", "offset_days": 1},
                                          "next": "charge_costs"}
    parse_flow(data)


def test_costs_without_a_notice_are_refused():
    data = standard()
    del data["steps"]["final_notice"]["notice"]
    assert problems_of(data) == [
        "steps.charge_costs: charges costs too early: a consumer can get here without a 14-day notice "
        "(a send with notice: fourteen_day)"]


def test_a_signal_route_straight_to_the_costs_is_refused():
    data = standard()
    data["signals"]["broken_promise"] = {"action": "goto", "step": "charge_costs"}
    assert "without a 14-day notice" in problems_of(data)[0]


def test_a_way_for_businesses_only_needs_no_notice():
    data = standard()
    data["steps"]["check_call_key"]["cases"].insert(
        0, {"when": {"fact": "debtor_type", "is": "business"}, "next": "charge_costs"})
    parse_flow(data)
    data["steps"]["check_call_key"]["cases"][0]["when"]["is"] = "consumer"
    assert "a consumer can get here without a 14-day notice" in problems_of(data)[0]


# --- contact rules ---------------------------------------------------------------------------


def test_contact_hours_given_for_one_channel_keep_the_defaults_of_the_others():
    data = standard()
    data["contact_rules"] = {"max_per_week": 3, "hours": {"sms": {"start": "09:00", "end": "20:00"}}}
    flow = parse_flow(data)
    hours = flow.contact_rules.hours
    assert (str(hours["sms"].start), str(hours["sms"].end)) == ("09:00:00", "20:00:00")
    assert (str(hours["call"].start), str(hours["call"].end)) == ("08:00:00", "21:00:00")
    assert hours["letter"].business_days_only and "email" not in hours
    assert load_flow_yaml(dump_flow_yaml(flow)) == flow


def test_contact_hours_that_end_before_they_start_are_refused():
    data = standard()
    data["contact_rules"] = {"hours": {"call": {"start": "21:00", "end": "08:00"}}}
    assert problems_of(data) == ["contact_rules.hours.call: Value error, `start` must be before `end`"]


def test_a_wait_has_one_kind():
    data = standard()
    data["steps"]["wait_for_open"]["business_days"] = 2
    assert problems_of(data) == [
        "steps.wait_for_open.wait: Value error, a wait needs one of: a duration (days/hours), `business_days` or `until`"]


def test_on_failure_must_lead_to_a_known_step_and_survives_yaml():
    data = standard()
    data["steps"]["sms_reminder_2"]["on_failure"] = "remindr_2"
    assert problems_of(data) == ["steps.sms_reminder_2: leads to unknown step 'remindr_2'"]
    data["steps"]["sms_reminder_2"]["on_failure"] = "wait_robo_call"
    flow = parse_flow(data, TEMPLATES.exists)
    assert flow.steps["sms_reminder_2"].on_failure == "wait_robo_call"
    assert load_flow_yaml(dump_flow_yaml(flow), TEMPLATES.exists) == flow
    assert "on_failure" not in dump_flow_yaml(parse_flow(standard()))


def test_on_failure_back_to_a_send_without_a_wait_is_a_loop():
    data = standard()
    data["steps"]["sms_reminder_2"]["on_failure"] = "reminder_2"
    assert problems_of(data) == ["steps.reminder_2: loop without a wait: reminder_2 -> sms_reminder_2 -> reminder_2"]
