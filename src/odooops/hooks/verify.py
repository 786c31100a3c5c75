"""Is a delivery really from the host? Checked over the raw body bytes,
before any parsing, and compared in constant time."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping

from odooops.errors import InvalidInput, Unauthenticated

HOSTS = ("github", "gitlab", "gitea")


def _header(headers: Mapping[str, str], *names: str) -> str:
    lowered = {k.lower(): v for k, v in headers.items()}
    for name in names:
        if lowered.get(name.lower()):
            return lowered[name.lower()].strip()
    return ""


def _hmac_hex(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(host: str, headers: Mapping[str, str], body: bytes, secret: str) -> None:
    """Raise Unauthenticated unless the delivery carries the hook's secret as
    its host proves it: GitHub and Gitea/Forgejo an HMAC-SHA256 of the body,
    GitLab the secret itself."""
    if host == "github":
        sent = _header(headers, "X-Hub-Signature-256")
        expected = "sha256=" + _hmac_hex(secret, body)
    elif host == "gitea":
        sent = _header(headers, "X-Gitea-Signature", "X-Forgejo-Signature")
        expected = _hmac_hex(secret, body)
    elif host == "gitlab":
        sent = _header(headers, "X-Gitlab-Token")
        expected = secret
    else:
        raise InvalidInput(f"unknown git host {host!r}; one of {', '.join(HOSTS)}")
    if not sent:
        raise Unauthenticated(f"the delivery is not signed: the {host} hook needs its secret")
    if not hmac.compare_digest(sent.encode(), expected.encode()):
        raise Unauthenticated("the delivery's signature does not match the hook's secret")


def delivery_id(host: str, headers: Mapping[str, str]) -> str:
    """The host's id of a delivery (GitLab: Idempotency-Key, stable when redelivered)."""
    names = {"github": ("X-GitHub-Delivery",), "gitlab": ("Idempotency-Key",),
             "gitea": ("X-Gitea-Delivery", "X-Forgejo-Delivery")}[host]
    return _header(headers, *names)


def event_name(host: str, headers: Mapping[str, str]) -> str:
    names = {"github": ("X-GitHub-Event",), "gitlab": ("X-Gitlab-Event",),
             "gitea": ("X-Gitea-Event", "X-Forgejo-Event")}[host]
    return _header(headers, *names)


def hook_secret(key: str, hook_id: object, salt: str) -> str:
    """A hook's secret, derived from the server's key so that no copy of it is
    ever stored: rotating the hook's salt gives it a new one."""
    digest = hmac.new(key.encode(), f"hook:{hook_id}:{salt}".encode(), hashlib.sha256).digest()
    return "ohs_" + base64.urlsafe_b64encode(digest).decode().rstrip("=")


def signed_headers(host: str, secret: str, body: bytes, event: str, delivery: str) -> dict[str, str]:
    """The headers `host` would send with this delivery: what a self-hosted git
    server's hook (see `odooops hook post-receive`) sends to look like one."""
    if host == "github":
        return {"X-GitHub-Event": event, "X-GitHub-Delivery": delivery,
                "X-Hub-Signature-256": "sha256=" + _hmac_hex(secret, body)}
    if host == "gitea":
        return {"X-Gitea-Event": event, "X-Gitea-Delivery": delivery, "X-Gitea-Signature": _hmac_hex(secret, body)}
    if host == "gitlab":
        return {"X-Gitlab-Event": event, "Idempotency-Key": delivery, "X-Gitlab-Token": secret}
    raise InvalidInput(f"unknown git host {host!r}; one of {', '.join(HOSTS)}")
