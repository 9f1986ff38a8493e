"""The no-op baseline of the engine benchmark: the same activities and timers as a standard case,
in the same order, doing nothing. It runs in the sandbox like CollectionWorkflow does."""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow

# ("activity", 0) or ("timer", seconds), in the order a standard case did them
Shape = list[tuple[str, float]]


@activity.defn(name="bench_noop")
def noop() -> None:
    return None


@workflow.defn(name="BenchBaseline")
class Baseline:
    @workflow.run
    async def run(self, shape: Shape) -> None:
        for kind, seconds in shape:
            if kind == "timer":
                await workflow.sleep(seconds)
            else:
                await workflow.execute_activity("bench_noop", start_to_close_timeout=timedelta(seconds=30))
