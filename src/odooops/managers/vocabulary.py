"""What a run's status and result are called wherever they are shown: one
word, one icon and one tone per status, the same in the console, the CLI and
the API's answers (`status_label`). The status itself (`succeeded`, …) stays
the machine's word: filters, the state machine and scripts use it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Label:
    word: str
    icon: str
    tone: str  # ok, bad, busy, wait, off or none: the console's badge colour, the CLI's style


STATUSES = {
    "awaiting_authorization": Label("Needs approval", "⏸", "wait"),
    "queued": Label("Queued", "◷", "busy"),
    "claimed": Label("Starting", "▸", "busy"),
    "running": Label("Running", "▸", "busy"),
    "succeeded": Label("Succeeded", "✔", "ok"),
    "failed": Label("Failed", "✖", "bad"),
    "canceled": Label("Canceled", "⊘", "off"),
    "superseded": Label("Superseded", "↷", "off"),
}
NO_RUN = Label("No builds", "·", "none")
# the log's verdict on a finished build (ok / warn / ko)
RESULTS = {"ok": Label("OK", "✔", "ok"), "warn": Label("Warnings", "⚠", "wait"), "ko": Label("Errors", "✖", "bad")}


def status_label(status: str | None) -> Label:
    """How a run's status is shown; a branch or project with no run yet is 'No builds'."""
    if not status:
        return NO_RUN
    return STATUSES.get(status, Label(status.replace("_", " ").capitalize(), "?", "none"))


def result_label(result: str | None) -> Label | None:
    return RESULTS.get(result) if result else None


def labelled(run: dict) -> dict:
    """A run as the API answers it: with the word people see for its status."""
    return {**run, "status_label": status_label(run.get("status")).word}
