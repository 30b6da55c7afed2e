"""Authentication and authorisation for the web application.

- A caller is identified by an API token (``Authorization: Bearer …``) or a session cookie
  (``terugkeer_session``, HttpOnly, SameSite=Strict, Secure outside development).
- Every API route declares the one permission it needs with ``Depends(requires(P))``; at start
  the app checks that every route does (``check_routes``), so a route without a declared
  permission cannot be served (default deny).
- A cookie-authenticated request that changes something must carry the session's CSRF token in
  ``X-CSRF-Token`` (or a form field ``csrf_token``).
- Scope (municipality, consent) is applied in the queries of the services, not filtered after.
- Victims' contact details need more than the role: a session signed in with the second
  factor, or an API token an administrator granted them (``Principal.second_factor``).
- The principal is put on the request before its permission is checked, so that a refusal
  (403) or a record not found (404) is audited in its name (``web/app.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.routing import APIRoute
from sqlalchemy import Engine

from terugkeer.config import get_settings
from terugkeer.security.accounts import principal_for_session, principal_for_token
from terugkeer.security.roles import ROLE_PERMISSIONS, Permission, Principal

SESSION_COOKIE = "terugkeer_session"
CSRF_HEADER = "X-CSRF-Token"
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
PUBLIC = Permission.HEALTH_READ

NEEDS_SECOND_FACTOR_MESSAGE = (
    "victims' contact details need a session signed in with the second factor "
    "(or an API token an administrator granted them to)"
)

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'; object-src 'none'"
)


def engine_of(request: Request) -> Engine:
    """The application's database engine (``create_app`` keeps it on the app's state)."""
    engine: Engine = request.app.state.engine
    return engine


def authenticate(request: Request) -> Principal | None:
    """The caller, or None when anonymous. Raises 403 on a missing CSRF token."""
    header = request.headers.get("Authorization", "")
    with engine_of(request).begin() as conn:
        if header.startswith("Bearer "):
            principal = principal_for_token(conn, header.removeprefix("Bearer ").strip())
            if principal is None:
                raise HTTPException(401, "unknown, expired or revoked API token")
            return principal
        cookie = request.cookies.get(SESSION_COOKIE)
        if not cookie:
            return None
        found = principal_for_session(conn, cookie)
    if found is None:
        raise HTTPException(401, "the session has ended; sign in again")
    principal, csrf = found
    if request.method in UNSAFE and request.headers.get(CSRF_HEADER) != csrf:
        raise HTTPException(403, "missing or wrong CSRF token")
    return principal


def requires(permission: Permission) -> Callable[[Request], Principal | None]:
    """A dependency that lets through only callers holding ``permission``."""

    def dependency(request: Request) -> Principal | None:
        if permission is PUBLIC:
            return None
        principal = authenticate(request)
        if principal is None:
            raise HTTPException(401, "sign in or send an API token")
        request.state.principal = principal  # also when refused: the refusal is audited
        if not principal.can(permission):
            if permission in ROLE_PERMISSIONS[principal.role]:
                raise HTTPException(403, NEEDS_SECOND_FACTOR_MESSAGE)
            raise HTTPException(403, f"role [{principal.role}] may not do this ({permission})")
        return principal

    dependency.permission = permission  # type: ignore[attr-defined]
    return dependency


def _permissions(dependencies: Sequence[Any]) -> list[Permission]:
    return [
        d.dependency.permission if hasattr(d, "dependency") else d.call.permission
        for d in dependencies
        if hasattr(getattr(d, "dependency", None) or getattr(d, "call", None), "permission")
    ]


def route_permissions(
    route: APIRoute, inherited: Sequence[Permission] = ()
) -> frozenset[Permission]:
    """The permissions a route declares (on itself or its router); a caller needs all."""
    return frozenset([*inherited, *_permissions(route.dependant.dependencies)])


def api_routes(
    routes: Sequence[Any], prefix: str = "", inherited: Sequence[Permission] = ()
) -> Iterator[tuple[str, APIRoute, Sequence[Permission]]]:
    """Every API route with its full path, through included routers."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield prefix + route.path, route, inherited
        elif hasattr(route, "original_router"):  # FastAPI's included router
            context = route.include_context
            yield from api_routes(
                route.original_router.routes,
                prefix + context.prefix,
                [*inherited, *_permissions(context.dependencies)],
            )


def check_routes(app: FastAPI) -> None:
    """Refuse to build an app with an API route that declares no permission."""
    missing = [
        f"{sorted(route.methods or ())} {path}"
        for path, route, inherited in api_routes(app.routes)
        if route.include_in_schema and not route_permissions(route, inherited)
    ]
    if missing:
        raise RuntimeError(f"API routes without a declared permission: {missing}")


def security_headers() -> list[tuple[str, str]]:
    """The security headers every response carries, errors included (``web/frame.py`` sets
    them); HSTS outside development."""
    headers = [
        ("Content-Security-Policy", CSP),
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),
        ("Referrer-Policy", "no-referrer"),
        ("Cache-Control", "no-store"),
    ]
    if get_settings().environment != "development":
        headers.append(("Strict-Transport-Security", "max-age=31536000; includeSubDomains"))
    return headers


def set_session_cookie(response: Response, token: str, max_age: int) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=max_age,
        httponly=True,
        secure=get_settings().environment != "development",
        samesite="strict",
        path="/",
    )


def principal_of(request: Request) -> Principal:
    """The principal that ``requires`` put on the request (for handlers)."""
    principal: Any = getattr(request.state, "principal", None)
    if principal is None:
        raise HTTPException(401, "not signed in")
    return principal  # type: ignore[no-any-return]
