"""The OpenAPI 3.1 document of /api/v1, built from the operation table and its models."""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from incident.domain.access import REQUIRED
from incident.domain.status_page import Catalog
from incident.web import schemas as s
from incident.web.api import MAX_ID, OPERATIONS, Operation

_REF = "#/components/schemas/{model}"

_ERRORS = {
    400: "The body is missing or not JSON, or a header is malformed.",
    401: "No bearer token, or one we do not know.",
    403: "The token's role may not do this (on this incident).",
    404: "No such incident, case, candidate, step or route.",
    409: "The incident's state does not allow this now (e.g. resolving a closed incident).",
    413: "The body is larger than the configured limit.",
    415: "The body is not application/json.",
    422: "A field is missing, of the wrong type, or not an accepted value.",
}


def _models() -> list[type[BaseModel]]:
    models: set[type[BaseModel]] = {s.Error}
    for op in OPERATIONS:
        if op.body is not None:
            models.add(op.body)
        if op.response is not None:
            models.add(op.response)
    return sorted(models, key=lambda m: m.__name__)


def _parameters(op: Operation) -> list[dict[str, Any]]:
    parameters: list[dict[str, Any]] = []
    for name in ("incident_id", "maintenance_id", "follow_up_id", "case_id", "candidate_id"):
        if "{" + name + "}" in op.path:
            parameters.append(
                {
                    "name": name,
                    "in": "path",
                    "required": True,
                    "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
                }
            )
    if "{step_id}" in op.path:
        parameters.append(
            {
                "name": "step_id",
                "in": "path",
                "required": True,
                "description": "A step id from the incident's upcoming steps.",
                "schema": {"type": "string", "pattern": r"^[A-Za-z0-9_.@-]{1,120}$"},
            }
        )
    for name, allowed, description in op.query:
        schema = (
            allowed
            if isinstance(allowed, dict)
            else {"type": "array", "items": {"type": "string", "enum": allowed}}
        )
        parameters.append(
            {
                "name": name,
                "in": "query",
                "required": False,
                "description": description,
                "style": "form",
                "explode": True,
                "schema": schema,
            }
        )
    if op.idempotency_key:
        parameters.append(
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "description": "Repeat a request with the same key to get the same incident "
                "back (200, created false) instead of a second one.",
                "schema": {"type": "string", "pattern": r"^[\x21-\x7e]{1,200}$"},
            }
        )
    return parameters


def _operation(op: Operation) -> dict[str, Any]:
    needs = f"Needs the {op.role.value} role or higher."
    if op.action is not None:
        needs += (
            f" To {op.action.value} on an incident: {REQUIRED[op.action].value} or higher, "
            "or being that incident's commander."
        )
    success: dict[str, Any] = {"description": "OK"}
    if op.response is not None:
        success["content"] = {
            "application/json": {"schema": {"$ref": _REF.format(model=op.response.__name__)}}
        }
    elif op.markdown:
        success["content"] = {"text/markdown": {"schema": {"type": "string"}}}
    responses: dict[str, Any] = {str(op.status): success}
    if op.idempotency_key:
        responses["200"] = {
            "description": "Already declared with this Idempotency-Key",
            "content": success.get("content", {}),
        }
    if op.also_ok:
        responses["200"] = {"description": op.also_ok, "content": success.get("content", {})}
    error_content = {"application/json": {"schema": {"$ref": _REF.format(model="Error")}}}
    for status, description in _ERRORS.items():
        if op.body is None and status in (400, 413, 415, 422) and not op.query:
            continue
        responses[str(status)] = {"description": description, "content": error_content}
    document: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "description": needs,
        "parameters": _parameters(op),
        "responses": responses,
        "security": [{"bearer": []}],
    }
    if op.body is not None:
        document["requestBody"] = {
            "required": not op.body_optional,
            "content": {
                "application/json": {"schema": {"$ref": _REF.format(model=op.body.__name__)}}
            },
        }
    return document


@cache
def _components() -> dict[str, Any]:
    _, definitions = models_json_schema(
        [(model, "validation") for model in _models()], ref_template=_REF
    )
    return dict(definitions.get("$defs", {}))


def _with_components(schemas: dict[str, Any], catalog: Catalog) -> dict[str, Any]:
    """The schemas, with every component id narrowed to the page's configured components
    (the server refuses any other): maps by `propertyNames`, lists by their `items`."""
    ids = [c.id for c in catalog.components]

    def narrow(node: Any) -> Any:
        if isinstance(node, dict):
            node = {key: narrow(value) for key, value in node.items()}
            if s.COMPONENT_ID in node.get("patternProperties", {}):
                if ids:
                    node["propertyNames"] = {"enum": ids}
                else:
                    node["maxProperties"] = 0
            if node.get("pattern") == s.COMPONENT_ID:
                node = {**node, "enum": ids} if ids else {"not": {}}
            return node
        if isinstance(node, list):
            return [narrow(value) for value in node]
        return node

    narrowed: dict[str, Any] = narrow(schemas)
    return narrowed


def openapi_document(base_url: str, catalog: Catalog | None = None) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Incident response orchestration",
            "version": "1",
            "description": "Declare incidents and drive their timed playbooks. Errors are "
            '`{"error": ..., "detail": ...}`.',
        },
        "servers": [{"url": base_url}],
        "paths": paths,
        "components": {
            "schemas": _with_components(_components(), catalog or Catalog()),
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A token from INCIDENT_API_TOKENS (token:role[:name]).",
                }
            },
        },
    }
