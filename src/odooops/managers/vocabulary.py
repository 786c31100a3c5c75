"""What a run's status and result are called wherever they are shown: one
word, one icon and one tone per status, the same in the console, the CLI and
the API's answers (`status_label`). The status itself (`succeeded`, …) stays
the machine's word: filters, the state machine and scripts use it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
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


# A running environment's status (ops.environment_status) and its last health check.
ENVIRONMENT_STATUSES = {
    "starting": Label("Starting", "▸", "busy"),
    "running": Label("Running", "●", "ok"),
    "sleeping": Label("Sleeping", "☾", "off"),
    "stopped": Label("Stopped", "■", "off"),
    "crashed": Label("Crashed", "✖", "bad"),
    # an update (or a snapshot) holds it: the router answers with the maintenance page
    "maintenance": Label("Maintenance", "⚙", "busy"),
}
NO_ENVIRONMENT = Label("No environment", "·", "none")
HEALTH = {"pass": Label("Healthy", "✔", "ok"), "fail": Label("Unhealthy", "✖", "bad")}
NO_HEALTH = Label("Not checked", "·", "none")


def environment_label(status: str | None) -> Label:
    """How an environment's status is shown; a branch without one says so."""
    if not status:
        return NO_ENVIRONMENT
    return ENVIRONMENT_STATUSES.get(status, Label(status.capitalize(), "?", "none"))


def health_label(health: str | None) -> Label:
    """An environment's last health check: pass, fail, or none while it is not running."""
    return HEALTH.get(health, NO_HEALTH) if health else NO_HEALTH


# A production update in place (ops.updates): `reverted` is a failed update whose
# code and database went back; `failed` is one whose revert failed too.
UPDATE_STATUSES = {
    "running": Label("Updating", "▸", "busy"),
    "succeeded": Label("Updated", "✔", "ok"),
    "reverted": Label("Reverted", "↶", "bad"),
    "failed": Label("Revert failed", "✖", "bad"),
}


def update_label(status: str) -> Label:
    return UPDATE_STATUSES.get(status, Label(status.capitalize(), "?", "none"))


def labelled(run: dict) -> dict:
    """A run as the API answers it: with the word people see for its status."""
    return {**run, "status_label": status_label(run.get("status")).word}


# A test's outcome (pass, fail, error, skip) as the console's Tests section, the CLI's
# `run tests` and the API's summary say it.
# in the order a summary says them: what needs a look first
OUTCOMES = {
    "fail": Label("Failed", "✖", "bad"),
    "error": Label("Error", "⊗", "bad"),
    "skip": Label("Skipped", "⊘", "off"),
    "pass": Label("Passed", "✔", "ok"),
}
# "3 failed", "1 error", "2 errors": the summary's words for a count
_COUNTED = {"fail": ("failed", "failed"), "error": ("error", "errors"), "skip": ("skipped", "skipped"),
            "pass": ("passed", "passed")}


def outcome_label(outcome: str) -> Label:
    return OUTCOMES.get(outcome, Label(outcome.capitalize(), "?", "none"))


def tally(tests: Iterable[Mapping]) -> dict[str, int]:
    """How many tests passed, failed, erred and were skipped (every outcome, zero or not)."""
    counts = dict.fromkeys(("pass", "fail", "error", "skip"), 0)
    for test in tests:
        counts[test["outcome"]] = counts.get(test["outcome"], 0) + 1
    return counts


def counted(outcome: str, n: int) -> str:
    """'2 passed', '1 error', '3 errors'."""
    one, many = _COUNTED.get(outcome, (outcome, outcome))
    return f"{n} {one if n == 1 else many}"


def qualified(test: Mapping) -> str:
    """How a test is named where it is shown: Class.method."""
    return f"{test['test_class']}.{test['method']}"
