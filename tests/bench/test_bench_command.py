"""`python -m bench` at a tiny size: every part runs and writes its figures, so the command
cannot rot between the runs that measure."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from dunflow.settings import PROJECT_ROOT

TINY = ["--cases", "4", "--day-seconds", "0.05", "--wave", "6", "--wave-day-seconds", "3", "--start-rows", "20",
        "--signal-clients", "2", "--signal-seconds", "2", "--signal-cases", "3"]


def test_the_bench_command_writes_every_figure(tmp_path):
    env = os.environ | {"PYTHONPATH": str(PROJECT_ROOT)}
    done = subprocess.run([sys.executable, "-m", "bench", *TINY, "--out", str(tmp_path)], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads((tmp_path / "latest.json").read_text())

    engine = figures["engine"]
    assert engine["cases"] == 4
    assert engine["activities_per_case"] >= 8 and engine["timers_per_case"] >= 1  # the standard flow's sends and waits
    assert engine["dunflow_cases_per_s"] > 0 and engine["baseline_cases_per_s"] > 0
    assert abs(engine["ratio"] * engine["baseline_cases_per_s"] / engine["dunflow_cases_per_s"] - 1) < 0.05
    assert 30 < figures["memory"]["rss_mb"] < 2000
    wave = figures["wave"]
    assert wave["cases"] == 6 and wave["sent_before_the_moment"] == 0
    assert wave["seconds"] > 0 and wave["messages_per_s"] > 0 and wave["worker_peak_rss_mb"] > 30
    start = figures["start_rate"]
    assert start["started"] == 20 and start["dunflow_cases_per_s"] > 0 and start["raw_start_workflow_per_s"] > 0
    signal = figures["signal"]
    assert signal["payments_accepted"] > 0 and signal["post_p50_ms"] > 0 and signal["baseline"]["signals_per_s"] > 0

    table = (tmp_path / "latest.md").read_text()
    assert "| engine: dunflow / baseline |" in table and "< 500 MB" in table
    assert "Traceback" not in done.stderr


def test_a_size_below_one_is_refused_with_the_fix():
    env = os.environ | {"PYTHONPATH": str(PROJECT_ROOT)}
    done = subprocess.run([sys.executable, "-m", "bench", "--cases", "0"], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "--cases must be at least 1" in done.stderr and "--skip" in done.stderr
    assert "Traceback" not in done.stderr
