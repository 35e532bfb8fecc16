"""Declaring API operations: `operation` registers a route, reads its request body through its
pydantic model (portfolio.api.schemas), and records what the OpenAPI 3.1 document says about
it; `build_openapi` makes the document from those records (openapi-pydantic places the models'
JSON Schemas under components)."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, request
from openapi_pydantic import OpenAPI
from openapi_pydantic.util import PydanticSchema, construct_open_api_with_schema_class
from pydantic import BaseModel, ValidationError

from portfolio.api import schemas
from portfolio.errors import ValidationFailed

# Errors any operation may answer, by group; an operation lists the groups it can meet.
AUTH = {"401": "Missing, invalid or revoked token",
        "429": "Over the token's rate limit (API_RATE_LIMIT); the Retry-After header says how "
               "many seconds to wait"}
NOT_FOUND = {"404": "No such object, or not one the caller may see"}
BAD_PAGE = {"422": "after or limit is not a valid page"}
CHANGE = {"403": "The caller may not do this",
          "409": "Not possible in the evidence's state, or changed meanwhile",
          "422": "A field is missing or wrong"}
UPLOAD = {"413": "A file is over the size limit"}
SIGN = {**CHANGE, "429": "Too many wrong passwords"}

# Keyset paging of collections: ?after=<the last id seen>&limit=<1..500> (see api/inputs.py).
PAGE_PARAMS = [
    {"name": "after", "in": "query", "required": False,
     "schema": {"type": "integer", "minimum": 1},
     "description": "The id of the last item of the previous page"},
    {"name": "limit", "in": "query", "required": False,
     "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 100},
     "description": "Items per page"},
]

JSON = "application/json"
FORM = "multipart/form-data"


@dataclass(frozen=True)
class Operation:
    """What the document says about one route."""

    method: str
    path: str  # OpenAPI form, relative to /api/v1: /evidence/{evidence_id}
    operation_id: str
    summary: str
    responses: dict[str, Any]
    description: str | None = None
    parameters: list[dict[str, Any]] = field(default_factory=list)
    body: type[schemas.In] | None = None
    body_media: tuple[str, ...] = (JSON,)
    body_required: bool = True
    public: bool = False


OPERATIONS: list[Operation] = []


def _path(rule: str) -> tuple[str, list[str]]:
    names = re.findall(r"<int:(\w+)>", rule)
    return re.sub(r"<int:(\w+)>", r"{\1}", rule), names


def operation(bp: Blueprint, method: str, rule: str, *, summary: str,
              ok: tuple[str, type[BaseModel] | dict[str, Any] | None, str],
              errors: Iterable[dict[str, str]] = (),
              more: dict[str, tuple[type[BaseModel], str]] | None = None,
              body: type[schemas.In] | None = None, form: bool = False,
              body_optional: bool = False, query: Iterable[dict[str, Any]] = (),
              description: str | None = None, public: bool = False) -> Callable[..., Any]:
    """Register `view` on `bp` for `method rule` and describe it.

    `ok` is (status, response model or a raw content object or None, description); `more`
    maps other success statuses to (model, description). With `body`, the view gets `read`:
    calling it reads the request body through that model (JSON, or with `form` also a
    multipart form whose `details` is JSON text); anything else is a 422 naming the field.
    The view calls it once it has found and authorised the object, so a missing object is a
    404 and a forbidden one a 403, whatever the body. `body_optional` reads no body at all as
    an empty one."""
    path, names = _path(rule)

    def register(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def handler(**kwargs: Any) -> Any:
            if body is not None:
                kwargs["read"] = functools.partial(read_body, body, form=form,
                                                   optional=body_optional)
            return view(**kwargs)

        bp.add_url_rule(rule, view.__name__, handler, methods=[method])
        responses: dict[str, Any] = {ok[0]: _content(ok[1], ok[2])}
        responses.update({status: _content(*out) for status, out in (more or {}).items()})
        if not public:
            for group in (AUTH, *([NOT_FOUND] if names else []), *errors):
                responses.update({status: _problem(text) for status, text in group.items()})
        params = [{"name": n, "in": "path", "required": True,
                   "schema": {"type": "integer", "minimum": 1}} for n in names]
        OPERATIONS.append(Operation(
            method=method.lower(), path=path, operation_id=view.__name__, summary=summary,
            description=description, parameters=[*params, *query], responses=responses,
            body=body, body_media=(FORM, JSON) if form else (JSON,),
            body_required=not body_optional, public=public))
        return handler

    return register


def _schema_of(model: type[BaseModel]) -> PydanticSchema[Any]:
    """A stand-in that openapi-pydantic replaces by a $ref to the model's schema."""
    return PydanticSchema(schema_class=model)  # type: ignore[call-arg]  # its stub asks for enum


def _content(model: type[BaseModel] | dict[str, Any] | None, description: str) -> Any:
    if model is None:
        return {"description": description}
    if isinstance(model, dict):
        return {"description": description, "content": model}
    return {"description": description,
            "content": {JSON: {"schema": _schema_of(model)}}}


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/problem+json": {
        "schema": _schema_of(schemas.Problem)}}}


def read_body(model: type[schemas.In], *, form: bool = False,
              optional: bool = False) -> Any:
    """The request body read through `model`.

    :raises ValidationFailed: not a JSON object (or form), or a field missing or wrong: the
        first such field is named, with the model's own message for it.
    """
    data: Any
    if form and not request.is_json:
        data = {k: v for k, v in request.form.items() if k not in ("details", "keep_file_ids")}
        if request.form.get("details"):
            try:
                data["details"] = json.loads(request.form["details"])
            except ValueError as exc:
                raise ValidationFailed("details must be a JSON object.",
                                       field="details") from exc
        if "keep_file_ids" in request.form:
            data["keep_file_ids"] = request.form.getlist("keep_file_ids")
    else:
        data = request.get_json(silent=True)
        if data is None and optional and not request.get_data(cache=True).strip():
            data = {}
        if not isinstance(data, dict):
            raise ValidationFailed("Send a JSON object.")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]) if first["loc"] else None
        message = model.messages.get(name or "") or f"{name}: {first['msg']}."
        raise ValidationFailed(message, field=name) from None


_BUILT: dict[int, dict[str, Any]] = {}


def build_openapi() -> dict[str, Any]:
    """Return the OpenAPI 3.1 document for /api/v1 (made once, when every route is known)."""
    if len(OPERATIONS) not in _BUILT:
        _BUILT.clear()
        _BUILT[len(OPERATIONS)] = _build()
    return _BUILT[len(OPERATIONS)]


def _build() -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        entry: dict[str, Any] = {"operationId": op.operation_id, "summary": op.summary,
                                 "responses": op.responses}
        if op.description:
            entry["description"] = op.description
        if op.parameters:
            entry["parameters"] = op.parameters
        if op.public:
            entry["security"] = []
        if op.body is not None:
            schema = _schema_of(op.body)
            entry["requestBody"] = {"required": op.body_required, "content": {
                media: {"schema": schema} for media in op.body_media}}
        paths.setdefault(op.path, {})[op.method] = entry
    document = OpenAPI.model_validate({
        "openapi": "3.1.0",
        "info": {"title": "NVQ e-portfolio evidence builder API", "version": "1.0.0",
                 "description": "Authenticate with a personal access token: "
                                "`Authorization: Bearer pat_...`. Errors are RFC 9457 "
                                "problem details (application/problem+json)."},
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearerAuth": []}],
        "paths": paths,
        "components": {"securitySchemes": {"bearerAuth": {
            "type": "http", "scheme": "bearer", "description": "Personal access token"}}},
    })
    document = construct_open_api_with_schema_class(document)
    return document.model_dump(mode="json", by_alias=True, exclude_unset=True)
