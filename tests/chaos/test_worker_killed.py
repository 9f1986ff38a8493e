"""The worker killed with SIGKILL three times during a wave: after each restart the cases go on,
every case finishes, and the outbox holds exactly one message per (case, step)."""

from __future__ import annotations

from tests.chaos.conftest import SENDING_STEPS, assert_every_case_closed_with_one_message_per_step, history_gaps

WAVE = 100


async def test_three_sigkills_during_a_wave_lose_and_double_nothing(chaos):
    await chaos.start_wave(WAVE, "KILL")
    expected = WAVE * len(SENDING_STEPS)
    for share in (0.2, 0.35, 0.5):  # close together, so the dead attempts time out together
        await chaos.until_messages(int(expected * share), 120)
        chaos.kill_worker()
        chaos.start_worker()
    states = await chaos.results(240)
    assert_every_case_closed_with_one_message_per_step(chaos, states, WAVE)
    assert history_gaps(chaos.engine, states) == {}
