"""What the API and the console share about a request: where it comes from,
who sent it, whether its cookies must be secure, and a hook as its admins see it
(its URLs under ODOOOPS_PUBLIC_URL when that is set).

Login CSRF: a page of another site could post its own credentials to the
sign-in and so sign the visitor in as someone else. A browser says where a
request comes from (Origin; Referer when it sends no Origin); requests that
say nothing are not browsers' (the CLI, curl) and carry no such risk.

This server's own origin is the request's scheme and Host, the scheme being
the one a trusted proxy forwarded (ODOOOPS_FORWARDED_ALLOW_IPS)."""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import Request

from odooops.errors import CrossSite
from odooops.hooks.verify import hook_secret

DEFAULT_PORTS = {"http": 80, "https": 443}
HOOK_HOSTS = ("github", "gitlab", "gitea")
Origin = tuple[str, str, int]  # scheme, host, port


def origin_of(url: str) -> Origin | None:
    """The origin of a URL, or None for one that has none (`null`, garbage)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme.lower() not in DEFAULT_PORTS or not parts.hostname:
        return None
    scheme = parts.scheme.lower()
    return scheme, parts.hostname.lower(), port or DEFAULT_PORTS[scheme]


def cross_site(request: Request) -> bool:
    """Whether a browser says this request comes from anywhere but this site."""
    sent = request.headers.get("origin") or request.headers.get("referer")
    if not sent:
        return False
    theirs = origin_of(sent)
    return theirs is None or theirs != origin_of(str(request.base_url))


async def same_site(request: Request) -> None:
    """A dependency of the sign-in routes: refused with 403 from another site."""
    if cross_site(request):
        raise CrossSite()


def client_address(request: Request) -> str:
    # behind a proxy listed in ODOOOPS_FORWARDED_ALLOW_IPS, uvicorn has already
    # put the forwarded client address here
    return request.client.host if request.client else "unknown"


def secure_cookie(request: Request) -> bool:
    mode = request.app.state.settings.secure_cookies
    return mode == "always" or (mode == "auto" and request.url.scheme == "https")


def secret_of(request: Request, hook: dict) -> str:
    """The hook's secret: derived from the server's key and the hook's salt, never stored."""
    return hook_secret(request.app.state.secret_key.reveal(), hook["id"], hook["salt"])


def public_base(request: Request) -> str:
    """This server's address in what others follow (a git host's webhook, an
    agent's example, a link): ODOOOPS_PUBLIC_URL when set, else the address
    this request reached."""
    return request.app.state.settings.public_url or str(request.base_url).rstrip("/")


def hook_url(request: Request, host: str, hook_id: object) -> str:
    """Where a git host posts a hook's deliveries."""
    return public_base(request) + request.app.url_path_for("receive_delivery", host=host, hook_id=str(hook_id))


def described(request: Request, hook: dict, secret: str | None = None) -> dict:
    """The hook as its admins see it: the URL each git host posts to and,
    once, its secret."""
    urls = {host: hook_url(request, host, hook["id"]) for host in HOOK_HOSTS}
    shown = {"hook_id": hook["id"], "created_at": hook["created_at"], "rotated_at": hook["rotated_at"], "urls": urls}
    return shown if secret is None else {**shown, "secret": secret}
