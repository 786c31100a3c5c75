"""The web console: server-rendered pages (Jinja2, htmx, Server-Sent Events)
on the same app, managers and row-level security as the API."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from odooops.console import branches, builds, environments, first_run, logs, mails, pages, queue, settings
from odooops.console.render import HERE, content_security_policy, error_page
from odooops.console.session import SignInRequired

ROUTERS = (pages, first_run, branches, builds, environments, mails, logs, queue, settings)
# Every page's, unless it says otherwise (see content_security_policy).
PAGE_HEADERS = {
    "Content-Security-Policy": content_security_policy(),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def is_page(request: Request) -> bool:
    """Whether an error on this request should be a page rather than JSON."""
    path = request.url.path
    return not (path.startswith("/api/") or path == "/healthz" or path.startswith("/static/"))


def install(app: FastAPI) -> None:
    for module in ROUTERS:
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> FileResponse:
        """For whatever asks without reading a page's <link rel="icon">."""
        return FileResponse(HERE / "static" / "favicon.svg", media_type="image/svg+xml")

    @app.middleware("http")
    async def page_headers(request: Request, call_next) -> Response:
        response = await call_next(request)
        if is_page(request) or request.url.path.startswith("/static/"):
            for name, value in PAGE_HEADERS.items():
                response.headers.setdefault(name, value)
        return response

    @app.exception_handler(SignInRequired)
    async def sign_in(request: Request, exc: SignInRequired) -> Response:
        if request.headers.get("hx-request"):  # htmx follows this header with a whole-page visit
            return Response(status_code=401, headers={"HX-Redirect": exc.location})
        return RedirectResponse(exc.location, status_code=303)


__all__ = ["error_page", "install", "is_page"]
