"""The OpenAPI 3.1 description of /api/v1; a test checks it against the routes and responses."""

from __future__ import annotations

from typing import Any

PROBLEM = {"$ref": "#/components/schemas/Problem"}


def _problem_response(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/problem+json": {"schema": PROBLEM}}}


def _ok(schema_name: str, description: str) -> dict[str, Any]:
    schema = {"$ref": f"#/components/schemas/{schema_name}"}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _id_param(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True,
            "schema": {"type": "integer", "minimum": 1}}


_ERRORS = {"401": _problem_response("Missing, invalid or revoked token")}
_NOT_FOUND = {"404": _problem_response("No such object, or not one the caller may see")}

_UNIT_SUMMARY_PROPS: dict[str, Any] = {
    "id": {"type": "integer"}, "reference": {"type": "string"},
    "number": {"type": "string"}, "title": {"type": "string"},
    "level": {"type": "integer"}, "credits": {"type": "integer"},
    "guided_learning_hours": {"type": "integer"}, "version": {"type": "integer"},
}

SCHEMAS: dict[str, Any] = {
    "Problem": {
        "type": "object",
        "description": "RFC 9457 problem details",
        "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": {"type": "string"}, "title": {"type": "string"},
            "status": {"type": "integer"}, "detail": {"type": "string"},
        },
    },
    "PersonRef": {
        "type": "object", "required": ["id", "full_name"], "additionalProperties": False,
        "properties": {"id": {"type": "integer"}, "full_name": {"type": "string"}},
    },
    "Me": {
        "type": "object", "additionalProperties": False,
        "required": ["id", "email", "full_name", "roles", "assessor_status", "centre"],
        "properties": {
            "id": {"type": "integer"},
            "email": {"type": "string", "format": "email"},
            "full_name": {"type": "string"},
            "roles": {"type": "array", "items": {
                "type": "string", "enum": ["admin", "assessor", "eqa", "iqa", "learner"]}},
            "assessor_status": {"type": ["string", "null"], "enum": ["trainee", "qualified", None]},
            "centre": {"type": "object", "required": ["id", "name"], "additionalProperties": False,
                       "properties": {"id": {"type": "integer"}, "name": {"type": "string"}}},
        },
    },
    "Enrolment": {
        "type": "object", "additionalProperties": False,
        "required": ["id", "learner", "assessor", "iqa", "unit", "start_on", "planned_end_on",
                     "employer", "workplace", "status"],
        "properties": {
            "id": {"type": "integer"},
            "learner": {"$ref": "#/components/schemas/PersonRef"},
            "assessor": {"$ref": "#/components/schemas/PersonRef"},
            "iqa": {"oneOf": [{"$ref": "#/components/schemas/PersonRef"}, {"type": "null"}]},
            "unit": {"type": "object", "required": ["id", "reference", "title"],
                     "additionalProperties": False,
                     "properties": {"id": {"type": "integer"}, "reference": {"type": "string"},
                                    "title": {"type": "string"}}},
            "start_on": {"type": "string", "format": "date"},
            "planned_end_on": {"type": "string", "format": "date"},
            "employer": {"type": "string"},
            "workplace": {"type": "string"},
            "status": {"type": "string", "enum": ["active", "completed", "withdrawn"]},
        },
    },
    "EnrolmentList": {
        "type": "object", "required": ["items"], "additionalProperties": False,
        "properties": {"items": {"type": "array",
                                 "items": {"$ref": "#/components/schemas/Enrolment"}}},
    },
    "UnitSummary": {
        "type": "object", "additionalProperties": False,
        "required": list(_UNIT_SUMMARY_PROPS),
        "properties": _UNIT_SUMMARY_PROPS,
    },
    "UnitList": {
        "type": "object", "required": ["items"], "additionalProperties": False,
        "properties": {"items": {"type": "array",
                                 "items": {"$ref": "#/components/schemas/UnitSummary"}}},
    },
    "Guidance": {
        "type": "object", "required": ["kind", "text"], "additionalProperties": False,
        "properties": {"kind": {"type": "string",
                                "enum": ["tip", "mistake", "assessor_looks_for"]},
                       "text": {"type": "string"}},
    },
    "Criterion": {
        "type": "object", "additionalProperties": False,
        "required": ["id", "number", "text", "amplification_md", "required_occurrences",
                     "version", "methods", "guidance"],
        "properties": {
            "id": {"type": "integer"},
            "number": {"type": "string", "pattern": "^[0-9]+\\.[0-9]+$"},
            "text": {"type": "string"},
            "amplification_md": {"type": "string"},
            "required_occurrences": {"type": "integer", "minimum": 1},
            "version": {"type": "integer", "minimum": 1},
            "methods": {"type": "array", "items": {
                "type": "object", "required": ["method", "label", "preferred"],
                "additionalProperties": False,
                "properties": {"method": {"type": "string"}, "label": {"type": "string"},
                               "preferred": {"type": "boolean"}}}},
            "guidance": {"type": "array", "items": {"$ref": "#/components/schemas/Guidance"}},
        },
    },
    "Unit": {
        "type": "object", "additionalProperties": False,
        "required": [*_UNIT_SUMMARY_PROPS, "unit_type", "summary", "assessment",
                     "learning_outcomes", "guidance"],
        "properties": {
            **_UNIT_SUMMARY_PROPS,
            "unit_type": {"type": "string"},
            "summary": {"type": "string"},
            "assessment": {
                "type": "object", "additionalProperties": False,
                "required": ["workplace_only", "simulation_allowed", "rpl_allowed",
                             "currency_months"],
                "properties": {"workplace_only": {"type": "boolean"},
                               "simulation_allowed": {"type": "boolean"},
                               "rpl_allowed": {"type": "boolean"},
                               "currency_months": {"type": "integer"}}},
            "learning_outcomes": {"type": "array", "items": {
                "type": "object", "required": ["number", "title", "kind", "criteria"],
                "additionalProperties": False,
                "properties": {
                    "number": {"type": "integer"}, "title": {"type": "string"},
                    "kind": {"type": "string", "enum": ["knowledge", "performance"]},
                    "criteria": {"type": "array",
                                 "items": {"$ref": "#/components/schemas/Criterion"}}}}},
            "guidance": {"type": "array", "items": {"$ref": "#/components/schemas/Guidance"}},
        },
    },
}

PATHS: dict[str, Any] = {
    "/openapi.json": {"get": {
        "operationId": "openapi", "summary": "This document", "security": [],
        "responses": {"200": {"description": "OpenAPI 3.1 document",
                              "content": {"application/json": {"schema": {"type": "object"}}}}},
    }},
    "/me": {"get": {
        "operationId": "me", "summary": "The person the token belongs to",
        "responses": {"200": _ok("Me", "The caller"), **_ERRORS},
    }},
    "/enrolments": {"get": {
        "operationId": "enrolments", "summary": "Enrolments the caller may see",
        "description": "A learner sees their own; an assessor or IQA those assigned to them; "
                       "an admin every enrolment of their centre.",
        "responses": {"200": _ok("EnrolmentList", "Visible enrolments"), **_ERRORS},
    }},
    "/enrolments/{enrolment_id}": {"get": {
        "operationId": "enrolment", "summary": "One enrolment",
        "parameters": [_id_param("enrolment_id")],
        "responses": {"200": _ok("Enrolment", "The enrolment"), **_ERRORS, **_NOT_FOUND},
    }},
    "/units": {"get": {
        "operationId": "units", "summary": "Units loaded from the criteria files",
        "responses": {"200": _ok("UnitList", "All units"), **_ERRORS},
    }},
    "/units/{unit_id}": {"get": {
        "operationId": "unit", "summary": "A unit with its learning outcomes, criteria, "
                                          "assessment rules and guidance",
        "parameters": [_id_param("unit_id")],
        "responses": {"200": _ok("Unit", "The unit"), **_ERRORS, **_NOT_FOUND},
    }},
}


def build_openapi() -> dict[str, Any]:
    """Return the OpenAPI 3.1 document for /api/v1."""
    return {
        "openapi": "3.1.0",
        "info": {"title": "NVQ e-portfolio evidence builder API", "version": "1.0.0",
                 "description": "Authenticate with a personal access token: "
                                "`Authorization: Bearer pat_...`. Errors are RFC 9457 "
                                "problem details (application/problem+json)."},
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearerAuth": []}],
        "paths": PATHS,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer",
                                               "description": "Personal access token"}},
        },
    }
