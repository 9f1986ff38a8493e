"""Paths of the Temporal binaries that come with the project's Python packages."""

from __future__ import annotations

from dunflow.devstack import find_binary


def temporal_test_server() -> str:
    return find_binary("temporal-test-server")


def temporal_cli() -> str:
    return find_binary("temporal")
