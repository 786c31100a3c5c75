"""An nginx configuration for putting a real proxy in front of environments
(TLS, many hosts), generated from their routes.

`render` writes what goes inside nginx's `http {}`, for an installation to
include from its own nginx.conf: a server block per running environment,
proxying to the runner's bridge, with the OdooOps router as each upstream's
backup, and a default server sending every other host (sleeping, stopped,
unknown; the console's own) to the router, which wakes environments and
answers for those that cannot. `main_config` wraps that into a whole
nginx.conf whose every path is under one folder, for nginx run on its own
(`nginx -p DIR -c DIR/nginx.conf -e stderr`), as the tests do.

Every value that goes into the text is checked against a strict pattern
first: a hostname, an address or a path that could say more than itself is
refused, never written.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from odooops.errors import InvalidInput

LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
HOSTNAME = re.compile(rf"(?=[a-z0-9.-]{{1,253}}\Z){LABEL}(?:\.{LABEL})*", re.ASCII)
ADDRESS = re.compile(r"(?P<host>\[[0-9a-f:.]+\]|[a-z0-9.-]+):(?P<port>[0-9]{1,5})", re.ASCII)
PATH = re.compile(r"/[A-Za-z0-9._@+/-]*", re.ASCII)
BODY_MAX = "512m"  # Odoo's uploads: attachments, imports, database restores
CONNECT_PREFIX = "/odooops/"  # the router's own: "Connect as" sets a header no client may send
ROUTER = "odooops_router"


@dataclass(frozen=True)
class ProxyRoute:
    """An environment as nginx sees it: its hostnames, the `host:port` of its
    HTTP server (None: not running) and of its WebSocket/longpolling server
    (None: the same as http)."""

    hostnames: list[str]
    http: str | None
    websocket: str | None = None


def render(routes: list[ProxyRoute], fallback: str, *, listen: int = 80, tls: tuple[str, str] | None = None,
           base_domain: str = "localhost", tls_listen: int = 443) -> str:
    """The http-level configuration for `routes`, `fallback` being the
    router's `host:port`. With `tls` (certificate and key paths: one pair for
    every hostname, so a wildcard or many-names certificate), servers listen
    with TLS on `tls_listen` and `listen` redirects to them."""
    fallback = _address(fallback)
    base_domain = _hostname(base_domain)
    ports = _port(listen), _port(tls_listen)
    cert = (_path(tls[0]), _path(tls[1])) if tls is not None else None
    running = _running(routes)
    out = ["# Written by OdooOps from the environments' routes: changes here are lost when it writes it again.", "",
           "map $http_upgrade $odooops_connection_upgrade {", "    default upgrade;", "    ''      close;", "}", "",
           f"upstream {ROUTER} {{", f"    server {fallback};", "}", ""]
    for hostnames, http, websocket in running:
        out += _upstreams(hostnames, http, websocket, fallback)
    if cert is not None:
        out += _redirect(ports)
    for hostnames, _, websocket in running:
        out += _environment(hostnames, websocket is not None, ports, cert)
    out += _default(base_domain, ports, cert)
    return "\n".join(out) + "\n"


def main_config(http: str, prefix: Path, *, user: str | None = None) -> str:
    """A whole nginx.conf around `http` (what `render` wrote), every file
    nginx writes under `prefix`. `user`: the workers' user when nginx is
    started as root (nginx ignores it otherwise, with a warning)."""
    root = _path(str(prefix))
    head = [f"user {_user(user)};"] if user is not None else []
    body = "\n".join(f"    {line}" if line else "" for line in http.splitlines())
    return "\n".join([
        *head, "worker_processes 1;", f"pid {root}/nginx.pid;", f"error_log {root}/error.log;", "",
        "events {", "    worker_connections 1024;", "}", "",
        "http {", "    default_type application/octet-stream;", f"    access_log {root}/access.log;",
        *(f"    {kind}_temp_path {root}/{kind}_temp;" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")),
        "", body, "}", ""])


def _running(routes: Iterable[ProxyRoute]) -> list[tuple[list[str], str, str | None]]:
    """(hostnames, http, websocket) of each running environment, checked and
    sorted; a hostname may belong to one environment only."""
    seen: set[str] = set()
    running = []
    for route in routes:
        if not route.hostnames:
            raise InvalidInput("An environment's route has no hostname.")
        hostnames = sorted({_hostname(name) for name in route.hostnames})
        if taken := seen.intersection(hostnames):
            raise InvalidInput(f"Hostname {min(taken)} is given to two environments.")
        seen.update(hostnames)
        if route.http is not None:
            websocket = _address(route.websocket) if route.websocket is not None else None
            running.append((hostnames, _address(route.http), websocket))
    return sorted(running)


def _name(hostnames: list[str]) -> str:
    return "odooops_" + hashlib.sha256(hostnames[0].encode()).hexdigest()[:16]


def _upstreams(hostnames: list[str], http: str, websocket: str | None, fallback: str) -> list[str]:
    """The environment's servers, the router as their backup: a stale port
    (the environment restarted elsewhere, or stopped) falls back to it."""
    out = [f"# {' '.join(hostnames)}"]
    for name, address in ((_name(hostnames), http), (_name(hostnames) + "_ws", websocket)):
        if address is not None:
            out += [f"upstream {name} {{", f"    server {address} max_fails=1 fail_timeout=10s;",
                    f"    server {fallback} backup;", "}"]
    return [*out, ""]


def _listen(ports: tuple[int, int], cert: tuple[str, str] | None, default: bool = False) -> list[str]:
    flag = " default_server" if default else ""
    if cert is None:
        return [f"    listen {ports[0]}{flag};"]
    return [f"    listen {ports[1]} ssl{flag};",
            f"    ssl_certificate {cert[0]};",
            f"    ssl_certificate_key {cert[1]};",
            "    ssl_protocols TLSv1.2 TLSv1.3;",
            "    ssl_session_cache shared:odooops_tls:10m;",
            '    add_header Strict-Transport-Security "max-age=31536000" always;']


def _server_settings() -> list[str]:
    """What every location of a server shares (none sets its own headers, so
    all inherit these): the headers Odoo's proxy mode reads, X-Forwarded-Host
    keeping the port the client used (Odoo builds its URLs from it), and a
    client's own X-OdooOps-Connect dropped."""
    return [f"    client_max_body_size {BODY_MAX};",
            "    proxy_connect_timeout 5s;",
            "    proxy_read_timeout 720s;",
            "    proxy_send_timeout 720s;",
            "    proxy_next_upstream error timeout;",
            "    proxy_next_upstream_tries 2;",
            "    proxy_buffer_size 64k;",
            "    proxy_buffers 32 32k;",
            "    proxy_busy_buffers_size 128k;",
            "    proxy_redirect off;",
            "    proxy_http_version 1.1;",
            "    proxy_set_header Host $host;",
            "    proxy_set_header X-Forwarded-Host $http_host;",
            "    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
            "    proxy_set_header X-Forwarded-Proto $scheme;",
            "    proxy_set_header X-Real-IP $remote_addr;",
            '    proxy_set_header X-OdooOps-Connect "";',
            "    proxy_set_header Upgrade $http_upgrade;",
            "    proxy_set_header Connection $odooops_connection_upgrade;",
            "    gzip on;",
            "    gzip_types text/css text/plain text/xml application/javascript application/json;"]


def _location(path: str, upstream: str) -> list[str]:
    return [f"    location {path} {{", f"        proxy_pass http://{upstream};", "    }"]


def _environment(hostnames: list[str], own_websocket: bool, ports: tuple[int, int],
                 cert: tuple[str, str] | None) -> list[str]:
    http = _name(hostnames)
    websocket = http + "_ws" if own_websocket else http
    return ["server {", *_listen(ports, cert), f"    server_name {' '.join(hostnames)};", *_server_settings(),
            *_location("/websocket", websocket), *_location("/longpolling", websocket),
            *_location(CONNECT_PREFIX, ROUTER), *_location("/", http), "}", ""]


def _default(base_domain: str, ports: tuple[int, int], cert: tuple[str, str] | None) -> list[str]:
    """Every other host, under the base domain or not: the router's to answer."""
    return ["server {", *_listen(ports, cert, default=True), f"    server_name .{base_domain};",
            *_server_settings(), *_location("/", ROUTER), "}"]


def _redirect(ports: tuple[int, int]) -> list[str]:
    target = "https://$host" + ("" if ports[1] == 443 else f":{ports[1]}") + "$request_uri"
    return ["server {", f"    listen {ports[0]} default_server;", "    server_name _;",
            f"    return 301 {target};", "}", ""]


def _hostname(value: object) -> str:
    name = value.lower() if isinstance(value, str) else ""
    if not HOSTNAME.fullmatch(name):
        raise InvalidInput(f"Not a hostname: {value!r}.")
    return name


def _address(value: object) -> str:
    """`host:port`: an IPv4 or [IPv6] address or a hostname, and a port."""
    found = ADDRESS.fullmatch(value.lower()) if isinstance(value, str) else None
    if found is None or not 0 < int(found["port"]) < 65536:
        raise InvalidInput(f"Not a host:port address: {value!r}.")
    host = found["host"]
    try:
        if host.startswith("["):
            host = f"[{ipaddress.IPv6Address(host[1:-1])}]"
        elif host.replace(".", "").isdigit():
            host = str(ipaddress.IPv4Address(host))
        else:
            host = _hostname(host)
    except ValueError:
        raise InvalidInput(f"Not a host:port address: {value!r}.") from None
    return f"{host}:{int(found['port'])}"


def _port(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 65536:
        raise InvalidInput(f"Not a port: {value!r}.")
    return value


def _path(value: object) -> str:
    if not isinstance(value, str) or not PATH.fullmatch(value) or "/../" in f"{value}/":
        raise InvalidInput(f"Not an absolute path nginx may be given (letters, digits, ._@+-/): {value!r}.")
    return value


def _user(value: str) -> str:
    if not re.fullmatch(r"[a-z_][a-z0-9_-]{0,31}", value, re.ASCII):
        raise InvalidInput(f"Not a user name: {value!r}.")
    return value
