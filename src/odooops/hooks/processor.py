"""Deliveries are answered at once and applied here, in the background of
the API process: woken when one is recorded, and polling for retries that
fall due and for deliveries another API host recorded.

No single delivery may stop the others: a delivery that fails is settled as
failed by the ledger (see Hooks.process_next), a lane survives whatever one
delivery raises, and the loop starts again when it dies. /healthz asks
`problem()` whether the processor is running and not stuck."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from odooops.db import Actor, Database
from odooops.errors import OpsError
from odooops.managers.hooks import Hooks

log = logging.getLogger("odooops.hooks")
STUCK_AFTER = 300.0  # seconds one round may take: many times a database outage's pool timeout


class HookProcessor:
    def __init__(self, db: Database, poll_seconds: float = 1.0, lanes: int = 4):
        self.hooks = Hooks(db, Actor.service())
        self.poll_seconds = poll_seconds
        self.lanes = lanes
        self.stuck_after = STUCK_AFTER
        self.busy_since: float | None = None  # when the round under way began (monotonic)
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="webhook deliveries")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def problem(self) -> str | None:
        """Why the processor is not doing its work, or None when it is."""
        if self._task is None or self._task.done():
            return "not running: deliveries wait until this API host restarts"
        if self.busy_since is not None and time.monotonic() - self.busy_since > self.stuck_after:
            return f"stuck: a round of deliveries has taken over {self.stuck_after:.0f}s"
        return None

    async def run(self) -> None:
        """The loop, started again (after a pause, so a fault that repeats
        cannot spin) whenever it dies of something it did not expect."""
        while True:
            try:
                await self._loop()
            except Exception:
                log.exception("the webhook processor's loop died; starting it again")
                self.busy_since = None
                await asyncio.sleep(self.poll_seconds)

    async def _loop(self) -> None:
        while True:
            self._wake.clear()
            await self.drain()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds)

    async def drain(self) -> int:
        """Apply every delivery that is due, a few at once (each locks its own
        ledger row, so they never take the same one); how many were."""
        self.busy_since = time.monotonic()
        done = sum(await asyncio.gather(*(self._lane() for _ in range(self.lanes))))
        self.busy_since = None
        return done

    async def _lane(self) -> int:
        done = 0
        try:
            while (result := await self.hooks.process_next()) is not None:
                done += 1
                log.info("delivery %s: %s (%s)", result["id"], result["status"], result["outcome"])
        except OpsError as exc:  # the database is away: the next round tries again
            log.warning("webhook deliveries wait: %s", exc)
        except Exception:  # a fault of ours: the next round tries again, the other lanes go on
            log.exception("a webhook delivery lane failed")
        return done
