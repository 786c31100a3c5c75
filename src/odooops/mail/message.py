"""What a caught mail says, read from its raw bytes with the standard
library's parser (policy.default): the summary recorded when it arrives,
and the parts its page shows. A malformed mail is read as far as it goes:
the catcher takes whatever Odoo sends."""

from __future__ import annotations

from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage, Message
from typing import TypedDict

SUBJECT_MAX = 998  # an RFC 5322 line


class Attachment(TypedDict):
    filename: str
    content_type: str
    size: int


@dataclass
class Part:
    filename: str
    content_type: str
    content_id: str | None
    data: bytes

    def summary(self) -> Attachment:
        return Attachment(filename=self.filename, content_type=self.content_type, size=len(self.data))


@dataclass
class Parsed:
    headers: list[tuple[str, str]]
    subject: str
    message_id: str | None
    text: str | None
    html: str | None
    parts: list[Part] = field(default_factory=list)


def parse(raw: bytes) -> Parsed:
    msg = message_from_bytes(raw, policy=policy.default)
    text_part = _body(msg, "plain")
    html_part = _body(msg, "html")
    parts = [_part(p, n) for n, p in enumerate(_leaves(msg, (text_part, html_part)))]
    return Parsed(headers=[(k, _header(v)) for k, v in msg.items()],
                  subject=_header(msg.get("subject", ""))[:SUBJECT_MAX],
                  message_id=_header(msg.get("message-id", "")).strip() or None,
                  text=_content(text_part), html=_content(html_part), parts=parts)


def _header(value: object) -> str:
    return " ".join(str(value).split())


def _body(msg: EmailMessage, kind: str) -> Message | None:
    try:
        return msg.get_body(preferencelist=(kind,))
    except (ValueError, KeyError, LookupError):
        return None


def _leaves(msg: EmailMessage, bodies: tuple[Message | None, ...]):
    """Every part that holds content other than the text and HTML bodies:
    attachments and inline images, in the mail's order (their index is their
    address)."""
    for part in msg.walk():
        if not part.is_multipart() and not any(part is b for b in bodies):
            yield part


def _part(part: Message, n: int) -> Part:
    try:
        data = part.get_payload(decode=True) or b""
    except (ValueError, LookupError):
        data = b""
    if not isinstance(data, bytes):
        data = str(data).encode()
    cid = part.get("content-id")
    return Part(filename=_header(part.get_filename() or f"part-{n + 1}"), content_type=part.get_content_type(),
                content_id=str(cid).strip().strip("<>") if cid else None, data=data)


def _content(part: Message | None) -> str | None:
    if part is None:
        return None
    try:
        content = part.get_content()  # type: ignore[attr-defined]
    except (LookupError, ValueError, AttributeError):
        payload = part.get_payload(decode=True)
        content = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else None
    return content if isinstance(content, str) else None
