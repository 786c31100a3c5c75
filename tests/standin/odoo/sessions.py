"""Sessions and logins as Odoo 17.0's web client sees them: a `session_id`
cookie of 40 hex digits (a new one for a missing or malformed cookie, kept
for a well-formed unknown one), stored under <data-dir>/sessions (as JSON,
not Odoo's format); a login rotates the session id; the session token is
Odoo's own (an HMAC of the session id keyed with the user's id, login,
password, active and the database secret), so a changed password or a user
made inactive ends the user's sessions; CSRF tokens as Odoo makes them
(HMAC-SHA1 of the session id and a time limit, keyed with database.secret);
passwords checked against passlib's pbkdf2-sha512 hashes that base stores."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
import threading
import time

from . import db

SID = re.compile(r'[a-f0-9]{40}')
LIFETIME = 60 * 60 * 24 * 7  # SESSION_LIFETIME
CSRF_SALT = 60 * 60 * 24 * 365


class Session(dict):
    def __init__(self, sid: str, data: dict | None = None):
        super().__init__({'context': {'lang': 'en_US'}, 'db': None, 'debug': '', 'login': None, 'uid': None,
                          'session_token': None})
        self.update(data or {})
        self.sid, self.dirty, self.should_rotate = sid, False, False

    def set(self, **values) -> None:
        if any(self.get(key) != value for key, value in values.items()):
            self.dirty = True
        self.update(values)

    def log_in(self, dbname: str, uid: int, login: str) -> None:
        """What Session.finalize leaves; the token follows the rotation."""
        self.set(db=dbname, uid=uid, login=login, context={'lang': 'en_US', 'tz': False, 'uid': uid})
        self.should_rotate = True

    def log_out(self, keep_db: bool = False) -> None:
        self.set(db=self['db'] if keep_db else None, uid=None, login=None, session_token=None,
                 context={'lang': 'en_US'})
        self.should_rotate = True


class Store:
    def __init__(self, data_dir: str):
        self.path = os.path.join(data_dir, 'sessions')

    def _file(self, sid: str) -> str:
        return os.path.join(self.path, sid[:2], sid)

    def get(self, cookie: str | None) -> Session:
        if not cookie or not SID.fullmatch(cookie):
            return Session(secrets.token_hex(20))
        try:
            with open(self._file(cookie), encoding='utf-8') as f:
                return Session(cookie, json.load(f))
        except (OSError, ValueError):
            return Session(cookie)

    def save(self, session: Session) -> None:
        path = self._file(session.sid)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        temporary = f'{path}.{threading.get_ident()}.tmp'
        with open(temporary, 'w', encoding='utf-8') as f:
            json.dump(dict(session), f)
        os.replace(temporary, path)

    def rotate(self, session: Session, config: dict) -> None:
        with contextlib.suppress(OSError):
            os.unlink(self._file(session.sid))
        session.sid = secrets.token_hex(20)
        if session['uid'] and session['db']:
            session['session_token'] = session_token(config, session['db'], session['uid'], session.sid)
        session.should_rotate = False
        self.save(session)


def _fetch(config: dict, dbname: str, query: str, params=()) -> list[tuple]:
    conn = db.connect(config, dbname)
    try:
        with conn, conn.cursor() as cr:
            cr.execute(query, params)
            return cr.fetchall() if cr.description else []
    finally:
        conn.close()


def parameter(config: dict, dbname: str, key: str) -> str | None:
    rows = _fetch(config, dbname, "SELECT value FROM ir_config_parameter WHERE key = %s", (key,))
    return rows[0][0] if rows else None


def set_parameter(config: dict, dbname: str, key: str, value: str) -> bool:
    """ir.config_parameter.set_param: True when the value changed."""
    if parameter(config, dbname, key) == value:
        return False
    _fetch(config, dbname, "INSERT INTO ir_config_parameter (key, value, create_date) VALUES (%s, %s, %s) "
                           "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value", (key, value, db.now()))
    return True


def active_user(config: dict, dbname: str, login: str) -> tuple[int, str | None] | None:
    """(id, password hash) of the active user of that login."""
    rows = _fetch(config, dbname, "SELECT id, password FROM res_users WHERE login = %s AND active", (login,))
    return rows[0] if rows else None


def user_name(config: dict, dbname: str, uid: int) -> str:
    rows = _fetch(config, dbname, "SELECT p.name FROM res_users u JOIN res_partner p ON p.id = u.partner_id "
                                  "WHERE u.id = %s", (uid,))
    return rows[0][0] if rows else ''


def session_token(config: dict, dbname: str, uid: int, sid: str) -> str | None:
    """res.users._compute_session_token, the same value."""
    rows = _fetch(config, dbname, "SELECT active, id, login, password, (SELECT value FROM ir_config_parameter "
                                  "WHERE key = 'database.secret') FROM res_users WHERE id = %s", (uid,))
    if len(rows) != 1:
        return None
    return hmac.new(str(rows[0]).encode(), sid.encode(), hashlib.sha256).hexdigest()


def check_password(stored: str | None, password: str) -> bool:
    if not stored or not password:
        return False
    if not stored.startswith('$pbkdf2-sha512$'):
        return hmac.compare_digest(stored.encode(), password.encode())  # passlib's plaintext scheme
    try:
        _, _, rounds, salt, digest = stored.split('$')

        def ab64(text: str) -> bytes:
            return base64.b64decode(text.replace('.', '+') + '=' * (-len(text) % 4))

        computed = hashlib.pbkdf2_hmac('sha512', password.encode(), ab64(salt), int(rounds))
        return hmac.compare_digest(computed, ab64(digest))
    except ValueError:
        return False


def csrf_token(secret: str, sid: str) -> str:
    max_ts = int(time.time() + CSRF_SALT)
    return hmac.new(secret.encode('ascii'), f'{sid}{max_ts}'.encode(), hashlib.sha1).hexdigest() + f'o{max_ts}'


def valid_csrf(secret: str, sid: str, token: str | None) -> bool:
    if not token:
        return False
    mac, _, max_ts = token.rpartition('o')
    if not max_ts.isdigit() or int(max_ts) < time.time():
        return False
    expected = hmac.new(secret.encode('ascii'), f'{sid}{max_ts}'.encode(), hashlib.sha1).hexdigest()
    return hmac.compare_digest(mac.encode(), expected.encode())
