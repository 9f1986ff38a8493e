"""Bank statements: upload a CAMT.053 or MT940 file; matched credits become payments."""

from __future__ import annotations

from fastapi import APIRouter, Request

from api.auth import require_scope
from api.deps import LazyTemporalDep, SessionDep
from api.errors import ApiError
from api.statements import import_statement
from dunflow.statements import StatementError

router = APIRouter(prefix="/api/statements", tags=["statements"])

MAX_BYTES = 20 * 1024 * 1024
ACCEPTED_TYPES = ("application/xml", "text/xml", "text/plain", "application/octet-stream")
_FILE = {"schema": {"type": "string", "format": "binary"}}


@router.post("", dependencies=[require_scope("signals:write")], openapi_extra={
    "requestBody": {"required": True, "content": {kind: _FILE for kind in ACCEPTED_TYPES}}})
async def post_statement(request: Request, session: SessionDep, client: LazyTemporalDep) -> dict:
    """Import a bank statement (the raw file as the body). Credits naming the invoice number of one
    open case are recorded as its payments; the rest is listed with a reason. Importing the same
    file again changes nothing: its lines come back as duplicates."""
    _check_content_type(request.headers.get("content-type", ""))
    raw = await _read_body(request)
    try:
        return await import_statement(session, client, raw)
    except StatementError as error:
        raise ApiError(422, str(error), where="body") from None


def _check_content_type(header: str) -> None:
    kind = header.split(";", 1)[0].strip().lower()
    if kind and kind not in ACCEPTED_TYPES:
        raise ApiError(415, f"content-type {kind} is not a statement file; send the raw file as "
                            f"{', '.join(ACCEPTED_TYPES)}", where="content-type")


async def _read_body(request: Request) -> bytes:
    """The body, refused with 413 as soon as it passes the limit."""
    too_large = ApiError(413, f"the statement is larger than {MAX_BYTES // (1024 * 1024)} MB; split it", where="body")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BYTES:
        raise too_large
    received = bytearray()
    async for chunk in request.stream():
        received += chunk
        if len(received) > MAX_BYTES:
            raise too_large
    if not received:
        raise ApiError(422, "the body is empty: send the statement file itself", where="body")
    return bytes(received)
