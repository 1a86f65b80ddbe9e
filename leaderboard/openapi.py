"""The OpenAPI 3.1 document of /api/v1, generated: each route declares its summary, query
parameters and body model with :func:`operation`; the paths are the app's own URL rules and the
schemas pydantic's JSON Schema of :mod:`leaderboard.api_models` (JSON Schema 2020-12, OpenAPI 3.1's
own dialect). A route under the prefix without :func:`operation` makes the document fail to build.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any, TypeVar

from flask import Flask
from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, models_json_schema

from .api_models import MODELS, ErrorBody

__all__ = ["OPENAPI_VERSION", "Param", "UndocumentedRoute", "openapi_document", "operation"]

OPENAPI_VERSION = "3.1.0"
_REF = "#/components/schemas/{model}"
_F = TypeVar("_F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Param:
    """A query parameter, declared next to the code that parses it."""
    name: str
    schema: dict[str, Any]
    description: str = ""
    required: bool = False

    def to_openapi(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "in": "query", "required": self.required, "schema": self.schema}
        if self.description:
            out["description"] = self.description
        return out


@dataclass(frozen=True)
class _Operation:
    summary: str
    body: type[BaseModel] | None
    params: Sequence[Param] = ()
    csv: bool = False
    errors: tuple[int, ...] = ()
    description: str = ""
    path_params: dict[str, str] = field(default_factory=dict)


_OPERATIONS: dict[Callable[..., Any], _Operation] = {}


def operation(summary: str, body: type[BaseModel] | None, *, params: Sequence[Param] = (), csv: bool = False,
              errors: tuple[int, ...] = (400, 404), description: str = "",
              path_params: dict[str, str] | None = None) -> Callable[[_F], _F]:
    """Describe a view: ``body`` is the model of its JSON answer (None: any object), ``csv`` that it
    also answers ``?format=csv``, ``errors`` the 4xx codes it answers (as :class:`ErrorBody`),
    ``path_params`` descriptions of the URL's variables."""
    def register(view: _F) -> _F:
        _OPERATIONS[view] = _Operation(summary, body, tuple(params), csv, errors, description, path_params or {})
        return view
    return register


class UndocumentedRoute(LookupError):
    pass


class _NoTitles(GenerateJsonSchema):
    # pydantic titles every property after its name; in the document they only repeat the key
    def field_title_should_be_set(self, schema) -> bool:
        return False


@cache
def _schemas() -> dict[str, Any]:
    _, top = models_json_schema([(m, "serialization") for m in MODELS], ref_template=_REF,
                                schema_generator=_NoTitles)
    return top["$defs"]


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": _REF.format(model=model.__name__)}


_PATH_VAR = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")
_CONVERTER_TYPES = {"int": "integer", "float": "number"}


def _path_item(rule: str, op: _Operation) -> tuple[str, dict[str, Any]]:
    params = [{"name": name, "in": "path", "required": True,
               "schema": {"type": _CONVERTER_TYPES.get(conv or "", "string")},
               **({"description": op.path_params[name]} if name in op.path_params else {})}
              for conv, name in _PATH_VAR.findall(rule)]
    params += [p.to_openapi() for p in op.params]
    content: dict[str, Any] = {"application/json": {"schema": _ref(op.body) if op.body else {"type": "object"}}}
    if op.csv:
        content["text/csv"] = {"schema": {"type": "string"}}
    error = {"content": {"application/json": {"schema": _ref(ErrorBody)}}}
    responses: dict[str, Any] = {"200": {"description": op.summary, "content": content}}
    for code, why in [*[(c, "bad request" if c == 400 else "not found") for c in op.errors],
                      (503, "the results database is unavailable or not migrated")]:
        responses[str(code)] = {"description": why, **error}
    get: dict[str, Any] = {"summary": op.summary, "parameters": params, "responses": responses}
    if op.description:
        get["description"] = op.description
    return _PATH_VAR.sub(r"{\2}", rule), {"get": get}


def openapi_document(app: Flask, prefix: str = "/api/v1", server_url: str | None = None) -> dict[str, Any]:
    """The document of every GET route of ``app`` under ``prefix``."""
    paths: dict[str, Any] = {}
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(prefix + "/") or "GET" not in (rule.methods or ()):
            continue
        op = _OPERATIONS.get(app.view_functions[rule.endpoint])
        if op is None:
            raise UndocumentedRoute(f"route {rule.rule} (endpoint {rule.endpoint}) has no @operation "
                                    "(leaderboard.openapi): every API route must declare its answer")
        path, item = _path_item(rule.rule[len(prefix):], op)
        paths[path] = item
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": "PhaseBench leaderboard API", "version": "1",
                 "description": "Read-only access to everything the leaderboard website shows. Errors are "
                                "JSON objects {error, message, status}. NaN and infinite values are null."},
        "servers": [{"url": server_url or prefix}],
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": _schemas()},
    }
