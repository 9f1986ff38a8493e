"""The rules of the trade in running cases: statutory interest, the 14-day letter and its costs,
contact hours. Real workflows and activities on the time-skipping test server."""

from __future__ import annotations

from datetime import timedelta

import pytest

from dunflow.interest import rate_on
from tests.workflows.harness import flow_harness


@pytest.fixture
async def flows(time_skipping_env, engine, settings):
    async with flow_harness(time_skipping_env, engine, settings) as harness:
        yield harness


def consumer_interest(principal_cents: int, days: int, on) -> int:
    """Simple interest at the table's rate (one rate over the whole term), rounded half up."""
    basis_points = rate_on("consumer", on).basis_points
    return (2 * principal_cents * basis_points * days + 3_650_000) // (2 * 3_650_000)


async def test_interest_runs_from_the_day_after_due_in_the_state_and_the_letter(flows):
    case = await flows.start_case(amount_cents=24_500, due_in_days=14)  # the letter goes out on day 29
    await flows.advance(days=50)
    today = await flows.today()
    assert rate_on("consumer", today - timedelta(days=36)) == rate_on("consumer", today), "a rate changed meanwhile"
    state = await flows.state(case)  # as of its last step: the escalation on day 44
    assert state.interest_on == today - timedelta(days=6)
    assert state.interest_cents == consumer_interest(24_500, 30, today) > 0

    letter = await flows.message_of(case, "final_notice")
    at_letter = consumer_interest(24_500, 15, today)
    assert f"tot vandaag is dat € 0,{at_letter:02d}." in letter.body
    assert f"wettelijke rente verschuldigd ({rate_on('consumer', today).basis_points / 100:g}% per jaar)" in letter.body
