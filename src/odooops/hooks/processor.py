"""Deliveries are answered at once and applied here, in the background of
the API process: woken when one is recorded, and polling for retries that
fall due and for deliveries another API host recorded."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from odooops.db import Actor, Database
from odooops.errors import OpsError
from odooops.managers.hooks import Hooks

log = logging.getLogger("odooops.hooks")


class HookProcessor:
    def __init__(self, db: Database, poll_seconds: float = 1.0, lanes: int = 4):
        self.hooks = Hooks(db, Actor.service())
        self.poll_seconds = poll_seconds
        self.lanes = lanes
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while True:
            self._wake.clear()
            await self.drain()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds)

    async def drain(self) -> int:
        """Apply every delivery that is due, a few at once (each locks its own
        ledger row, so they never take the same one); how many were."""
        return sum(await asyncio.gather(*(self._lane() for _ in range(self.lanes))))

    async def _lane(self) -> int:
        done = 0
        try:
            while (result := await self.hooks.process_next()) is not None:
                done += 1
                log.info("delivery %s: %s (%s)", result["id"], result["status"], result["outcome"])
        except OpsError as exc:  # the database is away: the next round tries again
            log.warning("webhook deliveries wait: %s", exc)
        return done
