"""Who is asking: a bearer token resolved to a user, as the actor every
manager call of the request runs as (role `authenticated`, under RLS)."""

from __future__ import annotations

from typing import Literal

from fastapi import Depends, Request
from pydantic import BaseModel

from odooops.db import Actor, Database
from odooops.errors import Forbidden, Unauthenticated
from odooops.managers.tokens import Tokens


class Error(BaseModel):
    """Every error has this shape."""

    ok: Literal[False]
    error: str
    code: str


# documented on every route, so clients and the schema checks know the error shape
ERRORS = {status: {"model": Error} for status in (401, 403, 404, 409, 413, 422, 429)}


def db(request: Request) -> Database:
    return request.app.state.db


async def actor(request: Request) -> Actor:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated()
    found = await Tokens(request.app.state.db, Actor.anonymous()).resolve(token.strip())
    if found is None:
        raise Unauthenticated("that token is not valid: it is unknown, revoked or expired")
    request.state.scopes = found["scopes"]
    return Actor.user(found["user_id"])


async def writer(request: Request, who: Actor = Depends(actor)) -> Actor:
    """The actor, when its token may change things."""
    if "write" not in request.state.scopes:
        raise Forbidden("this token may only read: create one with the write scope")
    return who
