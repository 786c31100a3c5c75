"""The generated nginx configuration, run by a real nginx in the foreground
on free ports, in front of stand-in upstreams: an HTTP server per
environment, a WebSocket echo server, and a stand-in for the router."""

from __future__ import annotations

import asyncio
import datetime
import getpass
import hashlib
import json
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from conftest import free_port
from websockets.asyncio.server import ServerConnection, serve
from websockets.sync.client import connect

from odooops.environments.nginx import ProxyRoute, main_config, render
from odooops.errors import InvalidInput

BIG = 20 * 1024 * 1024


@pytest.fixture(scope="module")
def nginx() -> str:
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if not found:
        pytest.fail("nginx is not installed: scripts/system-packages installs it (Debian package nginx)")
    return found


class Upstream:
    """An HTTP server that answers every request with what it saw, as JSON."""

    def __init__(self, name: str):
        self.name = name
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                seen = {"name": upstream.name, "method": self.command, "path": self.path,
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                        "body": {"length": len(body), "sha256": hashlib.sha256(body).hexdigest()}}
                data = json.dumps(seen).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = answer

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class WebSocketEcho:
    """A WebSocket server sending back each message with its name and the
    headers of the handshake it saw."""

    def __init__(self, name: str):
        self.name = name
        self.loop = asyncio.new_event_loop()
        started = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(started,), daemon=True)
        self.thread.start()
        assert started.wait(10)

    def _run(self, started: threading.Event) -> None:
        async def echo(connection: ServerConnection) -> None:
            assert connection.request is not None
            headers = {k.lower(): v for k, v in connection.request.headers.raw_items()}
            async for message in connection:
                await connection.send(json.dumps({"name": self.name, "message": message, "headers": headers}))

        async def main() -> None:
            async with serve(echo, "127.0.0.1", 0) as server:
                self.address = f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
                self.stop = asyncio.Event()
                started.set()
                await self.stop.wait()

        self.loop.run_until_complete(main())

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(10)


@pytest.fixture
def upstreams() -> Iterator[dict[str, Upstream | WebSocketEcho]]:
    found: dict[str, Upstream | WebSocketEcho] = {
        "a": Upstream("a"), "b": Upstream("b"), "router": Upstream("router"), "a-ws": WebSocketEcho("a-ws")}
    yield found
    for upstream in found.values():
        upstream.close()


def dead_address() -> str:
    return f"127.0.0.1:{free_port()}"  # nobody listens there


def check(nginx: str, prefix: Path, http: str) -> Path:
    """Write the whole configuration and have `nginx -t` pass it."""
    prefix.mkdir(exist_ok=True)
    conf = prefix / "nginx.conf"
    conf.write_text(main_config(http, prefix, user=getpass.getuser()))
    tested = subprocess.run([nginx, "-t", "-q", "-p", str(prefix), "-c", str(conf), "-e", "stderr"],
                            capture_output=True, text=True, timeout=30)
    assert tested.returncode == 0, tested.stderr
    return conf


@contextmanager
def running(nginx: str, prefix: Path, http: str, ports: list[int]) -> Iterator[None]:
    conf = check(nginx, prefix, http)
    proc = subprocess.Popen([nginx, "-p", str(prefix), "-c", str(conf), "-e", "stderr", "-g", "daemon off;"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        for port in ports:
            while True:
                assert proc.poll() is None, f"nginx exited: {proc.stderr.read() if proc.stderr else ''}"
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    assert time.monotonic() < deadline, "nginx does not listen"
                    time.sleep(0.05)
        yield
    finally:
        proc.terminate()
        proc.communicate(timeout=20)


def get(port: int, host: str, path: str = "/", *, scheme: str = "http", **kwargs) -> httpx.Response:
    headers = {"Host": host, **kwargs.pop("headers", {})}
    with httpx.Client(verify=False, timeout=30, follow_redirects=False) as client:
        return client.request(kwargs.pop("method", "GET"), f"{scheme}://127.0.0.1:{port}{path}", headers=headers,
                              **kwargs)


def test_each_host_reaches_its_own_environment_with_the_headers_odoo_reads(nginx, tmp_path, upstreams):
    port = free_port()
    routes = [ProxyRoute(["a.localhost", "Shop.Example.com"], upstreams["a"].address, upstreams["a-ws"].address),
              ProxyRoute(["b.localhost"], upstreams["b"].address, None)]
    with running(nginx, tmp_path / "nginx", render(routes, upstreams["router"].address, listen=port), [port]):
        assert get(port, "a.localhost").json()["name"] == "a"
        assert get(port, "shop.example.com").json()["name"] == "a"
        assert get(port, "b.localhost", "/web?db=x").json() | {"headers": None} == {
            "name": "b", "method": "GET", "path": "/web?db=x", "headers": None,
            "body": {"length": 0, "sha256": hashlib.sha256(b"").hexdigest()}}
        seen = get(port, f"a.localhost:{port}", headers={
            "X-Forwarded-For": "203.0.113.9", "X-OdooOps-Connect": "v1.forged", "X-Forwarded-Proto": "https"}).json()
        headers = seen["headers"]
        assert headers["host"] == "a.localhost"
        assert headers["x-forwarded-host"] == f"a.localhost:{port}"  # Odoo's URLs keep the port the client used
        assert headers["x-forwarded-proto"] == "http"  # nginx's word, not the client's
        assert headers["x-forwarded-for"] == "203.0.113.9, 127.0.0.1"  # proxy mode reads the last: nginx's client
        assert headers["x-real-ip"] == "127.0.0.1"
        assert "x-odooops-connect" not in headers


def test_a_large_upload_passes(nginx, tmp_path, upstreams):
    port = free_port()
    routes = [ProxyRoute(["a.localhost"], upstreams["a"].address, None)]
    body = os.urandom(BIG)
    with running(nginx, tmp_path / "nginx", render(routes, upstreams["router"].address, listen=port), [port]):
        seen = get(port, "a.localhost", "/web/binary/upload", method="POST", content=body).json()
    assert seen["name"] == "a" and seen["body"] == {"length": BIG, "sha256": hashlib.sha256(body).hexdigest()}


def test_a_websocket_through_nginx_echoes(nginx, tmp_path, upstreams):
    port = free_port()
    routes = [ProxyRoute(["a.localhost"], upstreams["a"].address, upstreams["a-ws"].address)]
    with running(nginx, tmp_path / "nginx", render(routes, upstreams["router"].address, listen=port), [port]):
        sock = socket.create_connection(("127.0.0.1", port))
        with connect(f"ws://a.localhost:{port}/websocket?version=17.0-1", sock=sock, open_timeout=10) as ws:
            for text in ("hello", "x" * 100_000):
                ws.send(text)
                answer = json.loads(ws.recv(timeout=10))
                assert (answer["name"], answer["message"]) == ("a-ws", text)
        assert answer["headers"]["x-forwarded-host"] == f"a.localhost:{port}"
        assert answer["headers"]["x-forwarded-proto"] == "http"
        assert get(port, "a.localhost", "/web").json()["name"] == "a"  # only /websocket goes there


def test_what_no_environment_answers_goes_to_the_router(nginx, tmp_path, upstreams):
    """A stale port, a sleeping environment, an unknown host, a host outside
    the base domain, and the router's own /odooops/ paths."""
    port = free_port()
    routes = [ProxyRoute(["a.localhost"], upstreams["a"].address, None),
              ProxyRoute(["stale.localhost"], dead_address(), dead_address()),
              ProxyRoute(["sleeping.localhost"], None, None)]
    with running(nginx, tmp_path / "nginx", render(routes, upstreams["router"].address, listen=port), [port]):
        for host, path in [("stale.localhost", "/web"), ("stale.localhost", "/websocket"),
                           ("sleeping.localhost", "/web"), ("unknown.localhost", "/"), ("odooops.example.com", "/"),
                           ("a.localhost", "/odooops/connect?token=t0k")]:
            seen = get(port, host, path).json()
            assert (seen["name"], seen["headers"]["host"], seen["path"]) == ("router", host, path)
        assert get(port, "stale.localhost", method="POST", content=b"x").json()["name"] == "router"


def test_with_tls_it_answers_https_and_redirects_http(nginx, tmp_path, upstreams):
    cert, key = self_signed(tmp_path)
    port, tls_port = free_port(), free_port()
    routes = [ProxyRoute(["a.localhost"], upstreams["a"].address, None)]
    http = render(routes, upstreams["router"].address, listen=port, tls=(str(cert), str(key)), tls_listen=tls_port)
    with running(nginx, tmp_path / "nginx", http, [port, tls_port]):
        moved = get(port, "a.localhost", "/web?debug=1")
        assert (moved.status_code, moved.headers["location"]) == (301, f"https://a.localhost:{tls_port}/web?debug=1")
        secure = get(tls_port, f"a.localhost:{tls_port}", "/web", scheme="https")
        assert secure.json()["name"] == "a"
        assert secure.json()["headers"]["x-forwarded-proto"] == "https"
        assert secure.headers["strict-transport-security"] == "max-age=31536000"
        assert get(tls_port, "other.localhost", scheme="https").json()["name"] == "router"
    assert render(routes, "127.0.0.1:8000", tls=(str(cert), str(key))).count("return 301 https://$host$request_uri;")


def self_signed(folder: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.DNSName("*.localhost")]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_the_output_is_the_same_whatever_the_order(nginx, tmp_path):
    routes = [ProxyRoute([f"b{i}.localhost", f"a{i}.example.com"], f"127.0.0.1:{40000 + i}",
                         f"127.0.0.1:{41000 + i}" if i % 2 else None) for i in range(30)]
    routes += [ProxyRoute([f"sleeping{i}.localhost"], None, None) for i in range(5)]
    shuffled = [ProxyRoute(list(reversed(r.hostnames)), r.http, r.websocket) for r in reversed(routes)]
    text = render(routes, "127.0.0.1:8000", base_domain="ops.example.com")
    assert text == render(shuffled, "127.0.0.1:8000", base_domain="ops.example.com")
    assert text.count("server_name") == 31 and "sleeping" not in text
    assert "server_name .ops.example.com;" in text
    check(nginx, tmp_path / "nginx", text)


@pytest.mark.parametrize("hostname", [
    "a.localhost;", "a.localhost { }", "a b.localhost", "*.localhost", "-a.localhost", "a-.localhost", "a..localhost",
    ".localhost", "", "a" * 64 + ".localhost", "a.localhost\n", "a.localhost\nlocation / {}", "é.localhost",
    "a_b.localhost", "a.localhost:8080", "$host", "'a'", "a.localhost#",
])
def test_an_invalid_hostname_is_refused(hostname):
    with pytest.raises(InvalidInput, match="Not a hostname"):
        render([ProxyRoute([hostname], "127.0.0.1:8069", None)], "127.0.0.1:8000")
    with pytest.raises(InvalidInput, match="Not a hostname"):
        render([], "127.0.0.1:8000", base_domain=hostname)


@pytest.mark.parametrize("address", [
    "127.0.0.1", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:80;", "127.0.0.1:80 backup", "999.0.0.1:80",
    "1.2.3:80", "[::1:80", "[::1]]:80", "[zz::1]:80", "host_name:80", "unix:/tmp/x.sock", ":80", "a.localhost:-1",
    "127.0.0.1:80\n", "127.0.0.1:8069\nserver evil:80", "",
])
def test_an_invalid_address_is_refused(address):
    with pytest.raises(InvalidInput, match="Not a host:port address"):
        render([ProxyRoute(["a.localhost"], address, None)], "127.0.0.1:8000")
    with pytest.raises(InvalidInput, match="Not a host:port address"):
        render([ProxyRoute(["a.localhost"], "127.0.0.1:8069", address)], "127.0.0.1:8000")
    with pytest.raises(InvalidInput, match="Not a host:port address"):
        render([], address)


def test_addresses_are_written_in_their_one_form():
    text = render([ProxyRoute(["a.localhost"], "[::0001]:8069", "Runner-1.Internal:08072")], "127.0.0.1:8000")
    assert "server [::1]:8069 max_fails" in text and "server runner-1.internal:8072 max_fails" in text


@pytest.mark.parametrize("tls", [("cert.pem", "/k.pem"), ("/c.pem", "/k key.pem"), ("/c.pem;", "/k.pem"),
                                 ("/c.pem", "/etc/../k.pem"), ("/c.pem", "")])
def test_an_invalid_certificate_path_is_refused(tls):
    with pytest.raises(InvalidInput, match="Not an absolute path"):
        render([], "127.0.0.1:8000", tls=tls)


def test_other_invalid_input_is_refused():
    with pytest.raises(InvalidInput, match="two environments"):
        render([ProxyRoute(["a.localhost"], "127.0.0.1:1", None), ProxyRoute(["A.localhost"], None, None)],
               "127.0.0.1:8000")
    with pytest.raises(InvalidInput, match="no hostname"):
        render([ProxyRoute([], "127.0.0.1:1", None)], "127.0.0.1:8000")
    for port in (0, 65536, True, "80"):
        with pytest.raises(InvalidInput, match="Not a port"):
            render([], "127.0.0.1:8000", listen=port)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="Not a user name"):
        main_config("", Path("/tmp/x"), user="root; daemon on")
