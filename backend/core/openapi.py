"""The OpenAPI document tells the truth about errors.

Every error the API gives has the body `{"error": {"code", "message", "details"?}}`
(`backend.core.errors`). Each operation lists the error statuses it really answers with that
schema: the ones that follow from how the route is built (a signed-in user: 401; an admin: 403;
a cookie-authenticated state change: 403 on a foreign Origin; a path id: 404; any parameter or
body: 422) and the ones its domain raises, declared on the route with `errors(...)`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel

DESCRIPTIONS = {
    400: "The request is malformed (for example a webhook body that is not a Stripe event).",
    401: "Not signed in, or the session expired.",
    403: "Signed in, but not allowed (not the owner, not an admin, or a foreign Origin).",
    404: "No such object, or not one the caller may see.",
    409: "The object is not in a state that allows this.",
    422: "A parameter or a body field is invalid; `details` names each one.",
    429: "Too many requests; retry after the `Retry-After` seconds.",
    502: "A dependency (the chain node, Stripe) failed.",
    503: "A dependency is not configured or not reachable.",
}
_UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


class ErrorDetail(BaseModel):
    """What went wrong: a stable `code` for programs, a `message` for people."""

    code: str
    message: str
    details: list[Any] | None = None


class ErrorOut(BaseModel):
    """The body of every error response."""

    error: ErrorDetail


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` of a route: the error statuses its domain gives (the schema is added when
    the document is built)."""
    return {code: {"description": DESCRIPTIONS[code]} for code in codes}


def _calls(dependant: Dependant) -> Iterable[Callable[..., Any]]:
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield sub.call
        yield from _calls(sub)


def route_errors(
    route: Any, *, signed_in: Callable[..., Any], admin: Callable[..., Any]
) -> set[int]:
    """The error statuses `route` (an APIRoute as included) gives, from how it is built and
    what it declares."""
    codes = {int(code) for code in route.responses if int(code) >= 400}
    calls = set(_calls(route.dependant))
    methods: set[str] = route.methods or set()
    if signed_in in calls or admin in calls:
        codes.add(401)
        if methods & _UNSAFE:
            codes.add(403)  # a cookie-authenticated change from a foreign Origin
    if admin in calls:
        codes.add(403)
    if "{" in route.path_format:
        codes.add(404)
    if route.dependant.body_params:
        codes.add(400)  # a body that is not JSON at all
    dependant = route.dependant
    if (
        dependant.path_params
        or dependant.query_params
        or dependant.header_params
        or dependant.body_params
        or any(d.query_params or d.path_params or d.body_params for d in dependant.dependencies)
        or route.openapi_extra
    ):
        codes.add(422)
    return codes


def install_openapi(
    app: FastAPI,
    *,
    signed_in: Callable[..., Any],
    admin: Callable[..., Any],
    extra_operations: Mapping[str, Mapping[str, dict[str, Any]]] | None = None,
    models: Iterable[type[BaseModel]] = (),
) -> None:
    """Build the document once, with every operation's error responses.

    Args:
        app: The app.
        signed_in: The dependency that requires a session (its routes answer 401).
        admin: The dependency that requires an admin (its routes answer 401 and 403).
        extra_operations: Operations of routes FastAPI does not describe (bare ASGI endpoints), by
            path and method, written as OpenAPI.
        models: The schemas those operations refer to.
    """
    models = tuple(models)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        spec = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        schemas = spec.setdefault("components", {}).setdefault("schemas", {})
        schema = ErrorOut.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas["ErrorOut"] = schema
        for model in models:
            schemas[model.__name__] = model.model_json_schema(
                by_alias=True,
                mode="serialization",
                ref_template="#/components/schemas/{model}",
            )
        for path, described in (extra_operations or {}).items():
            spec["paths"].setdefault(path, {}).update(described)
        for name in ("HTTPValidationError", "ValidationError"):
            schemas.pop(name, None)
        content = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}
        for route in iter_route_contexts(app.routes):
            if not isinstance(route.original_route, APIRoute) or not route.include_in_schema:
                continue
            codes = route_errors(route, signed_in=signed_in, admin=admin)
            for method in route.methods or ():
                operation = spec["paths"][route.path_format][method.lower()]
                responses = operation.setdefault("responses", {})
                for code in sorted(codes):
                    entry = responses.setdefault(str(code), {})
                    entry["description"] = DESCRIPTIONS.get(code, entry.get("description", ""))
        for operations in spec["paths"].values():
            for operation in operations.values():
                for code, entry in operation.get("responses", {}).items():
                    if code.isdigit() and int(code) >= 400:  # FastAPI's own 422s included
                        entry["content"] = content
        app.openapi_schema = spec
        return spec

    app.openapi = openapi  # type: ignore[method-assign]
