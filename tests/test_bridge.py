"""The port bridge: an HTTP server in a sandbox with no network, reached
through the inner bridge's unix socket and the outer half's TCP port; and
each half on its own, without a sandbox."""

from __future__ import annotations

import ast
import asyncio
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import pytest
from conftest import free_port

from odooops.environments import bridge
from odooops.environments.bridge import expose, inner_argv
from odooops.runner.executor import Command, LocalExecutor, LocalProcess

INNER_PORT = 8069  # the sandbox has a network namespace of its own: no other test is there
BIG = 20 * 1024 * 1024

# The stand-in for Odoo behind the bridge: `server.py PORT [PORT...] [--delay S] [--echo]`.
# HTTP on 127.0.0.1:PORT (each of them) (GET /hello, GET /big?n=, POST /echo, GET /probe?port=),
# or with --echo a raw TCP server that sends back all it got once the client has
# said all (half-closed). SIGTERM: it says so and exits 3.
SERVER = r'''
import json, os, signal, socket, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

def say(text):
    sys.stdout.write("server: " + text + "\n")
    sys.stdout.flush()

def stop(signum, frame):
    say("SIGTERM")
    os._exit(3)

def pattern(n):
    block = bytes(range(256)) * 4096
    return (block * (n // len(block) + 1))[:n]

def probe(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return "connected"
    except OSError as exc:
        return type(exc).__name__

class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # not 5: many connections come at once

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self, body, kind="application/octet-stream"):
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        url = urlparse(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path == "/hello":
            self.answer(b"hello", "text/plain")
        elif url.path == "/big":
            self.answer(pattern(int(query["n"])))
        elif url.path == "/probe":
            found = {"host": probe(int(query["port"])), "own": probe(PORT),
                     "interfaces": sorted(name for _, name in socket.if_nameindex())}
            self.answer(json.dumps(found).encode(), "application/json")
        else:
            self.send_error(404)

    def do_POST(self):
        self.answer(self.rfile.read(int(self.headers["Content-Length"])))

    def log_message(self, *args):
        pass

def echo(server):
    while True:
        conn, _ = server.accept()
        threading.Thread(target=echo_one, args=(conn,), daemon=True).start()

def echo_one(conn):
    got = b""
    while True:
        data = conn.recv(65536)
        if not data:
            break
        got += data
    conn.sendall(got)
    conn.close()

args = sys.argv[1:]
PORTS = [int(arg) for arg in args if arg.isdigit()]
PORT = PORTS[0]
signal.signal(signal.SIGTERM, stop)
if "--delay" in args:
    time.sleep(float(args[args.index("--delay") + 1]))
if "--echo" in args:
    server = socket.create_server(("127.0.0.1", PORT))
    say("listening")
    echo(server)
else:
    for port in PORTS:
        httpd = Server(("127.0.0.1", port), Handler)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
    say("listening")
    threading.Event().wait()
'''


@pytest.fixture
def server_script(tmp_path) -> Path:
    path = tmp_path / "server.py"
    path.write_text(SERVER)
    return path


def pattern(n: int) -> bytes:
    block = bytes(range(256)) * 4096
    return (block * (n // len(block) + 1))[:n]


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def until(predicate, what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


# In the sandbox, both halves


@dataclass
class Sandbox:
    process: LocalProcess
    exposed: bridge.Exposed
    socket: Path
    lines: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://{self.exposed.address}"

    def bridge_process(self) -> psutil.Process:
        """The inner bridge, seen from here (its pid in the sandbox is another)."""
        for p in psutil.process_iter(["cmdline"]):
            cmdline = p.info["cmdline"] or []
            if cmdline[3:4] == [bridge.SCRIPT] and any(str(self.socket) in arg for arg in cmdline):
                return p
        raise AssertionError("no bridge process")


@asynccontextmanager
async def sandboxed(tmp_path: Path, server_script: Path) -> AsyncIterator[Sandbox]:
    if not shutil.which("bwrap"):
        pytest.fail("bwrap is not installed: scripts/system-packages installs bubblewrap, which these tests need")
    sockets = tmp_path / "sockets"
    sockets.mkdir(mode=0o700)
    sock = sockets / "http.sock"
    argv = inner_argv(sys.executable, {sock: INNER_PORT}, [sys.executable, "-I", str(server_script), str(INNER_PORT)])
    # the bridge and this interpreter, wherever the checkout is (the sandbox hides /tmp)
    command = Command(argv, tmp_path, network=False, writable=(sockets,),
                      readable=(Path(bridge.SCRIPT), Path(sys.prefix), Path(sys.base_prefix)))
    lines: list[str] = []
    process = await LocalExecutor(use_sandbox=True).start(command, lambda _, got: lines.extend(got))
    exposed = await expose(sock, "127.0.0.1", wait=20)
    try:
        yield Sandbox(process, exposed, sock, lines)
    finally:
        await exposed.close()
        process.kill()
        await asyncio.wait_for(process.wait(), 20)


def test_a_request_through_the_bridge_reaches_the_server_in_the_sandbox(tmp_path, server_script):
    async def go() -> None:
        async with sandboxed(tmp_path, server_script) as box, httpx.AsyncClient(timeout=30) as client:
            response = await client.get(f"{box.url}/hello")
            assert (response.status_code, response.text) == (200, "hello")
            assert "server: listening" in box.lines  # the child's output is the log

    asyncio.run(go())


def test_large_bodies_pass_both_ways_intact(tmp_path, server_script):
    async def go() -> None:
        async with sandboxed(tmp_path, server_script) as box, httpx.AsyncClient(timeout=60) as client:
            down = await client.get(f"{box.url}/big", params={"n": BIG})
            assert len(down.content) == BIG and digest(down.content) == digest(pattern(BIG))
            body = os.urandom(BIG)
            up = await client.post(f"{box.url}/echo", content=body)
            assert len(up.content) == BIG and digest(up.content) == digest(body)

    asyncio.run(go())


def test_many_connections_at_once(tmp_path, server_script):
    count, size = 64, 300_000

    async def go() -> None:
        limits = httpx.Limits(max_connections=count, max_keepalive_connections=0)
        async with sandboxed(tmp_path, server_script) as box, \
                httpx.AsyncClient(timeout=60, limits=limits) as client:
            await client.get(f"{box.url}/hello")  # started
            responses = await asyncio.gather(*(client.get(f"{box.url}/big", params={"n": size + i})
                                               for i in range(count)))
            assert [r.content for r in responses] == [pattern(size + i) for i in range(count)]
            await until(lambda: box.exposed.active == 0, "every connection closed")

    asyncio.run(go())


def test_sigterm_to_the_bridge_stops_the_child_and_the_bridge_exits_with_its_code(tmp_path, server_script):
    async def go() -> None:
        async with sandboxed(tmp_path, server_script) as box, httpx.AsyncClient(timeout=30) as client:
            assert (await client.get(f"{box.url}/hello")).status_code == 200
            assert box.socket.exists()
            box.bridge_process().send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(box.process.wait(), 20) == 3
            assert "server: SIGTERM" in box.lines
            assert not box.socket.exists()

    asyncio.run(go())


def test_the_server_in_the_sandbox_has_no_network(tmp_path, server_script):
    """It cannot reach a server listening on the host's loopback; its own
    loopback is all it has."""
    host = socket.create_server(("127.0.0.1", 0))
    host.settimeout(0.5)

    async def go() -> dict:
        async with sandboxed(tmp_path, server_script) as box, httpx.AsyncClient(timeout=30) as client:
            response = await client.get(f"{box.url}/probe", params={"port": host.getsockname()[1]})
            return response.json()

    try:
        found = asyncio.run(go())
        with pytest.raises(TimeoutError):
            host.accept()  # nobody came
    finally:
        host.close()
    assert found == {"host": "ConnectionRefusedError", "own": "connected", "interfaces": ["lo"]}


# The inner bridge on its own: a subprocess, no sandbox


def pythons() -> list[str]:
    """This interpreter, and Python 3.8 (the oldest the bridge runs under) when it is on PATH."""
    found = [sys.executable]
    old = shutil.which("python3.8")
    if old and subprocess.run([old, "-c", ""], capture_output=True).returncode == 0:
        found.append(old)
    return found


@pytest.fixture(params=pythons(), ids=lambda p: Path(p).name)
def python(request) -> str:
    return request.param


def start_bridge(python: str, forwards: dict[Path, int], argv: list[str], *options: str) -> subprocess.Popen:
    command = inner_argv(python, forwards, argv)
    cut = command.index("--")
    return subprocess.Popen([*command[:cut], *options, *command[cut:]], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def exchange(path: Path, request: bytes, timeout: float = 20) -> bytes:
    """Send all of `request`, half-close, read until the end."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn = socket.socket(socket.AF_UNIX)
            conn.connect(str(path))
            break
        except (FileNotFoundError, ConnectionRefusedError):
            conn.close()
            assert time.monotonic() < deadline, f"nobody listens on {path}"
            time.sleep(0.05)
    with conn:
        conn.settimeout(timeout)
        conn.sendall(request)
        conn.shutdown(socket.SHUT_WR)
        got = b""
        while data := conn.recv(1 << 16):
            got += data
        return got


def stop(proc: subprocess.Popen, terminate: bool = True) -> tuple[int, str]:
    if terminate and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    return proc.returncode, out + err


def test_the_inner_bridge_forwards_and_exits_as_its_child(tmp_path, server_script, python):
    port = free_port()
    sock = tmp_path / "http.sock"
    proc = start_bridge(python, {sock: port}, [sys.executable, str(server_script), str(port)])
    try:
        answer = exchange(sock, b"GET /hello HTTP/1.0\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"\r\n\r\nhello")
    finally:
        code, output = stop(proc)
    assert code == 3 and "server: SIGTERM" in output
    assert not sock.exists()


def test_a_half_close_passes_through_both_halves(tmp_path, server_script, python):
    """The echo server answers only once the client has said all: the end of
    the client's stream must reach it through both halves."""
    port = free_port()
    sock = tmp_path / "echo.sock"
    proc = start_bridge(python, {sock: port}, [sys.executable, str(server_script), str(port), "--echo"])
    body = os.urandom(3 * 1024 * 1024 + 7)

    async def through_tcp() -> bytes:
        async with await expose(sock, "127.0.0.1", wait=20) as exposed:
            reader, writer = await asyncio.open_connection(exposed.host, exposed.port)
            writer.write(body)
            await writer.drain()
            writer.write_eof()
            got = await asyncio.wait_for(reader.read(), 20)
            writer.close()
            return got

    try:
        assert exchange(sock, body) == body
        assert asyncio.run(through_tcp()) == body
    finally:
        stop(proc)


def test_a_connection_waits_for_the_child_to_listen(tmp_path, server_script, python):
    port = free_port()
    sock = tmp_path / "http.sock"
    proc = start_bridge(python, {sock: port}, [sys.executable, str(server_script), str(port), "--delay", "1.5"])
    try:
        assert exchange(sock, b"GET /hello HTTP/1.0\r\n\r\n").endswith(b"hello")
    finally:
        stop(proc)


def test_a_connection_nobody_answers_is_closed_after_the_wait(tmp_path, python):
    sock = tmp_path / "http.sock"
    proc = start_bridge(python, {sock: free_port()}, [sys.executable, "-c", "import time; time.sleep(60)"],
                        "--wait", "0.5")
    try:
        started = time.monotonic()
        assert exchange(sock, b"GET / HTTP/1.0\r\n\r\n") == b""
        assert time.monotonic() - started < 5
    finally:
        code, _ = stop(proc)
    assert code == 128 + signal.SIGTERM  # sleep died of the SIGTERM passed on to it


def test_every_socket_is_forwarded_and_removed(tmp_path, server_script, python):
    ports = free_port(), free_port()
    socks = tmp_path / "a.sock", tmp_path / "b.sock"
    proc = start_bridge(python, dict(zip(socks, ports, strict=True)),
                        [sys.executable, str(server_script), *map(str, ports)])
    try:
        for sock in socks:
            assert exchange(sock, b"GET /hello HTTP/1.0\r\n\r\n").endswith(b"hello")
    finally:
        stop(proc)
    assert not any(sock.exists() for sock in socks)


def test_what_the_child_sent_before_it_exited_still_arrives(tmp_path, python):
    port, size = free_port(), 16 * 1024 * 1024
    sock = tmp_path / "once.sock"
    once = (f"import socket; s = socket.create_server(('127.0.0.1', {port})); c, _ = s.accept(); "
            f"c.sendall(bytes({size})); c.close()")
    proc = start_bridge(python, {sock: port}, [sys.executable, "-c", once])
    try:
        got = exchange(sock, b"")
        assert len(got) == size and got == bytes(size)
    finally:
        code, _ = stop(proc, terminate=False)
    assert code == 0


def test_the_childs_exit_code_is_the_bridges(tmp_path, python):
    sock = tmp_path / "http.sock"
    proc = start_bridge(python, {sock: free_port()}, [sys.executable, "-c", "import sys; sys.exit(5)"])
    assert proc.wait(timeout=20) == 5
    assert not sock.exists()
    proc = start_bridge(python, {sock: free_port()}, ["/nonexistent/odoo-bin"])
    code, output = stop(proc, terminate=False)
    assert code == 127 and "odooops-bridge: cannot start /nonexistent/odoo-bin" in output


def test_a_stale_socket_is_replaced_and_anything_else_refused(tmp_path, python):
    sock = tmp_path / "http.sock"
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(sock))
    stale.close()
    proc = start_bridge(python, {sock: free_port()}, [sys.executable, "-c", "import sys; sys.exit(0)"])
    assert proc.wait(timeout=20) == 0
    sock.write_text("not a socket")
    proc = start_bridge(python, {sock: free_port()}, [sys.executable, "-c", "pass"])
    code, output = stop(proc, terminate=False)
    assert code == 1 and "odooops-bridge:" in output and sock.read_text() == "not a socket"


@pytest.mark.parametrize("args, says", [
    (["--", "true"], "--forward"),
    (["--forward=/tmp/x.sock=8069"], "no command to run after --"),
    (["--forward=/tmp/x.sock", "--", "true"], "is not SOCKET=PORT"),
    (["--forward=/tmp/x.sock=70000", "--", "true"], "is not SOCKET=PORT"),
    ([f"--forward=/tmp/{'x' * 120}.sock=8069", "--", "true"], "107 bytes at most"),
])
def test_a_bad_command_line_is_refused(args, says):
    result = subprocess.run([sys.executable, bridge.SCRIPT, *args], capture_output=True, text=True, timeout=20)
    assert result.returncode == 2 and says in result.stderr


def test_the_inner_bridge_is_python_38():
    """It runs under the Python that runs Odoo: 3.8 at the oldest."""
    source = Path(bridge.SCRIPT).read_text()
    ast.parse(source, feature_version=(3, 8))
    tree = ast.parse(source)
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert imported <= sys.stdlib_module_names | {"__future__"}


# The outer half on its own


async def unix_echo(path: Path) -> asyncio.AbstractServer:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.close()

    return await asyncio.start_unix_server(echo, path=str(path))


def test_the_outer_half_forwards_counts_and_closes_without_leaving_tasks(tmp_path):
    sock = tmp_path / "echo.sock"

    async def go() -> None:
        server = await unix_echo(sock)
        exposed = await expose(sock, "localhost")
        assert exposed.address == f"{exposed.host}:{exposed.port}" and exposed.port > 0
        before = exposed.last_activity
        reader, writer = await asyncio.open_connection(exposed.host, exposed.port)
        writer.write(b"ping")
        assert await reader.readexactly(4) == b"ping"
        assert exposed.active == 1 and exposed.last_activity > before
        await exposed.close()  # with the connection open
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()
        assert asyncio.all_tasks() == {asyncio.current_task()}
        with pytest.raises(OSError):
            await asyncio.open_connection(exposed.host, exposed.port)
        server.close()
        await server.wait_closed()

    asyncio.run(go())


def test_a_connection_to_a_missing_socket_is_closed_at_once(tmp_path):
    async def go() -> None:
        async with await expose(tmp_path / "missing.sock", "127.0.0.1", wait=0.2) as exposed:
            started = time.monotonic()
            reader, writer = await asyncio.open_connection(exposed.host, exposed.port)
            writer.write(b"GET / HTTP/1.1\r\n\r\n")
            try:
                assert await asyncio.wait_for(reader.read(), 5) == b""
            except ConnectionResetError:
                pass
            writer.close()
            assert time.monotonic() - started < 2
            assert exposed.active == 0

    asyncio.run(go())


def test_expose_refuses_a_socket_path_too_long(tmp_path):
    with pytest.raises(ValueError, match="107 bytes"):
        asyncio.run(expose(tmp_path / ("x" * 120), "127.0.0.1"))

