"""Following a run's log as it grows: the one polling loop behind the API's
log stream and the console's live log page."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

from odooops.managers.runs import Runs

FINAL = {"succeeded", "failed", "canceled", "superseded"}
POLL_SECONDS = 0.2
BATCH = 1000


async def follow(runs: Runs, run_id: int, after: int,
                 gone: Callable[[], Awaitable[bool]]) -> AsyncIterator[tuple[dict, list[dict]]]:
    """Each poll, the run and the lines written since the last (in batches:
    a run may be read with several batches, the last one empty). The run is
    read before its lines, so once it is finished no line can come after
    those read: the follow ends after the item whose run is finished, or
    when `gone()` says the reader left."""
    while not await gone():
        run = await runs.get(run_id)
        while lines := await runs.lines(run_id, after, BATCH):
            yield run, lines
            after = lines[-1]["seq"]
        yield run, []
        if run["status"] in FINAL:
            return
        await asyncio.sleep(POLL_SECONDS)
