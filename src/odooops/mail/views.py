"""A caught mail as the API and the console show it (both import this):
the row, and its page with the HTML sanitized."""

from __future__ import annotations

from typing import Any

from odooops.mail.sanitize import inline_images, sanitize
from odooops.managers.mails import Mail, MailRow


def summary(row: MailRow) -> dict[str, Any]:
    """A mail of a list: who, to whom, what, when, how big, its attachments."""
    shown = {k: v for k, v in row.items() if k not in ("project_id",)}
    shown["attachments"] = [{"index": n, **a} for n, a in enumerate(row["attachments"])]
    return shown


def detail(found: Mail, *, remote: bool = False) -> dict[str, Any]:
    """A mail's page: its headers, text, sanitized HTML (remote content only
    when asked; `remote_content` says whether there was any to leave out) and
    every part besides its bodies, by index."""
    message, html, remote_content = found.message, None, False
    if message.html is not None:
        inline = inline_images(message.parts)
        kept, cut = (sanitize(message.html, remote=r, inline=inline) for r in (True, False))
        html, remote_content = kept if remote else cut, kept != cut
    return {**summary(found.row),
            "headers": [{"name": k, "value": v} for k, v in message.headers],
            "text": message.text, "html": html, "remote_content": remote_content, "remote_shown": remote,
            "attachments": [{"index": n, **p.summary(), "content_id": p.content_id}
                            for n, p in enumerate(message.parts)]}
