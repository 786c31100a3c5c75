"""GET /odooops/connect: the OdooOps router forwards a "Connect as" link here
with the header X-OdooOps-Connect, signed with ODOOOPS_CONNECT_SECRET; this
opens the session as that login the way Odoo's own login does (16.0 to 19.0:
Session.finalize sets db, uid, login, context and session_token and marks the
session for rotation) and redirects to /web. Without the secret (or without a
database) the route is not there; a bad header or no such active user is 403.
Nothing is written but what a login writes (a res.users.log line); the
password is never read or changed.

Loaded server-wide, not installed: since 16.0 ir.http's routing map adds
the server-wide modules to the installed ones, so the route answers in every
database the --db-filter lets through."""

import base64
import binascii
import hashlib
import hmac
import inspect
import logging
import os
import re
import time

from odoo import http  # type: ignore[import-not-found]
from odoo.http import request  # type: ignore[import-not-found]
from werkzeug.exceptions import Forbidden, NotFound

_logger = logging.getLogger(__name__)

HEADER = 'X-OdooOps-Connect'
VARIABLE = 'ODOOOPS_CONNECT_SECRET'  # the connect secret, set by the runner

# --- a copy of odooops.environments.connect.verify (this runs in Odoo's Python, without odooops) ---
MAX_AHEAD = 300
_LOGIN = re.compile(r"[A-Za-z0-9_-]+")
_EXPIRES = re.compile(r"[0-9]{1,12}")
_NONCE = re.compile(r"[0-9a-f]{16,64}")
_MAC = re.compile(r"[0-9a-f]{64}")


def verify(secret, value, now=None):
    if not secret or not isinstance(value, str):
        return None
    parts = value.split(".")
    if len(parts) != 5 or parts[0] != "v1":
        return None
    _, encoded, expires, nonce, mac = parts
    if not (_LOGIN.fullmatch(encoded) and _EXPIRES.fullmatch(expires) and _NONCE.fullmatch(nonce)
            and _MAC.fullmatch(mac)):
        return None
    expected = hmac.new(secret.encode(), value.rpartition(".")[0].encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, mac):
        return None
    moment = int(time.time() if now is None else now)
    if not moment < int(expires) <= moment + MAX_AHEAD:
        return None
    try:
        return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
# --- end of the copy ---


def _log_in(user):
    """What Session.authenticate does once the password is checked, without it."""
    session = request.session
    if hasattr(user, '_update_last_login'):
        user.with_user(user)._update_last_login()  # as res.users._login does
    session.uid = None
    session['pre_login'] = user.login
    session['pre_uid'] = user.id
    finalize = getattr(session, 'finalize', None)
    if finalize is not None and list(inspect.signature(finalize).parameters) == ['env']:
        finalize(request.env)
    else:  # what finalize does, for a version without it
        env = request.env(user=session.pop('pre_uid'))
        session.pop('pre_login')
        session.should_rotate = True
        session.update({'db': env.registry.db_name, 'login': user.login, 'uid': user.id,
                        'context': dict(env['res.users'].context_get()),
                        'session_token': env.user._compute_session_token(session.sid)})
    request.update_env(user=session.uid, context=session.context)


class OdooOpsConnect(http.Controller):

    @http.route('/odooops/connect', type='http', auth='none', methods=['GET'], csrf=False, save_session=True)
    def odooops_connect(self):
        secret = os.environ.get(VARIABLE)
        if not secret or not request.db:
            raise NotFound()
        login = verify(secret, request.httprequest.headers.get(HEADER))
        if login is None:
            raise Forbidden()
        user = request.env['res.users'].sudo().search([('login', '=', login), ('active', '=', True)], limit=1)
        if not user:
            raise Forbidden()
        _log_in(user)
        _logger.info("OdooOps connect: session opened for db:%s login:%s from %s",
                     request.db, login, request.httprequest.remote_addr)
        return request.redirect('/web')
