"""Browser tests: Debian's Chromium driven by Playwright's sync API.

Fixtures (see each one's docstring):

    browser      one headless Chromium per test process (so one per xdist worker)
    page         a fresh browser context and page for each test, closed after it
    screenshots  the folder of this test run's screenshots (Path)
    shoot        shoot(page, name) -> (desktop_png, phone_png)

The browser is the system's `chromium` (`./scripts/test` installs Debian's
package), never one that Playwright downloads. Screenshots go to
$ODOOOPS_SCREENSHOTS, or to test-screenshots/<UTC time of the run>/ in the
repository; the terminal summary says where. A test whose page fixture fails
also leaves `<test name>-failed.png` there.

Sync Playwright and asyncio.run() in one test: between two calls the sync API
leaves its own event loop marked as running in the thread, so any later
asyncio.run() (the tests' `call()`, fixtures that seed data) would fail with
"cannot be called from a running event loop", in this test and in every later
test of the same worker. `_loop_only_inside_calls` marks it running only while a
Playwright call waits, and while page.on() and the like register a listener (the
subscription to the event goes to the driver from a task).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import greenlet
import pytest
from helpers import PASSWORD
from playwright._impl import _sync_base
from playwright.sync_api import Browser, Page, expect, sync_playwright

AXE = Path(__file__).parent / "vendor" / "axe.min.js"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 740}

SCREENSHOTS = pytest.StashKey[Path]()
REPORT = pytest.StashKey[pytest.TestReport]()
WORKER_KEY = "odooops_screenshots"


def find_chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


# --- where screenshots go: one folder for the whole run, shared by xdist workers


def pytest_configure(config: pytest.Config) -> None:
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None and WORKER_KEY in workerinput:
        folder = Path(workerinput[WORKER_KEY])
    elif os.environ.get("ODOOOPS_SCREENSHOTS"):
        folder = Path(os.environ["ODOOOPS_SCREENSHOTS"]).absolute()
    else:
        folder = config.rootpath / "test-screenshots" / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    config.stash[SCREENSHOTS] = folder


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:
    """xdist: every worker writes to the folder the controller chose."""
    node.workerinput[WORKER_KEY] = str(node.config.stash[SCREENSHOTS])


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    folder = config.stash.get(SCREENSHOTS, None)
    if folder is not None and folder.is_dir() and any(folder.iterdir()):
        terminalreporter.write_sep("-", "screenshots")
        terminalreporter.write_line(str(folder))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call):
    report = yield
    if report.when == "call":
        item.stash[REPORT] = report
    return report


# --- the browser


@contextmanager
def _loop_only_inside_calls() -> Iterator[None]:
    """Keep Playwright's loop marked as running only during its own calls (see
    the module docstring), so asyncio.run() works between them."""
    original = _sync_base.wait_for_future

    def wait_for_future(loop, dispatcher_fiber, future) -> None:
        __tracebackhide__ = True
        asyncio._set_running_loop(loop)  # the dispatcher resumes inside the loop
        try:
            original(loop, dispatcher_fiber, future)
        finally:
            # the test's own greenlet; callbacks run in greenlets inside the loop
            if greenlet.getcurrent().parent is None:
                asyncio._set_running_loop(None)

    def inside_loop(method):
        def register(self, event, f) -> None:
            before = asyncio._get_running_loop()
            asyncio._set_running_loop(self._loop)
            try:
                method(self, event, f)
            finally:
                asyncio._set_running_loop(before)

        return register

    listeners = {name: getattr(_sync_base.SyncBase, name) for name in ("on", "once", "remove_listener")}
    _sync_base.wait_for_future = wait_for_future
    for name, method in listeners.items():
        setattr(_sync_base.SyncBase, name, inside_loop(method))
    try:
        yield
    finally:
        _sync_base.wait_for_future = original
        for name, method in listeners.items():
            setattr(_sync_base.SyncBase, name, method)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Headless Chromium for this test process (one per xdist worker)."""
    executable = find_chromium()
    if executable is None:
        pytest.fail("Chromium is not installed: ./scripts/test installs it from Debian's packages "
                    "(or: apt-get install chromium).", pytrace=False)
    with _loop_only_inside_calls():
        manager = sync_playwright()
        playwright = manager.start()
        loop = asyncio._get_running_loop()
        asyncio._set_running_loop(None)
        try:
            args = ["--no-sandbox"] if os.geteuid() == 0 else []
            chromium = playwright.chromium.launch(executable_path=executable, headless=True, args=args)
            yield chromium
            chromium.close()
        finally:
            asyncio._set_running_loop(loop)  # stopping resumes the dispatcher inside the loop
            playwright.stop()
            asyncio._set_running_loop(None)


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest, screenshots: Path) -> Iterator[Page]:
    """A page in a fresh browser context (no cookies or storage from other tests)."""
    context = browser.new_context(viewport=DESKTOP)
    # what a page's Content-Security-Policy blocks, for `accessible` to check: the console needs nothing of the kind
    context.add_init_script("window.refusedByCsp = []; document.addEventListener('securitypolicyviolation',"
                            " e => window.refusedByCsp.push(e.violatedDirective + ' ' + e.blockedURI));")
    page = context.new_page()
    yield page
    report = request.node.stash.get(REPORT, None)
    if report is not None and report.failed and not page.is_closed():
        name = request.node.name.replace("/", "_")
        page.screenshot(path=screenshots / f"{name}-failed.png", full_page=True)
    context.close()


@pytest.fixture(scope="session")
def screenshots(pytestconfig: pytest.Config) -> Path:
    """This run's screenshot folder (created on first use)."""
    folder = pytestconfig.stash[SCREENSHOTS]
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def shoot(screenshots: Path) -> Callable[[Page, str], tuple[Path, Path]]:
    """shoot(page, name) saves <name>-desktop.png (1280x800) and <name>-phone.png
    (375x740), both full page, restores the page's viewport and returns the two paths."""

    def shoot(page: Page, name: str) -> tuple[Path, Path]:
        before = page.viewport_size
        paths = []
        for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
            page.set_viewport_size(size)
            path = screenshots / f"{name}-{label}.png"
            page.screenshot(path=path, full_page=True)
            paths.append(path)
        if before is not None:
            page.set_viewport_size(before)
        return paths[0], paths[1]

    return shoot


# --- what the console's browser tests share


def accessible(page: Page) -> None:
    """No axe-core violation of WCAG 2 A/AA on the page, light and dark (and
    nothing the page's Content-Security-Policy had to block)."""
    assert page.evaluate("window.refusedByCsp || []") == [], page.url
    if not page.evaluate("typeof axe !== 'undefined'"):
        # evaluated, not added as a <script>: the console's Content-Security-Policy refuses those
        page.evaluate(AXE.read_text())
        # colours fade for 0.2 s when the scheme changes: judge the final ones
        page.evaluate("""() => { const still = new CSSStyleSheet();
            still.replaceSync('*, *::before, *::after { transition: none !important; }');
            document.adoptedStyleSheets = [...document.adoptedStyleSheets, still]; }""")
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        found = page.evaluate("""async () => (await axe.run(document, {
            runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})).violations
            .map(v => ({id: v.id, impact: v.impact, help: v.help,
                        nodes: v.nodes.slice(0, 3).map(n => n.target.join(' ') + ': ' + n.failureSummary)}))""")
        assert not found, f"{page.url} ({scheme}):\n" + json.dumps(found, indent=1)
    page.emulate_media(color_scheme="light")


def sign_in(page: Page, base: str, email: str) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Projects", exact=True)).to_be_visible()


def fits_a_phone(page: Page) -> None:
    """Nothing wider than a 375 px screen: no sideways scrolling."""
    before = page.viewport_size
    page.set_viewport_size(PHONE)
    try:
        wide = page.evaluate("""() => [...document.querySelectorAll('body *')]
            .filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
            .filter(e => !e.closest('pre, .log-frame, table.rows'))
            .slice(0, 5).map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + '.' + e.className)""")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"] and not wide, f"{page.url}: {width} px wide at 375 px: {wide}"
    finally:
        if before is not None:
            page.set_viewport_size(before)

