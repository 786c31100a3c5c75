"""Who is asking: a bearer token or a console session cookie resolved to a
user, as the actor every manager call of the request runs as (role
`authenticated`, under RLS)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Depends, Request
from pydantic import BaseModel

from odooops.db import Actor, Database
from odooops.errors import CsrfRejected, Forbidden, PayloadTooLarge, Unauthenticated
from odooops.managers.sessions import COOKIE, Sessions, csrf_matches
from odooops.managers.tokens import Tokens

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class Error(BaseModel):
    """Every error has this shape."""

    ok: Literal[False]
    error: str
    code: str


# documented on every route, so clients and the schema checks know the error shape
ERRORS: dict[int | str, dict[str, Any]] = {status: {"model": Error} for status in (401, 403, 404, 409, 413, 422, 429)}


def db(request: Request) -> Database:
    return request.app.state.db


async def actor(request: Request) -> Actor:
    """A bearer token wins over a cookie: whoever sends a header chose it, and a
    cross-site form cannot send one, so token requests need no CSRF token."""
    request.state.session = None
    header = request.headers.get("authorization")
    if header is not None:
        return await _token_actor(request, header)
    cookie = request.cookies.get(COOKIE)
    if cookie:
        return await session_actor(request, cookie)
    raise Unauthenticated()


async def _token_actor(request: Request, header: str) -> Actor:
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated()
    found = await Tokens(request.app.state.db, Actor.service()).resolve(token.strip())
    if found is None:
        raise Unauthenticated("that token is not valid: it is unknown, revoked or expired")
    request.state.scopes = found["scopes"]
    return Actor.user(found["user_id"])


async def session_actor(request: Request, cookie: str) -> Actor:
    """The user of a console session (read and write); a request that may
    change something must also carry the session's CSRF token."""
    found = await Sessions(request.app.state.db, Actor.service()).resolve(cookie)
    if found is None:
        raise Unauthenticated("your session has ended: sign in again")
    if request.method not in SAFE_METHODS and not csrf_matches(cookie, await _sent_csrf(request)):
        raise CsrfRejected()
    request.state.scopes = ["read", "write"]
    request.state.session = {"id": found["session_id"], "token": cookie, "expires_at": found["expires_at"]}
    return Actor.user(found["user_id"])


async def _sent_csrf(request: Request) -> str | None:
    sent = request.headers.get("x-csrf-token")
    if sent is None and request.headers.get("content-type", "").lower().startswith(FORM_TYPES):
        value = (await request.form()).get("csrf_token")
        sent = value if isinstance(value, str) else None
    return sent


async def writer(request: Request, who: Actor = Depends(actor)) -> Actor:
    """The actor, when its token may change things."""
    if "write" not in request.state.scopes:
        raise Forbidden("this token may only read: create one with the write scope")
    return who


# what a route takes: the database, and who asks (to read, or to change things)
Db = Annotated[Database, Depends(db)]
Reader = Annotated[Actor, Depends(actor)]
Writer = Annotated[Actor, Depends(writer)]


async def read_body(request: Request, limit: int, what: str) -> bytes:
    """The raw body, refused with 413 as soon as it passes `limit` bytes."""
    too_large = PayloadTooLarge(f"{what} is at most {limit // (1024 * 1024)} MiB")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)
