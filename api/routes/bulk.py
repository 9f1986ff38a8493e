"""Bulk intake of cases from a CSV or JSON-lines file."""

from __future__ import annotations

from fastapi import APIRouter, Request

from api.auth import require_scope
from api.bulk import BulkFileError, import_cases
from api.deps import SettingsDep, TemporalDep
from api.errors import ApiError

router = APIRouter(prefix="/api/cases", tags=["cases"])
MAX_UPLOAD_BYTES = 100 * 1024 * 1024


@router.post("/bulk", dependencies=[require_scope("cases:write")], openapi_extra={
    "requestBody": {"content": {"text/csv": {"schema": {"type": "string"}},
                                "application/x-ndjson": {"schema": {"type": "string"}}}}})
async def bulk_intake(request: Request, client: TemporalDep, settings: SettingsDep) -> dict:
    """Open many cases at once from the file in the body: CSV (header: invoice_number, amount_cents
    or amount, currency, issued_on, due_on, debtor_id, debtor_name, email, phone, address, language,
    debtor_type, flow; `,` or `;` separated) or JSON lines (one case body per line, as POST /api/cases).
    Bad rows are rejected with their number and reason; the good ones start. Importing the same
    file again starts nothing twice."""
    raw = await request.body()
    if len(raw) > MAX_UPLOAD_BYTES:
        raise ApiError(413, f"the file is larger than {MAX_UPLOAD_BYTES // 2**20} MB; split it", where="body")
    try:
        summary = await import_cases(request.app.state.engine, client, settings, raw,
                                     request.headers.get("content-type", ""))
    except BulkFileError as error:
        raise ApiError(422, str(error), where="body") from None
    return summary.as_dict()
