"""Connecting to Temporal the same way everywhere: pydantic payloads, the configured namespace."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from dunflow.settings import Settings


async def connect(settings: Settings, lazy: bool = False) -> Client:
    """`lazy`: connect on first use, so a process can start before Temporal is up."""
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
        lazy=lazy,
    )
