"""A local HTTP server that answers like SendGrid's and Twilio's APIs and records every request,
so tests drive the real SDKs without leaving the machine."""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        return {key: values[0] for key, values in parse_qs(self.body.decode()).items()}


@dataclass
class CannedResponse:
    status: int
    body: dict
    headers: dict[str, str] = field(default_factory=dict)


def _success_for(path: str) -> CannedResponse:
    if path.startswith("/v3/mail/send"):
        return CannedResponse(202, {}, {"X-Message-Id": f"sg-{uuid.uuid4().hex[:12]}"})
    kind = "CA" if path.endswith("/Calls.json") else "SM"
    return CannedResponse(201, {"sid": f"{kind}{uuid.uuid4().hex}", "status": "queued"})


class FakeProviderServer:
    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self.queued: list[CannedResponse] = []  # answered first, in order; then success
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                server.requests.append(RecordedRequest("POST", self.path, dict(self.headers), body))
                answer = server.queued.pop(0) if server.queued else _success_for(self.path)
                payload = json.dumps(answer.body).encode()
                self.send_response(answer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *_args) -> None:
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._http.server_address[1]}"
        self._thread = threading.Thread(target=self._http.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> "FakeProviderServer":
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._http.shutdown()
        self._http.server_close()

    def answer_next(self, status: int, body: dict) -> None:
        self.queued.append(CannedResponse(status, body))
