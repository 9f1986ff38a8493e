"""Dependencies handed to routes: settings, a store session, the Temporal client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlmodel import Session
from temporalio.client import Client

from api.errors import ApiError
from dunflow.settings import Settings


async def get_session(request: Request) -> AsyncIterator[Session]:
    """A session per request, opened and closed on the event loop (no thread hop). Async routes
    release it before awaiting Temporal (see dunflow.store.release)."""
    with Session(request.app.state.engine, expire_on_commit=False) as session:
        yield session


async def get_temporal(request: Request) -> Client:
    """The Temporal client; until its first connection succeeds, a 503 before anything is written."""
    client: Client = request.app.state.temporal
    if not request.app.state.temporal_connected:
        try:
            await client.service_client.check_health()
        except Exception:  # the lazy client raises a plain RuntimeError when it cannot connect
            address = request.app.state.settings.temporal_address
            raise ApiError(503, f"Temporal is unreachable at {address}; nothing was changed, "
                                "try again when it is up") from None
        request.app.state.temporal_connected = True
    return client


def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_temporal_lazily(request: Request) -> Client:
    """The Temporal client, unchecked: for routes that keep working (queueing) while it is away."""
    return request.app.state.temporal


SessionDep = Annotated[Session, Depends(get_session)]
LazyTemporalDep = Annotated[Client, Depends(get_temporal_lazily)]
TemporalDep = Annotated[Client, Depends(get_temporal)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
