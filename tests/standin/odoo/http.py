"""The HTTP service of server mode, on http.server: /web/health as 17.0 answers
it (ignoring db_server_status, with a WARNING; from 18.0 that argument asks
PostgreSQL and answers 500 "fail" when it does not answer), a small
/web/login page, and request lines logged in werkzeug's format, with Odoo's
query count, query time and remaining time after them."""

from __future__ import annotations

import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from . import logs

_werkzeug = logging.getLogger('werkzeug')
_http_logger = logging.getLogger('odoo.http')
_routing_logger = logging.getLogger('odoo.addons.base.models.ir_http')
_server_logger = logging.getLogger('odoo.service.server')

LOGIN_PAGE = """<!DOCTYPE html>
<html style="height: 100%;">
    <head>
        <meta charset="utf-8"/>
        <title>Odoo</title>
    </head>
    <body>
        <form class="oe_login_form" role="form" action="/web/login" method="post">
            <input type="text" name="login" id="login" required="required" autofocus="autofocus"/>
            <input type="password" name="password" id="password" required="required"/>
            <button type="submit">Log in</button>
        </form>
    </body>
</html>
"""


class Handler(BaseHTTPRequestHandler):
    server_version = "Werkzeug/2.2.2"
    protocol_version = "HTTP/1.1"

    def _answer(self, status: int, body: bytes, headers: list) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        if self.command != 'HEAD':
            self.wfile.write(body)

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        self.t0 = time.time()
        logs.set_request_db(self.server.dbname)
        if self.server.dbname and not self.server.routing_logged:
            self.server.routing_logged = True
            _routing_logger.info("Generating routing map for key %s", None)
        url = urlsplit(self.path)
        if url.path == '/web/health':
            self._health(parse_qs(url.query))
        elif url.path == '/web/login':
            self._answer(200, LOGIN_PAGE.encode(), [("Content-Type", "text/html; charset=utf-8")])
        elif url.path in ('/', '/web'):
            location = '/web' if url.path == '/' else '/web/login'
            self._answer(303, b'', [("Content-Type", "text/html; charset=utf-8"), ("Location", location)])
        else:
            self._answer(404, b'<!doctype html>\n<html lang=en>\n<title>404 Not Found</title>\n',
                         [("Content-Type", "text/html; charset=utf-8")])

    def _health(self, args: dict) -> None:
        status, info = 200, {'status': 'pass'}
        if self.server.major >= 18 and args.get('db_server_status'):
            try:
                self.server.ping()
                info['db_server_status'] = True
            except Exception:
                info.update(status='fail', db_server_status=False)
                status = 500
        elif args:
            _http_logger.warning("<function odoo.addons.web.controllers.home.health> called ignoring args %s",
                                 set(args))
        self._answer(status, json.dumps(info).encode(),
                     [("Content-Type", "application/json"), ("Cache-Control", "no-store")])

    def log_request(self, code='-', size='-'):
        elapsed = time.time() - getattr(self, 't0', time.time())
        logs.set_perf(f'1 {elapsed / 4:.3f} {elapsed * 3 / 4:.3f}')
        code = getattr(code, 'value', code)
        _werkzeug.info('%s - - [%s] "%s" %s %s', self.address_string(), self.log_date_time_string(),
                       self.requestline, code, '-')

    def log_message(self, format, *args):  # errors of the request itself
        _werkzeug.info('%s - - [%s] %s', self.address_string(), self.log_date_time_string(), format % args)


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, dbname: str | None, major: int, ping):
        self.dbname, self.major, self.ping, self.routing_logged = dbname, major, ping, False
        super().__init__(address, Handler)


def spawn(interface: str, port: int, dbname: str | None, major: int, ping) -> Server | None:
    """Bind in Odoo's HTTP thread, waiting for it (so the address is logged
    before the databases load, as Odoo's log shows it), then serve in a
    daemon thread. A port in use kills that thread as it kills Odoo's: its
    traceback on stderr, and the rest goes on without HTTP."""
    bound = []

    def bind():
        bound.append(Server((interface or '0.0.0.0', port), dbname, major, ping))
        _server_logger.info('HTTP service (werkzeug) running on %s:%s', bound[0].server_name, bound[0].server_port)

    thread = threading.Thread(target=bind, name="odoo.service.httpd", daemon=True)
    thread.start()
    thread.join()
    if not bound:
        return None
    threading.Thread(target=bound[0].serve_forever, name="odoo.service.httpd", daemon=True).start()
    return bound[0]
