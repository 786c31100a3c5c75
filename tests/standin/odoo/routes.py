"""The routes server mode answers, as Odoo 17.0 answers them (what a route
gets is http.Request: the request after --proxy-mode, its session and the
database chosen for it):

/web/health       {"status": "pass"} (db_server_status asks PostgreSQL from 18.0)
/                 303 to /web
/web              without a session 303 to /web/login; with one, a small page
                  naming the user and the database (Odoo's webclient, not imitated)
/web/login        GET a form with a CSRF token; POST checks it, then the login and
                  password, opens the session and 303s to /web (or `redirect`)
/websocket        the handshake, then an echo (websocket.py); in prefork mode
                  (--workers) only on the gevent port: 500 on the HTTP port
/odooops/connect  as the odooops_connect server-wide module answers it
/standin/whoami   stand-in only: what the request looks like from here (JSON)
/standin/exit     stand-in only: a crash, at once (exit code 1)
/standin/reach    stand-in only: whether this process reaches a database (JSON)
/standin/send_mail stand-in only: one mail sent as Odoo's ir.mail_server sends it, through
                  the active outgoing server of lowest sequence (what real Odoo does with
                  mail.mail's send, which the tests call over JSON-RPC on real trees)"""

from __future__ import annotations

import html
import json
import logging
import os
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlencode

from . import db, odooops_connect, sessions, websocket

_http_logger = logging.getLogger('odoo.http')
_users_logger = logging.getLogger('odoo.addons.base.models.res_users')
_registry_logger = logging.getLogger('odoo.modules.registry')
_bus_logger = logging.getLogger('odoo.addons.bus.websocket')
_connect_logger = logging.getLogger('odoo.addons.odooops_connect.controllers')
_server_logger = logging.getLogger('odoo.service.server')
_werkzeug = logging.getLogger('werkzeug')

HTML = ('Content-Type', 'text/html; charset=utf-8')
ADMIN_ID = 2  # base.user_admin: the stand-in's only member of base.group_system
ERRORS = {  # werkzeug's titles and descriptions
    400: ('Bad Request', 'The browser (or proxy) sent a request that this server could not understand.'),
    403: ('Forbidden', "You don&#x27;t have the permission to access the requested resource. It is either "
                       "read-protected or not readable by the server."),
    404: ('Not Found', 'The requested URL was not found on the server. If you entered the URL manually please '
                       'check your spelling and try again.'),
    405: ('Method Not Allowed', 'The method is not allowed for the requested URL.'),
    426: ('Upgrade Required', 'Wrong websocket version was given during the handshake'),
    500: ('Internal Server Error', 'The server encountered an internal error and was unable to complete your '
                                   'request. Either the server is overloaded or there is an error in the '
                                   'application.'),
}

LOGIN_PAGE = """<!DOCTYPE html>
<html style="height: 100%;">
    <head>
        <meta charset="utf-8"/>
        <title>Odoo</title>
    </head>
    <body>
        <form class="oe_login_form" role="form" method="post" action="/web/login">
            <input type="hidden" name="csrf_token" value="{csrf}"/>
            <input type="text" placeholder="Email" name="login" id="login" required="required" value="{login}"
                autofocus="autofocus"/>
            <input type="password" placeholder="Password" name="password" id="password" required="required"/>
            {error}<input type="hidden" name="redirect" value="{redirect}"/>
            <button type="submit">Log in</button>
        </form>
    </body>
</html>
"""

WEB_PAGE = """<!DOCTYPE html>
<html>
    <head>
        <meta charset="utf-8"/>
        <title>Odoo</title>
        <script>odoo.__session_info__ = {info};</script>
    </head>
    <body class="o_web_client">
        <p>Stand-in web client: <span class="o_user">{name}</span> ({login}) on <span class="o_db">{db}</span></p>
        <a class="o_menu" href="{menu}">Settings</a>
    </body>
</html>
"""


@dataclass
class Response:
    status: int
    body: bytes = b''
    headers: list = field(default_factory=list)
    save_session: bool = True  # as Odoo saves it after a route that returned (not one that raised)
    upgrade: Callable | None = None  # after a 101: serves the connection's files
    after: Callable | None = None  # once answered
    bare: bool = False  # werkzeug's own answer, without Odoo's headers


class QWebException(Exception):
    pass


QWebException.__module__ = 'odoo.addons.base.models.ir_qweb'  # as a traceback names Odoo's


def render(request, page: str, template: str, bundle: str, headers: list) -> Response:
    """A page with Odoo's assets. With a server-wide module that has no
    manifest (--load naming one not on the addons path), ir.asset reads the
    missing manifest's 'assets' and every such page is a 500, as in 17.0."""
    if not request.app.missing:
        return Response(200, page.encode(), [HTML, *headers])
    try:
        try:
            raise KeyError('assets')
        except KeyError as exc:
            raise QWebException(f"Error while render the template\nKeyError: 'assets'\nTemplate: {template}\n"
                                f"Path: /t/html/head/t[1]\nNode: <t t-call-assets=\"{bundle}\" t-js=\"false\"/>"
                                ) from exc
    except QWebException:
        _http_logger.error("Exception during request handling.", exc_info=True)
    return error(500)


def error(status: int, description: str | None = None, headers=()) -> Response:
    title, default = ERRORS[status]
    body = (f'<!doctype html>\n<html lang=en>\n<title>{status} {title}</title>\n<h1>{title}</h1>\n'
            f'<p>{description or default}</p>\n')
    return Response(status, body.encode(), [HTML, *headers], save_session=False)


def redirect(location: str, query: dict | None = None) -> Response:
    if query:
        location = f'{location}?{urlencode(query)}'
    escaped = html.escape(location)
    body = ('<!doctype html>\n<html lang=en>\n<title>Redirecting...</title>\n<h1>Redirecting...</h1>\n'
            f'<p>You should be redirected automatically to the target URL: <a href="{escaped}">{escaped}</a>. '
            'If not, click the link.\n')
    return Response(303, body.encode(), [HTML, ('Location', location)])


def health(request) -> Response:
    status, info = 200, {'status': 'pass'}
    if request.app.major >= 18 and request.query.get('db_server_status'):
        try:
            request.app.ping()
            info['db_server_status'] = True
        except Exception:
            info.update(status='fail', db_server_status=False)
            status = 500
    elif request.query:
        _http_logger.warning("<function odoo.addons.web.controllers.home.health> called ignoring args %s",
                             set(request.query))
    return Response(status, json.dumps(info).encode(),
                    [("Content-Type", "application/json"), ("Cache-Control", "no-store")], save_session=False)


def index(request) -> Response:
    return redirect('/web', request.query)


def web_client(request) -> Response:
    if not request.db:
        return redirect('/web/database/selector')
    session, config = request.session, request.app.config
    if not session['uid']:
        return redirect('/web/login', request.query)
    if request.param('redirect'):
        return redirect(request.param('redirect'))
    expected = sessions.session_token(config, request.db, session['uid'], session.sid)
    if not expected or expected != session['session_token']:
        _http_logger.info("Session expired")
        session.log_out(keep_db=True)
        return redirect('/web/login', {'redirect': '/web?'})
    session.dirty = True  # request.session.touch()
    name = sessions.user_name(config, request.db, session['uid'])
    info = json.dumps({'uid': session['uid'], 'is_system': session['uid'] == ADMIN_ID, 'name': name,
                       'username': session['login'], 'db': request.db})
    menu = '/odoo/action-base.action_res_users' if request.app.major >= 18 else '/web#menu_id=1'
    page = WEB_PAGE.format(info=info, name=html.escape(name), login=html.escape(session['login']),
                           db=html.escape(request.db), menu=menu)
    return render(request, page, 'web.webclient_bootstrap', 'web.assets_web', [('X-Frame-Options', 'DENY')])


def login(request) -> Response:
    if not request.db:
        return redirect('/web/database/selector')
    session, config = request.session, request.app.config
    if request.method != 'POST' and request.param('redirect') and session['uid']:
        return redirect(request.param('redirect'))
    secret = sessions.parameter(config, request.db, 'database.secret') or ''
    problem = ''
    if request.method == 'POST':
        token = request.form.pop('csrf_token', None)
        if not sessions.valid_csrf(secret, session.sid, token):
            if token is not None:
                _http_logger.warning("CSRF validation failed on path '%s'", request.path)
            else:
                _http_logger.warning("No CSRF validation token provided for path %r", request.path)
            return error(400, 'Session expired (invalid CSRF token)')
        name, password = request.form.get('login', ''), request.form.get('password', '')
        user = sessions.active_user(config, request.db, name)
        if user and sessions.check_password(user[1], password):
            _users_logger.info("Login successful for db:%s login:%s from %s", request.db, name, request.remote_addr)
            if user[0] == ADMIN_ID:
                _guess_base_url(request)
            session.log_in(request.db, user[0], name)
            return redirect(request.form.get('redirect') or '/web')
        _users_logger.info("Login failed for db:%s login:%s from %s", request.db, name, request.remote_addr)
        problem = '<p class="alert alert-danger" role="alert">Wrong login/password</p>\n            '
    page = LOGIN_PAGE.format(csrf=sessions.csrf_token(secret, session.sid), error=problem,
                             login=html.escape(request.param('login') or ''),
                             redirect=html.escape(request.param('redirect') or ''))
    return render(request, page, 'web.frontend_layout', 'web.assets_frontend',
                  [('X-Frame-Options', 'SAMEORIGIN'), ('Content-Security-Policy', "frame-ancestors 'self'")])


def _guess_base_url(request) -> None:
    """res.users.authenticate, for a system user: web.base.url follows the
    URL of the login, unless web.base.url.freeze."""
    config = request.app.config
    if sessions.parameter(config, request.db, 'web.base.url.freeze'):
        return
    if sessions.set_parameter(config, request.db, 'web.base.url', request.url_root.rstrip('/')):
        _registry_logger.info("Caches invalidated, signaling through the database: %s", ['default'])


def connect(request) -> Response:
    secret = os.environ.get(odooops_connect.VARIABLE)
    if odooops_connect.MODULE not in request.app.loaded or not secret or not request.db:
        return error(404)
    if request.method not in ('GET', 'HEAD'):
        return error(405, headers=[('Allow', 'GET, HEAD, OPTIONS')])
    name = odooops_connect.verify(secret, request.headers.get(odooops_connect.HEADER))
    user = sessions.active_user(request.app.config, request.db, name) if name is not None else None
    if user is None:
        return error(403)
    request.session.log_in(request.db, user[0], name)
    _connect_logger.info("OdooOps connect: session opened for db:%s login:%s from %s", request.db, name,
                         request.remote_addr)
    return redirect('/web')


def ws(request) -> Response:
    if not websocket.wants_upgrade(request.method, request.headers):
        return error(400)
    if not request.db:
        return error(404)
    if request.kind == 'http' and request.app.prefork:
        _unbound_websocket(request.app.config['gevent_port'])
        return error(500)
    status, message, headers = websocket.handshake(request.headers)
    if status != 101:
        _bus_logger.error("%s %s: %s", status, ERRORS[status][0], message)
        if status == 426:  # 17.0's UpgradeRequired.get_headers() lacks werkzeug 2.2's `scope`: werkzeug's 500
            return Response(500, error(500).body, [HTML], save_session=False, after=_upgrade_required_fails,
                            bare=True)
        return error(status, message, headers)
    request.session.dirty = True  # Odoo saves the session of a websocket
    headers += [HTML, ('Access-Control-Allow-Origin', '*'), ('Access-Control-Allow-Methods', 'GET, POST')]
    return Response(101, b'', headers, upgrade=lambda rfile, wfile, sock: websocket.Echo(rfile, wfile, sock).serve())


def _unbound_websocket(gevent_port: int) -> None:
    """What a worker of prefork mode logs: its HTTP server gives no socket to bind the websocket to."""
    try:
        raise RuntimeError(f"Couldn't bind the websocket. Is the connection opened on the evented port "
                           f"({gevent_port})?") from KeyError('socket')
    except RuntimeError:
        _http_logger.error("Exception during request handling.", exc_info=True)


def _upgrade_required_fails() -> None:
    try:
        raise TypeError("UpgradeRequired.get_headers() takes from 1 to 2 positional arguments but 3 were given")
    except TypeError:
        _werkzeug.error("Error on request:\n%s", traceback.format_exc().rstrip())


def whoami(request) -> Response:
    body = {'host': request.host, 'scheme': request.scheme, 'remote_addr': request.remote_addr,
            'headers': dict(request.headers.items()), 'database': request.db, 'listener': request.kind,
            'port': request.local_port}
    return Response(200, json.dumps(body).encode(), [('Content-Type', 'application/json')], save_session=False)


def reach(request) -> Response:
    """Whether this server's process reaches a database (named: with its own
    credentials, from its environment; or a whole libpq connection string)."""
    import psycopg2
    target = request.param('dsn') or f"dbname={request.param('database')}"
    try:
        psycopg2.connect(target, connect_timeout=5).close()
        body = {'reached': True}
    except psycopg2.Error as e:
        body = {'reached': False, 'error': str(e).strip()}
    return Response(200, json.dumps(body).encode(), [('Content-Type', 'application/json')], save_session=False)


def send_mail(request) -> Response:
    import smtplib
    from email.message import EmailMessage
    conn = db.connect(request.app.config, request.db)
    try:
        with conn.cursor() as cr:
            cr.execute("SELECT smtp_host, smtp_port, smtp_user, smtp_pass FROM ir_mail_server WHERE active "
                       "ORDER BY sequence, id LIMIT 1")
            server = cr.fetchone()
    finally:
        conn.close()
    host, port, user, password = server or ('localhost', 25, None, None)  # Odoo's fallback: --smtp
    message = EmailMessage()
    message['From'], message['To'] = 'admin@example.com', request.param('to') or 'someone@example.com'
    message['Subject'] = request.param('subject') or 'a mail'
    message.set_content('sent by the stand-in')
    try:
        with smtplib.SMTP(host, port, timeout=10) as smtp:
            if user:
                smtp.login(user, password or '')
            smtp.send_message(message)
        body = {'sent': True, 'server': f'{host}:{port}'}
    except (OSError, smtplib.SMTPException) as e:
        body = {'sent': False, 'server': f'{host}:{port}', 'error': str(e)}
    return Response(200, json.dumps(body).encode(), [('Content-Type', 'application/json')], save_session=False)


def crash(request) -> Response:
    _server_logger.critical("Stand-in: /standin/exit asked, the server process exits at once with code 1")
    for handler in logging.getLogger().handlers:
        handler.flush()
    os._exit(1)


ROUTES: dict[str, Callable] = {
    '/web/health': health, '/': index, '/web': web_client, '/web/login': login, '/websocket': ws,
    '/odooops/connect': connect, '/standin/whoami': whoami, '/standin/exit': crash, '/standin/reach': reach,
    '/standin/send_mail': send_mail,
}
