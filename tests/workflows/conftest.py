"""The workflow tests' harness on the shared time-skipping server (histories named after the test)."""

import pytest

from tests.workflows.harness import flow_harness


@pytest.fixture
async def flows(request, time_skipping_env, engine, settings):
    async with flow_harness(time_skipping_env, engine, settings, request.node.name) as harness:
        yield harness
