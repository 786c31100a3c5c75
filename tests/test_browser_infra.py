"""The browser tests' own machinery, on real pages served over HTTP: Chromium
runs, clicks run JavaScript, screenshots are written, asyncio.run() still works
between Playwright calls and listeners can be registered there, and the
console's vendored htmx, its SSE extension and Pico load and work in the browser."""

from __future__ import annotations

import asyncio
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from importlib.resources import as_file, files
from pathlib import Path

from playwright.sync_api import expect

CLICK_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>infra</title></head>
<body>
  <h1 id="out">waiting</h1>
  <button id="go" onclick="document.getElementById('out').textContent = 'clicked'">Go</button>
</body></html>
"""


class Quiet(SimpleHTTPRequestHandler):
    extensions_map = {**SimpleHTTPRequestHandler.extensions_map, ".sse": "text/event-stream"}

    def log_message(self, format, *args) -> None:
        pass


@contextmanager
def serve(folder: Path) -> Iterator[str]:
    """Serve `folder` over HTTP on a free local port; yields the base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(folder)))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    return struct.unpack(">II", data[16:24])


def test_click_changes_text_and_shoot_saves_both_sizes(page, shoot, screenshots, tmp_path):
    (tmp_path / "index.html").write_text(CLICK_PAGE)
    with serve(tmp_path) as base:
        page.goto(f"{base}/index.html")
        expect(page.locator("#out")).to_have_text("waiting")
        page.click("#go")
        expect(page.locator("#out")).to_have_text("clicked")
        desktop, phone = shoot(page, "browser-infra-click")

    assert (desktop, phone) == (screenshots / "browser-infra-click-desktop.png",
                                screenshots / "browser-infra-click-phone.png")
    assert desktop.stat().st_size > 0 and phone.stat().st_size > 0
    assert png_size(desktop)[0] == 1280 and png_size(desktop)[1] >= 800
    assert png_size(phone)[0] == 375 and png_size(phone)[1] >= 740
    assert page.viewport_size == {"width": 1280, "height": 800}  # restored


def test_asyncio_run_works_between_playwright_calls(page):
    async def answer() -> int:
        await asyncio.sleep(0)
        return 42

    page.set_content("<p id='n'>0</p>")
    assert asyncio.run(answer()) == 42
    page.evaluate("document.getElementById('n').textContent = '1'")
    assert asyncio.run(answer()) == 42
    expect(page.locator("#n")).to_have_text("1")


def test_listeners_register_between_playwright_calls(page):
    said = []
    page.on("console", lambda message: said.append(message.text))  # subscribes from a task of Playwright's loop
    page.evaluate("console.log('hello')")
    expect(page.locator("body")).to_be_attached()
    assert said == ["hello"]
    assert asyncio.run(asyncio.sleep(0, 42)) == 42


VENDOR_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>vendor</title>
  <link rel="stylesheet" href="/vendor/pico.min.css">
  <script src="/vendor/htmx.min.js"></script>
  <script src="/vendor/htmx-ext-sse.js"></script>
</head>
<body><main class="container">
  <button id="load" hx-get="/fragment.html" hx-target="#target">Load</button>
  <div id="target">empty</div>
  <div hx-ext="sse" sse-connect="/events.sse"><div id="live" sse-swap="message">quiet</div></div>
</main></body></html>
"""


def test_vendored_htmx_sse_and_pico_work_in_the_browser(page, shoot, tmp_path):
    vendor = files("odooops") / "console" / "static" / "vendor"
    with as_file(vendor) as vendor_dir:
        site = tmp_path / "site"
        site.mkdir()
        (site / "vendor").symlink_to(vendor_dir, target_is_directory=True)
        (site / "index.html").write_text(VENDOR_PAGE)
        (site / "fragment.html").write_text("<strong id='swapped'>from the server</strong>")
        (site / "events.sse").write_text("event: message\ndata: <em id='pushed'>pushed</em>\n\n")
        with serve(site) as base:
            page.goto(f"{base}/index.html")
            assert page.evaluate("htmx.version").startswith("2.")
            page.click("#load")
            expect(page.locator("#target #swapped")).to_have_text("from the server")
            expect(page.locator("#live #pushed")).to_have_text("pushed")
            # Pico styles the page: its container is centred with a max width
            assert page.evaluate("getComputedStyle(document.querySelector('main')).maxWidth") != "none"
            shoot(page, "browser-infra-vendor")
