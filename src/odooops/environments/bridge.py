"""The port bridge: how an environment's Odoo, in a sandbox with no network,
is reached from outside it.

Inside the sandbox the bridge runs as a script, under whatever Python runs
Odoo (3.8 or later), so this file is the standard library only and its syntax
that of 3.8:

    python -I -S bridge.py --forward SOCKET=PORT [--forward ...] [--reach PORT=SOCKET ...] -- ODOO-ARGV...

It listens on each unix socket (in a directory bound into the sandbox) and
forwards each connection to 127.0.0.1:PORT in the sandbox's own network
namespace; it starts ODOO-ARGV as its child, whose output is the log, passes
SIGTERM and SIGINT on to it, and exits as it did, its sockets removed.
`--reach` goes the other way: 127.0.0.1:PORT inside, each connection
forwarded to a unix socket a server outside listens on (the mail catcher's).

Outside, in the runner, `expose` listens on TCP and forwards each connection
to such a socket: that is the `host:port` the router (or nginx) proxies to;
`reach` listens on a unix socket and forwards to a TCP address outside.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import stat
import sys
import time
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # 3.8 cannot subscript tuple at run time
    Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]

SCRIPT = str(Path(__file__))
CHUNK = 256 * 1024
WRITE_BUFFER = CHUNK  # unsent bytes per connection and direction before reading pauses
SUN_PATH_MAX = 107  # bytes of a unix socket's path, its NUL aside (Linux)
# How long a connection waits for the server behind the socket: Odoo takes a
# moment to bind, and a sandbox to start. Past it the connection is closed.
INNER_WAIT_SECONDS = 10.0
OUTER_WAIT_SECONDS = 1.0
DRAIN_SECONDS = 2.0  # how long connections may finish once the child has exited
STOPS = (signal.SIGTERM, signal.SIGINT)
BACKLOG = 1024  # a burst of browsers, each opening several connections


def inner_argv(python: str, forwards: dict[Path, int], argv: list[str], wait: float | None = None,
               reaches: dict[int, Path] | None = None) -> list[str]:
    """The command line that runs `argv` behind the bridge, under `python`;
    `wait`: how long a connection waits for the port to be listened on;
    `reaches`: loopback ports inside forwarded to unix sockets outside."""
    options = [f"--forward={path}={port}" for path, port in sorted(forwards.items())]
    options += [f"--reach={port}={path}" for port, path in sorted((reaches or {}).items())]
    options += [f"--wait={wait:g}"] if wait is not None else []
    return [python, "-I", "-S", SCRIPT, *options, "--", *argv]


# Both halves: copying bytes


async def splice(one: Streams, other: Streams) -> None:
    """Copy both ways until each side has said all it had to (a side's end
    is passed on as a half-close); an error either way aborts both. Both
    are closed when it returns, or is canceled."""
    copies = [asyncio.ensure_future(_copy(one[0], other[1])), asyncio.ensure_future(_copy(other[0], one[1]))]
    writers = (one[1], other[1])
    try:
        done, _ = await asyncio.wait(copies, return_when=asyncio.FIRST_EXCEPTION)
        if all(task.exception() is None for task in done):
            for writer in writers:
                writer.close()
            for writer in writers:  # what is still buffered goes out before we are done
                await writer.wait_closed()
    except OSError:
        pass
    finally:
        for task in copies:
            task.cancel()
        await asyncio.gather(*copies, return_exceptions=True)
        for writer in writers:
            writer.transport.abort()  # nothing left to do for one closed above


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:
        data = await reader.read(CHUNK)
        if not data:
            break
        writer.write(data)
        await writer.drain()
    if writer.can_write_eof():
        writer.write_eof()


def _tune(writer: asyncio.StreamWriter) -> None:
    writer.transport.set_write_buffer_limits(high=WRITE_BUFFER)
    sock = writer.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


async def _connect(open_: Callable[[], Awaitable[Streams]], wait: float,
                   given_up: Callable[[], bool] = lambda: False) -> Streams | None:
    """Open a connection, trying again while nobody listens yet, for `wait`
    seconds at most; None if nobody came."""
    deadline = time.monotonic() + wait
    pause = 0.02
    while True:
        try:
            streams = await open_()
        except (ConnectionRefusedError, FileNotFoundError):
            if given_up() or time.monotonic() + pause > deadline:
                return None
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.25)
            continue
        except OSError:  # not a matter of waiting: the client's connection is closed as if nobody came
            return None
        _tune(streams[1])
        return streams


def check_socket_path(path: Path) -> None:
    if len(os.fsencode(str(path))) > SUN_PATH_MAX:
        raise ValueError(f"{path}: a unix socket's path is {SUN_PATH_MAX} bytes at most")


# Inside the sandbox


class Bridge:
    """Unix sockets forwarded to loopback ports, for as long as the child runs."""

    def __init__(self, forwards: list[tuple[Path, int]], argv: list[str], wait: float,
                 reaches: list[tuple[Path, int]] | None = None):
        self.forwards = forwards
        self.reaches = reaches or []
        self.argv = argv
        self.wait = wait
        self.child: asyncio.subprocess.Process | None = None
        self.stopped: int | None = None  # the stop signal that came before the child
        self.connections: set[asyncio.Task] = set()
        self.closing = False

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for signum in STOPS:
            loop.add_signal_handler(signum, self._stop, signum)
        servers = []
        try:
            for path, port in self.forwards:
                _remove_stale(path)
                servers.append(await asyncio.start_unix_server(
                    partial(self._forward, port), path=str(path), limit=CHUNK, backlog=BACKLOG))
            for path, port in self.reaches:
                servers.append(await asyncio.start_server(partial(self._reach, path), "127.0.0.1", port,
                                                          limit=CHUNK, backlog=BACKLOG))
            if self.stopped is not None:
                return 128 + self.stopped
            try:
                self.child = await asyncio.create_subprocess_exec(*self.argv)
            except OSError as exc:
                _say(f"cannot start {self.argv[0]}: {exc.strerror or exc}")
                return 127
            code = await self.child.wait()
            return code if code >= 0 else 128 - code
        finally:
            for server in servers:
                server.close()
            if self.connections:  # what the child wrote before it went is still on its way
                await asyncio.wait(list(self.connections), timeout=DRAIN_SECONDS)
            self.closing = True
            for task in list(self.connections):
                task.cancel()
            await asyncio.gather(*self.connections, return_exceptions=True)
            for path, _ in self.forwards[:len(servers)]:
                _remove_stale(path)

    async def _reach(self, path: Path, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            _tune(writer)
            outside = await _connect(partial(asyncio.open_unix_connection, str(path), limit=CHUNK), 0.0)
            if outside is None:
                writer.close()
                return
            await splice((reader, writer), outside)
        except asyncio.CancelledError:
            if not self.closing:
                raise

    def _stop(self, signum: int) -> None:
        if self.child is None:
            self.stopped = signum
        elif self.child.returncode is None:
            self.child.send_signal(signum)

    def _child_gone(self) -> bool:
        return self.child is not None and self.child.returncode is not None

    async def _forward(self, port: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self.connections.add(task)
        try:
            _tune(writer)
            upstream = await _connect(partial(asyncio.open_connection, "127.0.0.1", port, limit=CHUNK),
                                      self.wait, self._child_gone)
            if upstream is None:
                writer.close()
                return
            await splice((reader, writer), upstream)
        except asyncio.CancelledError:
            if not self.closing:  # ended by us: quietly, as 3.11's start_server logs a canceled handler
                raise
        finally:
            if task is not None:
                self.connections.discard(task)


def _remove_stale(path: Path) -> None:
    """Remove a socket a bridge left at `path`; anything else there stays."""
    try:
        if stat.S_ISSOCK(os.lstat(path).st_mode):
            os.unlink(path)
    except FileNotFoundError:
        pass


def _say(message: str) -> None:
    sys.stderr.write(f"odooops-bridge: {message}\n")
    sys.stderr.flush()


def _forward_option(value: str) -> tuple[Path, int]:
    path, sep, port = value.rpartition("=")
    if not sep or not path or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{value!r} is not SOCKET=PORT")
    try:
        check_socket_path(Path(path))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return Path(path), int(port)


def _reach_option(value: str) -> tuple[Path, int]:
    port, sep, path = value.partition("=")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536 or not path:
        raise argparse.ArgumentTypeError(f"{value!r} is not PORT=SOCKET")
    return _forward_option(f"{path}={port}")


def parse(args: list[str]) -> tuple[list[tuple[Path, int]], list[str], float, list[tuple[Path, int]]]:
    parser = argparse.ArgumentParser(prog="bridge.py", description="Forward unix sockets to loopback ports "
                                     "for as long as a command runs.", usage="%(prog)s --forward SOCKET=PORT "
                                     "[--forward SOCKET=PORT ...] [--wait SECONDS] -- ARGV...")
    parser.add_argument("--forward", action="append", type=_forward_option, required=True, metavar="SOCKET=PORT")
    parser.add_argument("--reach", action="append", type=_reach_option, default=[], metavar="PORT=SOCKET")
    parser.add_argument("--wait", type=float, default=INNER_WAIT_SECONDS, metavar="SECONDS",
                        help="how long a connection waits for the port to be listened on")
    cut = args.index("--") if "--" in args else len(args)
    options, argv = parser.parse_args(args[:cut]), args[cut + 1:]
    if not argv:
        parser.error("no command to run after --")
    return options.forward, argv, options.wait, options.reach


def main(args: list[str]) -> int:
    forwards, argv, wait, reaches = parse(args)
    try:
        return asyncio.run(Bridge(forwards, argv, wait, reaches).run())
    except OSError as exc:  # a socket that cannot be listened on
        _say(f"{exc.filename or ''} {exc.strerror or exc}".strip())
        return 1


# Outside, in the runner


class Exposed:
    """A TCP port forwarding each connection to a unix socket. `active` and
    `last_activity` (time.monotonic() of the last connection opened or closed)
    say whether anyone is using it."""

    def __init__(self, socket_path: Path, wait: float):
        self.socket_path = socket_path
        self.wait = wait
        self.host = ""
        self.port = 0
        self.active = 0
        self.last_activity = time.monotonic()
        self._server: asyncio.AbstractServer | None = None
        self._connections: set[asyncio.Task] = set()
        self._closed = False

    @property
    def address(self) -> str:
        """`host:port`, as a Route's `http` says it."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    async def close(self) -> None:
        """Stop listening and end every connection."""
        self._closed = True
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def __aenter__(self) -> Exposed:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _listen(self, host: str) -> None:
        # The first address only: binding every address of a name to port 0 would give each its own port.
        infos = await asyncio.get_running_loop().getaddrinfo(host, 0, type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)
        address = str(infos[0][4][0])
        self._server = await asyncio.start_server(self._forward, address, 0, limit=CHUNK, backlog=BACKLOG)
        self.host = address
        self.port = self._server.sockets[0].getsockname()[1]

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if self._closed or task is None:
            writer.transport.abort()
            return
        self._connections.add(task)
        self.active += 1
        self.last_activity = time.monotonic()
        try:
            _tune(writer)
            inner = await _connect(partial(asyncio.open_unix_connection, str(self.socket_path), limit=CHUNK),
                                   self.wait)
            if inner is None:
                writer.transport.abort()  # at once, so that a proxy in front tries its fallback
                return
            await splice((reader, writer), inner)
        except asyncio.CancelledError:
            if not self._closed:  # ended by close(): quietly, as 3.11's start_server logs a canceled handler
                raise
        finally:
            self._connections.discard(task)
            self.active -= 1
            self.last_activity = time.monotonic()


async def expose(socket_path: Path, host: str = "127.0.0.1", *, wait: float = OUTER_WAIT_SECONDS) -> Exposed:
    """Listen on a free TCP port of `host` and forward each connection to the
    unix socket at `socket_path`, which need not exist yet: a connection
    waits `wait` seconds at most for it, then is closed."""
    check_socket_path(socket_path)
    exposed = Exposed(socket_path, wait)
    await exposed._listen(host)
    return exposed


class Reached:
    """A unix socket forwarding each connection to a TCP address outside."""

    def __init__(self, server: asyncio.AbstractServer, path: Path):
        self.server = server
        self.path = path

    async def close(self) -> None:
        self.server.close()
        await self.server.wait_closed()
        _remove_stale(self.path)


async def reach(socket_path: Path, host: str, port: int) -> Reached:
    """Listen on the unix socket at `socket_path` and forward each connection
    to `host:port` (an inner bridge's --reach connects there)."""
    check_socket_path(socket_path)

    async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            target = await asyncio.open_connection(host, port, limit=CHUNK)
        except OSError:
            writer.transport.abort()
            return
        _tune(target[1])
        await splice((reader, writer), target)

    _remove_stale(socket_path)
    server = await asyncio.start_unix_server(forward, path=str(socket_path), limit=CHUNK, backlog=BACKLOG)
    return Reached(server, socket_path)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
