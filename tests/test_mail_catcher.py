"""The mail catcher on a free port against the test's database, sent to with
smtplib as Odoo would: mail with an environment's derived credentials is
caught, stored whole and attributed; anything else is refused."""

from __future__ import annotations

import asyncio
import signal
import smtplib
import subprocess
import sys
import types
from email import policy
from email.message import EmailMessage
from uuid import uuid4

import httpx
import pytest
from conftest import free_port, owner_conn, process_env
from helpers import wait_until
from world import seed

from odooops import mail, runtime
from odooops.mail.catcher import Catcher
from odooops.managers.mails import store_of
from odooops.settings import Secret

KEY = Secret("the server's key")


@pytest.fixture
def world(owner_db):
    seeded = seed(owner_db)
    with owner_conn(owner_db) as conn:
        conn.execute("delete from ops.mail_events")  # the world's one: these tests count their own
    return seeded


@pytest.fixture
def mail_settings(settings):
    return settings.with_overrides(mail_catcher_address=f"127.0.0.1:{free_port()}", mail_max_bytes=200_000)


def environments(owner_db) -> dict[str, dict]:
    """stage → the seeded environment (id, branch_id, project_id)."""
    with owner_conn(owner_db) as conn:
        rows = conn.execute("select e.id, e.branch_id, e.project_id, b.stage::text as stage from ops.environments e "
                            "join ops.branches b on b.id = e.branch_id").fetchall()
    return {r["stage"]: r for r in rows}


def mails(owner_db) -> list[dict]:
    with owner_conn(owner_db) as conn:
        return conn.execute("select * from ops.mail_events order by id").fetchall()


def with_catcher(settings, work):
    """`work(catcher)` in a thread while the catcher serves on this event loop."""

    async def main():
        async with runtime.database(settings) as db, Catcher(db, settings, KEY) as catcher:
            return await asyncio.to_thread(work, catcher)

    return asyncio.run(main())


def a_mail(size: int = 0) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Shop <shop@acme.test>"
    msg["To"] = "customer@example.test"
    msg["Subject"] = "Your order S00042"
    msg["Message-Id"] = "<order-42@acme.test>"
    msg.set_content("Hello,\r\nyour order is confirmed.\r\n")
    msg.add_alternative("<p>Hello, <b>your order</b> is confirmed.</p>", subtype="html")
    msg.add_attachment(b"%PDF-1.4 quote" + b"x" * size, maintype="application", subtype="pdf",
                       filename="S00042.pdf")
    return msg


def send(catcher, login: str | None, password: str | None, message: bytes, mechanism: str = "PLAIN"):
    with smtplib.SMTP(catcher.host, catcher.port, timeout=10) as smtp:
        smtp.ehlo("odoo.test")
        if login is not None:
            smtp.user, smtp.password = login, password
            smtp.auth(mechanism, smtp.auth_plain if mechanism == "PLAIN" else smtp.auth_login)
        smtp.sendmail("shop@acme.test", ["customer@example.test", "cc@example.test"], message)


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_a_mail_with_the_environments_credentials_is_caught_whole(owner_db, world, mail_settings, mechanism):
    env = environments(owner_db)["staging"]
    raw = a_mail().as_bytes(policy=policy.SMTP)  # as it crosses the wire: CRLF
    with_catcher(mail_settings, lambda c: send(c, *mail.credentials(KEY, env["id"]), raw, mechanism))
    [row] = mails(owner_db)
    assert (row["environment_id"], row["branch_id"], row["project_id"]) == (env["id"], world.staging, world.shop)
    assert row["mail_from"] == "shop@acme.test"
    assert row["rcpt_to"] == ["customer@example.test", "cc@example.test"]
    assert (row["subject"], row["message_id"]) == ("Your order S00042", "<order-42@acme.test>")
    assert row["attachments"] == [{"filename": "S00042.pdf", "content_type": "application/pdf", "size": 14}]
    stored = store_of(mail_settings).path_of(row["sha256"]).read_bytes()
    assert stored == raw and row["size_bytes"] == len(raw)


def test_the_development_environment_has_credentials_of_its_own(owner_db, world, mail_settings):
    envs = environments(owner_db)
    with_catcher(mail_settings, lambda c: send(c, *mail.credentials(KEY, envs["development"]["id"]),
                                               a_mail().as_bytes()))
    assert [r["branch_id"] for r in mails(owner_db)] == [world.dev]


def refused(catcher, *args) -> tuple[int, bytes]:
    with pytest.raises(smtplib.SMTPException) as failed:
        send(catcher, *args)
    error = failed.value
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return next(iter(error.recipients.values()))
    return error.smtp_code, error.smtp_error


def test_wrong_credentials_are_refused_and_nothing_is_recorded(owner_db, world, mail_settings):
    envs = environments(owner_db)
    staging = envs["staging"]["id"]
    login, _ = mail.credentials(KEY, staging)
    other_key = mail.credentials(Secret("another server's key"), staging)
    stranger = uuid4()

    def attempts(c):
        return {
            "wrong password": refused(c, login, "guess", b"Subject: x\r\n\r\nx"),
            "another server's password": refused(c, *other_key, b"Subject: x\r\n\r\nx"),
            "unknown environment": refused(c, *mail.credentials(KEY, stranger), b"Subject: x\r\n\r\nx"),
            "another environment's password": refused(
                c, login, mail.password(KEY, envs["development"]["id"]), b"Subject: x\r\n\r\nx"),
            "production's": refused(c, *mail.credentials(KEY, envs["production"]["id"]), b"Subject: x\r\n\r\nx"),
            "not a username": refused(c, "admin", "admin", b"Subject: x\r\n\r\nx"),
        }

    for what, (code, _) in with_catcher(mail_settings, attempts).items():
        assert code == 535, what
    assert mails(owner_db) == []


def test_a_mail_without_auth_is_refused(owner_db, world, mail_settings):
    code, said = with_catcher(mail_settings, lambda c: refused(c, None, None, b"Subject: x\r\n\r\nx"))
    assert code == 530 and b"Authentication required" in said
    assert mails(owner_db) == []


def test_a_mail_too_big_is_refused(owner_db, world, mail_settings):
    env = environments(owner_db)["staging"]
    big = a_mail(size=300_000).as_bytes()
    code, _ = with_catcher(mail_settings, lambda c: refused(c, *mail.credentials(KEY, env["id"]), big))
    assert code == 552
    assert mails(owner_db) == []


def test_pruning_drops_old_mails_and_their_files(owner_db, world, mail_settings):
    env = environments(owner_db)["staging"]
    credentials = mail.credentials(KEY, env["id"])

    def two(c):
        send(c, *credentials, b"Subject: old\r\nMessage-Id: <1@x>\r\n\r\nold")
        send(c, *credentials, b"Subject: new\r\nMessage-Id: <2@x>\r\n\r\nnew")

    with_catcher(mail_settings, two)
    old, new = mails(owner_db)
    with owner_conn(owner_db) as conn:
        conn.execute("update ops.mail_events set received_at = now() - interval '31 days' where id = %s",
                     (old["id"],))

    async def prune():
        async with runtime.database(mail_settings) as db:
            return await Catcher(db, mail_settings, KEY).prune()

    assert asyncio.run(prune()) == 1
    assert [r["id"] for r in mails(owner_db)] == [new["id"]]
    store = store_of(mail_settings)
    assert not store.path_of(old["sha256"]).exists() and store.path_of(new["sha256"]).exists()


def test_credentials_are_derived_from_the_server_key(world):
    env = uuid4()
    login, password = mail.credentials(KEY, env)
    assert login == f"env-{env}" and password == mail.credentials(KEY, str(env))[1]
    assert password != mail.credentials(Secret("other"), env)[1]
    assert mail.checked(KEY, login, password) == env and mail.checked(KEY, login, password + "x") is None


# for the API's, the console's and the tenancy's tests


def an_environment(owner_db: str, project: str, branch: str) -> dict:
    """An environment row for a branch of `project` (its slug), as a build would leave."""
    with owner_conn(owner_db) as conn:
        return conn.execute(
            "insert into ops.environments (project_id, branch_id, label, status) "
            "select b.project_id, b.id, b.name || '-' || p.slug, 'running' from ops.branches b "
            "join ops.projects p on p.id = b.project_id where p.slug = %s and b.name = %s returning *",
            (project, branch)).fetchone()


def catch(settings, environment_id, *raws: bytes) -> list[dict]:
    """The mails sent with the environment's credentials, as the catcher recorded them."""
    settings = settings.with_overrides(mail_catcher_address=f"127.0.0.1:{free_port()}")
    with_catcher(settings, lambda c: [send(c, *mail.credentials(KEY, environment_id), raw) for raw in raws])
    with owner_conn(settings.database_url.reveal()) as conn:
        return conn.execute("select * from ops.mail_events where environment_id = %s order by id",
                            (environment_id,)).fetchall()[-len(raws):]


HTML_MAIL = (b"From: shop@acme.test\r\nTo: customer@example.test\r\nSubject: Welcome to the shop\r\n"
             b"Message-Id: <welcome@acme.test>\r\nMIME-Version: 1.0\r\n"
             b"Content-Type: multipart/mixed; boundary=b1\r\n\r\n"
             b"--b1\r\nContent-Type: multipart/alternative; boundary=b2\r\n\r\n"
             b"--b2\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nWelcome, dear customer.\r\n"
             b"--b2\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
             b"<p onclick=\"steal()\">Welcome, <b>dear customer</b>.<script>steal()</script>"
             b"<a href=\"javascript:steal()\">click</a><img src=\"https://tracker.example.test/open.gif\"></p>\r\n"
             b"--b2--\r\n"
             b"--b1\r\nContent-Type: text/csv\r\nContent-Disposition: attachment; filename=\"prices.csv\"\r\n\r\n"
             b"product,price\r\nchair,12\r\n"
             b"--b1--\r\n")


def smtp_ready(host: str, port: int) -> bool:
    try:
        with smtplib.SMTP(host, port, timeout=2) as smtp:
            return smtp.noop()[0] == 250
    except OSError:
        return False


def test_odooops_mail_catcher_runs_the_catcher_alone_until_a_signal(owner_db, world, settings):
    port = free_port()
    log = settings.data_dir.parent / "mail-catcher.log"
    with log.open("w") as output:
        proc = subprocess.Popen([sys.executable, "-m", "odooops", "mail-catcher", "--address", f"127.0.0.1:{port}"],
                                env=process_env(settings, ODOOOPS_SECRET_KEY=KEY.reveal()),
                                stdout=output, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: smtp_ready("127.0.0.1", port) or proc.poll() is not None, 30, "the catcher")
        assert proc.poll() is None, log.read_text()
        env = environments(owner_db)["staging"]
        catcher = types.SimpleNamespace(host="127.0.0.1", port=port)
        send(catcher, *mail.credentials(KEY, env["id"]), b"Subject: alone\r\n\r\nhi\r\n")
        assert [r["subject"] for r in mails(owner_db)] == ["alone"]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0, log.read_text()
    assert f"SMTP on 127.0.0.1:{port}" in log.read_text() and "stopped the mail catcher" in log.read_text()


def test_serve_runs_a_catcher_beside_the_http_server(owner_db, world, settings, serve_api):
    port = free_port()
    serve_api({"ODOOOPS_MAIL_CATCHER_ADDRESS": f"127.0.0.1:{port}", "ODOOOPS_SECRET_KEY": KEY.reveal()})
    env = environments(owner_db)["development"]
    send(types.SimpleNamespace(host="127.0.0.1", port=port), *mail.credentials(KEY, env["id"]),
         b"Subject: served\r\n\r\nhi\r\n")
    assert [r["subject"] for r in mails(owner_db)] == ["served"]
    # a second control plane process on this host finds the port taken: it says so and serves on
    log_of_second = serve_api({"ODOOOPS_MAIL_CATCHER_ADDRESS": f"127.0.0.1:{port}"})
    assert httpx.get(f"{log_of_second}/healthz").status_code == 200
