"""The OpenAPI document of the API, as the Dutch API Design Rules (Logius) ask for it.

FastAPI writes the document from the routes; :func:`openapi_document` then states in it what
every route shares and the app already does (``web/app.py``), so that the contract says so:

- the base URL carries the major version (``servers: /api/v1``; the paths are relative to it);
- every response declares the ``API-Version`` header (the app sets it on every response);
- every error is ``application/problem+json`` (RFC 9457) with the members ``type``, ``title``,
  ``status`` and ``detail``; a request that is not valid is a 400 (never FastAPI's 422);
- what any route may answer is declared on each: 400 (a parameter, the body, or a NUL
  character), 401 and 403 for a route that needs a permission, 404 for a route with a path
  parameter, 413 for a route with a body, 500 (an unexpected error, which says nothing);
- a nullable date (or date-time) keeps its ``format`` at the top of the property;
- the security schemes: an API token (``Authorization: Bearer``) or the session cookie;
- a contact in ``info``.

Nothing here names a route: a router added later (the monitor's, the cost-benefit
analysis's) gets the same treatment. The document is committed (``docs/api/openapi.json``,
made by ``python -m tools.openapi``); a test fails when it differs from this one.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from terugkeer.web.auth import PUBLIC, SESSION_COOKIE, api_routes, route_permissions

Json = dict[str, Any]

CONTACT: Json = {
    # a placeholder under the reserved .example domain: an operator publishing the document
    # outside its network puts its own service desk here (docs/api.md)
    "name": "terugkeer, functioneel beheer",
    "email": "beheer@terugkeer.example",
    "url": "https://terugkeer.example/contact",
}
DESCRIPTION = (
    "The API of terugkeer: notices to mayors, the IDV and caseworkers, reintegration "
    "registration, the detention feed, the audit log and account administration. It follows "
    "the API Design Rules of Logius (docs/api.md): errors are application/problem+json, every "
    "response carries the API-Version header, query keys are lowerCamelCase."
)
METHODS = ("get", "put", "post", "delete", "patch")
HEADER = "API-Version"
PROBLEM = "Problem"
PROBLEM_MEDIA = "application/problem+json"

PROBLEM_SCHEMA: Json = {
    "type": "object",
    "title": "Problem",
    "description": "An error (RFC 9457, problem details); more members may follow",
    "properties": {
        "type": {"type": "string", "description": "about:blank: the status says it all"},
        "title": {"type": "string", "description": "the status's phrase"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string", "description": "what went wrong, for a person"},
        "invalid_params": {
            "type": "array",
            "description": "400: each parameter or field at fault",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
                "required": ["field", "message"],
            },
        },
    },
    "required": ["type", "title", "status", "detail"],
}
VERSION_HEADER: Json = {
    "description": "the full version of the API that answered (semantic versioning)",
    "required": True,
    "schema": {"type": "string", "pattern": r"^\d+\.\d+\.\d+$", "example": "1.0.0"},
}
SECURITY_SCHEMES: Json = {
    "apiToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "an API token (terugkeer token create); it expires",
    },
    "session": {
        "type": "apiKey",
        "in": "cookie",
        "name": SESSION_COOKIE,
        "description": "a session (POST /sessies); a change also needs the X-CSRF-Token header",
    },
}
# what any route may answer, beside what it declares itself
GENERIC = {
    "400": "the request is not valid: a parameter, the body, or a NUL character in either",
    "401": "not signed in: no session or API token, or an unknown, expired or revoked one",
    "403": "not allowed: this role, this organisation, or a missing CSRF token",
    "404": "not found, or not yours (the record does not exist for you)",
    "413": "the request body is too large",
    "500": "an unexpected error; it has been logged (the answer says nothing about it)",
}


def install(app: FastAPI, base: str) -> None:
    """Serve :func:`openapi_document` as the app's OpenAPI document (made once, on demand)."""

    def openapi() -> Json:
        if app.openapi_schema is None:
            app.openapi_schema = openapi_document(app, base)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def openapi_document(app: FastAPI, base: str) -> Json:
    """The app's OpenAPI document with what the API Design Rules ask declared (see above)."""
    raw = get_openapi(
        title=app.title,
        version=app.version,
        openapi_version=app.openapi_version,
        routes=app.routes,
        tags=app.openapi_tags,
    )
    document: Json = {
        "openapi": raw["openapi"],
        "info": {**raw["info"], "description": DESCRIPTION, "contact": CONTACT},
        "servers": [{"url": base, "description": "this server, version 1 of the API"}],
        "paths": {},
        "components": copy.deepcopy(raw.get("components", {})),
    }
    public = _public_operations(app)
    names = _operation_ids(app, raw.get("paths", {}))
    for path, item in raw.get("paths", {}).items():
        if not path.startswith(base + "/"):
            raise RuntimeError(f"API route [{path}] outside the base path [{base}]")
        for method, operation in _operations(item):
            operation["operationId"] = names.get((method, path), operation["operationId"])
            _declare(operation, (method, path) in public)
        document["paths"][path.removeprefix(base)] = item
    components = document["components"]
    schemas = components.setdefault("schemas", {})
    _name_bodies(document["paths"], schemas)
    for name in ("HTTPValidationError", "ValidationError"):  # FastAPI's 422, never answered
        schemas.pop(name, None)
    schemas[PROBLEM] = PROBLEM_SCHEMA
    components["headers"] = {HEADER: VERSION_HEADER}
    components["securitySchemes"] = SECURITY_SCHEMES
    for schema in schemas.values():
        _formats_on_top(schema)
    components["schemas"] = dict(sorted(schemas.items()))
    return document


def _operations(item: Json) -> Iterator[tuple[str, Json]]:
    for method in METHODS:
        if method in item:
            yield method, item[method]


def _public_operations(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path) of the operations anyone may call."""
    return {
        (method.lower(), path)
        for path, route, inherited in api_routes(app.routes)
        if route_permissions(route, inherited) <= {PUBLIC}
        for method in route.methods or ()
    }


def _operation_ids(app: FastAPI, paths: Json) -> dict[tuple[str, str], str]:
    """The handler's name in lowerCamelCase (``listNotices``) for each operation of the
    document whose name is unique among them; FastAPI's own (the name, path and method) for
    the others. Routes outside the document (the portal's pages) do not count."""
    named: dict[str, list[tuple[str, str]]] = {}
    for path, route, _inherited in api_routes(app.routes):
        for method in route.methods or ():
            if method.lower() in paths.get(path, {}):
                named.setdefault(_camel(route.name), []).append((method.lower(), path))
    return {keys[0]: name for name, keys in named.items() if len(keys) == 1}


def _camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(part[:1].upper() + part[1:] for part in rest)


def _declare(operation: Json, public: bool) -> None:
    responses: Json = operation.setdefault("responses", {})
    if _fastapis_422(responses.get("422")):
        del responses["422"]  # a request that is not valid is a 400 (web/app.py)
    generic = ["400", "500"]
    if not public:
        generic += ["401", "403"]
        operation["security"] = [{"apiToken": []}, {"session": []}]
    if any(p.get("in") == "path" for p in operation.get("parameters", ())):
        generic.append("404")
    if "requestBody" in operation:
        generic.append("413")
    for status in generic:
        responses.setdefault(status, {"description": GENERIC[status]})
    for status, response in responses.items():
        if status[0] in "45":
            response["content"] = {PROBLEM_MEDIA: {"schema": _ref("schemas", PROBLEM)}}
        headers = response.setdefault("headers", {})
        headers[HEADER] = _ref("headers", HEADER)
    operation["responses"] = dict(sorted(responses.items()))


def _name_bodies(paths: Json, schemas: Json) -> None:
    """FastAPI names a form's or file upload's body schema after its long operation id
    (``Body_post_import_api_v1_…``); the rules ask UpperCamelCase schema names: the body of
    ``postImport`` is ``PostImportBody``."""
    for item in paths.values():
        for _method, operation in _operations(item):
            for media in operation.get("requestBody", {}).get("content", {}).values():
                ref = media.get("schema", {}).get("$ref", "")
                old = ref.rsplit("/", 1)[-1]
                if old.startswith("Body_") and old in schemas:
                    oid = operation["operationId"]
                    new = oid[:1].upper() + _camel(oid)[1:] + "Body"
                    schemas[new] = {**schemas.pop(old), "title": new}
                    media["schema"]["$ref"] = f"#/components/schemas/{new}"


def _fastapis_422(response: Json | None) -> bool:
    """FastAPI's own 422 (its validation error, which the app answers as a 400); a route may
    declare a 422 of its own (values the rules refuse)."""
    if response is None:
        return False
    media = response.get("content", {}).get("application/json", {})
    return bool(media.get("schema", {}).get("$ref", "").endswith("/HTTPValidationError"))


def _ref(kind: str, name: str) -> Json:
    return {"$ref": f"#/components/{kind}/{name}"}


def _formats_on_top(schema: Any) -> None:
    """``anyOf: [{type: string, format: date}, {type: null}]`` (pydantic's ``date | None``)
    becomes ``type: [string, null], format: date``: the same values, with the format where
    readers (and the API Design Rules' linter) look for it."""
    if isinstance(schema, list):
        for item in schema:
            _formats_on_top(item)
        return
    if not isinstance(schema, dict):
        return
    for value in schema.values():
        _formats_on_top(value)
    branches = schema.get("anyOf")
    if not isinstance(branches, list) or len(branches) != 2 or {"type": "null"} not in branches:
        return
    (other,) = [b for b in branches if b != {"type": "null"}]
    if "format" in other and isinstance(other.get("type"), str) and other.keys() <= _SIMPLE:
        del schema["anyOf"]
        schema.update(other)
        schema["type"] = [other["type"], "null"]


_SIMPLE = frozenset({"type", "format", "description", "title", "pattern", "maxLength"})
