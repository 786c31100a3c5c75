"""`odooops run tests`: the tests a build ran, as Odoo's log told them."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.text import Text

from odooops.cli.context import TONE_STYLE, JsonFlag, err, out, print_json, run, table
from odooops.managers.runs import Runs
from odooops.managers.vocabulary import OUTCOMES, counted, outcome_label, qualified, tally


def outcome(value: str) -> Text:
    """A test's outcome as the console shows it: icon and word."""
    label = outcome_label(value)
    return Text(f"{label.icon} {label.word}", style=TONE_STYLE[label.tone])


def took(ms: int | None) -> str:
    if ms is None:
        return "-"
    return f"{ms} ms" if ms < 1000 else f"{ms / 1000:.1f} s"


def run_tests(
    run_id: int,
    tracebacks: Annotated[bool, typer.Option(
        "--tracebacks", help="Print each failure's and error's traceback after the table.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """A build's tests: failures and errors first, then skips, then passes.

    Each with its module, Class.method, duration and the log line it is
    told at (`odooops logs RUN_ID --after N` prints the lines after N)."""
    tests = run(lambda db, actor: Runs(db, actor).tests(run_id),
                remote=lambda api: api.get(f"/runs/{run_id}/tests")["tests"])
    if as_json:
        return print_json(tests)
    if not tests:
        err.print(f"run {run_id} recorded no test results")
        return
    table(["outcome", "module", "test", "duration", "line"],
          [[outcome(t["outcome"]), t["module"], qualified(t), took(t["duration_ms"]), t["log_seq"]] for t in tests])
    counts = tally(tests)
    out.print(", ".join(counted(o, counts[o]) for o in OUTCOMES))
    if tracebacks:
        _tracebacks([t for t in tests if t["outcome"] in ("fail", "error") and t["traceback"]])


def _tracebacks(failed: list[dict]) -> None:
    for t in failed:
        out.print()
        out.print(Text.assemble(outcome(t["outcome"]), " ", (qualified(t), "bold"), f" ({t['module']})"))
        out.print(Text(t["traceback"]), soft_wrap=True)
