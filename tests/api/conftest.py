"""The API against a real Temporal dev server (the `temporal` binary) and an in-process worker."""

from __future__ import annotations

import uuid
from contextlib import asynccontextmanager
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from dunflow.apikeys import create_key
from dunflow.codec import data_converter
from dunflow.search_attributes import ALL_KEYS
from tests.conftest import TEST_PAYLOAD_KEYS
from tests.support.binaries import temporal_cli
from worker import build_activities, build_worker


@pytest.fixture(scope="session")
async def dev_server():
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli(),
        search_attributes=ALL_KEYS,
        data_converter=data_converter(TEST_PAYLOAD_KEYS),
    )
    yield env
    await env.shutdown()


@asynccontextmanager
async def app_client(settings):
    """An HTTP client for the app (lifespan run), authorised with an admin key."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        admin = create_key(app.state.engine, "tests", ["admin"]).key
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://dunflow.test",
                                     headers={"Authorization": f"Bearer {admin}"}) as client:
            client.app = app
            yield client


def point_at(settings, dev_server) -> None:
    settings.temporal_address = dev_server.client.service_client.config.target_host
    settings.task_queue = f"api-test-{uuid.uuid4().hex}"
    settings.day_seconds = settings.day_seconds or 3600  # by default nothing moves on by itself in a test


@pytest.fixture
async def api(dev_server, settings):
    """The app with a worker for its cases on a queue of its own."""
    point_at(settings, dev_server)
    activities = build_activities(settings)
    with ThreadPoolExecutor(max_workers=8) as executor:
        async with build_worker(dev_server.client, settings, activities, executor):
            async with app_client(settings) as client:
                yield client


@pytest.fixture
async def api_without_worker(dev_server, settings):
    """The app alone: its cases start in Temporal but no flow runs (for intake of many cases)."""
    point_at(settings, dev_server)
    async with app_client(settings) as client:
        yield client
