"""A local HTTP server that answers like SendGrid's and Twilio's APIs and records every request,
so tests drive the real SDKs without leaving the machine.

    with FakeProviderServer() as server:
        settings = settings.model_copy(update={"sendgrid_api_host": server.url, "twilio_api_base": server.url})
        server.answer_next(500, {"errors": [{"message": "try again"}]})  # the next request, whatever its path
        server.answer_next(CannedResponse(504, delay=2.0))                 # answered late: the client times out
        ...                                                             # later requests: the provider's success
        assert server.requests[0].path == "/v3/mail/send"

Routes answered with success (unless a canned response is queued):
  POST /v3/mail/send                                   -> 202, header X-Message-Id
  POST /2010-04-01/Accounts/{sid}/Messages.json        -> 201, JSON message resource (sid SM..., status queued)
  POST /2010-04-01/Accounts/{sid}/Calls.json           -> 201, JSON call resource (sid CA..., status queued)
  GET  /2010-04-01/Accounts/{sid}/Messages.json         -> 200, the texts taken so far (newest first; To/From
                                                           filter), never a canned answer; a canned answer
                                                           with accepts=True counts as taken
  POST /v2/payments                                    -> 201, Mollie payment (id tr_..., status open)
  GET  /v2/payments/{id}                               -> 200, that payment (status as set by `settle`), else 404
Anything else is recorded and answered 404, so a wrong URL shows up as a failing test.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from email.utils import format_datetime
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

TWILIO_RESOURCE = re.compile(r"^/2010-04-01/Accounts/(?P<account>AC[0-9a-fA-F]{32})/(?P<kind>Messages|Calls)\.json$")


@dataclass
class CannedResponse:
    status: int
    body: dict | None = None  # sent as JSON; None: an empty body
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering (a provider that hangs)
    accepts: bool = False  # the provider took the request all the same (e.g. it answers too late)


@dataclass
class RecordedRequest:
    method: str
    path: str  # with the query string, as sent
    headers: dict[str, str]
    body: bytes
    response: CannedResponse | None = None  # what the server answered

    @property
    def route(self) -> str:
        """The path without the query string."""
        return urlsplit(self.path).path

    def header(self, name: str) -> str | None:
        """A header by name, case-insensitively."""
        return next((value for key, value in self.headers.items() if key.lower() == name.lower()), None)

    def json(self) -> dict:
        return json.loads(self.body)

    @property
    def message_id(self) -> str | None:
        """dunflow's message id, from the status callback URL a Twilio request carries."""
        callback = self.form().get("StatusCallback", "") if self.body else ""
        return parse_qs(urlsplit(callback).query).get("message_id", [None])[0]

    def form(self) -> dict[str, str]:
        """A form-encoded body (Twilio's), one value per field."""
        return {key: values[0] for key, values in parse_qs(self.body.decode(), keep_blank_values=True).items()}


def twilio_error(code: int, message: str, status: int = 400) -> CannedResponse:
    """An error as Twilio's 2010-04-01 API answers it."""
    return CannedResponse(status, {"code": code, "message": message, "status": status,
                                   "more_info": f"https://www.twilio.com/docs/errors/{code}"})


def sendgrid_error(message: str, status: int = 400, field_name: str | None = None) -> CannedResponse:
    """An error as SendGrid's v3 API answers it."""
    return CannedResponse(status, {"errors": [{"message": message, "field": field_name, "help": None}]})


def _now_rfc2822() -> str:
    return format_datetime(datetime.now(timezone.utc), usegmt=True)


def _success(method: str, path: str, body: bytes) -> CannedResponse:
    if method == "POST" and path == "/v3/mail/send":
        return CannedResponse(202, None, {"X-Message-Id": secrets.token_urlsafe(16)})
    twilio = TWILIO_RESOURCE.match(path) if method == "POST" else None
    if twilio is None:
        return CannedResponse(404, {"code": 20404, "message": f"The requested resource {path} was not found",
                                    "status": 404})
    form = {key: values[0] for key, values in parse_qs(body.decode()).items()}
    account, kind = twilio["account"], twilio["kind"]
    sid = ("SM" if kind == "Messages" else "CA") + secrets.token_hex(16)
    now = _now_rfc2822()
    resource = {
        "sid": sid, "account_sid": account, "status": "queued",
        "to": form.get("To"), "from": form.get("From"),
        "date_created": now, "date_updated": now,
        "uri": f"/2010-04-01/Accounts/{account}/{kind}/{sid}.json",
    }
    if kind == "Messages":
        resource |= {"body": form.get("Body"), "num_segments": "1", "direction": "outbound-api",
                     "api_version": "2010-04-01", "price": None, "error_code": None, "error_message": None}
    else:
        resource |= {"direction": "outbound-api", "api_version": "2010-04-01", "start_time": None,
                     "end_time": None, "duration": None, "price": None}
    return CannedResponse(201, resource)


class FakeProviderServer:
    """Records every request; answers queued canned responses first (in order), then success."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._queued: list[CannedResponse] = []
        self._payments: dict[str, dict] = {}  # Mollie payments by id
        self._texts: list[dict] = []  # the Twilio messages taken, newest first, for the list route
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                recorded = RecordedRequest(self.command, self.path, dict(self.headers.items()), body)
                with server._lock:
                    path = urlsplit(self.path).path
                    listing = server._twilio_list(self.command, path, self.path)  # lookups take no canned answer
                    answer = server._queued.pop(0) if server._queued and listing is None else None
                    recorded.response = listing or answer or server._mollie(self.command, path, body) or _success(
                        self.command, path, body)
                    if answer is None or answer.accepts:
                        server._keep_text(self.command, path, body, recorded.response)
                    server._requests.append(recorded)
                answer = recorded.response
                time.sleep(answer.delay)
                payload = b"" if answer.body is None else json.dumps(answer.body).encode()
                try:
                    self._answer(answer, payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (a delayed answer)

            def _answer(self, answer: CannedResponse, payload: bytes) -> None:
                self.send_response(answer.status)
                if answer.body is not None:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle  # noqa: N815 (the stdlib's names)

            def log_message(self, *_args) -> None:
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._http.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._http.server_address[1]}"
        self._thread = threading.Thread(target=self._http.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-provider-server", daemon=True)

    def __enter__(self) -> "FakeProviderServer":
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

    def answer_next(self, status_or_response: int | CannedResponse, body: dict | None = None,
                    headers: dict[str, str] | None = None) -> None:
        """Queue the answer to the next request that has no queued answer yet, whatever its path."""
        if isinstance(status_or_response, CannedResponse):
            response = status_or_response
        else:
            response = CannedResponse(status_or_response, body, dict(headers or {}))
        with self._lock:
            self._queued.append(response)

    def _mollie(self, method: str, path: str, body: bytes) -> CannedResponse | None:
        """Mollie's payments API, with the payments it made kept (called under the lock)."""
        if method == "POST" and path == "/v2/payments":
            created = json.loads(body)
            payment_id = "tr_" + secrets.token_hex(5)
            self._payments[payment_id] = created | {
                "resource": "payment", "id": payment_id, "mode": "test", "status": "open",
                "createdAt": datetime.now(timezone.utc).isoformat(),
                "_links": {"checkout": {"href": f"{self.url}/checkout/{payment_id}", "type": "text/html"}}}
            return CannedResponse(201, self._payments[payment_id])
        if method == "GET" and path.startswith("/v2/payments/"):
            payment = self._payments.get(path.removeprefix("/v2/payments/"))
            if payment is None:
                return CannedResponse(404, {"status": 404, "title": "Not Found", "detail": "No payment exists"})
            return CannedResponse(200, payment)
        return None

    def _keep_text(self, method: str, path: str, body: bytes, response: CannedResponse) -> None:
        """A text Twilio took (answered or not): the list route shows it from then on."""
        match = TWILIO_RESOURCE.match(path) if method == "POST" else None
        if match is not None and match["kind"] == "Messages":
            resource = response.body if response.status == 201 else _success(method, path, body).body
            self._texts.insert(0, resource)

    def _twilio_list(self, method: str, path: str, full_path: str) -> CannedResponse | None:
        """GET Messages.json: the texts taken, filtered by To and From like Twilio's list."""
        match = TWILIO_RESOURCE.match(path) if method == "GET" else None
        if match is None or match["kind"] != "Messages":
            return None
        query = {key: values[0] for key, values in parse_qs(urlsplit(full_path).query).items()}
        texts = [text for text in self._texts
                 if text["to"] == query.get("To", text["to"]) and text["from"] == query.get("From", text["from"])]
        return CannedResponse(200, {"messages": texts[:int(query.get("PageSize", 50))], "next_page_uri": None,
                                    "uri": full_path, "page": 0, "page_size": 50, "first_page_uri": full_path,
                                    "previous_page_uri": None, "start": 0, "end": len(texts)})

    def settle(self, payment_id: str, status: str) -> None:
        """What the debtor did at Mollie's checkout: `paid`, `failed`, `canceled`, `expired`."""
        with self._lock:
            payment = self._payments[payment_id]
            payment["status"] = status
            if status == "paid":
                payment["paidAt"] = datetime.now(timezone.utc).isoformat()

    @property
    def pending_answers(self) -> int:
        with self._lock:
            return len(self._queued)
