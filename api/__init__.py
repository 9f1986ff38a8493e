"""The HTTP API: cases, signals, messages and the outbox page."""
