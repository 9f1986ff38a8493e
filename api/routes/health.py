"""Liveness, readiness and Prometheus metrics for orchestrators and monitoring; public, they
reveal no debtor data (counts and timings only)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

router = APIRouter(tags=["health"])
CHECK_SECONDS = 3


@router.get("/healthz")
def healthz() -> dict:
    """The process is up and answering."""
    return {"status": "ok"}


def _store_ready(request: Request) -> str | None:
    try:
        with request.app.state.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as error:  # any driver error means: not ready
        return f"the store is unreachable ({type(error).__name__})"
    return None


async def _temporal_ready(request: Request) -> str | None:
    address = request.app.state.settings.temporal_address
    try:
        await asyncio.wait_for(request.app.state.temporal.service_client.check_health(), CHECK_SECONDS)
    except Exception:  # the lazy client raises a plain RuntimeError when it cannot connect
        return f"Temporal is unreachable at {address}"
    return None


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """Ready to serve: the store and Temporal both answer. 503 names the one that does not."""
    checks = {"store": await asyncio.to_thread(_store_ready, request), "temporal": await _temporal_ready(request)}
    problems = [{"where": name, "problem": problem} for name, problem in checks.items() if problem]
    if problems:
        summary = "; ".join(p["problem"] for p in problems)
        return JSONResponse(status_code=503, content={"error": f"not ready: {summary}", "problems": problems,
                                                      "checks": {k: v or "ok" for k, v in checks.items()}})
    return JSONResponse({"status": "ready", "checks": {name: "ok" for name in checks}})


@router.get("/metrics", include_in_schema=False)
def metrics() -> Response:
    """Prometheus metrics of this process (and of an in-process worker, as in `dunflow dev` tests)."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
