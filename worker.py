"""The dunflow worker: runs collection workflows and their activities on the task queue."""

from __future__ import annotations

import asyncio
import logging
import signal
from concurrent.futures import ThreadPoolExecutor

import httpx
from temporalio.client import Client
from temporalio.worker import Worker

from activities.collection import CollectionActivities
from activities.providers import build_providers
from dunflow.migrations import upgrade
from dunflow.outbound import delivery_loop
from dunflow.search_attributes import register_search_attributes
from dunflow.settings import Settings, get_settings
from dunflow.signal_outbox import redelivery_loop
from dunflow.store import make_engine
from dunflow.temporal import connect
from dunflow.templates import TemplateCatalog
from workflows.collection import CollectionWorkflow

log = logging.getLogger("dunflow.worker")
ACTIVITY_THREADS = 20


def build_activities(settings: Settings) -> CollectionActivities:
    engine = make_engine(settings.effective_database_url)
    upgrade(engine)
    return CollectionActivities(
        engine=engine,
        settings=settings,
        templates=TemplateCatalog(settings.templates_dir),
        providers=build_providers(settings),
    )


def build_worker(client: Client, settings: Settings, activities: CollectionActivities, executor: ThreadPoolExecutor) -> Worker:
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=[CollectionWorkflow],
        activities=activities.all(),
        activity_executor=executor,
        max_concurrent_activities=executor._max_workers,
    )


async def run_worker(settings: Settings) -> None:
    client = await connect(settings)
    await register_search_attributes(client)
    activities = build_activities(settings)
    channels = ", ".join(f"{channel}: {provider.name}" for channel, provider in activities.providers.items())
    log.info("worker on task queue %r at %s (%s)", settings.task_queue, settings.temporal_address, channels)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    with ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
        async with build_worker(client, settings, activities, executor), httpx.AsyncClient() as http:
            redelivery = asyncio.create_task(redelivery_loop(activities.engine, client, stop))
            outbound = asyncio.create_task(delivery_loop(activities.engine, stop, http=http))
            await stop.wait()
            log.info("stopping: finishing the activities in progress")
            await asyncio.gather(redelivery, outbound)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    asyncio.run(run_worker(get_settings()))
