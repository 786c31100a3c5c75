"""The router's own pages, for when an environment cannot answer for itself.

Tiny and self-contained: a page shown because an environment is not there
cannot fetch a stylesheet from it. Everything put in is escaped: hostnames
come from the request and branch names from git."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

Headers = list[tuple[bytes, bytes]]
RETRY_SECONDS = 2
MAINTENANCE_RETRY_SECONDS = 5

TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">{refresh}
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;color:#222;max-width:34em;margin:12vh auto;padding:0 1em}}
h1{{font-size:1.4em}}p{{color:#555}}</style></head>
<body><h1>{title}</h1><p>{message}</p></body></html>
"""


@dataclass(frozen=True)
class Page:
    status: int
    title: str
    message: str
    retry: int = 0  # seconds; a state that passes: the browser reloads, clients are told when to try again

    def body(self) -> bytes:
        refresh = f'\n<meta http-equiv="refresh" content="{self.retry}">' if self.retry else ""
        return TEMPLATE.format(refresh=refresh, title=escape(self.title), message=escape(self.message)).encode()

    def headers(self, length: int) -> Headers:
        headers = [(b"content-type", b"text/html; charset=utf-8"), (b"content-length", str(length).encode()),
                   (b"cache-control", b"no-store")]
        return [*headers, (b"retry-after", str(self.retry).encode())] if self.retry else headers


def no_environment(host: str) -> Page:
    return Page(404, f"No environment at {host}", "No branch of any project is served at this address.")


def lookup_failed(host: str) -> Page:
    return Page(503, f"{host} cannot be reached just now", "OdooOps could not look this address up. Try again "
                "in a moment.", retry=RETRY_SECONDS)


def waking(branch: str) -> Page:
    return Page(503, f"Waking up {branch}…", "This environment was asleep and is starting; this page reloads "
                "by itself.", retry=RETRY_SECONDS)


def maintenance(branch: str) -> Page:
    return Page(503, f"{branch} is being updated", "Its database is being updated, or copied for staging. It "
                "will be back in a moment; this page reloads by itself.", retry=MAINTENANCE_RETRY_SECONDS)


def stopped(branch: str) -> Page:
    return Page(503, f"{branch} is stopped", "This environment is not running. A project admin can start it "
                "from the console.")


def crashed(branch: str) -> Page:
    return Page(503, f"{branch} crashed", "Its Odoo server stopped with an error. See its log in the console.")


def not_answering(branch: str) -> Page:
    return Page(502, f"{branch} is not answering", "Its Odoo server is running but did not take the request. "
                "Try again in a moment; if it goes on, see its log in the console.")


def link_expired() -> Page:
    return Page(403, "This link was used or has expired", "A Connect link works once, for a short while. Ask "
                "the console for a new one.")
