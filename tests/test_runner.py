"""The runner as a real process: builds from real git repositories, live
logs, artifacts, cancel, timeouts, lost workers, shutdown and the sandbox."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse

import psutil
import pytest
from conftest import APP_PASSWORD, allow_path, owner_conn, repo_roots
from helpers import SERVICE, call, commit, git, make_repo, recipe, wait_until
from psycopg.types.json import Jsonb

from odooops import runtime
from odooops.errors import InvalidInput, LeaseLost
from odooops.managers.branches import Branches
from odooops.managers.orgs import Orgs
from odooops.managers.projects import Projects
from odooops.managers.queue import Queue
from odooops.managers.runs import Runs
from odooops.odoo import envdb
from odooops.runner import recipe as recipes
from odooops.runner.executor import Limits, LocalExecutor
from odooops.runner.pipeline import BuildPipeline, Job

FAST = {"ODOOOPS_POLL_SECONDS": "0.2", "ODOOOPS_HEARTBEAT_SECONDS": "0.3", "ODOOOPS_LEASE_SECONDS": "2",
        "ODOOOPS_RETRY_BASE_SECONDS": "0", "ODOOOPS_SHUTDOWN_GRACE_SECONDS": "1"}


@pytest.fixture
def runners(settings):
    """Start runner processes on this test's database; all are killed at the end."""
    started: list[subprocess.Popen] = []

    def start(concurrency: int = 2, **env: str) -> subprocess.Popen:
        full = {k: v for k, v in os.environ.items() if not k.startswith("ODOOOPS_")}
        full.update({"ODOOOPS_DATA_DIR": str(settings.data_dir), "ODOOOPS_DATABASE_URL": settings.database_url.reveal(),
                     "ODOOOPS_APP_PASSWORD": APP_PASSWORD, "ODOOOPS_REPO_ROOTS": repo_roots(settings), **FAST, **env})
        proc = subprocess.Popen([sys.executable, "-m", "odooops", "runner", "--concurrency", str(concurrency)],
                                env=full, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    envdb.stop(settings)  # the environments' server, if a build started it


@pytest.fixture
def project(settings, tmp_path):
    """Make a project `acme/app` whose repository holds the given files."""

    def make(files: dict[str, str], **project_settings) -> str:
        repo = make_repo(tmp_path / "repo", files)
        secret_env = project_settings.pop("secret_env", None)

        async def work(db):
            await Orgs(db, SERVICE).create("acme")
            await allow_path(db, settings, "acme", repo)
            await Projects(db, SERVICE).create("acme/app", str(repo))
            if secret_env:  # sealed, apart from the settings, as the API keeps them
                await Projects(db, SERVICE, runtime.secret_box(settings)).update_settings(
                    "acme/app", {"secret_env": secret_env})
        call(settings, work)
        if project_settings:
            with owner_conn(settings.database_url.reveal()) as conn:
                conn.execute("update ops.projects set settings = %s", (Jsonb(project_settings),))
        return str(repo)

    return make


def trigger(settings, branch: str = "main") -> int:
    return call(settings, lambda db: Runs(db, SERVICE).trigger_build("acme/app", branch))["id"]


def run_row(settings, run_id: int) -> dict:
    with owner_conn(settings.database_url.reveal()) as conn:
        return conn.execute("select * from ops.runs where id = %s", (run_id,)).fetchone()


def messages(settings, run_id: int) -> list[str]:
    with owner_conn(settings.database_url.reveal()) as conn:
        return [r["message"] for r in conn.execute("select message from ops.run_events where run_id = %s order by seq",
                                                    (run_id,))]


def wait_status(settings, run_id: int, statuses: set[str], timeout: float = 60) -> dict:
    return wait_until(lambda: (r := run_row(settings, run_id)) and r["status"] in statuses and r,
                      timeout, f"run {run_id} to be {statuses}")


def test_build_succeeds_with_logs_and_artifacts(settings, project, runners, cli):
    project({".odooops.toml": recipe(
        {"name": "lint", "command": "echo linting; echo 'WARNING: careful'"},
        {"name": "test", "command": "echo '<ok/>' > $ODOOOPS_ARTIFACTS/report.xml; echo tested"})})
    runners()
    run_id = trigger(settings)
    followed = cli("logs", "-f", str(run_id))  # streams until the run ends
    assert followed.returncode == 0, followed.stderr
    assert "linting" in followed.stdout and "tested" in followed.stdout and "run succeeded" in followed.stdout
    row = run_row(settings, run_id)
    assert (row["status"], row["result"], row["attempt"]) == ("succeeded", "ok", 1)
    with owner_conn(settings.database_url.reveal()) as conn:
        events = conn.execute("select phase, level, message from ops.run_events where run_id = %s order by seq",
                              (run_id,)).fetchall()
        artifacts = {a["name"]: a for a in conn.execute("select * from ops.artifacts where run_id = %s", (run_id,))}
    phases = [e["phase"] for e in events if e["message"].startswith("phase ") and e["message"].endswith("started")]
    assert phases == ["checkout", "install", "lint", "test"]
    assert next(e for e in events if e["message"] == "WARNING: careful")["level"] == "warning"
    assert set(artifacts) == {"log.txt", "report.xml"}
    stored = settings.data_dir / "artifacts" / artifacts["report.xml"]["sha256"][:2] / artifacts["report.xml"]["sha256"]
    assert stored.read_text() == "<ok/>\n"
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == artifacts["report.xml"]["sha256"]
    log = settings.data_dir / "artifacts" / artifacts["log.txt"]["sha256"][:2] / artifacts["log.txt"]["sha256"]
    assert "tested" in log.read_text()


def test_build_records_its_commit_message_and_author(settings, project, runners, tmp_path):
    project({".odooops.toml": recipe({"name": "ok", "command": "true"})})
    git(tmp_path / "repo", "-c", "user.name=Ada Lovelace", "-c", "user.email=ada@acme.test", "commit", "-q",
        "--allow-empty", "-m", "Teach the shop to sell\n\nWhy, at length.")
    runners()
    row = wait_status(settings, trigger(settings), {"succeeded", "failed"})
    assert row["status"] == "succeeded", messages(settings, row["id"])
    assert (row["commit_message"], row["commit_author"]) == ("Teach the shop to sell", "Ada Lovelace")
    card = call(settings, lambda db: Branches(db, SERVICE).list_all("acme/app"))[0]
    assert (card["last_build_commit_message"], card["last_build_commit_author"]) == \
        ("Teach the shop to sell", "Ada Lovelace")


def test_unreadable_commit_info_does_not_fail_the_build(tmp_path):
    warnings = []

    class Sink:
        def system(self, message: str, level: str = "info") -> None:
            if level == "warning":
                warnings.append(message)

    async def refused(message: str, author: str) -> None:
        raise LeaseLost()

    pipeline = BuildPipeline(Job({"id": 1, "attempt": 1}, tmp_path, Sink()), LocalExecutor(), tmp_path / "data",
                             Limits(), refused)
    pipeline.src.mkdir()
    asyncio.run(pipeline._describe_commit())  # not a git checkout
    make_repo(pipeline.src, {"a.txt": "a"})
    asyncio.run(pipeline._describe_commit())  # the run is no longer this attempt's
    assert len(warnings) == 2 and all(w.startswith("commit message and author not recorded") for w in warnings)


def test_failing_phase_skips_the_rest(settings, project, runners):
    project({".odooops.toml": recipe({"name": "lint", "command": "echo broken >&2; exit 3"},
                                     {"name": "test", "command": "echo never"})})
    runners()
    row = wait_status(settings, trigger(settings), {"failed"})
    assert (row["result"], row["exit_code"], row["error"]) == ("ko", 3, "phase lint failed")
    log = messages(settings, row["id"])
    assert "broken" in log and "phase test skipped" in log and "never" not in log


def test_missing_recipe_fails_clearly(settings, project, runners):
    project({"README.md": "no recipe here\n"})
    runners()
    row = wait_status(settings, trigger(settings), {"failed"})
    assert "phase sources failed" in row["error"]
    assert "the repository has no Odoo module (no folder with a __manifest__.py) and no .odooops.toml" \
        in "\n".join(messages(settings, row["id"]))


def test_a_recipe_over_the_phase_limit_fails_the_build_naming_it(settings, project, runners):
    project({".odooops.toml": recipe(*({"name": f"p{i}", "command": "true"} for i in range(51)))})
    runners()
    row = wait_status(settings, trigger(settings), {"failed"})
    assert row["error"] == ".odooops.toml declares 51 phases: at most 50 are allowed"
    assert not any(m.startswith("phase p0") for m in messages(settings, row["id"]))


def _load(tmp_path, *phases: dict | str):
    """Load a recipe of these phases (a dict, or a phase's TOML)."""
    text = "".join(p if isinstance(p, str) else recipe(p) for p in phases)
    (tmp_path / ".odooops.toml").write_text(text)
    return recipes.load(tmp_path)


def test_a_recipe_may_declare_up_to_the_limits(tmp_path):
    loaded = _load(tmp_path, *({"name": f"p{i}", "command": "true"} for i in range(49)),
                   {"name": "n" * 64, "command": "x" * 16384})
    assert len(loaded.phases) == 50


@pytest.mark.parametrize("phase, limit", [
    ({"name": "n" * 65, "command": "true"}, "a name of at most 64 characters"),
    ({"name": "long", "command": "x" * 16385}, "at most 16384 characters"),
    (f"[[phases]]\nname = 'long'\ncommand = ['echo', '{'x' * 16381}']\n", "at most 16384 characters"),
])
def test_a_phase_over_a_limit_is_refused_naming_it(tmp_path, phase, limit):
    with pytest.raises(InvalidInput, match=limit):
        _load(tmp_path, phase)


def test_secrets_are_masked_in_events_and_log_artifact(settings, project, runners):
    secret = "s3cr3t-value-1234"
    project({".odooops.toml": recipe({"name": "leak", "command": 'echo "token is $API_TOKEN"'})},
            secret_env={"API_TOKEN": secret})
    runners()
    row = wait_status(settings, trigger(settings), {"succeeded"})
    log = messages(settings, row["id"])
    assert "token is ********" in log and not any(secret in m for m in log)
    with owner_conn(settings.database_url.reveal()) as conn:
        sha = conn.execute("select sha256 from ops.artifacts where run_id = %s and name = 'log.txt'",
                           (row["id"],)).fetchone()["sha256"]
    text = (settings.data_dir / "artifacts" / sha[:2] / sha).read_text()
    assert "token is ********" in text and secret not in text


def test_encoded_secrets_are_masked_and_a_binary_artifact_holding_one_is_withheld(settings, project, runners):
    secret = "s3cr3t/value+1234 x"
    b64, basic = base64.b64encode(secret.encode()).decode(), base64.b64encode(f"user:{secret}".encode()).decode()
    shown = {"base64": b64, "basic auth": basic[8:-4], "hex": secret.encode().hex(),
             "url": urllib.parse.quote_plus(secret)}
    project({".odooops.toml": recipe({"name": "leak", "command": (
        'printf %s "$API_TOKEN" | base64; printf "user:%s" "$API_TOKEN" | base64; '
        'python3 -c "import os; print(os.environ[\'API_TOKEN\'].encode().hex())"; '
        'python3 -c "import os, urllib.parse as u; print(\'?t=\' + u.quote_plus(os.environ[\'API_TOKEN\']))"; '
        'echo "key=$API_TOKEN" > $ODOOOPS_ARTIFACTS/env.txt; '
        'printf "user:%s" "$API_TOKEN" | base64 >> $ODOOOPS_ARTIFACTS/env.txt; '
        'printf "\\0\\1%s" "$API_TOKEN" > $ODOOOPS_ARTIFACTS/dump.bin; echo done')})},
            secret_env={"API_TOKEN": secret})
    runners()
    row = wait_status(settings, trigger(settings), {"succeeded"})
    log = messages(settings, row["id"])
    assert "done" in log and sum("********" in m for m in log) >= 4, log
    withheld = [m for m in log if m.startswith("artifact dump.bin withheld")]
    assert withheld and "secret" in withheld[0]
    with owner_conn(settings.database_url.reveal()) as conn:
        artifacts = {a["name"]: a["sha256"] for a in conn.execute(
            "select name, sha256 from ops.artifacts where run_id = %s", (row["id"],))}
        level = conn.execute("select level from ops.run_events where run_id = %s and message = %s",
                             (row["id"], withheld[0])).fetchone()["level"]
    assert set(artifacts) == {"log.txt", "env.txt"} and level == "warning"
    texts = {name: (settings.data_dir / "artifacts" / sha[:2] / sha).read_text() for name, sha in artifacts.items()}
    assert texts["env.txt"].startswith("key=********\n") and withheld[0] in texts["log.txt"]
    for where, text in [*texts.items(), *(("event", m) for m in log)]:
        assert secret not in text, where
        for form, value in shown.items():
            assert value not in text, (form, where)


def _accept_all(server: socket.socket) -> None:
    try:
        while True:
            server.accept()[0].close()
    except OSError:  # closed at the end of the test
        pass


def test_sandbox_blocks_network_unless_the_phase_allows_it(settings, project, runners):
    assert shutil.which("bwrap"), "bubblewrap is needed for the sandbox: ./scripts/test installs it"
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    port = server.getsockname()[1]
    threading.Thread(target=_accept_all, args=(server,), daemon=True).start()
    probe = (f"python3 -c \"import socket\ntry:\n socket.create_connection(('127.0.0.1', {port}), timeout=3)"
             f"\n print('NET:connected')\nexcept OSError as e:\n print('NET:blocked', e)\"")
    project({".odooops.toml": recipe({"name": "offline", "command": probe},
                                     {"name": "online", "command": probe, "network": True})})
    runners()
    row = wait_status(settings, trigger(settings), {"succeeded", "failed"})
    with owner_conn(settings.database_url.reveal()) as conn:
        seen = {r["phase"]: r["message"] for r in conn.execute(
            "select phase, message from ops.run_events where run_id = %s and message like 'NET:%%'", (row["id"],))}
    server.close()
    assert seen["offline"].startswith("NET:blocked")
    assert seen["online"] == "NET:connected"


def test_sandbox_hides_the_data_directory(settings, project, runners):
    project({".odooops.toml": recipe({"name": "peek", "command": f"ls {settings.data_dir}; cat {settings.data_dir}/secrets.json || echo hidden"})})
    (settings.data_dir).mkdir(parents=True, exist_ok=True)
    (settings.data_dir / "secrets.json").write_text('{"app_password": "do-not-read"}')
    runners()
    row = wait_status(settings, trigger(settings), {"succeeded", "failed"})
    log = messages(settings, row["id"])
    assert "hidden" in log and not any("do-not-read" in m for m in log)


def no_process(marker: str) -> bool:
    for p in psutil.process_iter(["cmdline"]):
        if marker in " ".join(p.info["cmdline"] or []):
            return False
    return True


def test_cancel_while_running_kills_the_process_tree(settings, project, runners, cli):
    project({".odooops.toml": recipe({"name": "hang", "command": "sleep 1234.5 & sleep 1234.6 & echo started; wait"})})
    runners()
    run_id = trigger(settings)
    wait_until(lambda: "started" in messages(settings, run_id), what="the phase to start")
    assert not no_process("1234.5")
    began = time.monotonic()
    assert "canceled" in cli("run", "cancel", str(run_id)).stdout
    wait_until(lambda: no_process("1234.5") and no_process("1234.6"), timeout=10, what="the tree to die")
    assert time.monotonic() - began < 5
    assert run_row(settings, run_id)["status"] == "canceled"


def test_run_over_its_maximum_duration_fails_with_timeout(settings, project, runners):
    project({".odooops.toml": recipe({"name": "slow", "command": "sleep 1235.5"})}, max_duration_seconds=2)
    runners()
    row = wait_status(settings, trigger(settings), {"failed"}, timeout=30)
    assert row["error"] == "timeout"
    wait_until(lambda: no_process("1235.5"), timeout=10, what="the phase to die")


def test_phase_timeout_from_the_recipe(settings, project, runners):
    project({".odooops.toml": recipe({"name": "slow", "command": "sleep 30", "timeout": 1},
                                     {"name": "after", "command": "echo no"})})
    runners()
    row = wait_status(settings, trigger(settings), {"failed"}, timeout=30)
    assert row["error"] == "phase slow failed"
    assert "phase timed out after 1 s" in messages(settings, row["id"])


def test_killed_runner_run_is_finished_by_another(settings, project, runners):
    project({".odooops.toml": recipe({"name": "work", "command": "echo begin; sleep 3; echo end"})})
    first = runners()
    run_id = trigger(settings)
    wait_until(lambda: "begin" in messages(settings, run_id), what="the first runner to begin")
    first.send_signal(signal.SIGKILL)
    first.wait()
    runners()
    row = wait_status(settings, run_id, {"succeeded"}, timeout=60)
    assert row["attempt"] == 2
    log = messages(settings, run_id)
    assert "attempt 1 of run" in log[0] and any(m.startswith("attempt 2 of run") for m in log)
    with pytest.raises(LeaseLost):  # the dead runner's attempt can never write again
        call(settings, lambda db: Queue(db, SERVICE).finish(run_id, 1, "failed", "ko"))


def test_graceful_shutdown_hands_runs_back(settings, project, runners):
    project({".odooops.toml": recipe({"name": "long", "command": "echo begin; sleep 1236.5"})})
    runner = runners()
    run_id = trigger(settings)
    wait_until(lambda: "begin" in messages(settings, run_id), what="the phase to begin")
    runner.send_signal(signal.SIGTERM)
    assert runner.wait(timeout=20) == 0
    row = run_row(settings, run_id)
    assert row["status"] == "queued" and "handed back" in row["error"]
    assert no_process("1236.5")


def test_virtualenv_is_reused_between_builds(settings, project, runners, tmp_path):
    repo = project({".odooops.toml": recipe({"name": "which", "command": "python -c 'import sys; print(sys.prefix)'"}),
                    "requirements.txt": "# nothing to install\n"})
    runners()
    first = wait_status(settings, trigger(settings), {"succeeded", "failed"}, timeout=120)
    assert first["status"] == "succeeded", messages(settings, first["id"])
    commit(tmp_path / "repo", {"other.txt": "x"}, "second")
    second = wait_status(settings, trigger(settings), {"succeeded", "failed"}, timeout=120)
    assert any(m.startswith("creating virtualenv") for m in messages(settings, first["id"]))
    log = messages(settings, second["id"])
    assert any(m.startswith("reusing virtualenv") for m in log)
    assert any(str(settings.data_dir / "venvs") in m for m in log)
    assert repo


def test_long_lines_are_cut(settings, project, runners):
    project({".odooops.toml": recipe({"name": "wide", "command": "python3 -c \"print('x' * 100000); print('next')\""})})
    runners()
    row = wait_status(settings, trigger(settings), {"succeeded"})
    log = messages(settings, row["id"])
    cut = next(m for m in log if m.startswith("xxx"))
    assert cut.endswith("[line cut at 64 KiB]") and len(cut) < 66000
    assert "next" in log


def test_runs_and_workers_commands(settings, project, runners, cli):
    project({".odooops.toml": recipe({"name": "wait", "command": "echo begin; sleep 1237.5"})})
    queued = trigger(settings)
    assert "no worker is running" in cli("runs").stdout
    runners()
    wait_until(lambda: "begin" in messages(settings, queued), what="the run to start")
    listing = cli("runs").stdout
    assert "running on a worker" in listing
    assert "build" in cli("workers").stdout
    cli("run", "cancel", str(queued))


def test_second_ctrl_c_hands_back_at_once(settings, project, runners):
    project({".odooops.toml": recipe({"name": "long", "command": "echo begin; sleep 1238.5"})})
    runner = runners(ODOOOPS_SHUTDOWN_GRACE_SECONDS="600")
    run_id = trigger(settings)
    wait_until(lambda: "begin" in messages(settings, run_id), what="the phase to begin")
    runner.send_signal(signal.SIGINT)
    time.sleep(0.5)
    runner.send_signal(signal.SIGINT)
    assert runner.wait(timeout=20) == 0  # far sooner than the 600 s grace
    assert run_row(settings, run_id)["status"] == "queued"
    assert no_process("1238.5")
