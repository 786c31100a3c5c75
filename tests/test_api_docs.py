"""The API's docs page in a real browser: Swagger UI from the package's own
files, under the console's Content-Security-Policy, asking no other host for
anything (what the policy blocks never reaches the network, so both are
checked); and the favicon every page and tool asks for."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
from playwright.sync_api import expect


def test_docs_list_the_operations_with_nothing_from_another_host(api, page, shoot):
    asked, errors = [], []
    page.on("request", lambda request: asked.append(request.url))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))

    answer = page.goto(f"{api}/api/v1/docs")
    assert answer is not None and "default-src 'self'" in answer.headers["content-security-policy"]
    branches = "GET /api/v1/projects/{org}/{project}/branches List Branches"
    expect(page.get_by_role("button", name=branches)).to_be_visible()
    expect(page.get_by_role("heading", name="OdooOps")).to_be_visible()
    # an operation opened and tried: its parameters, the request Swagger UI sends and the answer drawn
    page.get_by_role("button", name="GET /api/v1/orgs List Orgs").click()
    page.get_by_role("button", name="Try it out").click()
    page.get_by_role("button", name="Execute").click()
    expect(page.locator(".live-responses-table td.response-col_status:not(.col_header)")).to_have_text("401")
    page.wait_for_load_state("networkidle")  # anything else Swagger UI would ask for

    server = urlsplit(api).netloc
    elsewhere = [url for url in asked if not url.startswith("data:") and urlsplit(url).netloc != server]
    assert not elsewhere, elsewhere
    wanted = {f"{api}{p}" for p in ("/static/vendor/swagger-ui-bundle.js", "/api/v1/openapi.json", "/api/v1/orgs")}
    assert wanted <= set(asked), asked
    assert page.evaluate("window.refusedByCsp") == []
    tried = "Failed to load resource: the server responded with a status of 401 (Unauthorized)"  # no token given
    assert errors == [tried], errors
    shoot(page, "api-docs")
    icon = page.locator('link[rel="icon"]').get_attribute("href")
    assert httpx.get(f"{api}{icon}").headers["content-type"] == "image/svg+xml"


def test_favicon_is_an_image(api):
    icon = httpx.get(f"{api}/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/")
    assert icon.content.startswith(b"<svg")
