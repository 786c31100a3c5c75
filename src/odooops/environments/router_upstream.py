"""How the router reads a request's Host, and what of a request goes upstream
and of an answer comes back: the headers of this hop stay behind, the
forwarded ones say where it came from, and X-OdooOps-Connect only ever comes
from the router itself."""

from __future__ import annotations

import ipaddress
from urllib.parse import quote

from starlette.types import Scope

from odooops.environments.routes import Route

Headers = list[tuple[bytes, bytes]]

CONNECT_HEADER = b"x-odooops-connect"
HOP_BY_HOP = frozenset({b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"te",
                        b"trailer", b"trailers", b"transfer-encoding", b"upgrade",
                        b"expect"})  # uvicorn has already said 100 Continue to the client
FORWARDED = frozenset({b"x-forwarded-for", b"x-forwarded-host", b"x-forwarded-proto", b"x-real-ip"})
OWN_RESPONSE = frozenset({b"date", b"server"})  # uvicorn writes its own: two would go out


class Unreachable(Exception):
    """Nothing reached the environment: the request may be tried again."""


def header(scope: Scope, name: bytes) -> bytes:
    """The values of one request header, joined."""
    return b", ".join(value for key, value in scope["headers"] if key.lower() == name)


def host_of(scope: Scope) -> str | None:
    """The Host header, lower-case, without its port (nor an IPv6 literal's brackets)."""
    host = header(scope, b"host").decode("latin-1").strip().lower()
    if host.startswith("["):
        end = host.find("]")
        return host[1:end] if end > 1 else None
    return host.partition(":")[0].rstrip(".") or None


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def has_body(scope: Scope) -> bool:
    length = header(scope, b"content-length").strip()
    return bool(header(scope, b"transfer-encoding")) or (bool(length) and length != b"0")


def address_for(route: Route, path: str) -> str | None:
    """Odoo's bus (/websocket from 16.0, /longpolling/ before) has a port of its
    own when it runs workers."""
    bus = path == "/websocket" or path.startswith("/longpolling/")
    return (route.websocket or route.http) if bus else route.http


def raw_target(scope: Scope, query: bytes) -> bytes:
    """The path as the client wrote it (%2F stays %2F), and the query."""
    path = scope.get("raw_path") or quote(scope["path"]).encode()
    return path + b"?" + query if query else path


def connection_tokens(headers: Headers) -> set[bytes]:
    """Headers a Connection header names are for this hop only, too."""
    return {token.strip().lower() for name, value in headers if name.lower() == b"connection"
            for token in value.split(b",")}


def forwarded(scope: Scope) -> Headers:
    """Where the request came from, as Odoo's proxy mode reads it (the last
    X-Forwarded-For). What a client said of it is kept only at the start of
    X-Forwarded-For; when uvicorn trusted a proxy before us, the client it took
    from there comes twice, which reads the same."""
    scheme: str = {"ws": "http", "wss": "https"}.get(scope["scheme"]) or scope["scheme"]
    headers = [(b"x-forwarded-host", header(scope, b"host")), (b"x-forwarded-proto", scheme.encode())]
    client = scope.get("client")
    if client:
        address = client[0].encode()
        before = header(scope, b"x-forwarded-for")
        headers += [(b"x-forwarded-for", before + b", " + address if before else address), (b"x-real-ip", address)]
    return headers


def request_headers(scope: Scope) -> Headers:
    """The client's headers less this hop's, the forwarded ones and any
    X-OdooOps-Connect; Host stays the one the client asked for."""
    dropped = HOP_BY_HOP | FORWARDED | connection_tokens(scope["headers"]) | {CONNECT_HEADER}
    kept = [(name.lower(), value) for name, value in scope["headers"] if name.lower() not in dropped]
    return kept + forwarded(scope)


def response_headers(raw: Headers) -> Headers:
    """The environment's answer's headers less this hop's; every Set-Cookie stays."""
    dropped = HOP_BY_HOP | OWN_RESPONSE | connection_tokens(raw)
    return [(name.lower(), value) for name, value in raw if name.lower() not in dropped]
