"""The codec endpoint for the Temporal UI: it decrypts payloads for operators, so the UI shows a
case's input and state, while Temporal itself stores them encrypted.

The Temporal UI POSTs `{"payloads": [...]}` (metadata and data base64, protobuf JSON) to
`<endpoint>/decode` and `<endpoint>/encode`. Only keys with the `operator` (or `admin`) scope may
call it, by `Authorization: Bearer` or by the cookie `/codec/session` sets for the UI.
"""

from __future__ import annotations

import binascii

from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from google.protobuf import json_format
from pydantic import BaseModel
from sqlmodel import Session
from temporalio.api.common.v1 import Payload

from api.auth import KEY_COOKIE, require_scope
from api.errors import ApiError
from dunflow.apikeys import allows, find_active_key
from dunflow.codec import PayloadKeyError, codec_for

router = APIRouter(prefix="/codec", tags=["codec"])
SCOPE = "operator"


class Payloads(BaseModel):
    payloads: list[dict]


def _codec(request: Request):
    codec = codec_for(request.app.state.settings.effective_payload_keys)
    if codec is None:
        raise ApiError(409, "payload encryption is off: there is nothing to decode; set DUNFLOW_PAYLOAD_KEYS")
    return codec


def _parse(body: Payloads) -> list[Payload]:
    parsed = []
    for index, item in enumerate(body.payloads):
        try:
            parsed.append(json_format.ParseDict(item, Payload()))
        except (json_format.ParseError, binascii.Error, TypeError) as error:
            raise ApiError(400, "a payload is not Temporal's JSON form (metadata and data in base64)",
                           where=f"payloads.{index}", detail=str(error)) from None
    return parsed


def _answer(payloads: list[Payload]) -> dict:
    return {"payloads": [json_format.MessageToDict(payload) for payload in payloads]}


@router.post("/decode", dependencies=[require_scope(SCOPE, cookie=True)])
async def decode(request: Request, body: Payloads) -> dict:
    """Decrypt payloads (for the Temporal UI)."""
    codec = _codec(request)
    try:
        return _answer(await codec.decode(_parse(body)))
    except PayloadKeyError as error:
        raise ApiError(422, str(error)) from None


@router.post("/encode", dependencies=[require_scope(SCOPE, cookie=True)])
async def encode(request: Request, body: Payloads) -> dict:
    """Encrypt payloads (the Temporal UI uses it to send signals with input)."""
    return _answer(await _codec(request).encode(_parse(body)))


SIGN_IN_PAGE = """<!doctype html><title>dunflow codec sign-in</title>
<h1>Decode payloads in the Temporal UI</h1>
<p>{message}</p>
<form method="post" action="/codec/session">
<label>Operator API key <input type="password" name="key" size="50" autocomplete="off"></label>
<button>Sign in</button></form>
<p>The key needs the <code>operator</code> or <code>admin</code> scope. In the Temporal UI's codec settings,
switch on <em>Include cross-origin credentials</em>.</p>"""


@router.get("", response_class=HTMLResponse)
def sign_in_page() -> str:
    """A form that stores an operator key in a cookie, which the Temporal UI sends along."""
    return SIGN_IN_PAGE.format(message="Sign in once per browser; the key is kept in an HTTP-only cookie.")


@router.post("/session", response_class=HTMLResponse)
async def sign_in(request: Request) -> HTMLResponse:
    """Check an operator key (form field `key`) and keep it in an HTTP-only cookie for the codec calls."""
    key = parse_qs((await request.body()).decode(errors="replace")).get("key", [""])[0]
    with Session(request.app.state.engine) as session:
        row = find_active_key(session, key.strip()) if key.strip() else None
    if row is None or not allows(row, SCOPE):
        page = SIGN_IN_PAGE.format(message="That key is unknown, revoked or lacks the operator scope.")
        return HTMLResponse(page, status_code=403)
    response = HTMLResponse(SIGN_IN_PAGE.format(message=f"Signed in as {row.name}: the Temporal UI can decode now."))
    response.set_cookie(KEY_COOKIE, key.strip(), httponly=True, samesite="lax", max_age=12 * 3600,
                        secure=request.url.scheme == "https")
    return response


def cors_origins(spec: str) -> list[str]:
    return [origin.strip().rstrip("/") for origin in spec.split(",") if origin.strip()]


