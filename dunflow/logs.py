"""Logging set-up: readable text by default, one JSON object per line for log collectors
(DUNFLOW_LOG_FORMAT=json), with the case and workflow ids when a record concerns a case."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone

IDS = ("case_id", "workflow_id", "activity_type", "workflow_type")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def case_ids(record: logging.LogRecord) -> dict[str, str]:
    """Ids given as `extra=`, or found in the context the Temporal SDK's loggers attach."""
    found = {name: str(getattr(record, name)) for name in IDS if getattr(record, name, None)}
    for context in ("temporal_activity", "temporal_workflow"):
        details = getattr(record, context, None)
        if isinstance(details, dict):
            for name in IDS:
                if details.get(name):
                    found.setdefault(name, str(details[name]))
    workflow_id = found.get("workflow_id", "")
    if "case_id" not in found and workflow_id.startswith("case-"):
        found["case_id"] = workflow_id.removeprefix("case-")
    return found


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **case_ids(record),
        }
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(log_format: str = "text", level: int = logging.INFO) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
