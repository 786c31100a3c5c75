"""Odoo's log read as runbot and Odoo.sh read it: a verdict (ok, warn or ko,
and why) and the tests it ran, from the lines as odoo-bin prints them.

The reader streams: the runner feeds it each line as Odoo prints it, and a
big test run prints hundreds of thousands. It keeps only what the verdict and
the results need (counts, the first line of each kind, one entry per test,
tracebacks capped), never the lines themselves.

The formats are Odoo 17.0's: the record format of odoo/netsvc.py, the test
lines of odoo/tests/result.py and suite.py, the summaries of
odoo/modules/loading.py and odoo/service/server.py."""

from __future__ import annotations

import hashlib
import re
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

Result = Literal["ok", "warn", "ko"]
Outcome = Literal["pass", "fail", "error", "skip"]

TRACEBACK_CAP = 20_000  # characters kept of one test's traceback: its head and its tail (the exception)
TRACEBACK_TAIL = 5_000  # of which the tail
LINE_CAP = 4_000        # characters kept of one line of it
QUOTE_CAP = 300         # characters of a line a reason quotes
DATABASES_CAP = 16      # database names remembered, to take them out of fingerprints

# `%(asctime)s %(pid)s %(levelname)s %(dbname)s %(name)s: %(message)s %(perf_info)s`, odoo/netsvc.py
# (levels are names: Odoo's RUNBOT level, 25, is displayed as INFO)
RECORD = re.compile(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) \d+ ([A-Z]+) (\S+) (\S+?):(?: (.*))?$")
ANSI = re.compile(r"\x1b\[[0-9;]*m")  # ColoredFormatter's, when Odoo's stderr is a tty or ODOO_PY_COLORS is set
TRACEBACK = "Traceback (most recent call last):"

# odoo/tests/result.py logs through the test's own module logger, odoo.addons.<module>.tests.<file>
TEST_LOGGER = re.compile(r"odoo\.addons\.([^.]+)\.tests(?:\.|$)")
STARTING = re.compile(r"Starting (\S+)\.(\w+) \.\.\.$")
SKIPPED = re.compile(r"skipped (.+?) :(?: (.*))?$")
PROBLEM = re.compile(r"(FAIL|ERROR): ((?:Subtest )?\S+\.\w+(?: .*)?|\w+ \(\S+\))$")
SUBTEST = re.compile(r"Subtest (\S+)\.(\w+) ")
# setUpClass / tearDownClass errors and skips go through an _ErrorHolder, whose logger is odoo.tests.suite
HOLDER = re.compile(r"(\w+) \(odoo\.addons\.([^.]+)\.tests\.(?:\S+\.)?([^.\s]+)\)$")
# odoo/modules/loading.py, odoo/service/server.py, odoo/tests/result.py
MODULE_LOADED = re.compile(r"Module \S+ loaded in ")
MODULE_SUMMARY = re.compile(r"Module (\S+): (\d+) failures, (\d+) errors of (\d+) tests$")
POST_TESTS = re.compile(r"\d+ post-tests in ")
TOTALS = re.compile(r"(\d+) failed, (\d+) error\(s\) of (\d+) tests when loading database ")


@dataclass(frozen=True)
class Verdict:
    result: Result
    reasons: list[str]  # short sentences for the build log, the ko ones first


@dataclass(frozen=True)
class TestResult:
    module: str
    test_class: str
    method: str              # or setUpClass / tearDownClass, for what Odoo reports of a whole class
    outcome: Outcome
    duration: float | None   # seconds, from its Starting line to the next test's (or its module's end)
    traceback: str | None    # None for a pass; for a skip, Odoo's reason
    ref: int                 # the ref fed with its FAIL/ERROR line (a fail, an error), else with its Starting line
    fingerprint: str | None  # of a fail or an error: the same failure on another build has the same


@dataclass(frozen=True)
class Counts:
    """Test counts, as Odoo counts them: every test started (a subtest is not
    one), every FAIL and every ERROR logged (a test may log several)."""

    failed: int
    errors: int
    tests: int

    def __str__(self) -> str:
        return f"{self.failed} failed, {self.errors} error(s) of {self.tests} tests"


class OdooLog:
    """Feed it Odoo's output line by line with an opaque ref each (the line's
    sequence number in the build's log); ask it the verdict and the results
    at any time.

    `tests=False` reads a build that installs and runs no tests (a template's
    dependencies): the same verdict, and no test lines looked for."""

    def __init__(self, *, tests: bool = True) -> None:
        self._tests_wanted = tests
        self._modules_loaded = False
        self._shutdown = False
        self._levels: dict[str, _Seen] = {}
        self._bare = _Seen()          # tracebacks outside ERROR and CRITICAL records
        self._bare_exception: _ExceptionLine | None = None
        self._databases: list[str] = []
        # the record being read: continuation lines belong to it
        self._level = ""
        self._message = ""
        self._where = "before logging started"
        self._in_traceback = False
        self._soft = False            # a FAIL/ERROR lowered to INFO: a try Odoo retries, not a result
        self._capture: _Text | None = None
        self._tracking: _ExceptionLine | None = None
        # tests
        self._results: list[_Test] = []
        self._current: _Test | None = None
        self._parsed = [0, 0, 0]      # FAIL records, ERROR records, Starting lines
        self._reported: Counts | None = None
        self._reported_modules: dict[str, Counts] = {}

    def feed(self, line: str, ref: int) -> None:
        line = line.rstrip("\r\n")
        if "\x1b" in line:
            line = ANSI.sub("", line)
        record = RECORD.match(line)
        if record is None:
            self._continuation(line)
            return
        stamp, level, database, logger, message = record.groups()
        self._start_record(level, logger, (message or "").rstrip(), database)
        if self._tests_wanted:
            self._test_line(stamp, level, logger, self._message, ref)

    # the verdict

    def verdict(self) -> Verdict:
        """ko when the modules did not load, Odoo logged an ERROR or a
        CRITICAL or printed a traceback, or it did not shut down by itself;
        warn when it logged a WARNING; ok otherwise."""
        ko: list[str] = []
        if not self._modules_loaded:
            ko.append('no "Modules loaded." line: the modules did not load')
        for level in ("ERROR", "CRITICAL"):
            if level in self._levels:
                ko.append(self._levels[level].sentence(f"{level} line"))
        if self._bare.count:
            exception = self._bare_exception.line if self._bare_exception else None
            ko.append(self._bare.sentence("traceback", "outside ERROR and CRITICAL lines", exception))
        if not self._shutdown:
            ko.append('no "Initiating shutdown" line: Odoo did not stop by itself (killed, e.g. by a limit)')
        warn = [self._levels["WARNING"].sentence("WARNING line")] if "WARNING" in self._levels else []
        return Verdict("ko" if ko else "warn" if warn else "ok", ko + warn)

    # the tests

    @property
    def results(self) -> list[TestResult]:
        """Every test seen, in the order Odoo ran them (a test Odoo retried
        once, with its last try)."""
        return [test.result(self._databases) for test in self._results]

    @property
    def reported(self) -> Counts | None:
        """Odoo's own totals ("N failed, M error(s) of K tests when loading
        database"; the last, had it loaded several), or None when it printed none."""
        return self._reported

    @property
    def reported_modules(self) -> dict[str, Counts]:
        """Odoo's count for each module whose at_install tests did not all
        pass (it says nothing of the others)."""
        return dict(self._reported_modules)

    @property
    def parsed(self) -> Counts:
        """The counts of the test lines seen, counted as Odoo counts."""
        failed, errors, tests = self._parsed
        return Counts(failed, errors, tests)

    def counts_differ(self) -> str | None:
        """A sentence when Odoo's totals and the test lines seen disagree
        (lines lost, or a format this reader does not know), else None."""
        if self._reported is None or self._reported == self.parsed:
            return None
        return f"Odoo reported {self._reported}, the log shows {self.parsed}"

    # records

    def _start_record(self, level: str, logger: str, message: str, database: str) -> None:
        self._level, self._message, self._where = level, message, f"{logger}: {message}"
        self._in_traceback = self._soft = False
        self._capture = self._tracking = None
        if level in ("WARNING", "ERROR", "CRITICAL"):
            self._levels.setdefault(level, _Seen()).add(self._where)
        if database != "?" and database not in self._databases and len(self._databases) < DATABASES_CAP:
            self._databases.append(database)
        if logger == "odoo.modules.loading" and message == "Modules loaded." and level == "INFO":
            self._modules_loaded = True
        elif logger == "odoo.service.server" and message == "Initiating shutdown":
            self._shutdown = True

    def _continuation(self, line: str) -> None:
        if self._capture is not None:
            self._capture.add(line)
        if line.startswith(TRACEBACK) and not self._in_traceback:
            self._in_traceback = True  # a chained exception's second traceback is the same one
            if self._level not in ("ERROR", "CRITICAL") and not self._soft:
                self._bare.add(self._where)
                if self._bare_exception is None:
                    self._bare_exception = self._tracking = _ExceptionLine()
        if self._tracking is not None:
            self._tracking.add(line)

    # test lines

    def _test_line(self, stamp: str, level: str, logger: str, message: str, ref: int) -> None:
        test_logger = TEST_LOGGER.match(logger)
        if test_logger:
            self._own_test_line(test_logger.group(1), stamp, level, message, ref)
        elif logger == "odoo.tests.suite":
            self._class_line(level, message, ref)
        elif logger == "odoo.modules.loading":
            if MODULE_LOADED.match(message):
                self._close_current(stamp)
            elif summary := MODULE_SUMMARY.match(message):
                self._reported_modules[summary.group(1)] = Counts(*map(int, summary.groups()[1:]))
        elif logger == "odoo.service.server" and POST_TESTS.match(message):
            self._close_current(stamp)
        elif logger == "odoo.tests.result" and (totals := TOTALS.match(message)):
            self._close_current(stamp)
            self._reported = Counts(*map(int, totals.groups()))

    def _own_test_line(self, module: str, stamp: str, level: str, message: str, ref: int) -> None:
        if starting := STARTING.match(message):
            self._start_test(module, starting.group(1), starting.group(2), stamp, ref)
        elif problem := PROBLEM.match(message):
            if level == "INFO":  # lowered by a try that Odoo retries (ODOO_TEST_FAILURE_RETRIES)
                self._soft = True
                return
            test = self._test_for(module, problem.group(2), ref)
            self._problem(test, problem.group(1), message, plain=problem.group(2) == test.name, ref=ref)
        elif (skipped := SKIPPED.match(message)) and not skipped.group(1).startswith("Subtest "):
            # a skipped subtest leaves its test's outcome alone
            test = self._test_for(module, skipped.group(1), ref)
            test.skip(skipped.group(2) or "")

    def _class_line(self, level: str, message: str, ref: int) -> None:
        """setUpClass and tearDownClass: one result each for the class."""
        if problem := PROBLEM.match(message):
            holder = HOLDER.match(problem.group(2))
            if level == "INFO":
                self._soft = True
            elif holder:
                test = self._add(_Test(holder.group(2), holder.group(3), holder.group(1), ref, None))
                self._problem(test, problem.group(1), message, plain=True, ref=ref)
        elif (skipped := SKIPPED.match(message)) and (holder := HOLDER.match(skipped.group(1))):
            self._add(_Test(holder.group(2), holder.group(3), holder.group(1), ref, None)).skip(skipped.group(2) or "")

    def _start_test(self, module: str, test_class: str, method: str, stamp: str, ref: int) -> None:
        self._close_current(stamp)
        self._parsed[2] += 1
        last = self._results[-1] if self._results else None
        if last is not None and (last.module, last.test_class, last.method) == (module, test_class, method):
            self._results.pop()  # Odoo runs it again: its last try is the result
        self._current = self._add(_Test(module, test_class, method, ref, _when(stamp)))

    def _close_current(self, stamp: str) -> None:
        if self._current is not None and self._current.started is not None:
            self._current.duration = round((_when(stamp) - self._current.started).total_seconds(), 3)
        self._current = None

    def _test_for(self, module: str, description: str, ref: int) -> _Test:
        """The running test a FAIL, ERROR or skip line is about (a subtest's is
        its test's), or a new entry when it names another one."""
        current = self._current
        sub = SUBTEST.match(description)
        name = f"{sub.group(1)}.{sub.group(2)}" if sub else description
        if current is not None and current.module == module and current.name == name:
            return current
        test_class, _, method = name.rpartition(".")
        return self._add(_Test(module, test_class or name, method, ref, None))

    def _problem(self, test: _Test, flavour: str, message: str, *, plain: bool, ref: int) -> None:
        self._parsed[0 if flavour == "FAIL" else 1] += 1
        self._capture = test.problem("fail" if flavour == "FAIL" else "error", ref, None if plain else message)

    def _add(self, test: _Test) -> _Test:
        self._results.append(test)
        return test


class _Seen:
    """How many lines of a kind, and the first (quoted in a reason)."""

    def __init__(self) -> None:
        self.count = 0
        self.first = ""

    def add(self, line: str) -> None:
        if not self.count:
            self.first = _quote(line)
        self.count += 1

    def sentence(self, noun: str, where: str = "", first: str | None = None) -> str:
        counted = f"{self.count} {noun}{'' if self.count == 1 else 's'}"
        return f"{counted}{' ' + where if where else ''}, first: {_quote(first) if first else self.first}"


class _Test:
    def __init__(self, module: str, test_class: str, method: str, ref: int, started: datetime | None) -> None:
        self.module, self.test_class, self.method, self.ref, self.started = module, test_class, method, ref, started
        self.name = f"{test_class}.{method}"
        self.outcome: Outcome = "pass"
        self.duration: float | None = None
        self.text: _Text | None = None
        self.reason: str | None = None

    def problem(self, outcome: Outcome, ref: int, header: str | None) -> _Text:
        """A FAIL or ERROR for this test: the text its traceback goes to. A
        second one (a cleanup's, a subtest's) follows the first under its
        own header; an error outweighs a failure."""
        text = self.text
        if text is None or self.outcome not in ("fail", "error"):
            self.outcome, self.ref, self.text = outcome, ref, (text := _Text())
        elif outcome == "error":
            self.outcome = "error"
        if text.size:
            text.separate()
        if header is not None or text.size:
            text.add(header or f"{'FAIL' if outcome == 'fail' else 'ERROR'}: {self.name}")
        return text

    def skip(self, reason: str) -> None:
        if self.outcome == "pass":
            self.outcome, self.reason = "skip", reason

    def result(self, databases: list[str]) -> TestResult:
        traceback = fingerprint_ = None
        if self.text is not None:
            traceback, fingerprint_ = self.text.rendered(databases)
        elif self.outcome == "skip":
            traceback = self.reason
        return TestResult(self.module, self.test_class, self.method, self.outcome, self.duration, traceback,
                          self.ref, fingerprint_)


class _Text:
    """A traceback's lines, capped: the head, and the tail (where the
    exception is), with how many lines between were left out."""

    def __init__(self) -> None:
        self.head: list[str] = []
        self.tail: deque[str] = deque()
        self.size = 0
        self.tail_size = 0
        self.left_out = 0
        self._rendered: tuple[int, str, str] | None = None

    def add(self, line: str) -> None:
        self._rendered = None
        line = line[:LINE_CAP].rstrip()
        if self.size + len(line) < TRACEBACK_CAP - TRACEBACK_TAIL and not self.tail:
            self.head.append(line)
            self.size += len(line) + 1
            return
        self.tail.append(line)
        self.tail_size += len(line) + 1
        while self.tail_size > TRACEBACK_TAIL and self.tail:
            self.tail_size -= len(self.tail.popleft()) + 1
            self.left_out += 1

    def separate(self) -> None:
        """One blank line between this part and the next."""
        while self.tail and not self.tail[-1]:
            self.tail.pop()
            self.tail_size -= 1
        while not self.tail and self.head and not self.head[-1]:
            self.head.pop()
            self.size -= 1
        self.add("")

    def rendered(self, databases: list[str]) -> tuple[str, str]:
        """The text and its fingerprint (the database names known so far taken out)."""
        if self._rendered is None or self._rendered[0] != len(databases):
            lines = self.head + ([f"… {self.left_out} lines left out …"] if self.left_out else []) + list(self.tail)
            text = "\n".join(lines).strip("\n").rstrip()
            self._rendered = (len(databases), text, fingerprint(text, databases))
        return self._rendered[1], self._rendered[2]


class _ExceptionLine:
    """Follows a traceback line by line for its exception line: the first
    line at the margin after the last frame (a chained exception's last)."""

    def __init__(self) -> None:
        self.line: str | None = None
        self._after_frame = False

    def add(self, line: str) -> None:
        if line.startswith("  File "):
            self._after_frame = True
        elif self._after_frame and line.strip() and not line[0].isspace():
            self.line, self._after_frame = line.strip(), False


def exception_line(traceback: str) -> str:
    """The line that says what was raised (the last line when none does)."""
    follower = _ExceptionLine()
    for line in traceback.splitlines():
        follower.add(line)
    if follower.line:
        return follower.line
    lines = [line.strip() for line in traceback.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def read_log(lines: Iterable[str], *, tests: bool = True) -> OdooLog:
    """A whole log read at once, each line's ref its number (from 1)."""
    log = OdooLog(tests=tests)
    for number, line in enumerate(lines, 1):
        log.feed(line, number)
    return log


# fingerprints

FINGERPRINT_RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^[ \t]*[\^~]+[ \t]*$", re.M), ""),  # Python 3.11's carets: not there on every Python
    (re.compile(r"\d{4}-\d\d-\d\d(?:[ T]\d\d:\d\d(?::\d\d(?:[.,]\d+)?)?)?"), "<time>"),
    (re.compile(r'File "(?:[^"]*[\\/])?([^"\\/]*)", line \d+'), r'File "\1"'),  # a frame: its file's base name
    (re.compile(r"(?<![\w.~])(?:~|\.\.?)?(?:/[^\s\"'/:,()\[\]<>]+)+/([^\s\"'/:,()\[\]<>]*)"), r"\1"),  # a path
    (re.compile(r"0x[0-9a-fA-F]+"), "0x?"),  # memory addresses
    (re.compile(r"\b[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}\b"), "<uuid>"),
    (re.compile(r"(?<![\w-])(?=[0-9a-f]*\d)(?=[0-9]*[a-f])[0-9a-f]{7,}(?![\w-])"), "<hex>"),  # hashes, hex ids
    (re.compile(r"""(['"])(?=[\w-]*\d)(?=[\w-]*[A-Za-z])[\w-]{16,}\1"""), r"\1<id>\1"),  # quoted tokens, ids
    (re.compile(r"(?<![A-Za-z0-9])\d+(?:\.\d+)*(?![A-Za-z0-9])"), "N"),  # numbers, record ids, line numbers
    (re.compile(r"[ \t]+$", re.M), ""),
]


def normalised(traceback: str, databases: Iterable[str] = ()) -> str:
    """A traceback with what changes from build to build taken out: times,
    paths (a file keeps its base name, a frame loses its line number),
    addresses, hex and quoted ids, numbers, and the database names given."""
    text = traceback
    for name in sorted(set(databases), key=len, reverse=True):
        text = re.sub(rf"(?<![\w.-]){re.escape(name)}(?![\w-]|\.\w)", "<db>", text)
    for pattern, replacement in FINGERPRINT_RULES:
        text = pattern.sub(replacement, text)
    return "\n".join(line for line in text.splitlines() if line.strip())


def fingerprint(traceback: str, databases: Iterable[str] = ()) -> str:
    """What says that two failures are the same one: 16 hex digits of the
    sha256 of the normalised traceback."""
    return hashlib.sha256(normalised(traceback, databases).encode()).hexdigest()[:16]


# JUnit XML

XML_INVALID = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")  # XML 1.0 forbids these


def junit_xml(results: Iterable[TestResult], suite: str) -> bytes:
    """The results as JUnit XML, which CI tools and IDEs read: a testsuite
    per module, a testcase per test (classname module.Class)."""
    modules: dict[str, list[TestResult]] = {}
    for result in results:
        modules.setdefault(result.module, []).append(result)
    root = ET.Element("testsuites", name=_xml(suite))
    for module, tests in modules.items():
        element = ET.SubElement(root, "testsuite", name=_xml(module))
        for test in tests:
            _testcase(element, test)
        _count(element, tests)
    _count(root, [test for tests in modules.values() for test in tests])
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def _testcase(parent: ET.Element, test: TestResult) -> None:
    case = ET.SubElement(parent, "testcase", classname=_xml(f"{test.module}.{test.test_class}"),
                         name=_xml(test.method))
    if test.duration is not None:
        case.set("time", f"{test.duration:.3f}")
    if test.outcome in ("fail", "error"):
        traceback = test.traceback or ""
        message = exception_line(traceback)
        problem = ET.SubElement(case, "failure" if test.outcome == "fail" else "error", message=_xml(message))
        kind = re.match(r"([\w.]+)(?::|$)", message)
        if kind:
            problem.set("type", kind.group(1))
        problem.text = _xml(traceback)
    elif test.outcome == "skip":
        ET.SubElement(case, "skipped", message=_xml(test.traceback or ""))


def _count(element: ET.Element, tests: list[TestResult]) -> None:
    element.set("tests", str(len(tests)))
    for attribute, outcome in (("failures", "fail"), ("errors", "error"), ("skipped", "skip")):
        element.set(attribute, str(sum(test.outcome == outcome for test in tests)))
    element.set("time", f"{sum(test.duration or 0.0 for test in tests):.3f}")


def _xml(text: str) -> str:
    return XML_INVALID.sub("\ufffd", text)


def _quote(line: str) -> str:
    line = line.strip()
    return line if len(line) <= QUOTE_CAP else line[:QUOTE_CAP - 1] + "…"


def _when(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace(",", "."))
