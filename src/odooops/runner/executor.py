"""Where a phase's command runs. The runner only sees this interface, so
docker or kubernetes executors can be added beside `LocalExecutor`."""

from __future__ import annotations

import asyncio
import os
import resource
import shutil
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import psutil

MAX_LINE = 64 * 1024
CHUNK = 256 * 1024
# What a phase inherits from the runner's environment; everything else is dropped.
ENV_ALLOWLIST = ("PATH", "LANG", "LC_ALL", "TZ", "SSL_CERT_FILE", "SSL_CERT_DIR")

OnLines = Callable[[str, list[str]], None]  # (stream, lines)


@dataclass(frozen=True)
class Limits:
    cpu_seconds: int | None = 3600
    memory_bytes: int | None = 4 * 1024**3
    open_files: int | None = 4096


@dataclass(frozen=True)
class Command:
    argv: list[str]
    cwd: Path
    env: dict[str, str] = field(default_factory=dict)
    network: bool = False
    sandbox: bool = True           # False for the runner's own trusted commands (git)
    writable: tuple[Path, ...] = ()  # writable inside the sandbox besides cwd
    readable: tuple[Path, ...] = ()  # readable inside the sandbox although under a hidden dir
    hidden: tuple[Path, ...] = ()    # directories the sandbox must not see (the data dir)
    limits: Limits = Limits()


class Process(Protocol):
    async def wait(self) -> int: ...
    def kill(self) -> None: ...


class Executor(Protocol):
    name: str

    async def start(self, command: Command, on_lines: OnLines) -> Process: ...


def base_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: os.environ[k] for k in ENV_ALLOWLIST if k in os.environ}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env.update(extra)
    return env


def _limits(limits: Limits) -> Callable[[], None]:
    def apply() -> None:
        for which, value in ((resource.RLIMIT_CPU, limits.cpu_seconds), (resource.RLIMIT_AS, limits.memory_bytes),
                             (resource.RLIMIT_NOFILE, limits.open_files)):
            if value is not None:
                resource.setrlimit(which, (value, value))
    return apply


def bwrap_argv(command: Command) -> list[str]:
    """bubblewrap around the command: the system read-only, the data directory
    hidden but for the run's own folders, no network unless allowed."""
    argv = ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp",
            "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--die-with-parent", "--new-session"]
    if not command.network:
        argv.append("--unshare-net")
    for path in command.hidden:
        argv += ["--tmpfs", str(path)]
    for path in command.readable:
        argv += ["--ro-bind", str(path), str(path)]
    for path in (command.cwd, *command.writable):
        argv += ["--bind", str(path), str(path)]
    return [*argv, "--chdir", str(command.cwd), "--", *command.argv]


class LocalProcess:
    def __init__(self, proc: asyncio.subprocess.Process, readers: list[asyncio.Task]):
        self._proc = proc
        self._readers = readers

    async def wait(self) -> int:
        code = await self._proc.wait()
        await asyncio.gather(*self._readers)
        return code

    def kill(self) -> None:
        """Kill the whole process tree: its group, and any descendant that left it."""
        try:
            children = psutil.Process(self._proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            children = []
        try:
            os.killpg(self._proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        for child in children:
            try:
                child.kill()
            except psutil.NoSuchProcess:
                pass


class LocalExecutor:
    """Each command a subprocess in its own process group and working
    directory, with a reduced environment and resource limits; inside
    bubblewrap when it is installed."""

    name = "local"

    def __init__(self, use_sandbox: bool | None = None):
        self.sandboxed = shutil.which("bwrap") is not None if use_sandbox is None else use_sandbox

    async def start(self, command: Command, on_lines: OnLines) -> LocalProcess:
        argv = bwrap_argv(command) if (command.sandbox and self.sandboxed) else command.argv
        proc = await asyncio.create_subprocess_exec(
            *argv, cwd=command.cwd, env=base_env(command.env), stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            start_new_session=True, preexec_fn=_limits(command.limits))
        readers = [asyncio.create_task(read_lines(proc.stdout, "stdout", on_lines)),
                   asyncio.create_task(read_lines(proc.stderr, "stderr", on_lines))]
        return LocalProcess(proc, readers)


async def read_lines(stream: asyncio.StreamReader, name: str, on_lines: OnLines) -> None:
    """Split a byte stream into lines, handing them on a chunk at a time; a
    line over 64 KiB is cut there, with a note, and the rest of it dropped."""
    pending = b""
    skipping = False
    while chunk := await stream.read(CHUNK):
        parts = (pending + chunk).split(b"\n")
        pending = parts.pop()
        lines = []
        for part in parts:
            if skipping:
                skipping = False
                continue
            lines.append(_text(part))
        if len(pending) > MAX_LINE and not skipping:
            lines.append(_text(pending[:MAX_LINE]) + f" [line cut at {MAX_LINE // 1024} KiB]")
            pending, skipping = b"", True
        elif skipping:
            pending = b""
        if lines:
            on_lines(name, lines)
    if pending and not skipping:
        on_lines(name, [_text(pending)])


def _text(raw: bytes) -> str:
    text = raw.decode("utf-8", errors="replace").rstrip("\r").replace("\x00", "")  # PostgreSQL text holds no NUL
    if len(text) > MAX_LINE:
        return text[:MAX_LINE] + f" [line cut at {MAX_LINE // 1024} KiB]"
    return text
