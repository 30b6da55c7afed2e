"""The FastAPI app factory. Later issues add routers; this module wires what every route
shares: the API-Version header, problem+json errors, the OpenAPI document at the base path
(API Design Rules of Logius/Geonovum)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import Engine, text
from starlette.exceptions import HTTPException as StarletteHTTPException

from terugkeer import __version__
from terugkeer.db.engine import make_engine
from terugkeer.security.crypto import check_production_settings
from terugkeer.security.roles import Permission
from terugkeer.web.auth import check_routes, requires, security_headers

API_VERSION = "1.0.0"
BASE = "/api/v1"


def problem(status: int, detail: str, **extra: Any) -> JSONResponse:
    body = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type="application/problem+json")


def create_app(engine: Engine | None = None) -> FastAPI:
    check_production_settings()  # refuse to start with missing or placeholder keys
    app = FastAPI(
        title="terugkeer API",
        version=API_VERSION,
        openapi_url=f"{BASE}/openapi.json",
        docs_url=None,  # Swagger UI would load scripts from a CDN: nothing is fetched at run time
        redoc_url=None,
    )
    app.state.engine = engine or make_engine()

    @app.middleware("http")
    async def api_version_header(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        response.headers["API-Version"] = API_VERSION
        return response

    @app.exception_handler(StarletteHTTPException)
    async def http_problem(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def validation_problem(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()
        ]
        return problem(400, "the request is not valid", invalid_params=errors)

    router = APIRouter(prefix=BASE)

    @router.get(
        "/health",
        tags=["beheer"],
        summary="Is the service and its database up?",
        dependencies=[Depends(requires(Permission.HEALTH_READ))],
    )
    def health() -> JSONResponse:
        try:
            with app.state.engine.connect() as conn:
                conn.execute(text("select 1"))
        except Exception as e:  # any database failure makes the service unhealthy
            return problem(503, f"database unavailable: {type(e).__name__}")
        return JSONResponse({"status": "ok", "version": __version__, "database": "ok"})

    app.include_router(router)

    from terugkeer.web.api import auditlog, feed, notices, registration, sessions, victims

    for module in (sessions, notices, victims, registration, auditlog, feed):
        app.include_router(module.router, prefix=BASE)
    security_headers(app)
    check_routes(app)  # default deny: every route declares the permission it needs
    return app
