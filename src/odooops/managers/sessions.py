"""Console sessions: an email and password (argon2) exchanged for a random
token kept in an HttpOnly cookie and stored only as its sha256. Failed logins
are counted and throttled in the database (see migration 0008)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from uuid import UUID

from odooops.db import Actor, Row, queries_beside
from odooops.errors import BadCredentials, NotFound, TooManyRequests
from odooops.managers import Manager
from odooops.managers.users import Users, verify_password

Q = queries_beside(__file__)
PREFIX = "oos_"
COOKIE = "odooops_session"
# The absolute lifetime set by ops.sessions' default (the idle one is 14 days):
# the cookie lasts as long, and the database decides when it stops working.
LIFETIME_SECONDS = 30 * 24 * 3600
_CSRF_LABEL = b"odooops csrf v1"


def session_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def csrf_token(session_token: str) -> str:
    """The CSRF token of a session: an HMAC keyed with the session token, so it
    is bound to the session, needs no storage, and no one without the cookie
    (not even a reader of the database) can compute it."""
    return hmac.new(session_token.encode(), _CSRF_LABEL, hashlib.sha256).hexdigest()


def csrf_matches(session_token: str, sent: str | None) -> bool:
    if not sent:
        return False
    return hmac.compare_digest(csrf_token(session_token).encode(), sent.encode())


class Sessions(Manager):
    """Run as the control plane (service_role) to sign in and resolve cookies,
    before the caller is known; as the user to sign out."""

    async def login(self, email: str, password: str, address: str, user_agent: str) -> dict:
        """A new session for the right email and password: the user, the clear
        session token (for the cookie only), its CSRF token and expiry."""
        attempt = await self.attempt(email, password, address)
        token = PREFIX + secrets.token_urlsafe(32)
        session = await self.row(Q["succeeded"], {
            "attempt_id": attempt["attempt_id"], "user_id": attempt["user_id"], "token_hash": session_hash(token),
            "address": address, "user_agent": user_agent})
        user = await Users(self.db, Actor.user(attempt["user_id"])).me()
        return {"user": user, "token": token, "csrf_token": csrf_token(token),
                "session_id": session["session_id"], "expires_at": session["expires_at"]}

    async def attempt(self, email: str, password: str, address: str, *,
                      throttled: str = "too many failed logins: wait before trying again",
                      wrong: str | None = None) -> Row:
        """An email's password checked as a login attempt is: recorded and
        throttled in the database, whatever asks. The attempt (user, id), or
        TooManyRequests / BadCredentials."""
        attempt = await self.row(Q["begin"], {"email": email, "address": address})
        if attempt["retry_after"]:
            # one message whoever is throttled, and by what: Retry-After says how long
            raise TooManyRequests(throttled, retry_after=attempt["retry_after"])
        # argon2 takes tens of milliseconds of CPU: not on the event loop
        if not await asyncio.to_thread(verify_password, attempt["password_hash"], password):
            raise BadCredentials(wrong)
        return attempt

    async def resolve(self, token: str) -> dict | None:
        """The user, session id and expiry a session token stands for, or None."""
        if not token.startswith(PREFIX):
            return None
        return await self.one(Q["resolve"], {"token_hash": session_hash(token)})

    async def end(self, session_id: UUID) -> None:
        """End one of the caller's own sessions."""
        if await self.one(Q["end"], {"id": session_id}) is None:
            raise NotFound("no such session")
