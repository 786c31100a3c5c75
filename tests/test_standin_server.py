"""Server mode of the stand-in odoo-bin (tests/standin, a test double) beside
real Odoo 17.0: what an environment's Odoo is asked for once it runs. Every
check taking `odoo` runs on the stand-in and, when ODOOOPS_TEST_ODOO_SOURCES
names a 17.0 tree, on real Odoo (tests/test_standin.py says how): the login
page and a login, "Connect as" through the odooops_connect server-wide module
(src/odooops/environments/odoo_addons), /websocket threaded and in prefork
mode, --proxy-mode, --db-filter and --load. What only the stand-in has (its
echo, /standin/whoami, /standin/exit) is checked on the stand-in alone."""

from __future__ import annotations

import base64
import contextlib
import os
import re
import signal
import socket
import struct
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import ConnectionClosedError
from websockets.sync.client import connect as ws_connect

import odooops.environments
import test_standin
from odooops.environments.connect import sign
from test_standin import ADDONS, Odoo, Record, records

# the fixtures of tests/test_standin.py: its implementations (the stand-in's tree and virtualenv, the real
# trees named), their role and databases, the fresh database odoo-bin made (base, with demo data)
globals().update({name: getattr(test_standin, name) for name in ("odoo", "pg", "dbs", "fresh", "standin_python")})

CONNECT_ADDONS = Path(odooops.environments.__file__).parent / "odoo_addons"
SECRET = "the environment's connect secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Served:
    proc: subprocess.Popen
    log: Path
    port: int
    gevent_port: int

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def records(self) -> list[Record]:
        return records(self.log.read_text())

    def texts(self, logger: str | None = None) -> list[str]:
        return [r.text for r in self.records if logger is None or r.logger == logger]


def _up(url: str) -> bool:
    try:
        return httpx.get(url, timeout=5).status_code == 200
    except httpx.TransportError:
        return False


@contextlib.contextmanager
def serve(odoo: Odoo, db: str | None, tmp_path: Path, *args: str, env: dict | None = None,
          addons: tuple = (ADDONS,)) -> Iterator[Served]:
    """odoo-bin serving as an environment runs it (threaded unless `args` say --workers), until SIGTERM."""
    port, gevent_port = free_port(), free_port()
    log = tmp_path / f"server-{port}.log"
    database = ["-d", db, "--db-filter", f"^{db}$"] if db else []
    argv = odoo.argv(*database, "--no-database-list", "--addons-path", odoo.addons_path(*addons), "--data-dir",
                     str(odoo.data_dir), "--http-interface", "127.0.0.1", "--http-port", str(port),
                     "--gevent-port", str(gevent_port), "--max-cron-threads=0", *args)
    with log.open("w") as err:
        proc = subprocess.Popen(argv, env={**odoo.env, **(env or {})}, stdout=subprocess.DEVNULL, stderr=err)
    if "--longpolling-port" in args:  # the old name wins, as in Odoo
        gevent_port = int(args[args.index("--longpolling-port") + 1])
    served = Served(proc, log, port, gevent_port)
    try:
        deadline = time.monotonic() + (120 if odoo.standin else 240)
        urls = [f"{served.base}/web/health"]
        if "--workers" in " ".join(args):
            urls.append(f"http://127.0.0.1:{gevent_port}/web/health")
        while not (all(map(_up, urls)) and (not db or "Modules loaded." in log.read_text())):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        yield served
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def csrf(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page)[1]


def session_info(page: str) -> dict:
    """What the web client's page says of its session (Odoo's odoo.__session_info__)."""
    return {key: value for key, value in re.findall(r'"(uid|username|db)": ("[^"]*"|\d+)', page)}


def cookie(response: httpx.Response) -> str:
    [value] = [v for v in response.headers.get_list("set-cookie") if v.startswith("session_id=")]
    return value


# --- the login page, a login, the web client --------------------------------------------------------------


def test_the_login_page_logs_admin_in_and_opens_the_web_client(odoo, fresh, dbs, tmp_path):
    db = dbs.clone(odoo, fresh.db, "login")
    with serve(odoo, db, tmp_path) as served, httpx.Client(base_url=served.base) as client:
        anonymous = client.get("/web")
        assert (anonymous.status_code, anonymous.headers["location"]) == (303, "/web/login")
        page = client.get("/web/login")
        assert page.status_code == 200 and page.headers["content-type"] == "text/html; charset=utf-8"
        assert '<form class="oe_login_form"' in page.text and 'name="password"' in page.text
        token = csrf(page.text)
        before = client.cookies["session_id"]
        assert re.fullmatch(r"[0-9a-f]{40}", before)

        forged = client.post("/web/login", data={"login": "admin", "password": "admin"})
        assert forged.status_code == 400 and "Session expired (invalid CSRF token)" in forged.text
        wrong = client.post("/web/login", data={"login": "admin", "password": "nope", "csrf_token": token})
        assert wrong.status_code == 200 and "Wrong login/password" in wrong.text
        assert client.get("/web").status_code == 303

        logged = client.post("/web/login", data={"login": "admin", "password": "admin", "csrf_token": token})
        assert (logged.status_code, logged.headers["location"]) == (303, "/web")
        assert re.fullmatch(r"session_id=[0-9a-f]{40}; Expires=[^;]+; Max-Age=604800; HttpOnly; Path=/",
                            cookie(logged))
        assert client.cookies["session_id"] != before  # rotated at the login
        web = client.get("/web")
        assert web.status_code == 200
        assert session_info(web.text) == {"uid": "2", "username": '"admin"', "db": f'"{db}"'}
        assert httpx.get(f"{served.base}/web", cookies={"session_id": before}).status_code == 303

        demo = httpx.Client(base_url=served.base)
        token = csrf(demo.get("/web/login").text)
        assert demo.post("/web/login", data={"login": "demo", "password": "demo", "csrf_token": token,
                                             "redirect": "/web?debug=1"}).headers["location"] == "/web?debug=1"
        assert session_info(demo.get("/web").text)["username"] == '"demo"'
    users = served.texts("odoo.addons.base.models.res_users")
    assert users == [f"Login failed for db:{db} login:admin from 127.0.0.1",
                     f"Login successful for db:{db} login:admin from 127.0.0.1",
                     f"Login successful for db:{db} login:demo from 127.0.0.1"]
    assert served.texts("odoo.http") == ["No CSRF validation token provided for path '/web/login'"]
    assert dbs.rows(db, "select value from ir_config_parameter where key = 'web.base.url'") == [
        (f"http://127.0.0.1:{served.port}",)]  # a system user's login sets it, as Odoo does


# --- Connect as -------------------------------------------------------------------------------------------


def test_connect_as_opens_a_session_as_the_signed_login(odoo, fresh, dbs, tmp_path):
    db = dbs.clone(odoo, fresh.db, "connect")
    passwords = dbs.rows(db, "select id, password, write_date from res_users order by id")
    with serve(odoo, db, tmp_path, "--load=base,web,odooops_connect", env={"ODOOOPS_CONNECT_SECRET": SECRET},
               addons=(ADDONS, CONNECT_ADDONS)) as served:
        url = f"{served.base}/odooops/connect"
        for value in (None, "garbage", sign("another secret", "admin"), sign(SECRET, "nobody"),
                      sign(SECRET, "admin", now=time.time() - 120), sign(SECRET, "__system__")):
            refused = httpx.get(url, headers={"X-OdooOps-Connect": value} if value else {})
            assert refused.status_code == 403, value
            assert not refused.headers.get_list("set-cookie")
        connected = httpx.get(url, headers={"X-OdooOps-Connect": sign(SECRET, "admin")})
        assert (connected.status_code, connected.headers["location"]) == (303, "/web")
        admin = connected.cookies["session_id"]
        web = httpx.get(f"{served.base}/web", cookies={"session_id": admin})
        assert web.status_code == 200
        assert session_info(web.text) == {"uid": "2", "username": '"admin"', "db": f'"{db}"'}

        as_demo = httpx.get(url, headers={"X-OdooOps-Connect": sign(SECRET, "demo")}, cookies={"session_id": admin})
        assert as_demo.status_code == 303 and as_demo.cookies["session_id"] != admin
        demo = httpx.get(f"{served.base}/web", cookies={"session_id": as_demo.cookies["session_id"]})
        assert session_info(demo.text)["username"] == '"demo"'
        assert httpx.get(f"{served.base}/web", cookies={"session_id": admin}).status_code == 303  # rotated away
    assert served.texts("odoo.addons.odooops_connect.controllers") == [
        f"OdooOps connect: session opened for db:{db} login:{login} from 127.0.0.1" for login in ("admin", "demo")]
    assert not [r for r in served.records if r.level in ("ERROR", "CRITICAL")]
    assert dbs.rows(db, "select id, password, write_date from res_users order by id") == passwords


def test_connect_as_is_not_there_without_the_secret_or_the_module(odoo, fresh, dbs, tmp_path):
    db = dbs.clone(odoo, fresh.db, "noconnect")
    value = sign(SECRET, "admin")
    with serve(odoo, db, tmp_path, "--load=base,web,odooops_connect", addons=(ADDONS, CONNECT_ADDONS)) as served:
        assert httpx.get(f"{served.base}/odooops/connect", headers={"X-OdooOps-Connect": value}).status_code == 404
    with serve(odoo, db, tmp_path, env={"ODOOOPS_CONNECT_SECRET": SECRET}, addons=(ADDONS, CONNECT_ADDONS)) as served:
        assert httpx.get(f"{served.base}/odooops/connect", headers={"X-OdooOps-Connect": value}).status_code == 404


def test_a_server_wide_module_not_on_the_addons_path_breaks_every_page(odoo, fresh, dbs, tmp_path):
    """Odoo logs the failed import and goes on, but ir.asset then reads the
    'assets' of a manifest that is not there: every page with assets is a 500."""
    db = dbs.clone(odoo, fresh.db, "noload")
    with serve(odoo, db, tmp_path, "--load=base,web,odooops_connect") as served:
        assert httpx.get(f"{served.base}/web/login").status_code == 500
        assert httpx.get(f"{served.base}/odooops/connect").status_code == 404
    problems = [r for r in served.records if r.level != "INFO"]
    assert [(r.level, r.logger, r.text) for r in problems] == [
        ("CRITICAL", "odoo.modules.module", "Couldn't load module odooops_connect"),
        ("ERROR", "odoo.service.server", "Failed to load server-wide module `odooops_connect`."),
        ("ERROR", "odoo.http", "Exception during request handling.")]
    assert problems[1].more[-1] == "ModuleNotFoundError: No module named 'odoo.addons.odooops_connect'"
    assert "KeyError: 'assets'" in problems[2].more
    assert served.texts().index("Failed to load server-wide module `odooops_connect`.") < served.texts().index(
        f"HTTP service (werkzeug) running on {socket.getfqdn('127.0.0.1')}:{served.port}")


# --- /websocket -------------------------------------------------------------------------------------------


def ping_and_close(url: str) -> None:
    """What Odoo's bus and the stand-in's echo both do: a 101, a pong for a ping, the close sent back."""
    with ws_connect(url, open_timeout=10, additional_headers={"Origin": url.replace("ws:", "http:")}) as ws:
        assert ws.response.status_code == 101
        assert ws.response.headers["access-control-allow-origin"] == "*"
        assert ws.ping(b"are you there").wait(10)
        ws.close(4000, "bye")
        assert (ws.protocol.close_rcvd.code, ws.protocol.close_rcvd.reason) == (4000, "bye")


def raw_upgrade(port: int, **headers: str) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    fields = {"Host": f"127.0.0.1:{port}", "Upgrade": "websocket", "Connection": "Upgrade",
              "Sec-WebSocket-Key": key, "Sec-WebSocket-Version": "13", "Origin": f"http://127.0.0.1:{port}",
              **headers}
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(("GET /websocket HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields.items() if v)
                   + "\r\n").encode())
        data = b""
        with contextlib.suppress(TimeoutError):
            while chunk := s.recv(65536):
                data += chunk
        return data


def test_websocket_on_the_http_port_when_threaded(odoo, fresh, dbs, tmp_path):
    db = dbs.clone(odoo, fresh.db, "ws")
    with serve(odoo, db, tmp_path) as served:
        ping_and_close(f"ws://127.0.0.1:{served.port}/websocket")
        assert httpx.get(f"{served.base}/websocket").status_code == 400  # not an upgrade
        assert raw_upgrade(served.port, Origin="").startswith(b"HTTP/1.1 400 ")
        # 17.0 means a 426, but its UpgradeRequired.get_headers() does not take werkzeug 2.2's arguments
        assert raw_upgrade(served.port, **{"Sec-WebSocket-Version": "12"}).startswith(
            b"HTTP/1.1 500 INTERNAL SERVER ERROR\r\n")
        assert raw_upgrade(served.port, **{"Sec-WebSocket-Key": "c2hvcnQ="}).startswith(b"HTTP/1.1 400 ")
    [line] = [t for t in served.texts("werkzeug") if '"GET /websocket HTTP/1.1" 101' in t]
    assert line.startswith("127.0.0.1 - - [")
    assert served.texts("odoo.addons.bus.websocket") == [
        "400 Bad Request: Empty or missing header(s): origin",
        "426 Upgrade Required: Wrong websocket version was given during the handshake",
        "400 Bad Request: Sec-WebSocket-Key should be of length 16 once decoded"]
    [failed] = [r for r in served.records if r.logger == "werkzeug" and r.level == "ERROR"]
    assert failed.text == "Error on request:"
    assert failed.more[-1].startswith("TypeError: UpgradeRequired.get_headers() takes from 1 to 2 positional")


def test_prefork_mode_serves_websocket_on_the_gevent_port_only(odoo, fresh, dbs, tmp_path):
    db = dbs.clone(odoo, fresh.db, "prefork")
    with serve(odoo, db, tmp_path, "--workers", "2", "--max-cron-threads", "1", "--limit-time-real", "120",
               "--limit-time-cpu", "60", "--limit-memory-soft", "2147483648", "--limit-memory-hard",
               "2684354560") as served:
        gevent = f"http://127.0.0.1:{served.gevent_port}"
        assert httpx.get(f"{gevent}/web/login").status_code == 200  # the whole application, there too
        ping_and_close(f"ws://127.0.0.1:{served.gevent_port}/websocket")
        refused = raw_upgrade(served.port)
        assert refused.startswith(b"HTTP/1.0 500 INTERNAL SERVER ERROR\r\n"), refused
        assert b"<title>500 Internal Server Error</title>" in refused
    texts = served.texts("odoo.service.server")
    assert texts[0] == f"HTTP service (werkzeug) running on 127.0.0.1:{served.port}"
    alive = [re.sub(r"\(\d+\)", "(PID)", t) for t in texts if t.endswith(" alive")]
    assert sorted(alive) == ["Worker WorkerCron (PID) alive", *["Worker WorkerHTTP (PID) alive"] * 2]
    assert f"Evented Service (longpolling) running on 127.0.0.1:{served.gevent_port}" in texts
    assert "Stopping gracefully" in texts and "Initiating shutdown" not in texts
    [error] = [r for r in served.records if r.level == "ERROR"]
    assert (error.logger, error.text) == ("odoo.http", "Exception during request handling.")
    assert error.more[-1] == ("RuntimeError: Couldn't bind the websocket. Is the connection opened on the evented "
                              f"port ({served.gevent_port})?")
    longpolling = [t for t in served.texts("longpolling") if '"GET /websocket HTTP/1.1" 101' in t]
    assert len(longpolling) == 1 and longpolling[0].startswith("127.0.0.1 - - [")
    assert served.proc.returncode == 0


# --- proxy mode and the database filter -------------------------------------------------------------------


FORWARDED = {"X-Forwarded-For": "203.0.113.7, 198.51.100.9", "X-Forwarded-Proto": "https",
             "X-Forwarded-Host": "main-shop-acme.example.com"}


def test_proxy_mode_trusts_the_last_forwarded_values_when_a_host_is_forwarded(odoo, fresh, dbs, tmp_path):
    db = dbs.clone(odoo, fresh.db, "proxy")
    with serve(odoo, db, tmp_path, "--proxy-mode") as served, httpx.Client(base_url=served.base) as client:
        assert client.get("/web/health", headers=FORWARDED).status_code == 200
        del_host = {k: v for k, v in FORWARDED.items() if k != "X-Forwarded-Host"}
        assert client.get("/web/health", headers=del_host).status_code == 200
        token = csrf(client.get("/web/login", headers=FORWARDED).text)
        logged = client.post("/web/login", headers=FORWARDED,
                             data={"login": "admin", "password": "admin", "csrf_token": token})
        assert logged.status_code == 303
    lines = [t for t in served.texts("werkzeug") if "/web/" in t][-4:]  # after the checks of serve()
    assert [t.split(" ")[0] for t in lines] == ["198.51.100.9", "127.0.0.1", "198.51.100.9", "198.51.100.9"]
    assert served.texts("odoo.addons.base.models.res_users") == [
        f"Login successful for db:{db} login:admin from 198.51.100.9"]
    assert dbs.rows(db, "select value from ir_config_parameter where key = 'web.base.url'") == [
        ("https://main-shop-acme.example.com",)]


def test_without_proxy_mode_forwarded_headers_are_ignored(odoo, fresh, dbs, tmp_path):
    db = dbs.clone(odoo, fresh.db, "noproxy")
    with serve(odoo, db, tmp_path) as served:
        assert httpx.get(f"{served.base}/web/health", headers=FORWARDED).status_code == 200
    assert all(t.startswith("127.0.0.1 - - [") for t in served.texts("werkzeug"))


def test_db_filter_chooses_the_database_by_host(odoo, fresh, dbs, tmp_path):
    db = dbs.clone(odoo, fresh.db, "byhost")
    with serve(odoo, None, tmp_path, "--db-filter", "^%d$") as served:
        mine = httpx.get(f"{served.base}/web/login", headers={"Host": f"{db}.localhost:{served.port}"})
        assert mine.status_code == 200 and 'name="csrf_token"' in mine.text
        other = httpx.get(f"{served.base}/web/login", headers={"Host": f"www.nothing-{db}.localhost"})
        assert (other.status_code, other.headers["location"]) == (303, "/web/database/selector")
    by_db = {r.db for r in served.records if r.logger == "werkzeug" and "/web/login" in r.text}
    assert by_db == {db, "?"}


# --- the stand-in's own -----------------------------------------------------------------------------------


# these run on the stand-in alone (the `odoo` fixture's first param), never on a real tree
STANDIN_ONLY = pytest.mark.parametrize("odoo", [None], indirect=True, ids=["standin"])


@pytest.fixture()
def standin(odoo):
    return odoo


def frame(opcode: int, payload: bytes, fin: bool = True, mask: bool = True) -> bytes:
    head = bytes([(0x80 if fin else 0) | opcode])
    length = len(payload)
    size = bytes([length]) if length < 126 else (bytes([126]) + struct.pack("!H", length) if length < 65536
                                                   else bytes([127]) + struct.pack("!Q", length))
    if not mask:
        return head + size + payload
    key = os.urandom(4)
    return head + bytes([size[0] | 0x80]) + size[1:] + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


@STANDIN_ONLY
def test_the_standin_echoes_on_its_websocket(standin, fresh, dbs, tmp_path):
    db = dbs.clone(standin, fresh.db, "echo")
    with serve(standin, db, tmp_path) as served:
        url = f"ws://127.0.0.1:{served.port}/websocket"
        with ws_connect(url, additional_headers={"Origin": f"http://127.0.0.1:{served.port}"},
                        max_size=2 ** 21) as ws:
            ws.send("héllo")
            assert ws.recv(timeout=5) == "héllo"
            ws.send(b"\x00\x01\xff")
            assert ws.recv(timeout=5) == b"\x00\x01\xff"
            big = os.urandom(200_000)
            ws.send(big)
            assert ws.recv(timeout=5) == big
            ws.send(["frag", "mented"])
            assert ws.recv(timeout=5) == "fragmented"
        with ws_connect(url, additional_headers={"Origin": "http://x"}, max_size=2 ** 21) as ws:
            ws.send(b"x" * (2 ** 20 + 1))
            with pytest.raises(ConnectionClosedError):
                ws.recv(timeout=5)
            assert ws.protocol.close_rcvd.code == 1009
        with socket.create_connection(("127.0.0.1", served.port), timeout=10) as s:
            key = base64.b64encode(os.urandom(16)).decode()
            s.sendall(f"GET /websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: http://x\r\n\r\n".encode())
            head = b""
            while b"\r\n\r\n" not in head:
                head += s.recv(1)
            assert head.startswith(b"HTTP/1.1 101 ")
            s.sendall(frame(0x1, b"not masked", mask=False))
            answer = s.recv(1024)
            assert answer[0] == 0x88 and struct.unpack("!H", answer[2:4])[0] == 1002


@STANDIN_ONLY
def test_whoami_says_what_the_request_looks_like_after_proxy_mode(standin, fresh, dbs, tmp_path):
    db = dbs.clone(standin, fresh.db, "whoami")
    with serve(standin, db, tmp_path, "--proxy-mode", "--workers", "1") as served:
        seen = httpx.get(f"{served.base}/standin/whoami", headers=FORWARDED).json()
        assert {k: seen[k] for k in ("host", "scheme", "remote_addr", "database", "listener", "port")} == {
            "host": "main-shop-acme.example.com", "scheme": "https", "remote_addr": "198.51.100.9",
            "database": db, "listener": "http", "port": served.port}
        assert seen["headers"]["X-Forwarded-For"] == FORWARDED["X-Forwarded-For"]
        plain = httpx.get(f"http://127.0.0.1:{served.gevent_port}/standin/whoami",
                          headers={"X-Forwarded-For": "203.0.113.7"}).json()
        assert {k: plain[k] for k in ("host", "scheme", "remote_addr", "listener")} == {
            "host": f"127.0.0.1:{served.gevent_port}", "scheme": "http", "remote_addr": "127.0.0.1",
            "listener": "gevent"}


@STANDIN_ONLY
def test_standin_exit_crashes_the_server_at_once(standin, fresh, dbs, tmp_path):
    db = dbs.clone(standin, fresh.db, "crash")
    with serve(standin, db, tmp_path) as served:
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{served.base}/standin/exit")
        assert served.proc.wait(timeout=10) == 1
    last = served.records[-1]
    assert (last.level, last.logger) == ("CRITICAL", "odoo.service.server")
    assert "Initiating shutdown" not in served.texts()


@STANDIN_ONLY
def test_the_longpolling_port_is_the_gevent_port_s_old_name(standin, fresh, dbs, tmp_path):
    db = dbs.clone(standin, fresh.db, "longpolling")
    port = free_port()
    with serve(standin, db, tmp_path, "--workers", "1", "--longpolling-port", str(port)) as served:
        assert httpx.get(f"http://127.0.0.1:{port}/web/health").status_code == 200
    assert f"Evented Service (longpolling) running on 127.0.0.1:{port}" in served.texts("odoo.service.server")
