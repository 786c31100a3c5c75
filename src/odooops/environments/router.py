"""The router: the front door of the control plane's `serve` process.

An ASGI app around the console/API app. By Host, a request goes to that app
(the control plane's own names, IP literals, hosts no environment claims) or
to a branch's environment: its Odoo, behind the runner's bridge. Environment
hosts (`<branch>-<project>-<org>.<base domain>`) never reach the console, even
when no environment is there.

The router streams both ways and buffers nothing, so uploads, downloads and
long polls cost no memory; a sleeping environment is woken and the request
held while it starts; `GET /odooops/connect?token=…` is the one request that
carries the signed X-OdooOps-Connect header, which no client can send itself.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from http.cookiejar import CookieJar, DefaultCookiePolicy
from urllib.parse import parse_qs
from uuid import UUID

import httpx
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import InvalidHandshake

from odooops.environments import router_pages as pages
from odooops.environments import router_ws as ws
from odooops.environments.router_upstream import (
    CONNECT_HEADER,
    Headers,
    Unreachable,
    address_for,
    has_body,
    header,
    host_of,
    is_ip,
    raw_target,
    request_headers,
    response_headers,
)
from odooops.environments.routes import Route, Routes

log = logging.getLogger(__name__)

CACHE_SECONDS = 2.0  # a request costs no query, and a change of route shows soon enough
PASSING_CACHE_SECONDS = 0.25
SETTLED = frozenset({"running", "stopped", "crashed"})
CACHE_SIZE = 4096    # Host is the client's to choose: answers about made-up hosts must not pile up
HOLD_SECONDS = 2.5   # how long a waking environment may keep a browser before the reloading page
WAIT_SECONDS = 30.0  # and any other client (an API call, an asset), in all
POLL_SECONDS = 0.15
TOUCH_SECONDS = 10.0
CONNECT_TIMEOUT = 5.0

CONNECT_PATH = "/odooops/connect"
WAITING = frozenset({"sleeping", "starting"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class ClientGone(Exception):
    """The client went away while its request body was being read."""


class Router:
    """Routes by Host to environments (see the module's docstring); everything
    else goes to `app` untouched, its lifespan included."""

    def __init__(self, app: ASGIApp, routes: Routes, base_domain: str, own_hosts: set[str]) -> None:
        self.app = app
        self.routes = routes
        self.suffix = "." + base_domain.strip(".").lower()
        self.own_hosts = {host.lower() for host in own_hosts}
        self._cache: dict[str, tuple[float, Route | None]] = {}
        self._resolving: dict[str, asyncio.Task[Route | None]] = {}
        self._touched: dict[UUID, float] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._client: httpx.AsyncClient | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return await self.app(scope, receive, self._closing(send))
        host = host_of(scope)
        if host is None or scope["type"] not in ("http", "websocket") or self._own(host):
            return await self.app(scope, receive, send)
        found = await self._at(host)
        if found is None:
            return await self.app(scope, receive, send)
        if isinstance(found, pages.Page):
            return await refuse(scope, receive, send, found)
        try:
            if scope["type"] == "websocket":
                return await self._websocket(scope, receive, send, host, found)
            await self._http(Exchange(scope, receive, send, host), found)
        except Exception:  # logged, and never a traceback in the client's face
            log.exception("%s %s on %s failed", scope.get("method", "WebSocket"), scope["path"], host)

    async def aclose(self) -> None:
        """Close the HTTP client; the lifespan's shutdown does it."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _closing(self, send: Send) -> Send:
        async def sending(message: Message) -> None:
            if message["type"].startswith("lifespan.shutdown."):
                await self.aclose()
            await send(message)
        return sending

    # -- what is at a host

    def _own(self, host: str) -> bool:
        return host in self.own_hosts or is_ip(host)

    async def _at(self, host: str) -> Route | pages.Page | None:
        """The environment at `host`, a page saying why none answers, or None
        for the wrapped app: a host outside the base domain that no production
        claims may be the console's own."""
        ours = host.endswith(self.suffix)
        try:
            route = await self._lookup(host)
        except Exception:
            log.exception("Could not resolve %s", host)
            return pages.lookup_failed(host) if ours else None
        if route is None and ours:
            return pages.no_environment(host)
        return route

    async def _lookup(self, host: str, fresh: bool = False) -> Route | None:
        cached = self._cache.get(host)
        if cached is not None and not fresh and cached[0] > time.monotonic():
            return cached[1]
        # requests that come together share one query
        task = self._resolving.get(host)
        if task is None:
            task = self._resolving[host] = asyncio.ensure_future(self._resolve(host))
            task.add_done_callback(self._resolved)
        return await asyncio.shield(task)  # one waiter leaving must not cancel the others' query

    def _resolved(self, task: asyncio.Task[Route | None]) -> None:
        self._resolving = {host: pending for host, pending in self._resolving.items() if pending is not task}
        if not task.cancelled():
            task.exception()  # its waiters have it; it counts as seen even if they all left

    async def _resolve(self, host: str) -> Route | None:
        route = await self.routes.resolve(host)
        now = time.monotonic()
        if len(self._cache) >= CACHE_SIZE:
            self._cache = {name: entry for name, entry in self._cache.items() if entry[0] > now}
            if len(self._cache) >= CACHE_SIZE:
                self._cache.clear()
        # a state that passes (maintenance, starting) is looked up again sooner: its end shows at once
        ttl = CACHE_SECONDS if route is None or route.status in SETTLED else PASSING_CACHE_SECONDS
        self._cache[host] = (now + ttl, route)
        return route

    async def _ready(self, exchange: Exchange, route: Route | None) -> Route | None:
        """The route once it runs, or None when a page has answered instead."""
        if route is not None and route.status in WAITING:
            if route.status == "sleeping":
                await self._wake(route)
            route = await self._hold(exchange.host, route, HOLD_SECONDS)
            if route is not None and route.status in WAITING and not exchange.wants_page:
                route = await self._hold(exchange.host, route, WAIT_SECONDS - HOLD_SECONDS)
        if route is not None and route.status == "running" and route.http:
            return route
        await exchange.answer(status_page(exchange.host, route))
        return None

    async def _hold(self, host: str, route: Route, seconds: float) -> Route | None:
        deadline = time.monotonic() + seconds
        current: Route | None = route
        while current is not None and current.status in WAITING and time.monotonic() < deadline:
            await asyncio.sleep(POLL_SECONDS)
            current = await self._lookup(host, fresh=True)
        return current

    async def _wake(self, route: Route) -> None:
        try:
            await self.routes.wake(route.environment_id)
        except Exception:  # the request waits all the same: someone else may be waking it
            log.exception("Could not wake %s", route.hostname)

    def _touch(self, route: Route) -> None:
        """Tell the environment's keeper it is in use, at most every TOUCH_SECONDS,
        without making the request wait for it."""
        now = time.monotonic()
        if now - self._touched.get(route.environment_id, -TOUCH_SECONDS) < TOUCH_SECONDS:
            return
        self._touched[route.environment_id] = now
        task = asyncio.get_running_loop().create_task(self._touching(route))
        self._tasks.add(task)  # the loop keeps only a weak reference to a task
        task.add_done_callback(self._tasks.discard)

    async def _touching(self, route: Route) -> None:
        try:
            await self.routes.touched(route.environment_id)
        except Exception:
            log.exception("Could not mark %s as in use", route.hostname)

    # -- HTTP

    async def _http(self, exchange: Exchange, route: Route) -> None:
        try:
            await self._serve(exchange, route)
        finally:
            if not exchange.answered:  # it failed before a word went out
                await exchange.answer(pages.not_answering(route.branch))

    async def _serve(self, exchange: Exchange, route: Route) -> None:
        ready = await self._ready(exchange, route)
        if ready is None:
            return
        extra = await self._connect_header(exchange, ready)
        if extra is None:
            return
        self._touch(ready)
        try:
            return await self._forward(exchange, ready, extra)
        except Unreachable as error:
            log.info("%s did not answer (%s); looking again", ready.hostname, error)
        # a running environment that does not answer may be moving to new ports
        ready = await self._ready(exchange, await self._lookup(exchange.host, fresh=True))
        if ready is not None:
            try:
                await self._forward(exchange, ready, extra)
            except Unreachable:
                await exchange.answer(pages.not_answering(ready.branch))

    async def _connect_header(self, exchange: Exchange, route: Route) -> Headers | None:
        """The header a Connect link earns (asked once the environment runs, so that
        a reload while it wakes does not spend the token), [] for any other request,
        None once a page has refused it."""
        if exchange.scope["path"] != CONNECT_PATH or exchange.method != "GET":
            return []
        token = parse_qs(exchange.query.decode("latin-1")).get("token", [""])[0]
        value = await self.routes.connect(route.environment_id, token) if token else None
        if value is None:
            await exchange.answer(pages.link_expired())
            return None
        exchange.query = b""  # the token is spent, and no business of the environment's
        return [(CONNECT_HEADER, value.encode("latin-1"))]

    async def _forward(self, exchange: Exchange, route: Route, extra: Headers) -> None:
        """Proxy the request while watching for the client to leave: a long poll
        or a download must not go on for nobody."""
        proxying = asyncio.ensure_future(self._proxy(exchange, route, extra))
        leaving = asyncio.ensure_future(exchange.gone())
        try:
            await asyncio.wait((proxying, leaving), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (proxying, leaving):
                task.cancel()
            await asyncio.gather(proxying, leaving, return_exceptions=True)
        if proxying.cancelled():
            exchange.answered = True  # there is nobody left to answer
        else:
            proxying.result()

    async def _proxy(self, exchange: Exchange, route: Route, extra: Headers) -> None:
        target = raw_target(exchange.scope, exchange.query)
        url = httpx.URL(f"http://{address_for(route, exchange.scope['path'])}").copy_with(raw_path=target)
        request = httpx.Request(exchange.method, url, headers=request_headers(exchange.scope) + extra,
                                content=exchange.body() if exchange.has_body else None)
        try:
            response = await self._http_client().send(request, stream=True)
        except ClientGone:
            exchange.answered = True  # to nobody
            return
        except httpx.TransportError as error:
            nothing_sent = isinstance(error, httpx.ConnectError | httpx.ConnectTimeout)
            if not exchange.body_started and (nothing_sent or exchange.method in SAFE_METHODS):
                raise Unreachable(repr(error)) from error
            log.warning("%s %s on %s failed: %r", exchange.method, exchange.scope["path"], route.hostname, error)
            return await exchange.answer(pages.not_answering(route.branch))
        try:
            await exchange.send({"type": "http.response.start", "status": response.status_code,
                                 "headers": response_headers(response.headers.raw)})
            async for chunk in response.aiter_raw():  # as sent: still compressed, its length still true
                await exchange.send({"type": "http.response.body", "body": chunk, "more_body": True})
            await exchange.send({"type": "http.response.body", "body": b""})
        except httpx.HTTPError as error:
            # the answer has begun: cutting it short (uvicorn closes the connection) is all that is left
            log.warning("%s broke off its answer to %s %s: %r", route.hostname, exchange.method,
                        exchange.scope["path"], error)
        finally:
            await response.aclose()

    def _http_client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(None, connect=CONNECT_TIMEOUT),  # long polls and big downloads take their time
                limits=httpx.Limits(max_connections=None, max_keepalive_connections=64),
                cookies=CookieJar(DefaultCookiePolicy(allowed_domains=[])),  # users' cookies pass, none is kept
                trust_env=False, follow_redirects=False)
        return self._client

    # -- WebSocket

    async def _websocket(self, scope: Scope, receive: Receive, send: Send, host: str, route: Route) -> None:
        await receive()  # websocket.connect
        if route.status == "sleeping":
            await self._wake(route)
        if route.status != "running" or not route.http:
            return await ws.close_accepted(send, ws.TRY_AGAIN_LATER)  # Odoo's bus client does
        try:
            upstream = await self._ws_open(scope, host, route)
        except InvalidHandshake as error:  # it answered, and not with a WebSocket
            log.warning("WebSocket %s refused by %s: %s", scope["path"], route.hostname, error)
            upstream = None
        if upstream is None:
            return await ws.close_accepted(send, ws.BAD_GATEWAY)
        self._touch(route)
        try:
            await send({"type": "websocket.accept", "subprotocol": upstream.subprotocol})
            await ws.pump(receive, send, upstream)
        finally:
            await upstream.close()

    async def _ws_open(self, scope: Scope, host: str, route: Route) -> ClientConnection | None:
        try:
            return await ws.open_upstream(scope, route)
        except Unreachable as error:
            log.info("%s did not answer (%s); looking again", route.hostname, error)
        fresh = await self._lookup(host, fresh=True)
        if fresh is None or fresh.status != "running" or not fresh.http:
            return None
        try:
            return await ws.open_upstream(scope, fresh)
        except Unreachable:
            return None


class Exchange:
    """One HTTP request on its way to an environment: what it asks, whether its
    body has been read, whether an answer has begun."""

    def __init__(self, scope: Scope, receive: Receive, send: Send, host: str) -> None:
        self.scope = scope
        self.host = host
        self.method: str = scope["method"]
        self.query: bytes = scope.get("query_string", b"")
        self.has_body = has_body(scope)
        self.body_started = False
        self.body_read = asyncio.Event()
        if not self.has_body:
            self.body_read.set()
        self.answered = False
        self._receive = receive
        self._send = send

    @property
    def wants_page(self) -> bool:
        """A browser loading a page, which can be told to reload; anything else waits."""
        return self.method in ("GET", "HEAD") and b"text/html" in header(self.scope, b"accept")

    async def send(self, message: Message) -> None:
        self.answered = self.answered or message["type"] == "http.response.start"
        await self._send(message)

    async def body(self) -> AsyncIterator[bytes]:
        self.body_started = True
        more = True
        while more:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                raise ClientGone()
            more = message.get("more_body", False)
            yield message.get("body", b"")
        self.body_read.set()

    async def gone(self) -> None:
        """Returns when the client has left (and, once the answer is complete, at once)."""
        await self.body_read.wait()  # until then, the body's reader is the one receiving
        while (await self._receive())["type"] != "http.disconnect":
            pass

    async def answer(self, page: pages.Page) -> None:
        body = page.body()
        await self.send({"type": "http.response.start", "status": page.status, "headers": page.headers(len(body))})
        await self.send({"type": "http.response.body", "body": body})


def status_page(host: str, route: Route | None) -> pages.Page:
    if route is None:
        return pages.no_environment(host)
    if route.status in WAITING:
        return pages.waking(route.branch)
    if route.status == "crashed":
        return pages.crashed(route.branch)
    if route.status == "maintenance":
        return pages.maintenance(route.branch)
    if route.status == "running":  # with no address: it is between two
        return pages.not_answering(route.branch)
    return pages.stopped(route.branch)


async def refuse(scope: Scope, receive: Receive, send: Send, page: pages.Page) -> None:
    """Answer with a page; a WebSocket handshake is refused (uvicorn says 403)."""
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        return await send({"type": "websocket.close", "code": 1008})
    body = page.body()
    await send({"type": "http.response.start", "status": page.status, "headers": page.headers(len(body))})
    await send({"type": "http.response.body", "body": body})
