"""What a test's outcome is called wherever a build's tests are shown, as
odooops.managers.vocabulary names a run's status: one word, one icon and one
tone per outcome, and the count of each. The console's Tests section, the
CLI's `run tests` and the API's `summary` all say it this way; the outcome
itself (`pass`, `fail`, `error`, `skip`) stays the machine's word."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from odooops.managers.vocabulary import Label

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
