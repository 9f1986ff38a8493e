"""The store (PostgreSQL) stopped for a few seconds in the middle of a wave: the activities that
hit the outage fail and are retried, nothing is half-written (no duplicate message, no gap in a
case's stored history), and every case finishes."""

from __future__ import annotations

import asyncio

import pytest

from tests.chaos.conftest import SENDING_STEPS, assert_every_case_closed_with_one_message_per_step, history_gaps
from tests.e2e.test_dev_stack import free_port
from tests.support.postgres_server import PostgresServer

WAVE = 40
DOWN_SECONDS = 6


@pytest.fixture
def postgres():
    server = PostgresServer(free_port())
    server.start()
    yield server
    server.remove()


@pytest.fixture
def settings(settings, postgres):
    """The store on the test's own PostgreSQL, for the worker and the test alike."""
    settings.database_url = postgres.url
    return settings


async def test_the_store_down_mid_wave_is_retried_and_nothing_is_half_written(chaos, postgres):
    await chaos.start_wave(WAVE, "STORE")
    await chaos.until_messages(int(WAVE * len(SENDING_STEPS) * 0.3), 120)
    postgres.stop()
    await asyncio.sleep(DOWN_SECONDS)
    postgres.start()
    states = await chaos.results(240)
    assert chaos.worker.poll() is None, "the worker must ride out the outage"
    assert "OperationalError" in chaos.log_path.read_text(), "no activity met the outage"
    assert_every_case_closed_with_one_message_per_step(chaos, states, WAVE)
    assert history_gaps(chaos.engine, states) == {}
