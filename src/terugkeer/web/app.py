"""The FastAPI app factory. Later issues add routers; this module wires what every route
shares: the API-Version header, problem+json errors (also for an unexpected error: a 500 with
the security headers and no detail), a limit on request bodies, an audit row for every read
refused or not found, the OpenAPI document at the base path (API Design Rules of
Logius/Geonovum)."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import Engine, text
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from terugkeer import __version__
from terugkeer.config import check_environment, get_settings
from terugkeer.db.engine import make_engine
from terugkeer.domain.bsn import mask_bsns
from terugkeer.security.crypto import check_production_settings
from terugkeer.security.roles import Permission
from terugkeer.web import openapi
from terugkeer.web.auth import check_routes, requires, security_headers
from terugkeer.web.frame import ResponseFrame

API_VERSION = "1.0.0"
BASE = "/api/v1"
# request bodies under these paths may be as large as TERUGKEER_MAX_IMPORT_BODY_BYTES: the
# feed's batches of detention events (up to TERUGKEER_FEED_API_MAX_MESSAGES messages)
IMPORT_PREFIXES = (
    f"{BASE}/detentiegebeurtenissen",
    # a municipality's import file (CSV, XLSX), by the API and by the portal's upload page
    f"{BASE}/nazorgdossiers/importen",
    "/portaal/casussen/importeren",
)
# feed messages: a NUL in one message quarantines that message (invalid_value), not the batch
NUL_IN_BODY_ALLOWED = (f"{BASE}/detentiegebeurtenissen",)


def problem(status: int, detail: str, **extra: Any) -> JSONResponse:
    """An error as application/problem+json. A BSN that the request put into the message (a
    BSN typed in a wrong field, echoed by a validation message) is masked, as on the command
    line: an error answer is logged and shown by clients that are not meant to hold one."""
    body = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    body.update(extra)
    return JSONResponse(_masked(body), status_code=status, media_type="application/problem+json")


def _masked(value: Any) -> Any:
    """``value`` with every BSN in its strings masked (dicts and lists walked)."""
    if isinstance(value, str):
        return mask_bsns(value)
    if isinstance(value, dict):
        return {k: _masked(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_masked(v) for v in value]
    return value


class BodyTooLarge(StarletteHTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit} bytes")


class NulInBody(StarletteHTTPException):
    def __init__(self) -> None:
        super().__init__(400, "a NUL character (\\u0000) in the request body")


def _nul_parameter(scope: Scope) -> str | None:
    """The name of a path or query parameter holding a NUL character (no store keeps one)."""
    if "\x00" in scope.get("path", ""):
        return "path"
    for name, value in parse_qsl(scope.get("query_string", b"").decode("latin-1")):
        if "\x00" in name or "\x00" in value:
            return name.replace("\x00", "")[:40] or "query"
    return None


def _nul_markers(headers: dict[bytes, bytes]) -> tuple[bytes, ...]:
    """How a NUL character is written in a body of this content type: JSON's escape (a raw
    NUL is not JSON), a form's percent-escape or raw byte; none for a multipart upload,
    whose files (XLSX is a zip) hold NUL bytes and whose readers refuse what they cannot
    keep."""
    content_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
    if content_type == b"application/x-www-form-urlencoded":
        return (b"%00", b"\x00")
    if content_type.startswith(b"multipart/"):
        return ()
    return (b"\\u0000",)


class BodyLimit:
    """Refuse a request body over the limit (413), by its Content-Length before anything is
    read, and by counting while it is read (a body without a length, or one that lies); and
    a NUL character in a parameter or a JSON body (400): no store keeps one."""

    def __init__(self, app: ASGIApp, limit: int, import_limit: int) -> None:
        self.app, self.limit, self.import_limit = app, limit, import_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        nul = _nul_parameter(scope)
        if nul is not None:
            response = _refusal(
                scope,
                400,
                "a NUL character in a parameter",
                invalid_params=[{"field": nul, "message": "a NUL character"}],
            )
            await response(scope, receive, send)
            return
        path: str = scope.get("path", "")
        limit = self.import_limit if path.startswith(IMPORT_PREFIXES) else self.limit
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            response = _refusal(scope, 413, f"the request body is larger than {limit} bytes")
            await response(scope, receive, send)
            return
        received, tail = 0, b""
        markers = () if path.startswith(NUL_IN_BODY_ALLOWED) else _nul_markers(headers)

        async def counted() -> Message:
            nonlocal received, tail
            message = await receive()
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                received += len(chunk)
                if received > limit:
                    raise BodyTooLarge(limit)  # FastAPI passes an HTTPException on as it is
                seen = tail + chunk
                if any(marker in seen for marker in markers):
                    raise NulInBody()
                tail = chunk[-5:]
            return message

        await self.app(scope, counted, send)


def _server_error(request: Request) -> Response:
    """The answer to an unexpected error: the portal's 500 page, or problem+json."""
    from terugkeer.web import portal

    page = portal.error_page_for(request, 500)
    return page or problem(500, "an unexpected error; it has been logged")


def _refusal(scope: Scope, status: int, detail: str, **extra: Any) -> Response:
    """A refusal before the app runs: the portal's error page on a portal path (pages never
    answer problem+json), problem+json elsewhere."""
    from terugkeer.web import portal

    page = portal.error_page_for(Request(scope), status)
    return page or problem(status, detail, **extra)


def create_app(engine: Engine | None = None) -> FastAPI:
    check_environment()  # an explicit environment; in production no placeholder secrets
    check_production_settings()  # refuse to start with missing or placeholder keys
    settings = get_settings()
    app = FastAPI(
        title="terugkeer API",
        version=API_VERSION,
        openapi_url=f"{BASE}/openapi.json",
        docs_url=None,  # Swagger UI would load scripts from a CDN: nothing is fetched at run time
        redoc_url=None,
    )
    app.state.engine = engine or make_engine()
    app.add_middleware(
        BodyLimit,
        limit=settings.max_body_bytes,
        import_limit=settings.max_import_body_bytes,
    )

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

    from terugkeer.web import portal
    from terugkeer.web.api import (
        accounts,
        auditlog,
        feed,
        imports,
        mkba,
        monitor,
        notices,
        operations,
        registration,
        sessions,
        steering,
        victims,
    )

    for module in (
        sessions,
        notices,
        victims,
        registration,
        auditlog,
        feed,
        accounts,
        monitor,
        mkba,
        operations,
        steering,
        imports,
    ):
        app.include_router(module.router, prefix=BASE)
    portal.install(app)  # the pages, their static files and their HTML error pages
    # the outermost layer: headers, the 500, the refusals' audit rows (web/frame.py)
    app.add_middleware(
        ResponseFrame,
        headers=[*security_headers(), ("API-Version", API_VERSION)],
        server_error=_server_error,
    )
    check_routes(app)  # default deny: every route declares the permission it needs
    openapi.install(app, BASE)  # the contract says what the app does (web/openapi.py)
    return app
