"""API keys: every /api route needs one with the right scope; keys are hashed and revocable."""

from __future__ import annotations

import re

import pytest
from fastapi.routing import APIRoute
from sqlmodel import Session, select
from typer.testing import CliRunner

from api.routes.portal import get_visit
from dunflow.apikeys import create_key, hash_key, revoke_key
from dunflow.cli import app as cli
from dunflow.store import ApiKey

PUBLIC = {"/docs", "/docs/oauth2-redirect", "/openapi.json", "/redoc", "/", "/outbox", "/healthz", "/readyz", "/metrics",
          "/codec", "/codec/session"}  # the codec sign-in form checks the key itself


def api_routes(app) -> list[APIRoute]:
    return [route for route in app.routes if isinstance(route, APIRoute)]


def scope_of(route: APIRoute) -> str | None:
    for dependency in route.dependant.dependencies:
        scope = getattr(dependency.call, "required_scope", None)
        if scope:
            return scope
    return None


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", path)


async def test_every_api_route_demands_a_key(api):
    routes = api_routes(api.app)
    assert routes
    for route in routes:
        if route.path.startswith("/webhooks/"):
            continue  # verified by the providers' signatures: see test_webhooks.py
        if route.path.startswith(("/portal/", "/p/")):  # the debtor's signed link is the key
            assert get_visit in [d.call for d in route.dependant.dependencies], f"{route.path} reads no portal link"
            for method in route.methods:
                response = await api.request(method, concrete(route.path))
                assert response.status_code == 403, f"{method} {route.path} answered {response.status_code}"
            continue
        if not route.path.startswith("/api") and not scope_of(route):
            assert route.path in PUBLIC, f"{route.path} is outside /api and not known to be public"
            continue
        assert scope_of(route), f"{route.path} has no API key check"
        for method in route.methods:
            response = await api.request(method, concrete(route.path), headers={"Authorization": ""})
            assert response.status_code == 401, f"{method} {route.path} answered {response.status_code} without a key"
            assert "API key is required" in response.json()["error"]
            assert response.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize("scope", ["read", "cases:write", "signals:write"])
async def test_a_key_only_opens_the_routes_of_its_scopes(api, scope):
    key = create_key(api.app.state.engine, f"only {scope}", [scope]).key
    for route in api_routes(api.app):
        needed = scope_of(route)
        if needed is None or needed == scope:
            continue
        for method in route.methods:
            response = await api.request(method, concrete(route.path), headers={"Authorization": f"Bearer {key}"})
            assert response.status_code == 403, f"{method} {route.path} let a {scope} key through"
            assert needed in response.json()["error"]


async def test_unknown_and_revoked_keys_are_refused(api):
    engine = api.app.state.engine
    made = create_key(engine, "erp", ["read"])
    ok = await api.get("/api/messages", headers={"Authorization": f"Bearer {made.key}"})
    assert ok.status_code == 200
    revoke_key(engine, made.id)
    for key in (made.key, "dfk_not-a-key"):
        response = await api.get("/api/messages", headers={"Authorization": f"Bearer {key}"})
        assert response.status_code == 401 and "unknown or revoked" in response.json()["error"]


def test_keys_are_stored_only_as_hashes(engine):
    made = create_key(engine, "bank", ["signals:write"])
    with Session(engine) as session:
        row = session.exec(select(ApiKey).where(ApiKey.id == made.id)).one()
    assert row.key_hash == hash_key(made.key) and made.key not in (row.key_hash, row.prefix)
    with pytest.raises(ValueError, match="choose from"):
        create_key(engine, "typo", ["cases:wrte"])


def test_the_cli_creates_lists_and_revokes(settings, monkeypatch):
    monkeypatch.setenv("DUNFLOW_DATABASE_URL", settings.effective_database_url)
    from dunflow.settings import get_settings

    get_settings.cache_clear()
    runner = CliRunner()
    try:
        created = runner.invoke(cli, ["apikey", "create", "--name", "erp", "--scope", "cases:write", "--scope", "read"])
        assert created.exit_code == 0, created.output
        key = created.stdout.strip().splitlines()[0]
        assert key.startswith("dfk_")
        listed = runner.invoke(cli, ["apikey", "list"])
        assert "erp" in listed.stdout and "cases:write read" in listed.stdout and key not in listed.stdout
        assert runner.invoke(cli, ["apikey", "revoke", "1"]).exit_code == 0
        assert "revoked" in runner.invoke(cli, ["apikey", "list"]).stdout
        missing = runner.invoke(cli, ["apikey", "revoke", "99"])
        assert missing.exit_code == 1 and "no key 99" in missing.output
        bad = runner.invoke(cli, ["apikey", "create", "--name", "x", "--scope", "everything"])
        assert bad.exit_code == 2 and "choose from" in bad.output
    finally:
        get_settings.cache_clear()
