"""A local HTTP server that stands in for another system receiving dunflow's outbound events.

    with WebhookReceiver() as receiver:
        receiver.answer_next(500)            # the next POST fails; later ones answer 200
        ...
        assert receiver.requests[0].json()["type"] == "case.started"
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.support.fake_provider_server import RecordedRequest


class WebhookReceiver:
    """Records every request; answers queued status codes first (in order), then 200."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._queued: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    status = receiver._queued.pop(0) if receiver._queued else 200
                    receiver._requests.append(RecordedRequest("POST", self.path, dict(self.headers.items()), body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args) -> None:
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._http.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._http.server_address[1]}/dunflow-events"
        self._thread = threading.Thread(target=self._http.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="webhook-receiver", daemon=True)

    def __enter__(self) -> "WebhookReceiver":
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._thread.join(timeout=5)

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request so far, in the order they arrived (a copy)."""
        with self._lock:
            return list(self._requests)

    def answer_next(self, status: int) -> None:
        """Queue the status code of the next request that has none queued yet."""
        with self._lock:
            self._queued.append(status)
