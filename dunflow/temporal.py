"""Connecting to Temporal the same way everywhere: pydantic payloads, encrypted with the configured
keys (dunflow/codec.py), the configured namespace."""

from __future__ import annotations

from temporalio.client import Client

from dunflow.codec import data_converter
from dunflow.settings import Settings


async def connect(settings: Settings, lazy: bool = False) -> Client:
    """`lazy`: connect on first use, so a process can start before Temporal is up."""
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=data_converter(settings.effective_payload_keys),
        lazy=lazy,
    )
