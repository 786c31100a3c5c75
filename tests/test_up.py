"""`odooops up` with the embedded PostgreSQL, as a new user starts it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx

from conftest import owner_conn


def odooops_env(data_dir) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ODOOOPS_")}
    return {**env, "ODOOOPS_DATA_DIR": str(data_dir), "COLUMNS": "200"}


def wait_for_line(proc: subprocess.Popen, text: str, timeout: float = 120) -> list[str]:
    seen, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
        seen.append(line)
        if text in line:
            return seen
    rest = proc.stderr.read() if proc.poll() is not None else ""
    raise AssertionError(f"never printed {text!r}: {''.join(seen)}{rest}")


def test_up_with_demo_then_ctrl_c(tmp_path):
    from conftest import free_port

    port = free_port()
    env = {**odooops_env(tmp_path / "data"), "COLUMNS": "80"}
    up = subprocess.Popen([sys.executable, "-m", "odooops", "up", "--demo", "--port", str(port)], env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        banner = "".join(wait_for_line(up, "Ctrl-C to stop"))
        # into a pipe (a log file), each line of the banner is one line, however narrow the terminal
        up_line = next(line for line in banner.splitlines() if "is up" in line)
        assert up_line.endswith("project(s)."), banner
        assert f"console: http://127.0.0.1:{port}/" in banner
        setup = next(line for line in banner.splitlines() if "/setup?token=" in line).strip()
        assert setup.startswith(f"http://127.0.0.1:{port}/setup?token="), banner
        assert "owner's password" not in banner and "first one (the owner)" in banner
        # a second command reuses the running embedded server
        listed = subprocess.run([sys.executable, "-m", "odooops", "branch", "list", "demo/hello-odoo"],
                                env=env, capture_output=True, text=True, timeout=60)
        assert listed.returncode == 0, listed.stderr
        for branch, stage in (("main", "production"), ("staging", "staging"), ("feature-hello", "development")):
            assert branch in listed.stdout and stage in listed.stdout
        url = subprocess.run([sys.executable, "-m", "odooops", "db", "url"], env=env,
                             capture_output=True, text=True, timeout=60).stdout.strip()
        with owner_conn(url) as conn:
            assert conn.execute("select count(*) as n from ops.runs").fetchone()["n"] == 3
            # the demo's repository lies in the folder the demo org was given, so the runner reads it
            deadline, done = time.monotonic() + 60, []
            while time.monotonic() < deadline and len(done) < 3:
                done = conn.execute("select status from ops.runs where status in ('succeeded', 'failed')").fetchall()
                time.sleep(0.2)
            # the demo builds on the public Odoo repository: where it cannot be reached (no internet), each
            # build fails saying so and how to point the project at a local Odoo
            assert len(done) == 3, done
            for run in conn.execute("select * from ops.runs where status = 'failed'").fetchall():
                assert run["error"].startswith("phase sources failed: could not fetch the odoo source "
                                               "https://github.com/odoo/odoo.git at 17.0"), run["error"]
                log = "\n".join(r["message"] for r in conn.execute(
                    "select message from ops.run_events where run_id = %s order by seq", (run["id"],)))
                assert "odooops project set demo/hello-odoo odoo_repository=/path/to/a/clone" in log, log
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").json()["ok"] is True
    finally:
        up.send_signal(signal.SIGINT)
        out, err = up.communicate(timeout=60)
    assert up.returncode == 0, err
    assert "stopped the embedded PostgreSQL" in out
    assert not (tmp_path / "data" / "postgres" / "postmaster.pid").exists()


def test_db_url_starts_and_db_stop_stops_the_embedded_server(tmp_path):
    env = odooops_env(tmp_path / "data")
    run = lambda *a: subprocess.run([sys.executable, "-m", "odooops", *a], env=env,  # noqa: E731
                                    capture_output=True, text=True, timeout=120)
    migrated = run("db", "migrate")
    assert migrated.returncode == 0 and "applied 0001_schema" in migrated.stdout, migrated.stderr
    secrets = tmp_path / "data" / "secrets.json"
    assert oct(secrets.stat().st_mode & 0o777) == "0o600"
    assert "nothing to migrate" in run("db", "migrate").stdout
    assert "stopped" in run("db", "stop").stdout
    assert "not running" in run("db", "stop").stdout
