"""The dunflow worker: runs collection workflows and their activities on the task queue."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx
from prometheus_client import start_http_server
from temporalio.client import Client
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import Worker

from activities.collection import CollectionActivities
from activities.providers import build_providers
from dunflow.logs import configure_logging
from dunflow.migrations import upgrade
from dunflow.outbound import delivery_loop
from dunflow.search_attributes import register_search_attributes
from dunflow.settings import Settings, get_settings
from dunflow.signal_outbox import redelivery_loop
from dunflow.store import make_engine
from dunflow.temporal import connect
from dunflow.templates import TemplateCatalog
from workflows.registry import WORKFLOWS

log = logging.getLogger("dunflow.worker")


def build_activities(settings: Settings) -> CollectionActivities:
    engine = make_engine(settings.effective_database_url)
    upgrade(engine)
    return CollectionActivities(
        engine=engine,
        settings=settings,
        templates=TemplateCatalog(settings.templates_dir),
        providers=build_providers(settings),
    )


def build_worker(client: Client, settings: Settings, activities: CollectionActivities, executor: ThreadPoolExecutor,
                 extra_workflows: Sequence[type] = (), extra_activities: Sequence[Callable] = ()) -> Worker:
    """The worker of the collection engine; the extras let the benchmark run its baseline beside it."""
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=[*WORKFLOWS, *extra_workflows],
        activities=[*activities.all(), *extra_activities],
        activity_executor=executor,
        max_concurrent_activities=executor._max_workers,
        max_concurrent_workflow_tasks=settings.worker_max_concurrent_workflow_tasks,
        max_cached_workflows=settings.worker_max_cached_workflows,
        max_concurrent_workflow_task_polls=settings.worker_workflow_pollers,
        max_concurrent_activity_task_polls=settings.worker_activity_pollers,
        graceful_shutdown_timeout=timedelta(seconds=settings.worker_shutdown_seconds),
    )


def temporal_runtime(settings: Settings) -> Runtime | None:
    """A Temporal runtime that serves the SDK's metrics for Prometheus; None when off or the port is taken."""
    if not settings.temporal_metrics_port:
        return None
    try:
        metrics = PrometheusConfig(bind_address=f"0.0.0.0:{settings.temporal_metrics_port}")
        return Runtime(telemetry=TelemetryConfig(metrics=metrics))
    except Exception as error:  # the SDK's core reports a taken port as a plain exception
        log.warning("Temporal SDK metrics are off: port %s: %s", settings.temporal_metrics_port, error)
        return None


def serve_metrics(settings: Settings) -> None:
    """dunflow's own metrics of this worker (messages, provider latency) for Prometheus."""
    if not settings.metrics_port:
        return
    try:
        start_http_server(settings.metrics_port)
    except OSError as error:
        log.warning("dunflow metrics are off: port %s: %s", settings.metrics_port, error.strerror)


async def run_worker(settings: Settings) -> None:
    serve_metrics(settings)
    client = await connect(settings, runtime=temporal_runtime(settings))
    await register_search_attributes(client)
    activities = build_activities(settings)
    channels = ", ".join(f"{channel}: {provider.name}" for channel, provider in activities.providers.items())
    log.info("worker on task queue %r at %s (%s)", settings.task_queue, settings.temporal_address, channels)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    executor = ThreadPoolExecutor(max_workers=settings.worker_max_concurrent_activities)
    try:
        async with build_worker(client, settings, activities, executor), httpx.AsyncClient() as http:
            redelivery = asyncio.create_task(redelivery_loop(activities.engine, client, stop))
            outbound = asyncio.create_task(delivery_loop(activities.engine, stop, http=http))
            await stop.wait()
            log.info("stopping: no new tasks; running activities get %gs to finish", settings.worker_shutdown_seconds)
            await asyncio.gather(redelivery, outbound)
    finally:
        executor.shutdown(wait=False, cancel_futures=True)
    log.info("stopped")


if __name__ == "__main__":
    configure_logging(get_settings().log_format)
    asyncio.run(run_worker(get_settings()))
