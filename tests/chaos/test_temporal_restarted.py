"""The Temporal dev server stopped and started again (file persistence) in the middle of a wave:
nothing is lost, every case finishes with exactly one message per (case, step)."""

from __future__ import annotations

import asyncio

from tests.chaos.conftest import SENDING_STEPS, assert_every_case_closed_with_one_message_per_step, history_gaps

WAVE = 60
DOWN_SECONDS = 5


async def test_a_server_restart_mid_wave_loses_nothing(chaos):
    await chaos.start_wave(WAVE, "RESTART")
    await chaos.until_messages(int(WAVE * len(SENDING_STEPS) * 0.3), 120)
    chaos.temporal.stop()
    sent_while_down = chaos.message_count()
    await asyncio.sleep(DOWN_SECONDS)
    chaos.temporal.start()
    states = await chaos.results(240)
    assert chaos.worker.poll() is None, "the worker must ride out the outage"
    assert sent_while_down < WAVE * len(SENDING_STEPS), "the restart came too late to be mid-wave"
    assert_every_case_closed_with_one_message_per_step(chaos, states, WAVE)
    assert history_gaps(chaos.engine, states) == {}
