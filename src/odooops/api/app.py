"""The ASGI application: /api/v1, /healthz, one error shape."""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from odooops import __version__, console, runtime
from odooops.api import auth, docs, environments, hooks, mails, metrics, stages
from odooops.api.routes import router
from odooops.db import Actor
from odooops.errors import InternalError, OpsError
from odooops.hooks.processor import HookProcessor
from odooops.managers import Manager
from odooops.managers.users import dummy_hash
from odooops.settings import Settings

log = logging.getLogger("odooops.http")
REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
HEALTH_TIMEOUT = 2.0  # seconds /healthz waits for the database


def error(status: int, message: str, code: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"ok": False, "error": message, "code": code}, status_code=status, headers=headers)


def answer(request: Request, status: int, message: str, code: str, headers: dict[str, str] | None = None) -> Response:
    """The error as JSON for the API, as a page for the console."""
    if console.is_page(request):
        return console.error_page(request, status, message, headers)
    return error(status, message, code, headers)


async def database_problem(db) -> str | None:
    """Why the database does not answer, or None. Bounded: a load balancer
    asks to route around a host at once, not once the pool gives up."""
    try:
        async with asyncio.timeout(HEALTH_TIMEOUT):
            await Manager(db, Actor.anonymous()).one("select 1 as ok")
    except TimeoutError:
        return f"no answer within {HEALTH_TIMEOUT:.0f}s"
    except OpsError as exc:
        return str(exc)
    return None


def create_app(settings: Settings, database=None) -> FastAPI:
    """The app on `database` (opened and closed with the app when not given)."""
    db = database or runtime.database(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if database is None:
            await db.open()
        app.state.hook_processor.start()
        # made before the first login, which would otherwise take longer for an unknown email
        await asyncio.to_thread(dummy_hash)
        yield
        await app.state.hook_processor.stop()
        if database is None:
            await db.close()

    # FastAPI's own docs page loads Swagger UI from a CDN: docs.router serves it from the package
    app = FastAPI(title="OdooOps", version=__version__, lifespan=lifespan,
                  openapi_url="/api/v1/openapi.json", docs_url=None, redoc_url=None)
    app.state.db = db
    app.state.settings = settings
    app.state.secret_key = runtime.secret_key(settings)
    app.state.secret_box = runtime.secret_box(settings)
    app.state.hook_processor = HookProcessor(db)
    app.include_router(router)
    app.include_router(environments.router)
    app.include_router(stages.router)
    app.include_router(mails.router)
    app.include_router(hooks.router)
    app.include_router(auth.router)
    app.include_router(metrics.router)
    app.include_router(docs.router)
    console.install(app)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> JSONResponse:
        checks = {"database": await database_problem(db) or "ok",
                  "webhook deliveries": app.state.hook_processor.problem() or "ok"}
        failed = [f"{name}: {problem}" for name, problem in checks.items() if problem != "ok"]
        if failed:
            return JSONResponse({"ok": False, "error": "; ".join(failed), "code": "unhealthy", "checks": checks},
                                status_code=503)
        return JSONResponse({"ok": True, "checks": checks})

    @app.exception_handler(OpsError)
    async def ops_error(request: Request, exc: OpsError) -> Response:
        request_id = request.state.request_id
        if exc.status >= 500 or exc.detail:
            log.log(logging.ERROR if exc.status >= 500 else logging.INFO, "request %s failed: %s%s", request_id, exc,
                    f" ({exc.detail})" if exc.detail else "")
        # the request id, so the server's log can be searched for what happened
        message = f"{exc.message} (request {request_id})" if exc.status >= 500 else exc.message
        return answer(request, exc.status, message, exc.code, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return answer(request, 422, f"{where}: {first.get('msg', 'invalid input')}" if where else "invalid input",
                      "invalid_input")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        codes = {404: "not_found", 405: "method_not_allowed"}
        page_404 = exc.status_code == 404 and console.is_page(request)
        return answer(request, exc.status_code, "There is no page at this address." if page_404 else str(exc.detail),
                      codes.get(exc.status_code, "http_error"))

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> Response:
        request_id = getattr(request.state, "request_id", "-")
        log.exception("request %s crashed", request_id)
        return answer(request, 500, f"{InternalError().message} (request {request_id})", "internal_error")

    @app.middleware("http")
    async def request_id(request: Request, call_next):
        given = request.headers.get("x-request-id", "")
        request.state.request_id = given if REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        started = time.perf_counter()
        response = await call_next(request)
        response.headers["X-Request-Id"] = request.state.request_id
        # the path and status only: never headers (tokens, cookies), queries or bodies (passwords)
        log.info("%s %s %s", request.method, request.url.path, response.status_code, extra={
            "request_id": request.state.request_id, "method": request.method, "path": request.url.path,
            "status": response.status_code, "ms": round((time.perf_counter() - started) * 1000, 1)})
        return response

    return app
