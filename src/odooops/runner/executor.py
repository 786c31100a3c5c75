"""Where a phase's command runs. The runner only sees this interface, so
docker or kubernetes executors can be added beside `LocalExecutor`."""

from __future__ import annotations

import asyncio
import os
import resource
import shutil
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import psutil

MAX_LINE = 64 * 1024
CHUNK = 256 * 1024
# How long output is still read once the main process has exited, should
# something that escaped it still hold the pipes.
DRAIN_SECONDS = 1.0
REAPER = str(Path(__file__).with_name("reaper.py"))
# What a phase inherits from the runner's environment; everything else is dropped.
ENV_ALLOWLIST = ("PATH", "LANG", "LC_ALL", "TZ", "SSL_CERT_FILE", "SSL_CERT_DIR")

OnLines = Callable[[str, list[str]], object]  # (stream, lines); what it returns is not used


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
    """The command under its reaper, which ends the command's whole tree when
    the command exits; the process is done when the reaper is."""

    def __init__(self, proc: asyncio.subprocess.Process, readers: list[asyncio.Task],
                 pipes: list[asyncio.ReadTransport]):
        self._proc = proc
        self._readers = readers
        self._pipes = pipes

    @property
    def pid(self) -> int:
        return self._proc.pid

    async def wait(self) -> int:
        code = await self._proc.wait()
        _, reading = await asyncio.wait(self._readers, timeout=DRAIN_SECONDS)
        if reading:
            for pipe in self._pipes:
                pipe.close()  # the readers see the end of their stream
        await asyncio.gather(*self._readers)
        return code

    def kill(self) -> None:
        """Kill the whole process tree at once; the reaper, told to stop,
        kills what was started since and exits."""
        if self._proc.returncode is not None:
            return
        try:
            children = psutil.Process(self._proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            children = []
        for child in children:
            try:
                child.kill()
            except psutil.NoSuchProcess:
                pass
        try:
            os.kill(self._proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass


class LocalExecutor:
    """Each command a subprocess under a reaper (see `reaper.py`), in its own
    process group and working directory, with a reduced environment and
    resource limits; inside bubblewrap when it is installed."""

    name = "local"

    def __init__(self, use_sandbox: bool | None = None):
        self.sandboxed = shutil.which("bwrap") is not None if use_sandbox is None else use_sandbox

    async def start(self, command: Command, on_lines: OnLines) -> LocalProcess:
        argv = bwrap_argv(command) if (command.sandbox and self.sandboxed) else command.argv
        out, err = os.pipe(), os.pipe()
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-I", "-S", REAPER, *argv, cwd=command.cwd, env=base_env(command.env),
                stdin=asyncio.subprocess.DEVNULL, stdout=out[1], stderr=err[1],
                start_new_session=True, preexec_fn=_limits(command.limits))
        except BaseException:
            os.close(out[0])
            os.close(err[0])
            raise
        finally:
            os.close(out[1])
            os.close(err[1])
        readers, pipes = [], []
        for name, fd in (("stdout", out[0]), ("stderr", err[0])):
            reader, pipe = await _read_pipe(fd)
            readers.append(asyncio.create_task(read_lines(reader, name, on_lines)))
            pipes.append(pipe)
        return LocalProcess(proc, readers, pipes)


async def _read_pipe(fd: int) -> tuple[asyncio.StreamReader, asyncio.ReadTransport]:
    """A reader on our own end of a pipe, so that we can close it."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader),
                                                os.fdopen(fd, "rb", buffering=0))
    return reader, transport


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
