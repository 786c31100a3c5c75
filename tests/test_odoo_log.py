"""Odoo's log read as runbot reads it: the verdict, the tests, their
fingerprints and JUnit XML, from what real Odoo 17.0 printed
(tests/fixtures/odoo/17.0, captured) and from lines written in the formats
its source logs (odoo/tests/result.py, suite.py, odoo/netsvc.py) where the
captures have none (a subtest, a retry, a class that fails to set up)."""

from __future__ import annotations

import re
import tracemalloc
import xml.etree.ElementTree as ET
from pathlib import Path

from odooops.odoo import odoolog
from odooops.odoo.odoolog import Counts, OdooLog, Verdict, fingerprint, junit_xml, normalised, read_log

CAPTURED = Path(__file__).parent / "fixtures" / "odoo" / "17.0"
T = "2026-12-02 16:50:16,450 14639"  # a record's time and pid, for lines written here


def lines_of(name: str) -> list[str]:
    return (CAPTURED / name).read_text().splitlines()


def record(level: str, logger: str, message: str, db: str = "fx3", stamp: str = T) -> str:
    return f"{stamp} {level} {db} {logger}: {message} "


def passing() -> list[str]:
    return lines_of("install-tests-passing.log")


def without(lines: list[str], text: str) -> list[str]:
    return [line for line in lines if text not in line]


def inserted(lines: list[str], *more: str, before: str = "Initiating shutdown") -> list[str]:
    at = next(i for i, line in enumerate(lines) if before in line)
    return lines[:at] + list(more) + lines[at:]


# the verdict, rule by rule

def test_a_clean_install_with_passing_tests_is_ok():
    assert read_log(passing()).verdict() == Verdict("ok", [])


def test_a_warning_line_is_warn():
    verdict = read_log(lines_of("server.log")).verdict()
    assert verdict == Verdict("warn", [
        "1 WARNING line, first: odoo.http: <function odoo.addons.web.controllers.home.health> called ignoring args "
        "{'db_server_status'}"])


def test_no_modules_loaded_line_is_ko():
    verdict = read_log(without(passing(), "Modules loaded.")).verdict()
    assert verdict == Verdict("ko", ['no "Modules loaded." line: the modules did not load'])
    failing = read_log(lines_of("install-tests-failing.log")).verdict()
    assert failing.result == "ko"
    assert failing.reasons == [
        'no "Modules loaded." line: the modules did not load',
        "5 ERROR lines, first: odoo.addons.fixture_notes.tests.test_note: ERROR: TestNote.test_raises_error"]


def test_modules_loaded_must_be_odoo_s_own_line():
    lines = inserted(without(passing(), "Modules loaded."), record("INFO", "odoo.addons.shop", "Modules loaded."))
    assert read_log(lines).verdict().reasons == ['no "Modules loaded." line: the modules did not load']


def test_an_error_line_is_ko():
    lines = inserted(passing(), record("ERROR", "odoo.addons.shop.models.order", "could not sync the orders"),
                     record("ERROR", "odoo.addons.shop.models.order", "again"))
    assert read_log(lines).verdict() == Verdict(
        "ko", ["2 ERROR lines, first: odoo.addons.shop.models.order: could not sync the orders"])


def test_a_critical_line_is_ko_and_its_traceback_is_its_own():
    lines = inserted(passing(), record("CRITICAL", "odoo.service.server", "Failed to initialize database `fx3`."),
                     "Traceback (most recent call last):", '  File "/opt/odoo17/odoo/service/server.py", line 1, in x',
                     "psycopg2.OperationalError: the database system is shutting down")
    assert read_log(lines).verdict() == Verdict(
        "ko", ["1 CRITICAL line, first: odoo.service.server: Failed to initialize database `fx3`."])


def test_a_traceback_outside_error_lines_is_ko():
    crash = ["Exception in thread odoo.service.cron.cron0:", "Traceback (most recent call last):",
             '  File "/usr/lib/python3.11/threading.py", line 1045, in _bootstrap_inner',
             "    self.run()", "ValueError: the cron thread died", "",
             "During handling of the above exception, another exception occurred:", "",
             "Traceback (most recent call last):", '  File "/opt/odoo17/odoo/service/server.py", line 5, in target',
             "    raise", "RuntimeError: and then this"]
    lines = inserted(passing(), record("INFO", "odoo.service.server", "Starting cron"), *crash)
    assert read_log(lines).verdict() == Verdict(
        "ko", ["1 traceback outside ERROR and CRITICAL lines, first: RuntimeError: and then this"])
    before_logging = ["Traceback (most recent call last):", '  File "/opt/odoo17/odoo-bin", line 5, in <module>',
                      "    import odoo", "ModuleNotFoundError: No module named 'odoo'"]
    verdict = read_log(before_logging).verdict()
    assert verdict.result == "ko"
    assert verdict.reasons[1] == ("1 traceback outside ERROR and CRITICAL lines, first: "
                                  "ModuleNotFoundError: No module named 'odoo'")


def test_no_initiating_shutdown_is_ko():
    lines = passing()
    killed = lines[:next(i for i, line in enumerate(lines) if "Initiating shutdown" in line)]
    assert read_log(killed).verdict() == Verdict(
        "ko", ['no "Initiating shutdown" line: Odoo did not stop by itself (killed, e.g. by a limit)'])


def test_every_reason_is_said_ko_first():
    lines = inserted(without(passing(), "Initiating shutdown"), record("WARNING", "odoo.models", "a warning"),
                     record("ERROR", "odoo.models", "an error"), before="Registry loaded")
    assert read_log(lines).verdict() == Verdict("ko", [
        "1 ERROR line, first: odoo.models: an error",
        'no "Initiating shutdown" line: Odoo did not stop by itself (killed, e.g. by a limit)',
        "1 WARNING line, first: odoo.models: a warning"])


def test_a_template_build_is_judged_by_the_same_rules_without_tests():
    template = [line for line in passing() if "test" not in line]
    log = read_log(template, tests=False)
    assert log.verdict() == Verdict("ok", [])
    assert read_log(without(template, "Modules loaded."), tests=False).verdict().result == "ko"
    assert read_log(inserted(template, record("WARNING", "odoo.models", "w")), tests=False).verdict().result == "warn"
    tested = read_log(lines_of("install-tests-failing.log"), tests=False)
    assert (tested.results, tested.reported, tested.verdict().result) == ([], None, "ko")


def test_colored_output_reads_the_same():
    colored = [line.replace(" INFO ", " \x1b[1;32m\x1b[1;49mINFO\x1b[0m ", 1) for line in passing()]
    log = read_log(colored)
    assert log.verdict() == Verdict("ok", [])
    assert [r.method for r in log.results] == ["test_words_counted"]


# the tests, from the captured logs

RAISES = """Traceback (most recent call last):
  File "/opt/addons/fixture_notes/tests/test_note.py", line 14, in test_raises_error
    self.env["fixture.note"].browse(-1).name.upper()
    ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "/opt/odoo17/odoo/fields.py", line 1188, in __get__
    raise MissingError("\\n".join([
odoo.exceptions.MissingError: Record does not exist or has been deleted.
(Record: fixture.note(-1,), User: 1)"""

WRONG = """Traceback (most recent call last):
  File "/opt/addons/fixture_notes/tests/test_note.py", line 11, in test_words_deliberately_wrong
    self.assertEqual(note.words, 5, "this test fails on purpose")
AssertionError: 2 != 5 : this test fails on purpose"""


def test_the_failing_run_parses_into_its_three_tests():
    results = read_log(lines_of("install-tests-failing.log")).results
    assert [(r.module, r.test_class, r.method, r.outcome, r.duration, r.traceback, r.ref) for r in results] == [
        ("fixture_notes", "TestNote", "test_raises_error", "error", 0.005, RAISES, 21),
        ("fixture_notes", "TestNote", "test_words_counted", "pass", 0.008, None, 31),
        ("fixture_notes", "TestNote", "test_words_deliberately_wrong", "fail", 0.08, WRONG, 34),
    ]
    assert results[1].fingerprint is None
    assert all(re.fullmatch(r"[0-9a-f]{16}", r.fingerprint or "") for r in (results[0], results[2]))
    assert results[0].fingerprint != results[2].fingerprint


def test_the_passing_run_parses_into_its_one_test():
    assert read_log(passing()).results == [odoolog.TestResult(
        "fixture_notes", "TestNote", "test_words_counted", "pass", 0.076, None, 19, None)]


def test_refs_are_the_callers():
    log = OdooLog()
    for i, line in enumerate(lines_of("install-tests-failing.log")):
        log.feed(line + "\n", 7000 + 2 * i)
    assert [r.ref for r in log.results] == [7040, 7060, 7066]


def test_odoo_s_own_counts():
    failing = read_log(lines_of("install-tests-failing.log"))
    assert failing.reported == failing.parsed == Counts(failed=1, errors=1, tests=3)
    assert failing.reported_modules == {"fixture_notes": Counts(1, 1, 3)}
    assert failing.counts_differ() is None
    ok = read_log(passing())
    assert (ok.reported, ok.reported_modules) == (Counts(0, 0, 1), {})
    assert read_log(lines_of("server.log")).reported is None
    cut = read_log(lines_of("install-fresh-all-tests.cut.log"))  # a cut: Odoo counted lines it leaves out
    assert cut.reported == Counts(3, 5, 1162)
    assert cut.reported_modules == {"base": Counts(1, 0, 897), "fixture_notes": Counts(2, 1, 3)}
    assert cut.counts_differ() == ("Odoo reported 3 failed, 5 error(s) of 1162 tests, "
                                   "the log shows 3 failed, 4 error(s) of 59 tests")


def test_skips():
    results = {(r.test_class, r.method): r for r in read_log(lines_of("install-fresh-all-tests.cut.log")).results}
    accent = results["TestExpression", "test_accent"]
    assert (accent.module, accent.outcome, accent.traceback, accent.ref, accent.duration, accent.fingerprint) == (
        "base", "skip", "unaccent not enabled", 12, 0.001, None)
    assert results["TestSkipMethof", "test_skip_method"].traceback == ""  # skipped with no reason
    assert results["TestReportsRendering", "test_layout"].traceback == "pdfminer not installed"
    # a class whose setUpClass skips: Odoo logs it from odoo.tests.suite and runs none of its tests
    whole = results["TestClassSetup", "setUpClass"]
    assert (whole.module, whole.outcome, whole.traceback, whole.duration) == ("base", "skip", "Skip this class", None)
    assert not any(r.test_class == "TestClassSetup" and r.method != "setUpClass" for r in results.values())


def test_continuation_lines_make_the_traceback():
    results = {r.method: r for r in read_log(lines_of("install-fresh-all-tests.cut.log")).results}
    tz = results["test_partner_with_old_tz"]
    assert tz.outcome == "fail"
    assert tz.traceback is not None
    assert tz.traceback.splitlines()[0] == "Traceback (most recent call last):"
    assert tz.traceback.splitlines()[-6:] == [
        "AssertionError: '-0500' != '-0400'", "- -0500", "?   ^", "+ -0400", "?   ^",
        " : We don't expect pytz.timezone to fail if the timezone diseapeared when chaging os version"]
    assert results["test_tz_legacy"].outcome == "pass"  # the next record ended the traceback
    post = results["test_report_reload_from_attachment"]  # a post-install test
    assert (post.module, post.test_class, post.outcome, post.ref) == ("base", "TestReports", "error", 165)
    assert post.traceback is not None
    assert post.traceback.endswith("odoo.exceptions.UserError: Unable to find Wkhtmltopdf on this system. "
                                   "The PDF can not be created.")


def test_a_failing_subtest_fails_its_test():
    logger = "odoo.addons.shop.tests.test_order"
    lines = [record("INFO", logger, "Starting TestOrder.test_totals ..."),
             record("INFO", logger, "=" * 70),
             record("ERROR", logger, "FAIL: Subtest TestOrder.test_totals (lines=1)").rstrip(),
             "Traceback (most recent call last):", '  File "/src/shop/tests/test_order.py", line 9, in test_totals',
             "AssertionError: 1 != 2", " ",
             record("INFO", logger, "skipped Subtest TestOrder.test_totals (lines=2) : not today"),
             record("ERROR", logger, "ERROR: Subtest TestOrder.test_totals (lines=3)").rstrip(),
             "Traceback (most recent call last):", '  File "/src/shop/tests/test_order.py", line 12, in test_totals',
             "KeyError: 'total'", " ",
             record("INFO", "odoo.modules.loading", "Module shop loaded in 0.10s (incl. 0.05s test), 5 queries",
                    stamp="2026-12-02 16:50:17,000 14639")]
    log = read_log(lines)
    [test] = log.results
    assert (test.method, test.outcome, test.ref, test.duration) == ("test_totals", "error", 3, 0.55)
    assert test.traceback == "\n".join([
        "FAIL: Subtest TestOrder.test_totals (lines=1)", *lines[3:6], "",
        "ERROR: Subtest TestOrder.test_totals (lines=3)", *lines[9:12]]).rstrip()
    assert log.parsed == Counts(failed=1, errors=1, tests=1)


def test_a_class_that_cannot_set_up_is_one_error():
    lines = [record("INFO", "odoo.tests.suite", "=" * 70),
             record("ERROR", "odoo.tests.suite", "ERROR: setUpClass (odoo.addons.shop.tests.test_order.TestOrder)"),
             "Traceback (most recent call last):", '  File "/src/shop/tests/test_order.py", line 3, in setUpClass',
             "psycopg2.errors.UniqueViolation: duplicate key value", " "]
    [holder] = read_log(lines).results
    assert (holder.module, holder.test_class, holder.method, holder.outcome, holder.ref) == (
        "shop", "TestOrder", "setUpClass", "error", 2)
    assert holder.traceback is not None and holder.traceback.endswith("UniqueViolation: duplicate key value")


def test_a_try_that_odoo_retries_is_not_a_result():
    # with ODOO_TEST_FAILURE_RETRIES, a failing try is logged at INFO (tests/common.py lowers it), then run again
    logger = "odoo.addons.shop.tests.test_order"
    lines = inserted(passing(), record("INFO", logger, "Starting TestOrder.test_flaky ..."),
                     record("INFO", logger, "FAIL: TestOrder.test_flaky"), "Traceback (most recent call last):",
                     '  File "/src/shop/tests/test_order.py", line 9, in test_flaky', "AssertionError: 1 != 2",
                     record("INFO", logger, "Retrying a failed test: test_flaky (odoo.addons.shop.TestOrder)"),
                     record("INFO", logger, "Starting TestOrder.test_flaky ..."), before="Module fixture_notes")
    log = read_log(lines)
    assert [(r.method, r.outcome, r.ref) for r in log.results] == [
        ("test_words_counted", "pass", 19), ("test_flaky", "pass", 27)]
    assert log.verdict() == Verdict("ok", [])


# fingerprints

def another_build(line: str) -> str:
    """The same failing run elsewhere: another checkout path, database, record ids and time."""
    return (line.replace("/opt/addons/", "/srv/builds/4711/src/").replace("/opt/odoo17/", "/home/ci/odoo-17.0/")
            .replace(" fx2 ", " acme-main-88 ").replace("'fx2'", "'acme-main-88'").replace("(-1,)", "(-42,)")
            .replace("2026-12-02 16:50", "2027-01-15 09:12"))


def test_the_same_failure_elsewhere_has_the_same_fingerprint():
    here = read_log(lines_of("install-tests-failing.log")).results
    there = read_log([another_build(line) for line in lines_of("install-tests-failing.log")]).results
    assert there[0].traceback != here[0].traceback
    assert [r.fingerprint for r in there] == [r.fingerprint for r in here]
    # and in another run altogether (a fresh database, other values in the assertion)
    cut = {r.method: r for r in read_log(lines_of("install-fresh-all-tests.cut.log")).results}
    assert cut["test_raises_error"].fingerprint == here[0].fingerprint
    assert cut["test_words_deliberately_wrong"].fingerprint == here[2].fingerprint


def test_different_failures_have_different_fingerprints():
    cut = read_log(lines_of("install-fresh-all-tests.cut.log")).results
    failed = [r.fingerprint for r in cut if r.outcome in ("fail", "error")]
    assert len(failed) == 7
    assert len(set(failed)) == 7  # the same exception from three tests is three failures
    assert fingerprint(WRONG) != fingerprint(WRONG.replace("AssertionError", "ValueError"))


def test_normalised_takes_out_what_changes_between_builds():
    text = ('  File "/tmp/build-1/src/shop/models/order.py", line 88, in _compute\n'
            "    ^^^^^^^^\n"
            "ValueError: <odoo.sql_db.Cursor object at 0x7f3a2c1d9e50> at 2026-12-02 16:50:16,450 on "
            "res.partner(17, 23) token 'a8Fz3kQ9xLm2Pq7RtY' attachment 3f6b69e1 "
            "uuid 9b2f1c3e-4d5a-4b6c-8d7e-0f1a2b3c4d5e in database 'fx1'")
    assert normalised(text, ["fx1"]) == (
        '  File "order.py", in _compute\n'
        "ValueError: <odoo.sql_db.Cursor object at 0x?> at <time> on res.partner(N, N) token '<id>' "
        "attachment <hex> uuid <uuid> in database '<db>'")
    assert normalised("odoo.exceptions.UserError: fx1", ["odoo"]) == "odoo.exceptions.UserError: fx1"


# JUnit XML

def test_junit_xml_says_what_ran():
    log = read_log(lines_of("install-fresh-all-tests.cut.log"))
    root = ET.fromstring(junit_xml(log.results, "acme main"))
    assert root.tag == "testsuites"
    assert (root.get("name"), root.get("tests"), root.get("failures"), root.get("errors"), root.get("skipped")) == (
        "acme main", "61", "3", "4", "11")
    assert [s.get("name") for s in root.iter("testsuite")] == ["base", "fixture_notes", "web_editor"]
    notes = next(s for s in root.iter("testsuite") if s.get("name") == "fixture_notes")
    assert [notes.get(a) for a in ("tests", "failures", "errors", "skipped")] == ["3", "2", "1", "0"]
    cases = {c.get("name"): c for c in notes.iter("testcase")}
    raises = cases["test_raises_error"]
    assert (raises.get("classname"), raises.get("time")) == ("fixture_notes.TestNote", "0.005")
    error = raises.find("error")
    assert error is not None
    assert error.get("message") == "odoo.exceptions.MissingError: Record does not exist or has been deleted."
    assert error.get("type") == "odoo.exceptions.MissingError"
    assert error.text == RAISES
    failure = cases["test_words_deliberately_wrong"].find("failure")
    assert failure is not None and failure.get("message") == "AssertionError: 0 != 5 : this test fails on purpose"
    skipped = next(c for c in root.iter("testcase") if c.get("name") == "test_accent").find("skipped")
    assert skipped is not None and skipped.get("message") == "unaccent not enabled"
    passed = next(c for c in root.iter("testcase") if c.get("name") == "test_active")
    assert list(passed) == [] and passed.get("classname") == "base.TestExpression"


def test_junit_xml_survives_what_xml_cannot_hold():
    result = odoolog.TestResult("shop", "TestOrder", "test_<&>", "fail", None,
                                'Traceback\nAssertionError: "\x1b[31mred\x1b[0m" \x00 & <b>', 5, "0" * 16)
    root = ET.fromstring(junit_xml([result], 'a "suite" & more'))
    case = next(root.iter("testcase"))
    assert (root.get("name"), case.get("name"), case.get("time")) == ('a "suite" & more', "test_<&>", None)
    failure = case.find("failure")
    assert failure is not None and failure.text is not None
    assert "&" in failure.text and "<b>" in failure.text and "\x1b" not in failure.text


def test_junit_xml_of_a_one_module_run_has_one_suite():
    root = ET.fromstring(junit_xml(read_log(lines_of("install-tests-failing.log")).results, "s"))
    assert [s.get("name") for s in root.iter("testsuite")] == ["fixture_notes"]
    assert [(c.get("name"), [e.tag for e in c]) for c in root.iter("testcase")] == [
        ("test_raises_error", ["error"]), ("test_words_counted", []), ("test_words_deliberately_wrong", ["failure"])]


# a very long log

def test_a_very_long_log_keeps_only_what_it_needs():
    logger = "odoo.addons.shop.tests.test_order"
    log = OdooLog()
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        ref = 0

        def feed(line: str) -> None:
            nonlocal ref
            ref += 1
            log.feed(line, ref)

        feed(record("INFO", logger, "Starting TestOrder.test_recursion ..."))
        feed(record("ERROR", logger, "ERROR: TestOrder.test_recursion"))
        feed("Traceback (most recent call last):")
        for i in range(100_000):  # a traceback Python did not fold
            feed(f'  File "/src/shop/models/order_{i}.py", line {i}, in f{i}')
        feed("RecursionError: maximum recursion depth exceeded")
        for i in range(50_000):
            feed(record("WARNING", "odoo.models", f"warning {i}", db=f"db{i}"))
            feed(record("ERROR", "odoo.models", f"error {i} " + "x" * 1000))
        kept = sum(s.size_diff for s in tracemalloc.take_snapshot().compare_to(before, "filename"))
    finally:
        tracemalloc.stop()
    assert ref == 200_004
    assert kept < 500_000  # bytes: the log's 200,000 lines weigh over 60 MB
    [test] = log.results
    assert test.traceback is not None
    assert len(test.traceback) <= odoolog.TRACEBACK_CAP + 100
    assert test.traceback.startswith("Traceback (most recent call last):\n  File \"/src/shop/models/order_0.py\"")
    assert test.traceback.endswith("RecursionError: maximum recursion depth exceeded")
    assert re.search(r"… \d+ lines left out …", test.traceback)
    reasons = log.verdict().reasons
    assert reasons[1].startswith("50001 ERROR lines, first: odoo.addons.shop.tests.test_order: ERROR: TestOrder")
    assert reasons[-1] == "50000 WARNING lines, first: odoo.models: warning 0"
    assert all(len(reason) < 400 for reason in reasons)
