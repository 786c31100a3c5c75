""""Connect as": the header value the router sends upstream with `GET /odooops/connect`,
which the environment's Odoo (the odooops_connect server-wide module) checks
before it opens a session as that login.

    v1.<login, base64url without padding>.<expires, unix seconds>.<nonce, hex>.<HMAC-SHA256, hex>

The HMAC is over everything before its dot, keyed with the environment's
connect secret (ODOOOPS_CONNECT_SECRET in the Odoo process). A value whose
expiry has passed, or lies more than MAX_AHEAD seconds ahead, is refused:
a link is short-lived whatever the signer asked. The addon keeps its own copy
of `verify` (it runs in Odoo's Python, without odooops): change both together."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import time

VERSION = "v1"
MAX_AHEAD = 300  # seconds
_LOGIN = re.compile(r"[A-Za-z0-9_-]+")
_EXPIRES = re.compile(r"[0-9]{1,12}")
_NONCE = re.compile(r"[0-9a-f]{16,64}")
_MAC = re.compile(r"[0-9a-f]{64}")


def _mac(secret: str, payload: str) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def _now(now: float | None) -> int:
    return int(time.time() if now is None else now)


def sign(secret: str, login: str, ttl: int = 60, now: float | None = None) -> str:
    """A header value that lets `login` in for `ttl` seconds from `now`."""
    if not secret:
        raise ValueError("a connect secret is needed")
    if not login:
        raise ValueError("a login is needed")
    if not 0 < ttl <= MAX_AHEAD:
        raise ValueError(f"ttl must be 1 to {MAX_AHEAD} seconds")
    encoded = base64.urlsafe_b64encode(login.encode()).rstrip(b"=").decode()
    payload = f"{VERSION}.{encoded}.{_now(now) + ttl}.{secrets.token_hex(16)}"
    return f"{payload}.{_mac(secret, payload)}"


def verify(secret: str, value: str, now: float | None = None) -> str | None:
    """The login `value` lets in, or None: a bad signature, an expiry passed or
    too far ahead, or anything malformed (never an exception)."""
    if not secret or not isinstance(value, str):
        return None
    parts = value.split(".")
    if len(parts) != 5 or parts[0] != VERSION:
        return None
    _, encoded, expires, nonce, mac = parts
    if not (_LOGIN.fullmatch(encoded) and _EXPIRES.fullmatch(expires) and _NONCE.fullmatch(nonce)
            and _MAC.fullmatch(mac)):
        return None
    if not hmac.compare_digest(_mac(secret, value.rpartition(".")[0]), mac):
        return None
    moment = _now(now)
    if not moment < int(expires) <= moment + MAX_AHEAD:
        return None
    try:
        return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
