"""Liveness and readiness: /readyz turns red, naming the part that is down."""

from __future__ import annotations

from dunflow.store import make_engine
from tests.api.conftest import app_client, point_at

CLOSED_PORT = 1  # nothing listens there


async def test_healthz_and_readyz_answer_when_all_is_up(api):
    assert (await api.get("/healthz", headers={"Authorization": ""})).json() == {"status": "ok"}
    ready = await api.get("/readyz", headers={"Authorization": ""})
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"store": "ok", "temporal": "ok"}


async def test_readiness_goes_red_when_the_store_is_down(api):
    working = api.app.state.engine
    api.app.state.engine = make_engine(f"postgresql+psycopg://dunflow:x@127.0.0.1:{CLOSED_PORT}/gone")
    try:
        response = await api.get("/readyz")
        assert response.status_code == 503
        body = response.json()
        assert [p["where"] for p in body["problems"]] == ["store"]
        assert "store is unreachable" in body["error"]
        assert body["checks"]["temporal"] == "ok"
        assert (await api.get("/healthz")).status_code == 200  # the process itself is fine
    finally:
        api.app.state.engine.dispose()
        api.app.state.engine = working
    assert (await api.get("/readyz")).status_code == 200


async def test_readiness_goes_red_when_temporal_is_down(dev_server, settings):
    point_at(settings, dev_server)
    settings.temporal_address = f"127.0.0.1:{CLOSED_PORT}"
    async with app_client(settings) as client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    assert [p["where"] for p in response.json()["problems"]] == ["temporal"]
    assert f"Temporal is unreachable at 127.0.0.1:{CLOSED_PORT}" in response.json()["error"]
