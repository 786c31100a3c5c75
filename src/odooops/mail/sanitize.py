"""A caught mail's HTML made safe to show (nh3, the Ammonia sanitizer): no
script, no event handler, no form, frame or object, links only to http(s),
mailto and tel, styles cut to properties that load nothing; remote content
(images by URL) only when the reader asks for it. Inline images (cid:) become
data: URLs of the mail's own parts, or go.

The result is shown in a sandboxed frame (`framed`) whose own
Content-Security-Policy forbids scripts and, unless asked, remote images:
the sanitizer is the first wall, the frame the second."""

from __future__ import annotations

import base64
import functools
from collections.abc import Mapping
from html import escape

import nh3

LINKS = ("http:", "https:", "mailto:", "tel:", "#")
IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp")
# CSS properties that cannot fetch anything (no url(): background, border-image, list-style, cursor are out)
STYLES = frozenset({
    "color", "background-color", "font", "font-family", "font-size", "font-style", "font-weight", "line-height",
    "letter-spacing", "text-align", "text-decoration", "text-transform", "text-indent", "vertical-align",
    "white-space", "word-break", "width", "min-width", "max-width", "height", "min-height", "max-height",
    "margin", "margin-top", "margin-right", "margin-bottom", "margin-left",
    "padding", "padding-top", "padding-right", "padding-bottom", "padding-left",
    "border", "border-top", "border-right", "border-bottom", "border-left", "border-color", "border-style",
    "border-width", "border-radius", "border-collapse", "border-spacing", "display", "float", "clear",
})
TABLE = {"width", "height", "align", "valign", "bgcolor", "border", "cellpadding", "cellspacing"}


def _attributes() -> dict[str, set[str]]:
    allowed = {tag: set(names) for tag, names in nh3.ALLOWED_ATTRIBUTES.items()}
    allowed["*"] = {"style", "title", "lang", "dir"}
    for tag in ("table", "tr", "td", "th", "tbody", "thead", "tfoot"):
        allowed[tag] = allowed.get(tag, set()) | TABLE
    return allowed


ATTRIBUTES = _attributes()


def data_url(content_type: str, data: bytes) -> str:
    return f"data:{content_type};base64,{base64.b64encode(data).decode()}"


def inline_images(parts) -> dict[str, str]:
    """cid → data: URL, for the parts that are images with a Content-ID."""
    return {p.content_id: data_url(p.content_type, p.data) for p in parts
            if p.content_id and p.content_type in IMAGE_TYPES}


def _filter(remote: bool, inline: Mapping[str, str], tag: str, attribute: str, value: str) -> str | None:
    url = value.strip()
    lowered = url.lower()
    if attribute == "href":
        return url if lowered.startswith(LINKS) else None
    if attribute == "src":
        if lowered.startswith("cid:"):
            return inline.get(url[4:].strip("<>"))
        if lowered.startswith(tuple(f"data:{t};" for t in IMAGE_TYPES)):
            return url
        if remote and lowered.startswith(("http:", "https:")):
            return url
        return None
    if attribute == "cite":
        return url if lowered.startswith(("http:", "https:")) else None
    return value


def sanitize(html: str, *, remote: bool = False, inline: Mapping[str, str] | None = None) -> str:
    """The HTML without anything that runs, and without remote content unless `remote`."""
    return nh3.clean(html, attributes=ATTRIBUTES, clean_content_tags={"script", "style", "title", "head"},
                     attribute_filter=functools.partial(_filter, remote, inline or {}),
                     url_schemes={"http", "https", "mailto", "tel", "cid", "data"},
                     filter_style_properties=set(STYLES), strip_comments=True)


def policy(remote: bool) -> str:
    """The frame's Content-Security-Policy: no script, no connection; images
    inline only, unless remote content was asked for."""
    images = "data: cid: http: https:" if remote else "data: cid:"
    return (f"default-src 'none'; img-src {images}; style-src 'unsafe-inline'; font-src data:; "
            "form-action 'none'; base-uri 'none'")


def framed(html: str, *, remote: bool = False, inline: Mapping[str, str] | None = None) -> str:
    """A whole document for an `<iframe sandbox srcdoc>`: the sanitized mail
    under its own policy."""
    return ("<!doctype html><html><head><meta charset=\"utf-8\">"
            f"<meta http-equiv=\"Content-Security-Policy\" content=\"{escape(policy(remote), quote=False)}\">"  # no "
            "<style>body{margin:.5rem;font-family:system-ui,sans-serif;color:#222;background:#fff}"
            "img{max-width:100%;height:auto}</style></head><body>"
            f"{sanitize(html, remote=remote, inline=inline)}</body></html>")
