"""Shared fixtures: a store per test, real Temporal servers per session, settings in a temp folder."""

from __future__ import annotations

import pytest
from temporalio.testing import WorkflowEnvironment

from dunflow.codec import data_converter
from dunflow.flows import publish_shipped_flows
from dunflow.search_attributes import register_search_attributes
from dunflow.settings import Settings
from dunflow.store import create_schema, make_engine
from dunflow.templates import TemplateCatalog
from tests.support.binaries import temporal_test_server

# Every test client, worker and API encrypts payloads, as production does (k2 encrypts, k1 decrypts).
TEST_PAYLOAD_KEYS = "k2:" + "Mg" * 21 + "g=,k1:" + "MQ" * 21 + "g="


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(_env_file=None, data_dir=tmp_path / "data", database_url=f"sqlite:///{tmp_path}/store.db",
                    payload_keys=TEST_PAYLOAD_KEYS)


@pytest.fixture
def engine(settings):
    engine = make_engine(settings.effective_database_url)
    create_schema(engine)
    publish_shipped_flows(engine, settings.flows_dir, TemplateCatalog(settings.templates_dir))
    yield engine
    engine.dispose()


class _SkippingServer:
    env: WorkflowEnvironment | None = None


# Each test moves the shared time-skipping server's clock on by weeks; after a few hundred tests it
# is past the years the holiday tables know (2100), so it is started anew before it gets there.
LAST_TEST_YEAR = 2080


@pytest.fixture
async def time_skipping_env(_time_skipping_server):
    env = _SkippingServer.env
    if env is None or (await env.get_current_time()).year >= LAST_TEST_YEAR:
        if env is not None:
            await env.shutdown()
        env = _SkippingServer.env = await WorkflowEnvironment.start_time_skipping(
            test_server_existing_path=temporal_test_server(),
            data_converter=data_converter(TEST_PAYLOAD_KEYS),
        )
        await register_search_attributes(env.client)
    return env


@pytest.fixture(scope="session")
async def _time_skipping_server():
    """Stops the shared time-skipping server at the end of the run."""
    yield
    if _SkippingServer.env is not None:
        await _SkippingServer.env.shutdown()
