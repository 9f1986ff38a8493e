"""dunflow's own Prometheus metrics. The API serves them at /metrics; a worker on its metrics
port (DUNFLOW_METRICS_PORT). The Temporal SDK's metrics (task latencies, slots, cache) come
from the worker's Temporal runtime on DUNFLOW_TEMPORAL_METRICS_PORT.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

CASES_STARTED = Counter("dunflow_cases_started", "Collection workflows started")
MESSAGES_SENT = Counter("dunflow_messages_sent", "Messages handed to a provider, by outcome",
                        ["channel", "provider", "outcome"])  # outcome: sent | refused | error | opted_out
SIGNALS_RECEIVED = Counter("dunflow_signals_received", "Signals accepted for a case (payments, disputes, ...)",
                           ["signal"])
WEBHOOK_REJECTED = Counter("dunflow_webhook_verification_failures", "Provider webhooks refused: signature "
                           "missing or wrong", ["provider"])
PROVIDER_SECONDS = Histogram("dunflow_provider_seconds", "Time a provider took to accept a message",
                             ["channel", "provider"], buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
