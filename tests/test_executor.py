"""The local executor on its own: a phase is done when its main process
exits, and nothing it started, in its process group or out of it, outlives it."""

from __future__ import annotations

import asyncio
import shutil
import signal
import sys
import time
import uuid
from pathlib import Path

import psutil
import pytest
from helpers import wait_until

from odooops.runner.executor import Command, LocalExecutor

SANDBOXES = [False, pytest.param(True, marks=pytest.mark.skipif(not shutil.which("bwrap"), reason="no bwrap"))]


def survivors(marker: str) -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter(["cmdline"]):
        if marker in " ".join(p.info["cmdline"] or []):
            found.append(p)
    return found


@pytest.fixture
def marker():
    """A sleep length no other test uses, to find this test's processes; any
    left at the end are killed, so a failing test leaves nothing behind."""
    value = f"300.{uuid.uuid4().int % 10**9}"
    yield value
    for p in survivors(value):
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass


def run(command: str, cwd: Path, sandbox: bool, timeout: float = 20) -> tuple[int, list[str]]:
    """Run a shell command as a phase; fail if it is not done within `timeout`."""
    lines: list[str] = []

    async def go() -> int:
        executor = LocalExecutor(use_sandbox=sandbox)
        process = await executor.start(Command(["/bin/sh", "-c", command], cwd), lambda _, got: lines.extend(got))
        try:
            return await asyncio.wait_for(process.wait(), timeout)
        except TimeoutError:
            process.kill()
            raise AssertionError(f"the phase was not done within {timeout} s") from None

    return asyncio.run(go()), lines


def gone(marker: str, within: float = 5) -> bool:
    deadline = time.monotonic() + within
    while survivors(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not survivors(marker)


@pytest.mark.parametrize("sandbox", SANDBOXES)
def test_a_background_process_ends_with_its_phase(tmp_path, marker, sandbox):
    code, lines = run(f"sleep {marker} >/dev/null 2>&1 & echo started", tmp_path, sandbox)
    assert (code, lines) == (0, ["started"])
    assert gone(marker)


@pytest.mark.parametrize("sandbox", SANDBOXES)
def test_a_process_in_a_new_session_ends_with_its_phase(tmp_path, marker, sandbox):
    code, _ = run(f"setsid sleep {marker} >/dev/null 2>&1 & sleep 0.2", tmp_path, sandbox)
    assert code == 0
    assert gone(marker)


@pytest.mark.parametrize("sandbox", SANDBOXES)
def test_a_double_forked_daemon_ends_with_its_phase(tmp_path, marker, sandbox):
    daemon = ("import os, time; os.fork() and os._exit(0); os.setsid(); os.fork() and os._exit(0); "
              f"time.sleep({marker})")
    code, _ = run(f"python3 -c '{daemon}' >/dev/null 2>&1; sleep 0.2", tmp_path, sandbox)
    assert code == 0
    assert gone(marker)


@pytest.mark.parametrize("sandbox", SANDBOXES)
def test_a_background_process_holding_the_output_does_not_hold_the_phase(tmp_path, marker, sandbox):
    code, lines = run(f"echo early; (sleep {marker}; echo late) & exit 0", tmp_path, sandbox)
    assert (code, lines) == (0, ["early"])
    assert gone(marker)


def test_output_held_by_a_process_out_of_reach_is_closed_once_the_main_process_exits(tmp_path, marker):
    """Should a holder of the output escape the phase (here by killing what
    watches it), the phase still ends when its main process does."""
    kill_watcher = 'case "$(tr "\\0" " " </proc/$PPID/cmdline)" in *reaper*) kill -9 $PPID;; esac'
    code, lines = run(f"echo early; (sleep {marker}; echo late) & {kill_watcher}; sleep 1", tmp_path, False)
    assert lines == ["early"]


@pytest.mark.parametrize("sandbox", SANDBOXES)
def test_exit_codes_and_signals_are_the_commands(tmp_path, sandbox):
    assert run("exit 7", tmp_path, sandbox)[0] == 7
    assert run("kill -9 $$", tmp_path, sandbox)[0] == (-signal.SIGKILL if not sandbox else 137)


@pytest.mark.parametrize("sandbox", SANDBOXES)
def test_kill_ends_the_whole_tree_at_once(tmp_path, marker, sandbox):
    async def go() -> list[str]:
        started = asyncio.Event()
        process = await LocalExecutor(use_sandbox=sandbox).start(Command(
            ["/bin/sh", "-c", f"setsid sleep {marker} & sleep {marker} & echo started; wait"], tmp_path),
            lambda _, got: started.set())
        await asyncio.wait_for(started.wait(), 20)
        # `setsid` may not have become `sleep` yet when the shell says so
        wait_until(lambda: len([p for p in survivors(marker) if p.name() == "sleep"]) >= 2, 10, "both sleeps")
        sleeping = [" ".join(p.cmdline()) for p in survivors(marker)]
        process.kill()
        await asyncio.wait_for(process.wait(), 5)
        return sleeping

    assert asyncio.run(go()).count(f"sleep {marker}") == 2
    assert gone(marker)


def test_a_phase_dies_with_its_runner(tmp_path, marker):
    """The runner killed outright: its phases' processes go too."""
    script = tmp_path / "runner.py"
    script.write_text(
        "import asyncio, pathlib, sys\n"
        "from odooops.runner.executor import Command, LocalExecutor\n"
        "async def main():\n"
        "    p = await LocalExecutor(use_sandbox=False).start(Command(['/bin/sh', '-c', "
        f"'setsid sleep {marker} & sleep {marker} & echo started; wait'], pathlib.Path('.')), "
        "lambda _, lines: print(*lines, flush=True))\n"
        "    await p.wait()\n"
        "asyncio.run(main())\n")
    runner = psutil.Popen([sys.executable, str(script)], cwd=tmp_path, stdout=-1, text=True)
    try:
        assert runner.stdout.readline().strip() == "started"
        runner.kill()
        runner.wait(5)
    finally:
        if runner.poll() is None:
            runner.kill()
    assert gone(marker)
