"""Deterministic workflow code: CollectionWorkflow interprets a pinned flow definition."""
