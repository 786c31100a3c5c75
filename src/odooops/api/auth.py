"""/api/v1: signing in and out of the console, the caller, and their
personal API tokens."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response
from pydantic import ValidationError

from odooops.api.deps import ERRORS, FORM_TYPES, Db, Reader, Writer, session_actor
from odooops.db import Actor
from odooops.errors import InvalidInput, Unauthenticated
from odooops.managers.sessions import COOKIE, LIFETIME_SECONDS, Sessions, csrf_token
from odooops.managers.tokens import Tokens
from odooops.managers.users import Users
from odooops.models import LoginIn, TokenIn
from odooops.web import client_address, same_site, secure_cookie

router = APIRouter(prefix="/api/v1", responses=ERRORS)


_LOGIN_SCHEMA = LoginIn.model_json_schema()
LOGIN_BODY = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": _LOGIN_SCHEMA},
    "application/x-www-form-urlencoded": {"schema": _LOGIN_SCHEMA}}}}


async def _credentials(request: Request) -> LoginIn:
    """The email and password, from JSON or from an HTML form."""
    kind = request.headers.get("content-type", "").lower()
    if kind.startswith(FORM_TYPES):
        raw = dict((await request.form()).items())
    elif not kind or kind.startswith("application/json"):
        try:
            raw = await request.json()
        except ValueError:
            raise InvalidInput("send the email and password as JSON or as a form") from None
    else:
        raise InvalidInput("send the email and password as JSON or as a form")
    try:
        return LoginIn.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]  # its message only: the input may be a password
        where = ".".join(str(p) for p in first["loc"])
        raise InvalidInput(f"{where}: {first['msg']}" if where else first["msg"]) from None


def _private(response: Response) -> None:
    response.headers["Cache-Control"] = "no-store"


@router.post("/auth/login", openapi_extra=LOGIN_BODY, tags=["auth"], dependencies=[Depends(same_site)])
async def login(request: Request, response: Response, db: Db) -> dict:
    """Sign in to the console with an email and password (JSON or a form):
    sets the `odooops_session` cookie and returns the CSRF token to send with
    every request that changes something."""
    body = await _credentials(request)
    found = await Sessions(db, Actor.service()).login(
        body.email, body.password, client_address(request), request.headers.get("user-agent", "")[:500])
    response.set_cookie(COOKIE, found["token"], max_age=LIFETIME_SECONDS, path="/", httponly=True,
                        samesite="lax", secure=secure_cookie(request))
    _private(response)
    return {"ok": True, "user": found["user"], "csrf_token": found["csrf_token"], "expires_at": found["expires_at"]}


@router.post("/auth/logout", tags=["auth"])
async def logout(request: Request, response: Response, db: Db) -> dict:
    """End the console session (with its CSRF token) and clear the cookie;
    without a live session there is nothing to end and it still answers ok."""
    cookie = request.cookies.get(COOKIE)
    if cookie:
        try:
            who = await session_actor(request, cookie)
        except Unauthenticated:
            who = None
        if who is not None:
            await Sessions(db, who).end(request.state.session["id"])
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax", secure=secure_cookie(request))
    return {"ok": True}


@router.get("/auth/session", tags=["auth"])
async def session(request: Request, response: Response, db: Db, who: Reader) -> dict:
    """The console session: its user, CSRF token and absolute expiry."""
    current = request.state.session
    if current is None:
        raise Unauthenticated("no console session: this request came with a token; sign in at /api/v1/auth/login")
    _private(response)
    return {"ok": True, "user": await Users(db, who).me(), "csrf_token": csrf_token(current["token"]),
            "expires_at": current["expires_at"]}


@router.get("/me", tags=["auth"])
async def me(db: Db, who: Reader) -> dict:
    """Who the token or session belongs to."""
    return await Users(db, who).me()


def _shown(row: dict) -> dict:
    """A token as its owner sees it: never its hash."""
    return {"id": row["id"], "name": row["name"], "scopes": row["scopes"], "expires_at": row["expires_at"],
            "last_used_at": row.get("last_used_at"), "created_at": row["created_at"],
            "revoked": row.get("revoked_at") is not None}


@router.get("/tokens", tags=["tokens"])
async def list_tokens(db: Db, who: Reader) -> list[dict]:
    """The caller's personal API tokens, revoked ones included."""
    return [_shown(r) for r in await Tokens(db, who).list_all(who.me())]


@router.post("/tokens", status_code=201, tags=["tokens"])
async def create_token(body: TokenIn, response: Response, db: Db, who: Writer) -> dict:
    """A new token for the caller; `token` is its only clear copy."""
    scopes = sorted(set(body.scopes) | {"read"})
    row, token = await Tokens(db, who).create(None, body.name, scopes, body.expires_in_days)
    _private(response)
    return {**_shown(row), "token": token}


@router.delete("/tokens/{token_id}", tags=["tokens"])
async def revoke_token(token_id: UUID, db: Db, who: Writer) -> dict:
    """Revoke one of the caller's tokens; anyone else's is not found."""
    return _shown(await Tokens(db, who).revoke(who.me(), token_id))
