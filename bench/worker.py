"""The benchmark's worker process: dunflow's worker (same settings, same activity pool) that also
runs the no-op baseline, so both are measured under exactly the same conditions.

    DUNFLOW_... .venv/bin/python -m bench.worker
"""

from __future__ import annotations

import asyncio
import signal
from concurrent.futures import ThreadPoolExecutor

from bench.baseline import Baseline, noop
from dunflow.logs import configure_logging
from dunflow.settings import get_settings
from dunflow.temporal import connect
from worker import build_activities, build_worker


async def main() -> None:
    settings = get_settings()
    client = await connect(settings)
    activities = build_activities(settings)
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    executor = ThreadPoolExecutor(max_workers=settings.worker_max_concurrent_activities)
    try:
        async with build_worker(client, settings, activities, executor, [Baseline], [noop]):
            await stop.wait()
    finally:
        executor.shutdown(wait=False, cancel_futures=True)


if __name__ == "__main__":
    configure_logging(get_settings().log_format)
    asyncio.run(main())
