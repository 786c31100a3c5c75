"""A run's log on its way to the database: lines are masked, levelled,
numbered and written in batches (COPY) every 100 ms, and kept whole in a file
that becomes the run's log artifact."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from odooops.errors import DatabaseUnavailable, LeaseLost, OpsError
from odooops.managers.events import Events, copy_escape
from odooops.runner.masking import Masker

log = logging.getLogger(__name__)
FLUSH_SECONDS = 0.1
RETRY_SECONDS = 0.5  # between flushes of a closed log while the database is away
MAX_BATCH = 20000
# Odoo's format: "2024-05-01 12:00:00,123 42 WARNING db odoo.x: message"; Python's logging too.
_LEVEL = re.compile(r"\b(DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL)\b[: ]")
_LEVELS = {"DEBUG": "debug", "INFO": "info", "WARNING": "warning", "WARN": "warning",
           "ERROR": "error", "CRITICAL": "critical"}


def level_of(line: str) -> str:
    if line.startswith("Traceback (most recent call last)"):
        return "error"
    match = _LEVEL.search(line, 0, 120)
    return _LEVELS[match.group(1)] if match else "info"


class LogSink:
    def __init__(self, events: Events, run_id: int, attempt: int, first_seq: int, log_file: Path, masker: Masker):
        self._events = events
        self._run_id = run_id
        self._attempt = attempt
        self._seq = first_seq
        self._path = log_file
        self._file = log_file.open("a", encoding="utf-8")
        self.mask = masker
        self._rows: list[str] = []  # lines in COPY's text format
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._closing = False
        self.phase: str | None = None
        self.lost: LeaseLost | None = None
        self.unwritten: OpsError | None = None  # why the last flush failed, while lines wait
        self.give_up = False  # set by the runner when waiting for the database is no use

    def lines(self, stream: str, lines: list[str], level: str | None = None) -> list[str]:
        """Take lines printed by a phase (or, with stream 'system', by the runner);
        the lines as the log keeps them, masked."""
        # Lines go straight into COPY's text format: per line this is the
        # runner's hot path when a phase prints 100,000 lines a second.
        head = f"{self._run_id}\t{self._attempt}\t"
        tail = f"\t{datetime.now(UTC).isoformat()}\t"
        middle = f"\t{copy_escape(self.phase)}\t{stream}\t"
        rows, seq = self._rows, self._seq
        masked = self.mask.lines(lines)
        for line in masked:
            self._file.write(line + "\n")
            rows.append(f"{head}{seq}{tail}{level or level_of(line)}{middle}{copy_escape(line)}\n")
            seq += 1
        self._seq = seq
        if len(rows) >= MAX_BATCH:
            self._wake.set()
        return masked

    def tapped(self, tap: Callable[[int, str], None]) -> Callable[[str, list[str]], None]:
        """`lines`, also handing each line (masked) and its seq to `tap`."""
        def lines(stream: str, batch: list[str]) -> None:
            seq = self._seq
            for i, line in enumerate(self.lines(stream, batch)):  # masked once, as the log keeps them
                tap(seq + i, line)
        return lines

    def system(self, message: str, level: str = "info") -> None:
        self.lines("system", [message], level)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def _loop(self) -> None:
        while not self._closing:
            try:
                await asyncio.wait_for(self._wake.wait(), FLUSH_SECONDS)
            except TimeoutError:
                pass
            self._wake.clear()
            await self.flush()

    async def flush(self) -> None:
        if not self._rows or self.lost:
            return
        rows, self._rows = self._rows, []
        try:
            await self._events.append_copy("".join(rows), [(self._run_id, self._attempt)])
        except LeaseLost as exc:
            self.lost = exc
        except OpsError as exc:  # the database is away: keep the lines for the next try
            if self.unwritten is None:
                log.warning("run %s: log lines not written yet (%s)", self._run_id, exc)
            self.unwritten = exc
            self._rows = rows + self._rows
        else:
            if self.unwritten is not None:
                log.info("run %s: log lines written again", self._run_id)
            self.unwritten = None

    async def _drain(self) -> None:
        """Flush until every line is written, the attempt is lost, or the
        runner gives up: lines wait out a database outage, in order."""
        refused = 0  # errors that are not an outage do not go away by waiting
        while self._rows and not self.lost and not self.give_up and refused < 3:
            await self.flush()
            if self._rows and not self.lost:
                refused += not isinstance(self.unwritten, DatabaseUnavailable)
                await asyncio.sleep(RETRY_SECONDS)
        if self._rows and not self.lost:
            log.error("run %s: %s log lines not written: %s", self._run_id, len(self._rows), self.unwritten)

    async def close(self) -> None:
        """Write what is left, waiting out an outage; a flush under way is let finish, not cut."""
        self._closing = True
        self._wake.set()
        if self._task:
            await self._task
        await self._drain()
        self._file.close()

    async def late(self, messages: list[str], level: str = "warning") -> None:
        """Lines the runner writes after the log was closed (about the
        artifacts, which are stored after it), into the log file too."""
        if not messages:
            return
        self._file = self._path.open("a", encoding="utf-8")
        self.lines("system", messages, level)
        self._file.close()
        await self._drain()
