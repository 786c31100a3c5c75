"""Who is looking at a page: the console session behind the cookie. Pages
redirect to the sign-in page when there is none."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request

from odooops.api.deps import session_actor
from odooops.db import Actor
from odooops.errors import Unauthenticated
from odooops.managers.sessions import COOKIE, csrf_token
from odooops.managers.users import Users


@dataclass(frozen=True)
class Visitor:
    actor: Actor
    user: dict
    csrf: str


class SignInRequired(Exception):
    """No live session: the page sends the visitor to sign in, and back after."""

    def __init__(self, back_to: str):
        super().__init__(back_to)
        self.location = "/login?next=" + quote(back_to, safe="/")


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this site, never another site."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


async def visitor(request: Request) -> Visitor:
    cookie = request.cookies.get(COOKIE)
    back_to = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if not cookie:
        raise SignInRequired(back_to)
    try:
        who = await session_actor(request, cookie)  # also checks the CSRF token of a POST
    except Unauthenticated:
        raise SignInRequired(back_to) from None
    found = Visitor(who, await Users(request.app.state.db, who).me(), csrf_token(cookie))
    request.state.visitor = found
    return found


# what a page takes: the signed-in visitor
Seen = Annotated[Visitor, Depends(visitor)]
