"""A word after a plain form: what a POST did ("Project acme/crm created"),
said on the page its redirect leads to, once. It travels in a short-lived
cookie signed with the server key, so no other site and no link can make the
console say something it did not."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import TypedDict

from fastapi import Request, Response

from odooops.web import secure_cookie

COOKIE = "odooops_flash"
LIFETIME_SECONDS = 60  # long enough for a redirect, too short to turn up on a later visit
TONES = ("ok", "bad")


class Flash(TypedDict):
    message: str
    tone: str
    href: str  # where "Open" leads, or ""
    link: str  # that link's words


def _signature(request: Request, body: str) -> str:
    key = request.app.state.secret_key.reveal().encode()
    digest = hmac.new(key, b"odooops flash v1\0" + body.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode()


def tell(request: Request, response: Response, message: str, tone: str = "ok", href: str = "",
         link: str = "") -> Response:
    """Have the next page shown by this browser say `message` (with a link to
    `href`, a path of this site, when given)."""
    shown: Flash = {"message": message, "tone": tone if tone in TONES else "ok",
                    "href": href if href.startswith("/") and not href.startswith("//") else "", "link": link}
    body = base64.urlsafe_b64encode(json.dumps({**shown, "until": int(time.time()) + LIFETIME_SECONDS}).encode())
    value = body.decode() + "." + _signature(request, body.decode())
    response.set_cookie(COOKIE, value, max_age=LIFETIME_SECONDS, path="/", httponly=True, samesite="lax",
                        secure=secure_cookie(request))
    return response


def take(request: Request) -> Flash | None:
    """The word waiting for this page, if its cookie is ours and fresh."""
    value = request.cookies.get(COOKIE, "")
    body, _, signature = value.partition(".")
    if not body or not hmac.compare_digest(signature.encode(), _signature(request, body).encode()):
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(body.encode()))
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("until", 0) < time.time():
        return None
    return {"message": str(data.get("message", "")), "tone": str(data.get("tone", "ok")),
            "href": str(data.get("href", "")), "link": str(data.get("link", ""))}


def forget(request: Request, response: Response) -> None:
    """Said once: the page that shows it takes the cookie away."""
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax", secure=secure_cookie(request))
