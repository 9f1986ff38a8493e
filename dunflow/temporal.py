"""Connecting to Temporal the same way everywhere: pydantic payloads, encrypted with the configured
keys (dunflow/codec.py), the configured namespace."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.runtime import Runtime

from dunflow.codec import data_converter
from dunflow.settings import Settings


async def connect(settings: Settings, lazy: bool = False, runtime: Runtime | None = None) -> Client:
    """`lazy`: connect on first use, so a process can start before Temporal is up. `runtime`: one
    with telemetry (the worker's metrics); None: the SDK's default."""
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=data_converter(settings.effective_payload_keys),
        lazy=lazy,
        runtime=runtime,
    )
