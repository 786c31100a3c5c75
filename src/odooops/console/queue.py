"""The queue page: what runs, what waits and why, and the workers that take
the work. The live part refreshes itself with htmx every few seconds."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from odooops.console.render import page
from odooops.console.session import Seen
from odooops.managers.queue import Queue

router = APIRouter(include_in_schema=False)
LIVE = "queue-live"  # the element htmx refreshes; its own template, so a refresh sends only it


@router.get("/queue")
async def queue(request: Request, who: Seen) -> Response:
    q = Queue(request.app.state.db, who.actor)
    runs, workers = await q.queue(), await q.workers()
    running = [r for r in runs if r["status"] in ("claimed", "running")]
    waiting = [r for r in runs if r not in running]
    refresh = request.headers.get("hx-request") and request.headers.get("hx-target") == LIVE
    return page(request, "queue_live.html" if refresh else "queue.html", running=running, waiting=waiting,
                workers=workers, alive=sum(1 for w in workers if w["alive"]))
