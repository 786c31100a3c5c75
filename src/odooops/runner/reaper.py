"""A phase's main process: runs the command and, once it has exited, kills
every process it left behind, then exits as the command did.

As a child subreaper, it inherits every orphan the command leaves (a `&`
job, `setsid`, a double-forked daemon), so each phase's leftovers are its
own, however many phases a runner has at once. It dies with the runner
(parent-death signal) and ends the tree on SIGTERM, which is how a phase is
canceled. It is run by path with `python -I -S`: the standard library only,
and deaf to the PYTHON* variables a recipe may set.
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal
import sys
import time

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
STOPS = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}
CLEANUP_SECONDS = 5.0


def main(argv: list[str]) -> None:
    parent = os.getppid()
    # Signals are waited for, never handled: no handler can cut the cleanup short.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD, *STOPS})
    _prctl(PR_SET_CHILD_SUBREAPER, 1)
    _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the runner died before the parent-death signal was set
        status = int(signal.SIGTERM)  # a wait status: killed by SIGTERM
    else:
        status = _run(argv)
    kill_descendants()
    _exit_as(status)


def _prctl(option: int, value: int) -> None:
    try:
        ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the process group is all there is
        pass


def _run(argv: list[str]) -> int:
    """The command's wait status, or the stop signal that came first."""
    pid = _spawn(argv)
    while True:
        signum = signal.sigwaitinfo({signal.SIGCHLD, *STOPS}).si_signo
        if signum != signal.SIGCHLD:
            return signum
        status = _reap().get(pid)
        if status is not None:
            return status


def _spawn(argv: list[str]) -> int:
    pid = os.fork()
    if pid:
        return pid
    try:
        for signum in (signal.SIGINT, signal.SIGPIPE, signal.SIGXFSZ):  # as Python found them
            signal.signal(signum, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, set())
        os.execvp(argv[0], argv)
    except OSError as exc:
        os.write(2, f"{argv[0]}: {exc.strerror}\n".encode())
    os._exit(127)


def kill_descendants() -> None:
    """SIGKILL every descendant until none is left: the orphans of the
    killed come to us, so each round finds what the last one left."""
    deadline = time.monotonic() + CLEANUP_SECONDS
    while time.monotonic() < deadline:
        pids = descendants(os.getpid())
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        _reap()
        if not pids:
            return
        time.sleep(0.01)


def _reap() -> dict[int, int]:
    """Reap every child that has exited: the command and orphans handed to us."""
    reaped: dict[int, int] = {}
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return reaped
        if not pid:
            return reaped
        reaped[pid] = status


def descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for pid, ppid in _parents():
        children.setdefault(ppid, []).append(pid)
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _parents() -> list[tuple[int, int]]:
    pairs = []
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    stat = f.read()
            except OSError:  # gone meanwhile
                continue
            pairs.append((int(entry), int(stat.rsplit(b")", 1)[1].split()[1])))
    return pairs


def _exit_as(status: int) -> None:
    """Exit as the command did: with its code, or killed by its signal."""
    if os.WIFEXITED(status):
        os._exit(os.WEXITSTATUS(status))
    signum = os.WTERMSIG(status) if os.WIFSIGNALED(status) else signal.SIGKILL
    resource.setrlimit(resource.RLIMIT_CORE, (0, resource.getrlimit(resource.RLIMIT_CORE)[1]))
    if signum != signal.SIGKILL:  # whose action cannot be set
        signal.signal(signum, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signum])
    os.kill(os.getpid(), signum)
    os._exit(128 + signum)


if __name__ == "__main__":
    main(sys.argv[1:])
