"""Where a runner process keeps its runs' working folders: one folder per
process under `<data dir>/work`, locked (flock) for as long as the process
lives. Several runner processes may share a data directory; a folder whose
lock is free belongs to a process that is gone (killed, crashed), and the
attempts it held are over, so whatever they left is deleted."""

from __future__ import annotations

import fcntl
import logging
import shutil
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)


class WorkDirs:
    def __init__(self, data_dir: Path, name: str):
        self.root = data_dir / "work"
        self.mine = self.root / name
        self._lock: IO[str] | None = None

    def claim(self) -> None:
        """Lock this process's folder, then delete those of processes that are gone."""
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = self.mine.with_suffix(".lock").open("a")
        fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self.mine.mkdir(exist_ok=True)
        for lock in self.root.glob("*.lock"):
            if lock.stem != self.mine.name:
                self._sweep(lock)

    def _sweep(self, lock: Path) -> None:
        try:
            f = lock.open("a")
        except FileNotFoundError:  # another process swept it just now
            return
        with f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # its process is alive
                return
            folder = self.root / lock.stem
            if folder.exists():
                log.info("deleting %s, left by a runner process that is gone", folder)
                shutil.rmtree(folder, ignore_errors=True)
            lock.unlink(missing_ok=True)

    def of(self, run_id: int, attempt: int) -> Path:
        return self.mine / f"run-{run_id}-{attempt}"

    def release(self) -> None:
        """At a clean exit: nothing of this process is left to keep."""
        if self._lock is None:
            return
        shutil.rmtree(self.mine, ignore_errors=True)
        self.mine.with_suffix(".lock").unlink(missing_ok=True)
        self._lock.close()
        self._lock = None
