"""All benchmarks in one run, written as a markdown table and JSON next to their targets.

    .venv/bin/python -m bench                      # the full sizes
    .venv/bin/python -m bench --cases 200 --wave 1000 --start-rows 1000 --signal-seconds 10

Engine overhead, memory and the wave (bench/engine.py), the start rate (bench/bulk_intake.py)
and the signal API (bench/signal_latency.py); each part starts its own Temporal dev server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path

from bench import bulk_intake, engine, signal_latency

PARTS = ("engine", "wave", "start", "signal")
ENGINE_RATIO_TARGET = 0.8
MEMORY_TARGET_MB = 500
SIZES = {"cases": "engine", "wave": "wave", "start_rows": "start", "signal_clients": "signal", "signal_cases": "signal"}


def machine() -> dict:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    return {"cpus": os.cpu_count(), "cpu": model, "python": platform.python_version(), "system": platform.platform()}


async def run(args: argparse.Namespace) -> dict:
    parts = [part for part in PARTS if part not in args.skip]
    figures: dict = {"at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": machine()}
    if "engine" in parts or "wave" in parts:
        figures |= await engine.main(args.cases if "engine" in parts else 0, args.day_seconds,
                                     args.wave if "wave" in parts else 0, args.wave_day_seconds, args.database_url)
    if "start" in parts:
        figures["start_rate"] = await bulk_intake.main(args.start_rows)
    if "signal" in parts:
        figures["signal"] = await signal_latency.main(args.signal_clients, args.signal_seconds, args.signal_cases,
                                                      args.database_url)
    return figures


def verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def table(figures: dict) -> str:
    rows = []
    if "engine" in figures:
        e = figures["engine"]
        rows += [
            (f"engine: {e['cases']} standard cases, {e['activities_per_case']} activities + {e['timers_per_case']} "
             f"timers each", f"{e['dunflow_cases_per_s']} cases/s, {e['dunflow_steps_per_s']} steps/s", ""),
            ("engine: no-op baseline, same activities and timers",
             f"{e['baseline_cases_per_s']} cases/s, {e['baseline_steps_per_s']} steps/s", ""),
            ("engine: dunflow / baseline", f"{e['ratio']}",
             f"≥ {ENGINE_RATIO_TARGET}: {verdict(e['ratio'] >= ENGINE_RATIO_TARGET)}"),
        ]
    if "memory" in figures:
        m = figures["memory"]
        rows.append((f"memory: worker RSS, {m['cases']} cases asleep", f"{m['rss_mb']} MB",
                     f"< {MEMORY_TARGET_MB} MB: {verdict(m['rss_mb'] < MEMORY_TARGET_MB)}"))
    if "wave" in figures:
        w = figures["wave"]
        early = f" ({w['sent_before_the_moment']} sent early)" if w["sent_before_the_moment"] else ""
        rows.append((f"wave: {w['cases']} cases due at once, until all messages recorded{early}",
                     f"{w['seconds']} s, {w['messages_per_s']} messages/s, peak RSS {w['worker_peak_rss_mb']} MB", ""))
    if "start_rate" in figures:
        s = figures["start_rate"]
        rows.append((f"start rate: {s['rows']} rows through the bulk path vs raw start_workflow",
                     f"{s['dunflow_cases_per_s']} vs {s['raw_start_workflow_per_s']} cases/s, ratio {s['ratio']}", ""))
    if "signal" in figures:
        s, base = figures["signal"], figures["signal"]["baseline"]
        rows += [
            (f"signal: POST payments, {s['clients']} clients ({s['database']})",
             f"{s['payments_per_s']}/s, p50 {s['post_p50_ms']} ms, p99 {s['post_p99_ms']} ms", ""),
            ("signal: until the query shows paid", f"p50 {s['paid_p50_ms']} ms, p99 {s['paid_p99_ms']} ms", ""),
            ("signal: plain Temporal signals, same server",
             f"{base['signals_per_s']}/s, p50 {base['signal_p50_ms']} ms, p99 {base['signal_p99_ms']} ms", ""),
        ]
    lines = ["| measure | figure | target |", "|---|---|---|"] + [f"| {a} | {b} | {c} |" for a, b, c in rows]
    head = f"Measured {figures['at']} on {figures['machine']['cpus']} CPUs ({figures['machine']['cpu']}), " \
           f"Python {figures['machine']['python']}."
    return head + "\n\n" + "\n".join(lines) + "\n"


def parser() -> argparse.ArgumentParser:
    options = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    options.add_argument("--cases", type=int, default=2000, help="standard cases of the engine benchmark")
    options.add_argument("--day-seconds", type=float, default=0.1, help="one flow day, engine benchmark")
    options.add_argument("--wave", type=int, default=10_000, help="sleeping cases of the wave and the memory figure")
    options.add_argument("--wave-day-seconds", type=float, default=None,
                         help="one flow day of the wave cases; default: from the wave's size")
    options.add_argument("--start-rows", type=int, default=2000, help="rows of the start-rate benchmark")
    options.add_argument("--signal-clients", type=int, default=100)
    options.add_argument("--signal-seconds", type=float, default=30)
    options.add_argument("--signal-cases", type=int, default=500)
    options.add_argument("--database-url", default="", help="the store; default SQLite in a temporary folder")
    options.add_argument("--skip", action="append", choices=PARTS, default=[], help="leave a part out (repeatable)")
    options.add_argument("--out", type=Path, default=Path(__file__).parent / "results",
                         help="folder for latest.md and latest.json")
    return options


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    for name, part in SIZES.items():
        if getattr(args, name) < 1 and part not in args.skip:
            parser().error(f"--{name.replace('_', '-')} must be at least 1 (or leave the part out with --skip)")
    figures = asyncio.run(run(args))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.json").write_text(json.dumps(figures, indent=2) + "\n")
    (args.out / "latest.md").write_text(table(figures))
    print(table(figures))
    print(f"written to {args.out / 'latest.md'} and {args.out / 'latest.json'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
