"""The mail catcher's SMTP server (aiosmtpd), on the caller's event loop.

Every session must AUTH (LOGIN or PLAIN) as an environment's catcher
account before MAIL (530 otherwise); the password is checked against the
one derived from the server key in constant time, then the database says
whether that environment exists and is not production's (535 otherwise).
Each mail is kept whole, its bytes as they arrived, as an .eml in the
artifact store, and recorded; nothing is relayed. It listens on loopback by
default, where AUTH without TLS is fine: Odoo's connection reaches it through
the environment's bridge, on this host."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any, cast
from uuid import UUID

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from odooops import mail
from odooops.db import Actor, Database
from odooops.errors import OpsError
from odooops.mail.message import parse
from odooops.managers.mails import Mails, store_of
from odooops.runner.artifacts import ArtifactStore
from odooops.settings import Secret, Settings

log = logging.getLogger("odooops.mail")
PRUNE_EVERY = 3600.0  # seconds
CLOSE_WAIT = 5.0


class _Quiet(logging.Filter):
    """aiosmtpd warns at every connection that AUTH needs no TLS here (the
    catcher's choice, see above; docs/mail.md says why), and of its own
    deprecated attribute that it sets itself."""

    def filter(self, record: logging.LogRecord) -> bool:
        said = record.getMessage()
        return "auth_require_tls" not in said and "login_data is deprecated" not in said


logging.getLogger("mail.log").addFilter(_Quiet())


def keep(store: ArtifactStore, raw: bytes) -> str:
    """The mail's bytes in the store, as they are; their sha256."""
    store.root.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=store.root, prefix=".incoming-", suffix=".eml")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
        return store.put(Path(tmp), "mail.eml").sha256
    finally:
        os.unlink(tmp)


class ListenFailed(OpsError):
    """The mail catcher cannot listen on its address."""

    code = "mail_catcher_address"


class Handler:
    """aiosmtpd's handler: the AUTH mechanisms' database check, and DATA."""

    def __init__(self, mails: Mails, secret_key: Secret):
        self.mails = mails
        self.secret_key = secret_key

    def authenticator(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                      auth_data: Any) -> AuthResult:
        """The credentials' check that needs no database: the password is
        the one derived for the environment the username names."""
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login = auth_data.login.decode("utf-8", "replace")
        found = mail.checked(self.secret_key, login, auth_data.password.decode("utf-8", "replace"))
        return AuthResult(success=found is not None, handled=False, auth_data=found)

    async def auth_PLAIN(self, server: SMTP, args: list[str]) -> AuthResult:
        return await self._known(await server.auth_PLAIN(server, args))

    async def auth_LOGIN(self, server: SMTP, args: list[str]) -> AuthResult:
        return await self._known(await server.auth_LOGIN(server, args))

    async def _known(self, result: AuthResult) -> AuthResult:
        """Valid credentials of an environment that is gone, or production's, are refused too."""
        if not result.success:
            return result
        if not isinstance(result.auth_data, UUID):
            return AuthResult(success=False, handled=False)
        try:
            accepted = await self.mails.accepting(result.auth_data)
        except OpsError as exc:
            log.warning("mail catcher: cannot check credentials: %s", exc)
            return AuthResult(success=False, handled=False, message="454 4.7.0 Temporary authentication failure")
        return result if accepted else AuthResult(success=False, handled=False)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        environment_id = cast(UUID, session.auth_data)
        raw = envelope.original_content or b""
        try:
            sha256 = await asyncio.to_thread(keep, self.mails.store, raw)
            message = await asyncio.to_thread(parse, raw)
            row = await self.mails.record(environment_id, envelope.mail_from or "", list(envelope.rcpt_tos),
                                          len(raw), sha256, message)
        except (OpsError, OSError) as exc:
            log.warning("mail catcher: a mail of environment %s was not kept: %s", environment_id, exc)
            return "451 4.3.0 The mail could not be kept: try again later"
        if row is None:
            return "550 5.7.1 This environment is gone"
        log.info("caught mail %s of environment %s (%d bytes)", row["id"], environment_id, len(raw))
        return f"250 2.0.0 Caught as mail {row['id']}: not delivered"


class Catcher:
    """The SMTP server and its hourly pruning, started and stopped with the caller."""

    def __init__(self, db: Database, settings: Settings, secret_key: Secret, store: ArtifactStore | None = None):
        self.settings = settings
        self.mails = Mails(db, Actor.service(), store or store_of(settings))
        self.handler = Handler(self.mails, secret_key)
        self.host, self.port = mail.address(settings)
        self._server: asyncio.Server | None = None
        self._sessions: set[SMTP] = set()
        self._pruning: asyncio.Task | None = None

    def _protocol(self) -> SMTP:
        with warnings.catch_warnings():  # the same warning as the log's, see _Quiet
            warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS", category=UserWarning)
            return _Session(self._sessions, self.handler, data_size_limit=self.settings.mail_max_bytes,
                            enable_SMTPUTF8=True, hostname="odooops-mail-catcher", ident="OdooOps mail catcher",
                            auth_required=True, auth_require_tls=False, authenticator=self.handler.authenticator,
                            loop=asyncio.get_running_loop())

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(self._protocol, self.host, self.port)
        except OSError as exc:
            raise ListenFailed(f"the mail catcher cannot listen on {self.host}:{self.port}: "
                               f"{exc.strerror or exc} (ODOOOPS_MAIL_CATCHER_ADDRESS)") from exc
        self.port = self._server.sockets[0].getsockname()[1]  # the one given port 0
        self._pruning = asyncio.create_task(self._prune_often())

    async def stop(self) -> None:
        if self._pruning is not None:
            self._pruning.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pruning
        if self._server is not None:
            self._server.close()
            for session in list(self._sessions):
                if session.transport is not None:
                    session.transport.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), CLOSE_WAIT)
            self._server = None

    async def __aenter__(self) -> Catcher:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def prune(self) -> int:
        return await self.mails.prune(self.settings.mail_retention_days)

    async def _prune_often(self) -> None:
        while True:
            try:
                pruned = await self.prune()
                if pruned:
                    log.info("mail catcher: pruned %d mail(s) older than %d days", pruned,
                             self.settings.mail_retention_days)
            except OpsError as exc:
                log.warning("mail catcher: pruning failed: %s", exc)
            await asyncio.sleep(PRUNE_EVERY)


class _Session(SMTP):
    """One SMTP connection, known to its catcher until it ends (a stop closes it)."""

    def __init__(self, sessions: set[SMTP], *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._all = sessions

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._all.add(self)
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        self._all.discard(self)
        super().connection_lost(error)
