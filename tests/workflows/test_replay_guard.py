"""The replay guard: histories recorded from the shipped flows through every branch (see
tests/histories/README.md) must replay against the current workflow code. A change that would
break cases already running fails here, before it reaches a worker."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from dunflow.codec import data_converter
from tests.conftest import TEST_PAYLOAD_KEYS
from workflows.registry import WORKFLOWS

HISTORIES = sorted((Path(__file__).parent.parent / "histories").glob("*.json"))


def test_there_are_histories_to_guard():
    assert len(HISTORIES) >= 15, "tests/histories lost its recordings; see its README to record them"


@pytest.mark.parametrize("path", HISTORIES, ids=[path.stem for path in HISTORIES])
async def test_recorded_history_replays(path: Path):
    recording = json.loads(path.read_text())
    history = WorkflowHistory.from_json(recording.pop("workflow_id", path.stem), recording)
    replayer = Replayer(workflows=WORKFLOWS, data_converter=data_converter(TEST_PAYLOAD_KEYS))  # the tests' keys; older recordings are plain
    await replayer.replay_workflow(history)
