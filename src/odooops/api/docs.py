"""The API's interactive docs (Swagger UI), served from the package: its files
are vendored under /static (scripts/assets), so the page works offline and
under the console's Content-Security-Policy."""

from __future__ import annotations

from html import escape

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from odooops.console import PAGE_HEADERS

router = APIRouter(include_in_schema=False)
PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{title} API</title>
  <link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
  <link rel="stylesheet" href="/static/vendor/swagger-ui.css">
  <script src="/static/vendor/swagger-ui-bundle.js" defer></script>
  <script src="/static/api-docs.js" defer></script>
</head>
<body>
  <main id="swagger-ui" data-url="{schema}">
    <noscript><p>The API's schema: <a href="{schema}">{schema}</a></p></noscript>
  </main>
</body>
</html>
"""


@router.get("/api/v1/docs")
async def docs(request: Request) -> HTMLResponse:
    app = request.app
    return HTMLResponse(PAGE.format(title=escape(app.title), schema=escape(app.openapi_url)), headers=PAGE_HEADERS)
