"""What the odooops_connect server-wide module does, imitated (its Python is
never imported, as no module's is): its own copy of the check of the
X-OdooOps-Connect header, as src/odooops/environments/connect.py defines it
(v1.<login base64url>.<expires>.<nonce hex>.<HMAC-SHA256 hex>, keyed with
ODOOOPS_CONNECT_SECRET, refused expired or more than 300 s ahead)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import time

HEADER = 'X-OdooOps-Connect'
VARIABLE = 'ODOOOPS_CONNECT_SECRET'
MODULE = 'odooops_connect'
MAX_AHEAD = 300
_LOGIN = re.compile(r"[A-Za-z0-9_-]+")
_EXPIRES = re.compile(r"[0-9]{1,12}")
_NONCE = re.compile(r"[0-9a-f]{16,64}")
_MAC = re.compile(r"[0-9a-f]{64}")


def verify(secret, value, now=None):
    if not secret or not isinstance(value, str):
        return None
    parts = value.split(".")
    if len(parts) != 5 or parts[0] != "v1":
        return None
    _, encoded, expires, nonce, mac = parts
    if not (_LOGIN.fullmatch(encoded) and _EXPIRES.fullmatch(expires) and _NONCE.fullmatch(nonce)
            and _MAC.fullmatch(mac)):
        return None
    expected = hmac.new(secret.encode(), value.rpartition(".")[0].encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, mac):
        return None
    moment = int(time.time() if now is None else now)
    if not moment < int(expires) <= moment + MAX_AHEAD:
        return None
    try:
        return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
