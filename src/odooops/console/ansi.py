"""Terminal colours in log lines, as HTML: SGR codes become classes (styled
by log.css, with a palette for light and one for dark pages), every other
escape sequence and control character is dropped, and all text is escaped.

Each log line is converted on its own, starting from no style: a line is
what a reader links to, filters and sees streamed in, so no colour may leak
from one line into the next. That is also why this is not ansi2html (which
converts whole documents, carries state between calls and is LGPL): the few
codes a build log uses fit in a page of code."""

from __future__ import annotations

import re
from html import escape

from markupsafe import Markup

# CSI (ESC [ ... final byte), OSC (ESC ] ... BEL or ESC \), and two-byte escapes
_ESCAPE = re.compile(r"\x1b\[([0-?]*)[ -/]*([@-~])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]?")
_SGR_PARAMS = re.compile(r"[0-9;:]*")
# C0 controls and DEL, but not tab or newline
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")

# code -> (slot, value): a later code replaces what an earlier one set in its slot
_SETS = {1: ("weight", "ansi-1"), 2: ("weight", "ansi-2"), 3: ("italic", "ansi-3"), 4: ("underline", "ansi-4"),
         22: ("weight", None), 23: ("italic", None), 24: ("underline", None), 39: ("fg", None), 49: ("bg", None)}
_SETS.update({c: ("fg", f"ansi-{c}") for c in (*range(30, 38), *range(90, 98))})
_SETS.update({c: ("bg", f"ansi-{c}") for c in (*range(40, 48), *range(100, 108))})
_SLOTS = ("weight", "italic", "underline", "fg", "bg")


def _apply(style: dict, params: str) -> None:
    """Change `style` by one SGR sequence's parameters ('' means reset)."""
    codes = [int(p) if p.isdigit() else 0 for p in params.replace(":", ";").split(";")] if params else [0]
    i = 0
    while i < len(codes):
        code = codes[i]
        if code == 0:
            style.clear()
        elif code in (38, 48, 58):  # 256-colour and true-colour: not mapped, but their arguments are no codes
            i += 2 if codes[i + 1:i + 2] == [5] else 4 if codes[i + 1:i + 2] == [2] else 0
        elif code in _SETS:
            slot, value = _SETS[code]
            style[slot] = value
        i += 1


def _classes(style: dict) -> str:
    return " ".join(style[s] for s in _SLOTS if style.get(s))


def to_html(text: str) -> Markup:
    """One log line as safe HTML: coloured runs in `<span class="ansi-…">`."""
    if "\x1b" not in text:
        return Markup(escape(_CONTROL.sub("", text), quote=False))
    out: list[str] = []
    style: dict = {}
    classes, at = "", 0
    for match in _ESCAPE.finditer(text):
        if match.start() > at:
            out.append(_wrap(text[at:match.start()], classes))
        at = match.end()
        if match.group(2) == "m" and _SGR_PARAMS.fullmatch(match.group(1)):
            _apply(style, match.group(1))
            classes = _classes(style)
    if at < len(text):
        out.append(_wrap(text[at:], classes))
    return Markup("".join(out))


def _wrap(chunk: str, classes: str) -> str:
    chunk = escape(_CONTROL.sub("", chunk), quote=False)
    if not chunk:
        return ""
    return f'<span class="{classes}">{chunk}</span>' if classes else chunk


def strip(text: str) -> str:
    """The line as plain text: no escape sequences, no control characters."""
    if "\x1b" in text:
        text = _ESCAPE.sub("", text)
    return _CONTROL.sub("", text)
