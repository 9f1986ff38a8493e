"""Moving a running case to another flow version: it switches at its next wait and starts that
wait again in the new version, or stays where it is when the new version lacks that wait."""

from __future__ import annotations

import pytest
import yaml

from dunflow.case import VersionMove
from dunflow.flow import parse_flow
from dunflow.settings import PROJECT_ROOT
from tests.workflows.harness import flow_harness
from workflows.collection import CollectionWorkflow


@pytest.fixture
async def flows(time_skipping_env, engine, settings):
    async with flow_harness(time_skipping_env, engine, settings) as harness:
        yield harness


def standard(**step_changes) -> dict:
    data = yaml.safe_load((PROJECT_ROOT / "flows" / "standard.yaml").read_text())
    for step_id, changes in step_changes.items():
        data["steps"][step_id] |= changes
    return data


async def test_a_moved_case_runs_the_new_version_from_its_wait(flows):
    case = await flows.start_case()
    await flows.advance(hours=12)  # inside wait_for_open (2 days)
    longer = parse_flow(standard(wait_for_open={"days": 5}, sms_invoice={"template": "reminder_sms"}))
    await case.signal(CollectionWorkflow.move_to_version, VersionMove(flow=longer, version=2, by="anna"))
    await flows.advance(days=4)  # the old wait would have ended on day 2
    assert flows.sent_steps(case) == ["email:send_invoice"]
    await flows.advance(days=2)  # five days from the move, half a day in
    assert flows.sent_steps(case) == ["email:send_invoice", "sms:sms_invoice"]
    assert (await flows.message_of(case, "sms_invoice")).template == "reminder_sms"
    state = await flows.state(case)
    assert state.flow_version == 2
    moves = [(e.kind, e.step, e.detail) for e in state.history if e.kind.startswith("move")]
    assert moves == [("move_requested", None, "v1 -> v2 by anna"), ("moved", "wait_for_open", "v1 -> v2 by anna")]


async def test_a_version_without_that_wait_leaves_the_case_where_it_was(flows):
    case = await flows.start_case()
    await flows.advance(hours=12)
    data = standard(send_invoice={"next": "check_opened"})
    del data["steps"]["wait_for_open"]
    await case.signal(CollectionWorkflow.move_to_version, VersionMove(flow=parse_flow(data), version=2, by="anna"))
    await flows.advance(days=2)
    state = await flows.state(case)
    assert state.flow_version == 1
    assert [(e.kind, e.detail) for e in state.history if e.kind == "move_refused"] == [
        ("move_refused", "v2 has no wait wait_for_open; stays on v1")]
    assert flows.sent_steps(case) == ["email:send_invoice", "sms:sms_invoice"]  # v1 went on as before
