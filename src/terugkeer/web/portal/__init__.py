"""The portal (issue 17): server-rendered pages for every role, in Dutch by default.

``install(app)`` (called by ``web/app.py``) adds the pages, the static files at
``/portaal/static`` and the portal's error pages: under ``/portaal`` an error is an HTML page
(sign-in redirect, "geen toegang", "niet gevonden", a 500 without details), elsewhere the
API's problem+json as before. Every page declares its permission (``pages.page``); a page
without one stops the app from starting, like an API route without one (default deny).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from importlib import import_module
from importlib.util import find_spec
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from terugkeer.web.auth import route_permissions
from terugkeer.web.portal import pages, session

router = APIRouter(include_in_schema=False)

# the modules of pages, each with a ``router``; a module not (yet) written is left out
PAGE_MODULES = (
    "mayor",
    "victims",
    "auditor",
    "admin",
    "operator",
    "caseworker",
    "analyst",
    "analysis",
)


def _page_modules() -> list[Any]:
    found = []
    for name in PAGE_MODULES:
        qualified = f"{__name__}.{name}"
        if find_spec(qualified) is not None:
            found.append(import_module(qualified))
    return found


def check_pages(routes: list[Any]) -> None:
    """Refuse a portal page that declares no permission, or lies outside ``/portaal``."""
    bad = [
        f"{sorted(route.methods or ())} {route.path}"
        for route in routes
        if isinstance(route, APIRoute)
        and (
            not route_permissions(route)
            or not (route.path.startswith(pages.PREFIX) or route.path == "/")
        )
    ]
    if bad:
        raise RuntimeError(f"portal pages without a declared permission or outside /portaal: {bad}")


def _pages_only(module_router: APIRouter) -> APIRouter:
    """Pages are not API operations: out of the OpenAPI document and out of what
    ``check_routes`` and the authorisation matrix walk (``check_pages`` checks the pages)."""
    for route in module_router.routes:
        if isinstance(route, APIRoute):
            route.include_in_schema = False
    return module_router


_modules = [session, *_page_modules()]
for _module in _modules:
    router.include_router(_pages_only(_module.router), include_in_schema=False)
check_pages([r for m in _modules for r in m.router.routes])


def _portal(request: Request) -> bool:
    path: str = request.url.path
    return path == "/" or path.startswith(pages.PREFIX)


Handler = Callable[[Request, Any], Response | Awaitable[Response]]


async def _call(handler: Handler, request: Request, exc: Exception) -> Response:
    result = handler(request, exc)
    return await result if inspect.isawaitable(result) else result


def install(app: FastAPI) -> None:
    """Add the portal to the app: its pages, static files and HTML error pages (the frame,
    ``web/frame.py``, puts the security headers on them too)."""
    app.include_router(router, include_in_schema=False)
    app.mount(f"{pages.PREFIX}/static", StaticFiles(directory=pages.STATIC), name="portal-static")
    api_http: Handler = app.exception_handlers[StarletteHTTPException]
    api_validation: Handler = app.exception_handlers[RequestValidationError]

    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if not _portal(request):
            return await _call(api_http, request, exc)
        if exc.status_code == 401:
            return pages.sign_in_redirect(request)
        if getattr(request.state, "principal", None) is None:
            await pages.signed_in(request)  # a page not found still shows who is signed in
        if exc.detail == "csrf":
            return pages.error_page(request, 403, "Uw formulier was verlopen. Probeer het opnieuw.")
        return pages.error_page(request, exc.status_code)

    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        if not _portal(request):
            return await _call(api_validation, request, exc)
        return pages.error_page(request, 400)

    app.add_exception_handler(StarletteHTTPException, http_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, validation_error)  # type: ignore[arg-type]


def error_page_for(request: Request, status: int) -> Response | None:
    """The error page for ``status`` on a portal page, without any detail (the 500 for an
    unexpected error, a refusal before the app ran); None elsewhere (the API answers
    problem+json)."""
    return pages.error_page(request, status) if _portal(request) else None
