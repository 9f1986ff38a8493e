"""Errors as JSON that say what was wrong and where, never a traceback."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from dunflow.signal_outbox import temporal_unreachable

log = logging.getLogger("dunflow.api")


class ApiError(Exception):
    def __init__(self, status_code: int, message: str, where: str | None = None,
                 headers: dict[str, str] | None = None, **extra):
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.where = where
        self.headers = headers
        self.extra = extra

    def body(self) -> dict:
        problem = {"where": self.where, "problem": self.message} if self.where else None
        return {"error": self.message, "problems": [problem] if problem else [], **self.extra}


def _where(error: dict) -> str:
    if error["type"] == "json_invalid":
        return "body"
    location = error["loc"]
    parts = [str(part) for part in location]
    if parts and parts[0] == "body":
        parts = parts[1:]
    return ".".join(parts) or "body"


def _problem_text(error: dict) -> str:
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "missing":
        return "is required"
    if error["type"] == "json_invalid":
        return f"the body is not valid JSON ({error.get('ctx', {}).get('error', 'syntax error')} at character {error['loc'][-1]})"
    return message


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, error: ApiError) -> JSONResponse:
        return JSONResponse(status_code=error.status_code, content=error.body(), headers=error.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(_request: Request, error: RequestValidationError) -> JSONResponse:
        problems = [{"where": _where(item), "problem": _problem_text(item)} for item in error.errors()]
        summary = "; ".join(f"{p['where']}: {p['problem']}" for p in problems)
        return JSONResponse(status_code=422, content={"error": f"invalid request: {summary}", "problems": problems})

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> JSONResponse:
        if temporal_unreachable(error):
            return JSONResponse(status_code=503, content={
                "error": f"Temporal at {request.app.state.settings.temporal_address} is unreachable or did not "
                         "answer in time; try again", "problems": []})
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse(status_code=500, content={
            "error": "internal error: it has been logged; nothing was changed by this request", "problems": []})
