"""A caught mail's HTML as the console and the API show it: nothing that
runs, no remote content unless asked, inline images from the mail itself."""

from __future__ import annotations

import pytest

from odooops.mail.message import parse
from odooops.mail.sanitize import framed, inline_images, policy, sanitize


@pytest.mark.parametrize("hostile", [
    "<script>alert(1)</script>", "<SCRIPT SRC=https://evil.test/x.js></SCRIPT>",
    "<img src=x onerror=alert(1)>", "<body onload=alert(1)>", "<div onmouseover='alert(1)'>x</div>",
    "<a href='javascript:alert(1)'>x</a>", "<a href=' JaVaScRiPt:alert(1)'>x</a>",
    "<a href='data:text/html,<script>alert(1)</script>'>x</a>", "<a href='vbscript:x'>x</a>",
    "<iframe src='https://evil.test'></iframe>", "<object data='x.swf'></object>", "<embed src='x.swf'>",
    "<form action='https://evil.test'><input name=p></form>", "<svg><script>alert(1)</script></svg>",
    "<math><mtext><script>alert(1)</script></mtext></math>", "<meta http-equiv=refresh content='0;url=x'>",
    "<link rel=stylesheet href='https://evil.test/x.css'>", "<base href='https://evil.test/'>",
    "<style>@import 'https://evil.test/x.css'</style>", "<p style='background:url(https://evil.test/t.gif)'>x</p>",
    "<table background='https://evil.test/t.gif'><tr><td>x</td></tr></table>",
    "<img src='https://evil.test/t.gif'>", "<img srcset='https://evil.test/t.gif 1x'>",
    "<img src='/api/v1/tokens'>", "<a href='/logout'>x</a>",
])
def test_nothing_runs_and_nothing_is_fetched(hostile):
    clean = sanitize(hostile).lower()
    for banned in ("<script", "onerror", "onload", "onmouseover", "javascript:", "vbscript:", "data:text",
                   "<iframe", "<object", "<embed", "<form", "<input", "<meta", "<link", "<base", "<style",
                   "evil.test", "url(", "/api/", "/logout", "<svg", "<math"):
        assert banned not in clean, (hostile, clean)


def test_remote_images_only_when_asked():
    mail = "<p>Hi<img src='https://shop.test/logo.png' alt='logo'></p>"
    assert "shop.test" not in sanitize(mail)
    assert 'src="https://shop.test/logo.png"' in sanitize(mail, remote=True)
    assert "<script" not in sanitize(mail + "<script>x</script>", remote=True)
    assert "img-src data: cid:;" in policy(False) and "http: https:" in policy(True)
    assert "script-src" not in policy(True) and policy(True).startswith("default-src 'none'")


def test_links_styles_and_layout_are_kept_safely():
    clean = sanitize("<p style='color: red; position: fixed; background-image: url(x)'>"
                     "<a href='https://shop.test/order/42'>Your order</a> <a href='mailto:a@b.test'>us</a></p>"
                     "<table width='100%' cellpadding='4'><tr><td align='right'>12 €</td></tr></table>")
    assert "color:red" in clean.replace(" ", "")
    assert "position" not in clean and "url(" not in clean
    assert 'href="https://shop.test/order/42"' in clean and 'rel="noopener noreferrer"' in clean
    assert 'href="mailto:a@b.test"' in clean and 'cellpadding="4"' in clean and 'align="right"' in clean


def test_inline_images_come_from_the_mail_itself():
    raw = (b"Subject: x\r\nMIME-Version: 1.0\r\nContent-Type: multipart/related; boundary=r\r\n\r\n"
           b"--r\r\nContent-Type: text/html\r\n\r\n<p><img src=\"cid:logo@shop\"><img src=\"cid:missing\"></p>\r\n"
           b"--r\r\nContent-Type: image/png\r\nContent-ID: <logo@shop>\r\nContent-Transfer-Encoding: base64\r\n\r\n"
           b"iVBORw0KGgo=\r\n--r--\r\n")
    message = parse(raw)
    inline = inline_images(message.parts)
    assert inline == {"logo@shop": "data:image/png;base64,iVBORw0KGgo="}
    clean = sanitize(message.html or "", inline=inline)
    assert '<img src="data:image/png;base64,iVBORw0KGgo=">' in clean and "cid:" not in clean
    assert "<img>" in clean  # the missing one is dropped
    document = framed(message.html or "", inline=inline)
    assert document.startswith("<!doctype html>") and 'http-equiv="Content-Security-Policy"' in document


def test_a_malformed_mail_is_read_as_far_as_it_goes():
    for raw in (b"", b"\xff\xfe garbage", b"Subject: =?utf-8?q?broken\r\n\r\nbody",
                b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nno end"):
        message = parse(raw)
        assert isinstance(message.subject, str) and isinstance(message.parts, list)
