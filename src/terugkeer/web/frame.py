"""The frame every response passes through: one pure ASGI middleware, the outermost layer of
the app (``create_app`` adds it last).

* The security headers and the API version on every response, error responses included.
* An unexpected error becomes a 500 that says nothing about it: the portal's error page under
  ``/portaal``, problem+json elsewhere. The log names the error's type and the route, never
  values.
* A signed-in caller refused a record (403) or asking for one that is not there (404, e.g. a
  guessed id) leaves a row in the audit log before the answer goes out: who tried, which
  record, when.

It is plain ASGI, not ``@app.middleware("http")``: each such layer runs the rest of the app in
a task of its own behind memory streams, and the four the app had cost more CPU per request
than a page's queries (``docs/benchmarks.md``, *portal*).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import structlog
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from terugkeer.security.actor import Actor
from terugkeer.security.refusals import record_refusal

log = structlog.get_logger(__name__)

# a refused or not-found request names the record its first path parameter names
PATH_RECORDS = (
    ("case_id", "reintegration_case"),
    ("melding_id", "notice"),
    ("slachtoffer", "victim_contact"),
    ("activity_id", "activity"),
    ("naam", "user"),
    ("token", "api_token"),
)


def _refused_record(scope: Scope) -> tuple[str, str]:
    params: dict[str, Any] = scope.get("path_params") or {}
    for name, record_type in PATH_RECORDS:
        if name in params:
            return record_type, str(params[name])[:100]
    return "route", str(scope.get("path", ""))[:100]


class ResponseFrame:
    def __init__(
        self,
        app: ASGIApp,
        headers: Sequence[tuple[str, str]],
        server_error: Callable[[Request], Response],
    ) -> None:
        self.app = app
        self.headers = tuple(headers)
        self.server_error = server_error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def framed(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if message["status"] in (403, 404):
                    self._audit_refusal(scope, message["status"])
                headers = MutableHeaders(scope=message)
                for name, value in self.headers:
                    headers[name] = value
            await send(message)

        try:
            await self.app(scope, receive, framed)
        except Exception as e:  # anything unexpected: a 500 that still carries the headers
            if started:  # too late for another answer: the server closes the connection
                raise
            route = getattr(scope.get("route"), "path", "?")
            log.error(
                "unexpected error", error=type(e).__name__, method=scope["method"], route=route
            )
            await self.server_error(Request(scope))(scope, receive, framed)

    @staticmethod
    def _audit_refusal(scope: Scope, status: int) -> None:
        principal = (scope.get("state") or {}).get("principal")
        if principal is None:  # nobody signed in: nothing to attribute (the 401 says so)
            return
        record_type, record_id = _refused_record(scope)
        record_refusal(
            scope["app"].state.engine,
            Actor.web(principal, "refused request"),
            record_type,
            record_id,
            status=status,
            request=f"{scope['method']} {scope.get('path', '')}"[:200],
        )
