"""The router, over real HTTP: a real upstream under uvicorn stands in for an
environment's Odoo, the Router runs under uvicorn in front of a small console
app, and an in-test Routes keeps its environments in a dict."""

from __future__ import annotations

import asyncio
import dataclasses
import gzip
import hashlib
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route as Path
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from helpers import wait_until
from odooops.environments.router import Router
from odooops.environments.routes import Route

HOST = "main-shop-acme.localhost"
CHUNK = 64 * 1024
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


# -- the upstream: what an environment's Odoo would answer

def pattern(size: int) -> Iterator[bytes]:
    for i in range(size // CHUNK):
        yield bytes([i % 251]) * CHUNK


def sha_of(chunks) -> str:
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(chunk)
    return digest.hexdigest()


def pairs(scope) -> list[list[str]]:
    return [[name.decode("latin-1"), value.decode("latin-1")] for name, value in scope["headers"]]


async def echo(request: Request) -> Response:
    body = await request.body()
    return JSONResponse({"method": request.method, "raw_path": request.scope["raw_path"].decode(),
                         "query": request.scope["query_string"].decode(), "headers": pairs(request.scope),
                         "body": body.decode("latin-1"), "port": request.scope["server"][1]})


async def download(request: Request) -> Response:
    return StreamingResponse(iter(pattern(int(request.query_params["bytes"]))), media_type="application/octet-stream")


async def upload(request: Request) -> Response:
    digest, size = hashlib.sha256(), 0
    async for chunk in request.stream():
        digest.update(chunk)
        size += len(chunk)
    return JSONResponse({"size": size, "sha256": digest.hexdigest(), "headers": pairs(request.scope)})


async def cookies(request: Request) -> Response:
    response = PlainTextResponse("two cookies")
    response.set_cookie("session_id", "abc")
    response.set_cookie("frontend_lang", "en_US")
    return response


async def redirect(request: Request) -> Response:
    return Response(status_code=303, headers={"location": "http://elsewhere.localhost:1234/web?next=%2Fodoo"})


async def gzipped(request: Request) -> Response:
    return Response(gzip.compress(b"hello " * 1000), media_type="text/plain", headers={"content-encoding": "gzip"})


LEFT: list[str] = []  # the upstream saw its client leave, from these endpoints


async def hang(request: Request) -> Response:
    """A long poll that never answers: it only notices its client leave."""
    for _ in range(600):
        if await request.is_disconnected():
            LEFT.append("hang")
            break
        await asyncio.sleep(0.05)
    return Response(status_code=204)


async def endless(request: Request) -> Response:
    async def chunks():
        try:
            while True:
                yield b"x" * CHUNK
                await asyncio.sleep(0.01)
        finally:
            LEFT.append("endless")
    return StreamingResponse(chunks(), media_type="application/octet-stream")


UPSTREAM_CLOSES: list[int] = []  # close codes the upstream's WebSocket received


async def ws_echo(websocket: WebSocket) -> None:
    offered = websocket.scope.get("subprotocols") or [None]
    await websocket.accept(subprotocol=offered[0])
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            UPSTREAM_CLOSES.append(message.get("code", 1000))
            return
        text = message.get("text")
        if text == "whoami":
            await websocket.send_json({"port": websocket.scope["server"][1], "headers": pairs(websocket.scope)})
        elif text == "bye":
            return await websocket.close(4000, "bye")
        elif text is not None:
            await websocket.send_text(text)
        else:
            await websocket.send_bytes(message["bytes"])


upstream_app = Starlette(routes=[
    Path("/download", download), Path("/upload", upload, methods=["POST"]), Path("/cookies", cookies),
    Path("/redirect", redirect), Path("/gzip", gzipped), Path("/hang", hang), Path("/endless", endless),
    WebSocketRoute("/websocket", ws_echo), WebSocketRoute("/other", ws_echo),
    Path("/{path:path}", echo, methods=ALL_METHODS),
])


# -- the console the router wraps, and the environments it routes to

class Console:
    """The wrapped app: says so, and notes its lifespan."""

    def __init__(self) -> None:
        self.lifespan: list[str] = []

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                phase = message["type"].removeprefix("lifespan.")
                self.lifespan.append(phase)
                await send({"type": f"lifespan.{phase}.complete"})
                if phase == "shutdown":
                    return
        elif scope["type"] == "http":
            await PlainTextResponse("console")(scope, receive, send)


class FakeRoutes:
    """Routes kept in a dict; counts what the router asks of it."""

    def __init__(self, http: str) -> None:
        self.http = http  # where an environment runs once it runs
        self.routes: dict[str, Route] = {}
        self.then: dict[str, Route] = {}  # after the next resolve of a host, its route becomes this
        self.failing: set[str] = set()
        self.tokens: dict[str, str] = {}
        self.wake_after: float | None = None  # a woken environment runs after this many seconds
        self.touch_fails = False
        self.wakes: list[uuid.UUID] = []
        self.touches: list[uuid.UUID] = []
        self.connects: list[str] = []

    def add(self, host: str, status: str = "running", branch: str = "main", **addresses) -> Route:
        http = addresses.get("http", self.http if status == "running" else None)
        route = Route(uuid.uuid4(), host, status, http, addresses.get("websocket"), "development", branch)
        self.routes[host] = route
        return route

    def run(self, host: str) -> None:
        self.routes[host] = dataclasses.replace(self.routes[host], status="running", http=self.http)

    async def resolve(self, hostname: str) -> Route | None:
        if hostname in self.failing:
            raise RuntimeError("the database is down")
        route = self.routes.get(hostname)
        if hostname in self.then:
            self.routes[hostname] = self.then.pop(hostname)
        return route

    async def wake(self, environment_id: uuid.UUID) -> None:
        self.wakes.append(environment_id)
        host = next(host for host, route in self.routes.items() if route.environment_id == environment_id)
        if self.wake_after is not None:
            asyncio.get_running_loop().call_later(self.wake_after, self.run, host)

    async def touched(self, environment_id: uuid.UUID) -> None:
        self.touches.append(environment_id)
        if self.touch_fails:
            raise RuntimeError("the database is down")

    async def connect(self, environment_id: uuid.UUID, token: str) -> str | None:
        self.connects.append(token)
        return self.tokens.pop(token, None)


@contextmanager
def serving(app) -> Iterator[int]:
    """Serve `app` under uvicorn in a thread, on a port of its own. No proxy is
    trusted (uvicorn trusts 127.0.0.1's X-Forwarded-For by default): the client
    is the one connected."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, log_level="warning", lifespan="on",
                                           proxy_headers=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, 15, "uvicorn to start")
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()


def dead_address() -> str:
    """An address nothing listens on: a port just given up."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"


@dataclasses.dataclass
class Upstreams:
    http: str
    bus: str  # a second server, as Odoo's gevent port


@pytest.fixture(scope="module")
def upstreams() -> Iterator[Upstreams]:
    with serving(upstream_app) as http, serving(upstream_app) as bus:
        yield Upstreams(f"127.0.0.1:{http}", f"127.0.0.1:{bus}")


@dataclasses.dataclass
class Front:
    port: int
    routes: FakeRoutes
    console: Console
    clients: list[httpx.Client] = dataclasses.field(default_factory=list)

    def client(self, host: str = HOST, **headers: str) -> httpx.Client:
        client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", trust_env=False, timeout=60,
                              headers={"host": f"{host}:{self.port}", **headers})
        self.clients.append(client)
        return client

    def ws(self, path: str = "/websocket", host: str = HOST, **options) -> ClientConnection:
        sock = socket.create_connection(("127.0.0.1", self.port))
        return connect(f"ws://{host}:{self.port}{path}", sock=sock, proxy=None, open_timeout=10, **options)


@pytest.fixture
def front(upstreams: Upstreams) -> Iterator[Front]:
    routes, console = FakeRoutes(upstreams.http), Console()
    with serving(Router(console, routes, "localhost", {"localhost", "127.0.0.1"})) as port:
        front = Front(port, routes, console)
        yield front
        for client in front.clients:
            client.close()


def seen(echoed: dict, name: str) -> list[str]:
    return [value for key, value in echoed["headers"] if key == name]


# -- tests

def test_hosts_go_to_their_environment_or_to_the_console(front: Front, upstreams: Upstreams):
    front.routes.add(HOST)
    front.routes.add("shop.example.com", branch="production")
    for host in ("localhost", "127.0.0.1", "[::1]", "www.example.com"):
        assert front.client(host).get("/web").text == "console", host
    assert front.client().get("/web").json()["port"] == int(upstreams.http.split(":")[1])
    assert front.client("SHOP.example.com").get("/web").json()["raw_path"] == "/web"


def test_an_unknown_environment_host_is_a_404_never_the_console(front: Front):
    response = front.client("nope-shop-acme.localhost").get("/web")
    assert response.status_code == 404
    assert "No environment at nope-shop-acme.localhost" in response.text
    assert "console" not in response.text
    with pytest.raises(InvalidStatus) as refused:
        front.ws(host="nope-shop-acme.localhost")
    assert refused.value.response.status_code == 403

    front.routes.failing.update({"down-shop-acme.localhost", "www.example.com"})
    response = front.client("down-shop-acme.localhost").get("/web")
    assert response.status_code == 503 and "console" not in response.text
    assert front.client("www.example.com").get("/").text == "console"


def test_the_wrapped_apps_lifespan_still_runs(upstreams: Upstreams):
    console = Console()
    with serving(Router(console, FakeRoutes(upstreams.http), "localhost", {"localhost"})):
        assert console.lifespan == ["startup"]
    assert console.lifespan == ["startup", "shutdown"]


def test_forwarded_headers_are_set_and_a_client_connect_header_is_dropped(front: Front):
    front.routes.add(HOST)
    response = front.client(**{"X-OdooOps-Connect": "v1.forged", "X-Forwarded-For": "10.1.2.3",
                               "X-Forwarded-Host": "evil.example.com", "X-Forwarded-Proto": "https"}
                            ).post("/some%20path/x?a=1&b=%2F", content=b"posted")
    echoed = response.json()
    assert (echoed["method"], echoed["raw_path"], echoed["query"], echoed["body"]) == \
        ("POST", "/some%20path/x", "a=1&b=%2F", "posted")
    assert seen(echoed, "x-odooops-connect") == []
    assert seen(echoed, "x-forwarded-for") == ["10.1.2.3, 127.0.0.1"]
    assert seen(echoed, "x-forwarded-host") == [f"{HOST}:{front.port}"]
    assert seen(echoed, "x-forwarded-proto") == ["http"]
    assert seen(echoed, "x-real-ip") == ["127.0.0.1"]
    assert seen(echoed, "host") == [f"{HOST}:{front.port}"]


def test_big_bodies_stream_both_ways(front: Front):
    front.routes.add(HOST)
    size = 8 * 2**20
    with front.client().stream("GET", f"/download?bytes={size}") as response:
        assert response.status_code == 200
        assert sha_of(response.iter_raw()) == sha_of(pattern(size))

    size = 50 * 2**20
    echoed = front.client().post("/upload", content=pattern(size)).json()  # a generator: sent chunked
    assert (echoed["size"], echoed["sha256"]) == (size, sha_of(pattern(size)))
    assert seen(echoed, "transfer-encoding") == ["chunked"]

    known = b"x" * 3 * 2**20
    echoed = front.client().post("/upload", content=known).json()
    assert echoed["size"] == len(known) and seen(echoed, "content-length") == [str(len(known))]


def test_a_client_that_leaves_is_not_served_for_nothing(front: Front):
    front.routes.add(HOST)
    with pytest.raises(httpx.ReadTimeout):
        front.client().get("/hang", timeout=httpx.Timeout(10, read=0.5))
    wait_until(lambda: "hang" in LEFT, 10, "the long poll to see its client leave")

    with front.client().stream("GET", "/endless") as response:
        next(response.iter_raw())
    wait_until(lambda: "endless" in LEFT, 10, "the download to see its client leave")


def test_cookies_redirects_and_encodings_pass_as_they_are(front: Front):
    front.routes.add(HOST)
    client = front.client()
    set_cookies = client.get("/cookies").headers.get_list("set-cookie")
    assert [cookie.split(";")[0] for cookie in set_cookies] == ["session_id=abc", "frontend_lang=en_US"]

    response = client.get("/redirect")
    assert response.status_code == 303
    assert response.headers["location"] == "http://elsewhere.localhost:1234/web?next=%2Fodoo"

    response = client.get("/gzip", headers={"accept-encoding": "gzip"})
    assert response.headers["content-encoding"] == "gzip"
    assert response.text == "hello " * 1000


def test_websocket_messages_go_both_ways_and_closes_pass(front: Front, upstreams: Upstreams):
    front.routes.add(HOST, websocket=upstreams.bus)
    with front.ws(subprotocols=["odoo-bus"], origin=f"http://{HOST}:{front.port}",
                  additional_headers={"Cookie": "session_id=abc"}) as ws:
        assert ws.subprotocol == "odoo-bus"
        ws.send("whoami")
        whoami = json.loads(ws.recv())
        assert whoami["port"] == int(upstreams.bus.split(":")[1])  # /websocket goes to the bus port
        assert seen(whoami, "cookie") == ["session_id=abc"]
        assert seen(whoami, "origin") == [f"http://{HOST}:{front.port}"]
        assert seen(whoami, "x-forwarded-host") == [f"{HOST}:{front.port}"]
        assert seen(whoami, "x-forwarded-for") == ["127.0.0.1"]
        ws.send("hello")
        assert ws.recv() == "hello"
        ws.send(b"\x00\x01\xff")
        assert ws.recv() == b"\x00\x01\xff"
        ws.send("bye")
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv()
        assert closed.value.rcvd is not None and (closed.value.rcvd.code, closed.value.rcvd.reason) == (4000, "bye")

    echoed = front.client().post("/longpolling/poll", json={"channels": []}).json()  # Odoo before 16.0
    assert echoed["port"] == int(upstreams.bus.split(":")[1])

    with front.ws("/other") as ws:  # any other path: the HTTP port
        ws.send("whoami")
        assert json.loads(ws.recv())["port"] == int(upstreams.http.split(":")[1])
        ws.close(4001, "done")
    wait_until(lambda: 4001 in UPSTREAM_CLOSES, 10, "the upstream to see the client's close code")


def test_a_websocket_to_a_sleeping_environment_wakes_it_and_says_try_later(front: Front):
    route = front.routes.add(HOST, status="sleeping")
    with front.ws() as ws, pytest.raises(ConnectionClosed) as closed:
        ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
    assert front.routes.wakes == [route.environment_id]


def test_a_sleeping_environment_is_woken_and_the_request_held_until_it_runs(front: Front):
    route = front.routes.add(HOST, status="sleeping")
    front.routes.wake_after = 0.5
    response = front.client(accept="text/html").get("/web")
    assert response.status_code == 200 and response.json()["raw_path"] == "/web"
    assert front.routes.wakes == [route.environment_id]


def test_a_browser_gets_a_reloading_page_while_it_still_sleeps(front: Front):
    front.routes.add(HOST, status="sleeping")
    response = front.client(accept="text/html,application/xhtml+xml").get("/web")
    assert response.status_code == 503
    assert "Waking up main…" in response.text
    assert '<meta http-equiv="refresh" content="2">' in response.text
    assert response.headers["retry-after"] == "2"
    assert len(front.routes.wakes) == 1


def test_other_requests_wait_longer_than_a_browser_is_held(front: Front):
    front.routes.add(HOST, status="sleeping")
    front.routes.wake_after = 3.0  # after the browser's hold
    response = front.client(accept="application/json").post("/web/dataset/call_kw", json={"id": 1})
    assert response.status_code == 200 and response.json()["method"] == "POST"


def test_a_starting_environment_is_waited_for_without_waking_it(front: Front):
    front.routes.add(HOST, status="starting")
    threading.Timer(0.5, front.routes.run, (HOST,)).start()
    assert front.client().get("/web").status_code == 200
    assert front.routes.wakes == []


def test_stopped_and_crashed_environments_say_so(front: Front):
    front.routes.add(HOST, status="stopped", branch="<b>feature</b>")
    front.routes.add("fix-shop-acme.localhost", status="crashed", branch="fix")
    response = front.client().get("/web")
    assert response.status_code == 503 and "&lt;b&gt;feature&lt;/b&gt; is stopped" in response.text
    assert "<b>feature" not in response.text
    response = front.client("fix-shop-acme.localhost").get("/web")
    assert response.status_code == 503 and "fix crashed" in response.text and "log" in response.text
    assert front.routes.wakes == []


def test_an_environment_under_maintenance_answers_503_with_retry_after_at_once(front: Front):
    front.routes.add(HOST, status="maintenance", branch="main")
    began = time.monotonic()
    response = front.client().get("/web")
    assert time.monotonic() - began < 2  # not held: a page at once
    assert response.status_code == 503 and response.headers["retry-after"] == "5"
    assert "main is being updated" in response.text and 'http-equiv="refresh" content="5"' in response.text
    front.routes.run(HOST)  # healthy again: the next request after a short while goes through
    time.sleep(0.3)
    assert front.client().get("/web").status_code == 200
    assert front.routes.wakes == []


def test_a_route_that_moved_to_new_ports_is_looked_up_again(front: Front, upstreams: Upstreams):
    front.routes.add(HOST, http=dead_address())
    front.routes.then[HOST] = dataclasses.replace(front.routes.routes[HOST], http=upstreams.http)
    assert front.client().get("/web").json()["port"] == int(upstreams.http.split(":")[1])

    front.routes.add("ws-shop-acme.localhost", http=dead_address())
    front.routes.then["ws-shop-acme.localhost"] = dataclasses.replace(front.routes.routes["ws-shop-acme.localhost"],
                                                                       http=upstreams.http)
    with front.ws(host="ws-shop-acme.localhost") as ws:
        ws.send("whoami")
        assert json.loads(ws.recv())["port"] == int(upstreams.http.split(":")[1])

    front.routes.add("gone-shop-acme.localhost", branch="gone", http=dead_address())
    response = front.client("gone-shop-acme.localhost").get("/web")
    assert response.status_code == 502 and "gone is not answering" in response.text
    with front.ws(host="gone-shop-acme.localhost") as ws, pytest.raises(ConnectionClosed) as closed:
        ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1014


def test_a_connect_link_earns_the_header_once(front: Front):
    front.routes.add(HOST)
    front.routes.tokens["good"] = "v1.YWRtaW4.1900000000.ab.cd"
    client = front.client(**{"X-OdooOps-Connect": "v1.forged"})
    echoed = client.get("/odooops/connect?token=good").json()
    assert (echoed["raw_path"], echoed["query"]) == ("/odooops/connect", "")
    assert seen(echoed, "x-odooops-connect") == ["v1.YWRtaW4.1900000000.ab.cd"]

    for used in ("good", "bad", ""):
        response = client.get(f"/odooops/connect?token={used}")
        assert response.status_code == 403 and "This link was used or has expired" in response.text
    assert front.routes.connects == ["good", "good", "bad"]


def test_touched_at_most_once_in_a_while_and_its_failure_harms_nothing(front: Front):
    route = front.routes.add(HOST)
    client = front.client()
    for _ in range(5):
        assert client.get("/web").status_code == 200
    wait_until(lambda: front.routes.touches, 10, "touched")
    assert front.routes.touches == [route.environment_id]

    front.routes.touch_fails = True
    front.routes.add("other-shop-acme.localhost")
    assert front.client("other-shop-acme.localhost").get("/web").status_code == 200
