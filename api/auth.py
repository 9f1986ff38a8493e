"""Every /api route needs an API key (`Authorization: Bearer <key>`) with the route's scope."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from api.errors import ApiError
from dunflow.apikeys import allows, find_active_key
from dunflow.store import ApiKey

bearer = HTTPBearer(auto_error=False, description="an API key made with `dunflow apikey create`")
KEY_COOKIE = "dunflow_key"  # set by /codec/session for the Temporal UI, which cannot send headers


def require_scope(scope: str, cookie: bool = False) -> Callable:
    """`cookie`: a key in the KEY_COOKIE cookie counts too."""
    def check(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> ApiKey:
        presented = credentials.credentials if credentials else request.cookies.get(KEY_COOKIE) if cookie else None
        if not presented:
            raise ApiError(401, "an API key is required: send `Authorization: Bearer <key>` "
                                "(make one with `dunflow apikey create`)", headers={"WWW-Authenticate": "Bearer"})
        with Session(request.app.state.engine) as session:
            key = find_active_key(session, presented)
        if key is None:
            raise ApiError(401, "this API key is unknown or revoked", headers={"WWW-Authenticate": "Bearer"})
        if not allows(key, scope):
            raise ApiError(403, f"this API key ({key.name}) lacks the scope {scope!r} this route needs; "
                                f"it has: {key.scopes}")
        return key

    check.required_scope = scope  # lets a test walk the routes and find the check
    return Depends(check)
