"""The ASGI application: /api/v1, /healthz, one error shape."""

from __future__ import annotations

import logging
import uuid
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from odooops import __version__, runtime
from odooops.api import metrics
from odooops.api.routes import router
from odooops.db import Actor
from odooops.errors import OpsError
from odooops.managers import Manager
from odooops.settings import Settings

log = logging.getLogger("odooops.http")


def error(status: int, message: str, code: str) -> JSONResponse:
    return JSONResponse({"ok": False, "error": message, "code": code}, status_code=status)


def create_app(settings: Settings, database=None) -> FastAPI:
    """The app on `database` (opened and closed with the app when not given)."""
    db = database or runtime.database(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if database is None:
            await db.open()
        yield
        if database is None:
            await db.close()

    app = FastAPI(title="OdooOps", version=__version__, lifespan=lifespan,
                  openapi_url="/api/v1/openapi.json", docs_url="/api/v1/docs", redoc_url=None)
    app.state.db = db
    app.state.settings = settings
    app.include_router(router)
    app.include_router(metrics.router)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> JSONResponse:
        try:
            await Manager(db, Actor.anonymous()).one("select 1 as ok")
        except OpsError as exc:
            return error(503, str(exc), exc.code)
        return JSONResponse({"ok": True})

    @app.exception_handler(OpsError)
    async def ops_error(request: Request, exc: OpsError) -> JSONResponse:
        if exc.status >= 500:
            log.error("request %s failed: %s", request.state.request_id, exc)
        return error(exc.status, exc.message, exc.code)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return error(422, f"{where}: {first.get('msg', 'invalid input')}" if where else "invalid input",
                     "invalid_input")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed"}
        return error(exc.status_code, str(exc.detail), codes.get(exc.status_code, "http_error"))

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> JSONResponse:
        log.exception("request %s crashed", getattr(request.state, "request_id", "-"))
        return error(500, "internal error: the server logged it", "internal_error")

    @app.middleware("http")
    async def request_id(request: Request, call_next):
        request.state.request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        response = await call_next(request)
        response.headers["X-Request-Id"] = request.state.request_id
        # the path and status only: never headers, queries or bodies, which may hold secrets
        log.info("%s %s %s %s", request.state.request_id, request.method, request.url.path, response.status_code)
        return response

    return app
