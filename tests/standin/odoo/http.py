"""The HTTP service of server mode, on http.server, threaded: the routes of
routes.py, the request as Odoo 17.0 sees it (with --proxy-mode and an
X-Forwarded-Host header, werkzeug's ProxyFix with x_for=1, x_proto=1,
x_host=1: the last value of X-Forwarded-For, -Proto and -Host), its session,
and the database Odoo would choose for it (the session's if --db-filter lets
it through, else the only one of the databases listed and filtered by
--db-filter, %h and %d replaced, or named by -d without a filter).

Request lines are logged in werkzeug's format with Odoo's query count, query
time and remaining time after them on the HTTP port; on the gevent port
(prefork mode) in gevent's format on the `longpolling` logger, once the
request is over. In prefork mode the HTTP port speaks HTTP/1.0, as the
workers' werkzeug handler does."""

from __future__ import annotations

import logging
import re
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler, HTTPServer, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import psycopg2

from . import db, logs, routes, sessions

_werkzeug = logging.getLogger('werkzeug')
_longpolling = logging.getLogger('longpolling')
_http_logger = logging.getLogger('odoo.http')
_routing_logger = logging.getLogger('odoo.addons.base.models.ir_http')
_server_logger = logging.getLogger('odoo.service.server')


class App:
    """What every request of the process shares."""

    def __init__(self, config: dict, major: int, ping, loaded: set[str]):
        self.config, self.major, self.ping, self.loaded = config, major, ping, loaded
        self.missing = {m.strip() for m in config['server_wide_modules'].split(',') if m.strip()} - loaded
        self.prefork = config['workers'] > 0
        self.store = sessions.Store(config['data_dir'])
        self.requests = 0  # for prefork mode's exit lines
        self._routed: set[str] = set()
        self._lock = threading.Lock()

    def routed(self, dbname: str) -> bool:
        """Whether the routing map of that database was made already (and make it)."""
        with self._lock:
            known = dbname in self._routed
            self._routed.add(dbname)
            return known


def db_filter(config: dict, dbs: list[str], host: str) -> list[str]:
    if config['dbfilter']:
        host = host.partition(':')[0]
        if host.startswith('www.'):
            host = host[4:]
        domain = host.partition('.')[0]
        pattern = re.compile(config['dbfilter'].replace('%h', re.escape(host)).replace('%d', re.escape(domain)))
        return [name for name in dbs if pattern.match(name)]
    if config.get('db_name'):
        return sorted({name.strip() for name in config['db_name'].split(',')}.intersection(dbs))
    return list(dbs)


def db_list(config: dict, host: str) -> list[str]:
    """odoo.http.db_list(force=True): -d without --db-filter names them, else PostgreSQL lists the role's."""
    if not config['dbfilter'] and config.get('db_name'):
        return db_filter(config, sorted(name.strip() for name in config['db_name'].split(',')), host)
    try:
        conn = db.connect(config, 'postgres')
    except psycopg2.OperationalError:
        return []
    try:
        with conn.cursor() as cr:
            cr.execute("SELECT datname FROM pg_database WHERE datdba = (SELECT usesysid FROM pg_user WHERE "
                       "usename = current_user) AND NOT datistemplate AND datallowconn AND datname NOT IN %s "
                       "ORDER BY datname", (tuple({'postgres', config['db_template']}),))
            return db_filter(config, [name for (name,) in cr.fetchall()], host)
    finally:
        conn.close()


class Request:
    """One request as a route sees it."""

    def __init__(self, handler: Handler):
        server = handler.server
        self.app, self.kind, self.local_port = server.app, server.kind, server.server_port
        self.method, self.headers = handler.command, handler.headers
        url = urlsplit(handler.path)
        self.path = url.path
        self.query = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        self.form: dict[str, str] = {}
        if self.method == 'POST':
            body = handler.rfile.read(int(self.headers.get('Content-Length') or 0))
            if (self.headers.get('Content-Type') or '').startswith('application/x-www-form-urlencoded'):
                self.form = {k: v[0] for k, v in parse_qs(body.decode('utf-8', 'replace'),
                                                           keep_blank_values=True).items()}
        self.host = self.headers.get('Host') or f'{server.server_name}:{server.server_port}'
        self.scheme, self.remote_addr = 'http', handler.client_address[0]
        if self.app.config['proxy_mode'] and self.headers.get('X-Forwarded-Host'):
            self._proxy_fix()
        try:
            cookie = SimpleCookie(self.headers.get('Cookie') or '').get('session_id')
        except CookieError:
            cookie = None
        self.cookie_sid = cookie.value if cookie else None
        self.session = self.app.store.get(self.cookie_sid)
        self.db = self._choose_db()

    def _proxy_fix(self) -> None:
        def last(name: str) -> str | None:
            values = [v.strip() for v in (self.headers.get(name) or '').split(',')]
            return values[-1] or None

        self.remote_addr = last('X-Forwarded-For') or self.remote_addr
        self.scheme = last('X-Forwarded-Proto') or self.scheme
        self.host = last('X-Forwarded-Host') or self.host

    def _choose_db(self) -> str | None:
        config, session = self.app.config, self.session
        if session['db'] and db_filter(config, [session['db']], self.host):
            dbname = session['db']
        else:
            found = db_list(config, self.host)
            dbname = found[0] if len(found) == 1 else None
        if session['db'] != dbname:
            if session['db']:
                _http_logger.warning("Logged into database %r, but dbfilter rejects it; logging session out.",
                                     session['db'])
                session.log_out()
            session['db'] = dbname
        return dbname

    @property
    def url_root(self) -> str:
        return f'{self.scheme}://{self.host}/'

    def param(self, name: str) -> str | None:
        return self.form.get(name, self.query.get(name))


class Handler(BaseHTTPRequestHandler):
    server: Server
    server_version = "Werkzeug/2.2.2"
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        if self.server.kind == 'http' and self.server.app.prefork:
            self.protocol_version = 'HTTP/1.0'

    def do_HEAD(self):
        self._serve()

    def do_GET(self):
        self._serve()

    def do_POST(self):
        self._serve()

    def _serve(self) -> None:
        self.t0, self.code, self.length, self.remote = time.time(), 0, 0, self.client_address[0]
        logs.set_request_db(None)
        self.server.app.requests += 1
        request = Request(self)
        self.remote = request.remote_addr
        logs.set_request_db(request.db)
        if request.db and not self.server.app.routed(request.db):
            _routing_logger.info("Generating routing map for key %s", None)
        route = routes.ROUTES.get(request.path)
        response = route(request) if route else routes.error(404)
        if response.save_session:
            self._save_session(request, response)
        self._answer(response)
        if response.after:
            response.after()
        if response.upgrade:
            response.upgrade(self.rfile, self.wfile, self.connection)
        if self.server.kind == 'gevent':
            _longpolling.info('%s - - [%s] "%s" %s %s %.6f', self.remote, datetime.now().replace(microsecond=0),
                              self.requestline, self.code, self.length or '-', time.time() - self.t0)

    def _save_session(self, request: Request, response: routes.Response) -> None:
        """Request._save_session: rotated if asked, saved if changed, the cookie set if either or new."""
        session, store = request.session, self.server.app.store
        if session.should_rotate:
            store.rotate(session, self.server.app.config)
        elif session.dirty:
            store.save(session)
        if session.dirty or request.cookie_sid != session.sid:
            expires = format_datetime(datetime.now(UTC) + timedelta(days=365), usegmt=True)
            response.headers.append(('Set-Cookie', f'session_id={session.sid}; Expires={expires}; '
                                                   f'Max-Age={sessions.LIFETIME}; HttpOnly; Path=/'))

    def _answer(self, response: routes.Response) -> None:
        self.code, self.length = response.status, len(response.body)
        reason = 'SWITCHING PROTOCOLS' if response.status == 101 else self.responses[response.status][0].upper()
        self.send_response(response.status, reason)
        for name, value in response.headers:
            self.send_header(name, value)
        if not response.upgrade:
            self.send_header("Content-Length", str(len(response.body)))
            self.send_header("Connection", "close")
        if not response.bare:
            self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        self.close_connection = True
        if self.command != 'HEAD':
            self.wfile.write(response.body)
        self.wfile.flush()

    def log_request(self, code='-', size='-'):
        if self.server.kind == 'gevent':
            return  # logged once the request is over
        elapsed = time.time() - getattr(self, 't0', time.time())
        logs.set_perf(f'1 {elapsed / 4:.3f} {elapsed * 3 / 4:.3f}')
        code = getattr(code, 'value', code)
        _werkzeug.info('%s - - [%s] "%s" %s %s', getattr(self, 'remote', self.address_string()),
                       self.log_date_time_string(), self.requestline, code, '-')

    def log_message(self, format, *args):  # errors of the request itself
        _werkzeug.info('%s - - [%s] %s', self.address_string(), self.log_date_time_string(), format % args)


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, app: App, kind: str):
        self.app, self.kind = app, kind
        super().__init__(address, Handler)


def spawn(interface: str, port: int, app: App) -> Server | None:
    """Bind in Odoo's HTTP thread, waiting for it (so the address is logged
    before the databases load, as Odoo's log shows it), then serve in a
    daemon thread. A port in use kills that thread as it kills Odoo's: its
    traceback on stderr, and the rest goes on without HTTP. The threaded
    server logs werkzeug's server name (the host's name), prefork mode the
    interface as given."""
    bound = []

    def bind():
        bound.append(Server((interface or '0.0.0.0', port), app, 'http'))
        name = (interface or '0.0.0.0') if app.prefork else bound[0].server_name
        _server_logger.info('HTTP service (werkzeug) running on %s:%s', name, bound[0].server_port)

    thread = threading.Thread(target=bind, name="odoo.service.httpd", daemon=True)
    thread.start()
    thread.join()
    if not bound:
        return None
    threading.Thread(target=bound[0].serve_forever, name="odoo.service.httpd", daemon=True).start()
    return bound[0]


def spawn_gevent(interface: str, port: int, app: App) -> HTTPServer | None:
    """Prefork mode's gevent process, here a thread of this one: every route, /websocket among them."""
    try:
        server = Server((interface or '0.0.0.0', port), app, 'gevent')
    except OSError:
        _longpolling.exception("Evented Service (longpolling): uncaught error during main loop")
        return None
    _server_logger.info('Evented Service (longpolling) running on %s:%s', interface or '0.0.0.0', port)
    threading.Thread(target=server.serve_forever, name="odoo.service.gevent", daemon=True).start()
    return server
