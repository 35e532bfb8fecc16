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


# Keyset paging of collections: ?after=<the last id seen>&limit=<1..500>; `next` is the
# address of the following page, or null on the last one (also sent as a `Link: <...>;
# rel="next"` header).
_NEXT = {"type": ["string", "null"],
         "description": "The address of the next page, or null on the last page"}
_PAGE_PARAMS = [
    {"name": "after", "in": "query", "required": False,
     "schema": {"type": "integer", "minimum": 1},
     "description": "The id of the last item of the previous page"},
    {"name": "limit", "in": "query", "required": False,
     "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 100},
     "description": "Items per page"},
]


def _id_param(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True,
            "schema": {"type": "integer", "minimum": 1}}


_ERRORS = {"401": _problem_response("Missing, invalid or revoked token"),
           "429": _problem_response("Over the token's rate limit (API_RATE_LIMIT); the "
                                    "Retry-After header says how many seconds to wait")}
_NOT_FOUND = {"404": _problem_response("No such object, or not one the caller may see")}
_BAD_PAGE = {"422": _problem_response("after or limit is not a valid page")}

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
        "type": "object", "required": ["items", "next"], "additionalProperties": False,
        "properties": {"items": {"type": "array",
                                 "items": {"$ref": "#/components/schemas/Enrolment"}},
                       "next": _NEXT},
    },
    "UnitSummary": {
        "type": "object", "additionalProperties": False,
        "required": list(_UNIT_SUMMARY_PROPS),
        "properties": _UNIT_SUMMARY_PROPS,
    },
    "UnitList": {
        "type": "object", "required": ["items", "next"], "additionalProperties": False,
        "properties": {"items": {"type": "array",
                                 "items": {"$ref": "#/components/schemas/UnitSummary"}},
                       "next": _NEXT},
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

_KINDS = ["reflective_account", "witness_testimony", "observation", "professional_discussion",
          "work_product", "log", "email", "photo", "questioning", "rpl", "descriptor"]
_STATUSES = ["draft", "submitted", "referred", "accepted", "withdrawn"]
_DATE = {"type": ["string", "null"], "format": "date"}
_EVIDENCE_FIELDS = {
    "title": {"type": "string", "maxLength": 200},
    "activity_on": {"type": "string", "format": "date"},
    "activity_place": {"type": "string", "maxLength": 200},
    "body_md": {"type": "string", "description": "Markdown"},
    "is_simulated": {"type": "boolean"},
    "personal_data_confirmed": {
        "type": "boolean",
        "description": "Must be true: customers' personal data removed, or there was none"},
    "change_note": {"type": "string", "maxLength": 300},
}

SCHEMAS.update({
    "EvidenceSummary": {
        "type": "object", "additionalProperties": False,
        "required": ["id", "kind", "status", "title", "activity_on", "current_version",
                     "file_count", "criteria"],
        "properties": {
            "id": {"type": "integer"}, "kind": {"type": "string", "enum": _KINDS},
            "status": {"type": "string", "enum": _STATUSES}, "title": {"type": "string"},
            "activity_on": _DATE, "current_version": {"type": "integer"},
            "file_count": {"type": "integer"},
            "criteria": {"type": "array", "items": {"type": "string"}},
        },
    },
    "EvidenceList": {
        "type": "object", "required": ["items", "next"], "additionalProperties": False,
        "properties": {"items": {"type": "array",
                                 "items": {"$ref": "#/components/schemas/EvidenceSummary"}},
                       "next": _NEXT},
    },
    "EvidenceFile": {
        "type": "object", "additionalProperties": False,
        "required": ["id", "filename", "media_type", "category", "size", "sha256", "url",
                     "preview"],
        "properties": {
            "id": {"type": "integer"}, "filename": {"type": "string"},
            "media_type": {"type": "string"},
            "category": {"type": "string", "enum": ["document", "image", "audio", "video",
                                                    "email", "spreadsheet"]},
            "size": {"type": "integer"}, "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            "url": {"type": "string"},
            "preview": {"type": "object", "description": "Preview built at upload: kind "
                        "(html, table, email, image, page, text, media, none), content and a "
                        "note when no preview could be made; `page` is a PDF whose first "
                        "page is shown as a picture on the evidence page (`pages` is its page "
                        "count), and a HEIC/HEIF photo is an `image` shown from a JPEG copy"},
        },
    },
    "EvidenceVersion": {
        "type": "object", "additionalProperties": False,
        "required": ["version", "title", "activity_on", "activity_place", "body_md", "details",
                     "is_simulated", "personal_data_confirmed", "change_note", "created_at",
                     "files"],
        "properties": {
            "version": {"type": "integer"}, "title": {"type": "string"},
            "activity_on": _DATE, "activity_place": {"type": "string"},
            "body_md": {"type": "string"}, "details": {"type": "object"},
            "is_simulated": {"type": "boolean"}, "personal_data_confirmed": {"type": "boolean"},
            "change_note": {"type": "string"}, "created_at": {"type": "string"},
            "files": {"type": "array", "items": {"$ref": "#/components/schemas/EvidenceFile"}},
        },
    },
    "Evidence": {
        "type": "object", "additionalProperties": False,
        "required": ["id", "enrolment_id", "kind", "kind_label", "status", "current_version",
                     "created_at", "updated_at", "submitted_at", "version", "versions",
                     "mappings", "personal_data_warnings"],
        "properties": {
            "id": {"type": "integer"}, "enrolment_id": {"type": "integer"},
            "kind": {"type": "string", "enum": _KINDS}, "kind_label": {"type": "string"},
            "status": {"type": "string", "enum": _STATUSES},
            "current_version": {"type": "integer"},
            "created_at": {"type": "string"}, "updated_at": {"type": "string"},
            "submitted_at": {"type": ["string", "null"]},
            "version": {"$ref": "#/components/schemas/EvidenceVersion"},
            "versions": {"type": "array", "items": {
                "type": "object", "required": ["version", "title", "created_at"],
                "additionalProperties": False,
                "properties": {"version": {"type": "integer"}, "title": {"type": "string"},
                               "created_at": {"type": "string"}}}},
            "mappings": {"type": "array", "items": {
                "type": "object", "required": ["criterion_id", "number", "rationale", "location"],
                "additionalProperties": False,
                "properties": {"criterion_id": {"type": "integer"}, "number": {"type": "string"},
                               "rationale": {"type": "string"}, "location": {"type": "string"}}}},
            "personal_data_warnings": {"type": "array", "items": {
                "type": "object", "required": ["kind", "excerpt"], "additionalProperties": False,
                "properties": {"kind": {"type": "string"}, "excerpt": {"type": "string"}}}},
        },
    },
    "EvidenceCreate": {
        "type": "object", "required": ["kind", "title", "activity_on",
                                       "personal_data_confirmed"],
        "properties": {
            "kind": {"type": "string", "enum": _KINDS}, **_EVIDENCE_FIELDS,
            "details": {"type": "object",
                        "description": "The kind's own fields, e.g. witness_name, "
                                       "relationship, held_where (in a multipart form, as JSON "
                                       "text)"},
            "files": {"type": "array", "items": {"type": "string", "format": "binary"}},
        },
    },
    "EvidenceUpdate": {
        "type": "object", "required": ["expected_version", "title", "activity_on",
                                       "personal_data_confirmed"],
        "properties": {
            "expected_version": {"type": "integer",
                                 "description": "The version being changed; a newer one "
                                                "makes the request fail with 409"},
            **_EVIDENCE_FIELDS,
            "details": {"type": "object",
                        "description": "The kind's own fields (in a multipart form, as JSON "
                                       "text)"},
            "keep_file_ids": {"type": "array", "items": {"type": "integer"},
                              "description": "Files of the current version to keep "
                                             "(default: all)"},
            "files": {"type": "array", "items": {"type": "string", "format": "binary"}},
        },
    },
    "MappingCreate": {
        "type": "object", "required": ["criterion_id"], "additionalProperties": False,
        "properties": {"criterion_id": {"type": "integer"},
                       "rationale": {"type": "string", "maxLength": 500},
                       "location": {"type": "string", "maxLength": 120}},
    },
    "Coverage": {
        "type": "object", "additionalProperties": False,
        "required": ["enrolment_id", "as_of", "total", "evidenced", "met", "outcomes",
                     "criteria"],
        "properties": {
            "enrolment_id": {"type": "integer"}, "as_of": {"type": "string", "format": "date"},
            "total": {"type": "integer"}, "evidenced": {"type": "integer"},
            "met": {"type": "integer"},
            "outcomes": {"type": "array", "items": {
                "type": "object", "required": ["number", "title", "total", "evidenced"],
                "additionalProperties": False,
                "properties": {"number": {"type": "integer"}, "title": {"type": "string"},
                               "total": {"type": "integer"}, "evidenced": {"type": "integer"}}}},
            "criteria": {"type": "array", "items": {
                "type": "object", "additionalProperties": False,
                "required": ["criterion_id", "number", "text", "status", "required", "counted",
                             "reasons", "evidence"],
                "properties": {
                    "criterion_id": {"type": "integer"}, "number": {"type": "string"},
                    "text": {"type": "string"},
                    "status": {"type": "string",
                               "enum": ["met", "evidenced", "gap", "no_evidence"]},
                    "required": {"type": "integer"}, "counted": {"type": "integer"},
                    "reasons": {"type": "array", "items": {
                        "type": "object", "required": ["code", "message"],
                        "additionalProperties": False,
                        "properties": {"code": {"type": "string", "enum": [
                            "no_evidence", "method_not_accepted", "simulated", "out_of_date",
                            "too_few", "not_submitted", "referred", "awaiting_assessor",
                            "met", "awaiting_countersignature", "decision_invalidated",
                            "reopened"]},
                            "message": {"type": "string"}}}},
                    "evidence": {"type": "array", "items": {
                        "type": "object", "additionalProperties": False,
                        "required": ["evidence_id", "title", "kind", "method", "status",
                                     "counts", "problems", "rationale", "location"],
                        "properties": {
                            "evidence_id": {"type": "integer"}, "title": {"type": "string"},
                            "kind": {"type": "string"}, "method": {"type": "string"},
                            "status": {"type": "string"}, "counts": {"type": "boolean"},
                            "problems": {"type": "array", "items": {"type": "string"}},
                            "rationale": {"type": "string"},
                            "location": {"type": "string"}}}},
                }}},
        },
    },
})

_CHANGE_ERRORS = {
    "403": _problem_response("The caller may not do this"),
    "409": _problem_response("Not possible in the evidence's state, or changed meanwhile"),
    "422": _problem_response("A field is missing or wrong"),
}
_UPLOAD_ERRORS = {"413": _problem_response("A file is over the size limit")}


def _json_body(schema: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {
        "schema": {"$ref": f"#/components/schemas/{schema}"}}}}


def _form_body(schema: str) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{schema}"}
    return {"required": True, "content": {"multipart/form-data": {"schema": ref},
                                          "application/json": {"schema": ref}}}


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
        "parameters": _PAGE_PARAMS,
        "responses": {"200": _ok("EnrolmentList", "Visible enrolments, in id order"), **_ERRORS,
                      **_BAD_PAGE},
    }},
    "/enrolments/{enrolment_id}": {"get": {
        "operationId": "enrolment", "summary": "One enrolment",
        "parameters": [_id_param("enrolment_id")],
        "responses": {"200": _ok("Enrolment", "The enrolment"), **_ERRORS, **_NOT_FOUND},
    }},
    "/units": {"get": {
        "operationId": "units", "summary": "Units loaded from the criteria files",
        "parameters": _PAGE_PARAMS,
        "responses": {"200": _ok("UnitList", "Units, in id order"), **_ERRORS, **_BAD_PAGE},
    }},
    "/units/{unit_id}": {"get": {
        "operationId": "unit", "summary": "A unit with its learning outcomes, criteria, "
                                          "assessment rules and guidance",
        "parameters": [_id_param("unit_id")],
        "responses": {"200": _ok("Unit", "The unit"), **_ERRORS, **_NOT_FOUND},
    }},
}


PATHS.update({
    "/enrolments/{enrolment_id}/evidence": {
        "get": {
            "operationId": "evidence_list", "summary": "An enrolment's evidence",
            "parameters": [_id_param("enrolment_id"),
                           {"name": "kind", "in": "query", "schema": {"type": "string",
                                                                      "enum": _KINDS}},
                           {"name": "status", "in": "query", "schema": {"type": "string",
                                                                        "enum": _STATUSES}},
                           *_PAGE_PARAMS],
            "responses": {"200": _ok("EvidenceList", "Evidence, in id order"),
                          **_ERRORS, **_NOT_FOUND, **_BAD_PAGE},
        },
        "post": {
            "operationId": "evidence_create",
            "summary": "Add evidence (a draft), with files (multipart)",
            "parameters": [_id_param("enrolment_id")],
            "requestBody": _form_body("EvidenceCreate"),
            "responses": {"201": _ok("Evidence", "Created"), **_ERRORS, **_NOT_FOUND,
                          **_CHANGE_ERRORS, **_UPLOAD_ERRORS},
        },
    },
    "/evidence/{evidence_id}": {
        "get": {
            "operationId": "evidence_read", "summary": "One evidence item, current version",
            "parameters": [_id_param("evidence_id")],
            "responses": {"200": _ok("Evidence", "The evidence"), **_ERRORS, **_NOT_FOUND},
        },
        "patch": {
            "operationId": "evidence_update",
            "summary": "Save a new version (draft or referred back only)",
            "parameters": [_id_param("evidence_id")],
            "requestBody": _form_body("EvidenceUpdate"),
            "responses": {"200": _ok("Evidence", "Updated"), **_ERRORS, **_NOT_FOUND,
                          **_CHANGE_ERRORS, **_UPLOAD_ERRORS},
        },
    },
    "/evidence/{evidence_id}/submit": {"post": {
        "operationId": "evidence_submit", "summary": "Submit for assessment",
        "parameters": [_id_param("evidence_id")],
        "responses": {"200": _ok("Evidence", "Submitted"), **_ERRORS, **_NOT_FOUND,
                      **_CHANGE_ERRORS},
    }},
    "/evidence/{evidence_id}/withdraw": {"post": {
        "operationId": "evidence_withdraw", "summary": "Withdraw (draft or referred back only)",
        "parameters": [_id_param("evidence_id")],
        "requestBody": {"content": {"application/json": {"schema": {
            "type": "object", "properties": {"reason": {"type": "string"}}}}}},
        "responses": {"200": _ok("Evidence", "Withdrawn"), **_ERRORS, **_NOT_FOUND,
                      **_CHANGE_ERRORS},
    }},
    "/evidence/{evidence_id}/mappings": {"post": {
        "operationId": "mapping_add", "summary": "Map the evidence to a criterion",
        "parameters": [_id_param("evidence_id")],
        "requestBody": _json_body("MappingCreate"),
        "responses": {"201": _ok("Evidence", "Mapped"), "200": _ok("Evidence", "Updated"),
                      **_ERRORS, **_NOT_FOUND, **_CHANGE_ERRORS},
    }},
    "/evidence/{evidence_id}/mappings/{criterion_id}": {"delete": {
        "operationId": "mapping_remove", "summary": "Remove a mapping (kept as history)",
        "parameters": [_id_param("evidence_id"), _id_param("criterion_id")],
        "responses": {"204": {"description": "Removed"}, **_ERRORS, **_NOT_FOUND,
                      **_CHANGE_ERRORS},
    }},
    "/enrolments/{enrolment_id}/coverage": {"get": {
        "operationId": "enrolment_coverage",
        "summary": "Coverage per criterion: status, mapped evidence, and why it is not covered",
        "parameters": [_id_param("enrolment_id")],
        "responses": {"200": _ok("Coverage", "Coverage"), **_ERRORS, **_NOT_FOUND},
    }},
    "/files/{file_id}": {"get": {
        "operationId": "evidence_file", "summary": "Download an evidence file",
        "parameters": [_id_param("file_id")],
        "responses": {"200": {"description": "The file, byte for byte, with its own media "
                                             "type (PDF, JPEG, audio ...)",
                              "content": {"*/*": {
                                  "schema": {"type": "string", "format": "binary"}}}},
                      **_ERRORS, **_NOT_FOUND},
    }},
})


_SIGN_PROPS = {
    "typed_name": {"type": "string", "description": "The signer's full name, as on the account"},
    "password": {"type": "string", "format": "password",
                 "description": "The signer's password, re-entered for every signature"},
}
SCHEMAS.update({
    "SignRequest": {"type": "object", "required": ["typed_name", "password"],
                    "properties": _SIGN_PROPS},
    "ReviewRequest": {
        "type": "object", "required": ["outcome", "expected_version"],
        "properties": {
            "outcome": {"type": "string", "enum": ["accepted", "referred"]},
            "feedback_md": {"type": "string", "description": "Required when referring back"},
            "expected_version": {"type": "integer"},
            "varcs": {"type": "object", "properties": {
                k: {"type": "boolean"} for k in
                ("valid", "authentic", "reliable", "current", "sufficient")}},
        },
    },
    "DecisionRequest": {
        "type": "object",
        "required": ["criterion_id", "evidence_ids", "expected_state", *_SIGN_PROPS],
        "properties": {
            "criterion_id": {"type": "integer"},
            "evidence_ids": {"type": "array", "items": {"type": "integer"}},
            "note_md": {"type": "string"},
            "expected_state": {"type": "string",
                               "description": "From GET /enrolments/{id}/decision-state: "
                                              "refuses the decision if the evidence changed"},
            **_SIGN_PROPS,
        },
    },
    "Decision": {
        "type": "object", "additionalProperties": False,
        "required": ["id", "criterion_id", "number", "status", "evidence", "note_md",
                     "decided_by", "decided_at", "signature_id", "countersigned_by",
                     "ended_reason"],
        "properties": {
            "id": {"type": "integer"}, "criterion_id": {"type": "integer"},
            "number": {"type": "string"},
            "status": {"type": "string", "enum": ["awaiting_countersignature", "met",
                                                  "invalidated", "reopened"]},
            "evidence": {"type": "array", "items": {
                "type": "object", "required": ["evidence_id", "version"],
                "properties": {"evidence_id": {"type": "integer"},
                               "version": {"type": "integer"}}}},
            "note_md": {"type": "string"}, "decided_by": {"type": "integer"},
            "decided_at": {"type": "string"}, "signature_id": {"type": "integer"},
            "countersigned_by": {"type": ["integer", "null"]},
            "ended_reason": {"type": ["string", "null"]},
        },
    },
    "DecisionList": {
        "type": "object", "required": ["items", "next"], "additionalProperties": False,
        "properties": {"items": {"type": "array",
                                 "items": {"$ref": "#/components/schemas/Decision"}},
                       "next": _NEXT},
    },
    "Signature": {
        "type": "object", "additionalProperties": False,
        "required": ["id", "purpose", "subject_type", "subject_id", "signer", "statement",
                     "signed_at", "content_hash", "verification"],
        "properties": {
            "id": {"type": "integer"},
            "purpose": {"type": "string", "enum": [
                "evidence_declaration", "unit_declaration", "criterion_decision",
                "countersignature", "unit_signoff", "unit_cosign", "iqa_outcome",
                "decision_return", "assessor_record"]},
            "subject_type": {"type": "string"}, "subject_id": {"type": "integer"},
            "signer": {"type": "object", "required": ["id", "role", "typed_name"],
                       "additionalProperties": False,
                       "properties": {"id": {"type": "integer"}, "role": {"type": "string"},
                                      "typed_name": {"type": "string"}}},
            "statement": {"type": "string"}, "signed_at": {"type": "string"},
            "content_hash": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            "verification": {"type": "object", "required": ["state", "reason"],
                             "additionalProperties": False,
                             "properties": {"state": {"type": "string", "enum": [
                                 "valid", "invalidated", "broken"]},
                                 "reason": {"type": "string"}}},
        },
    },
    "SignatureList": {
        "type": "object", "required": ["items", "next", "summary"], "additionalProperties": False,
        "properties": {
            "items": {"type": "array", "items": {"$ref": "#/components/schemas/Signature"}},
            "next": _NEXT,
            "summary": {"type": "object", "required": ["valid", "invalidated", "broken"],
                        "properties": {k: {"type": "integer"}
                                       for k in ("valid", "invalidated", "broken")}},
        },
    },
})
_SIGN_ERRORS = {**_CHANGE_ERRORS, "429": _problem_response("Too many wrong passwords")}


def _signing(operation_id: str, summary: str, param: str, body: str, ok: str,
             ok_status: str = "201") -> dict[str, Any]:
    return {"post": {
        "operationId": operation_id, "summary": summary, "parameters": [_id_param(param)],
        "requestBody": _json_body(body),
        "responses": {ok_status: _ok(ok, "Signed"), **_ERRORS, **_NOT_FOUND, **_SIGN_ERRORS},
    }}


PATHS.update({
    "/evidence/{evidence_id}/review": {"post": {
        "operationId": "evidence_review", "summary": "Accept or refer back (assessor)",
        "parameters": [_id_param("evidence_id")], "requestBody": _json_body("ReviewRequest"),
        "responses": {"200": _ok("Evidence", "Reviewed"), **_ERRORS, **_NOT_FOUND,
                      **_CHANGE_ERRORS},
    }},
    "/evidence/{evidence_id}/declaration": _signing(
        "evidence_declare_submit",
        "Submit, signing the learner's declaration of authenticity over this version",
        "evidence_id", "SignRequest", "Evidence", "200"),
    "/enrolments/{enrolment_id}/decisions": {
        "get": {
            "operationId": "decisions_list", "summary": "Criterion decisions, live and ended",
            "parameters": [_id_param("enrolment_id"), *_PAGE_PARAMS],
            "responses": {"200": _ok("DecisionList", "Decisions, in id order"), **_ERRORS,
                          **_NOT_FOUND, **_BAD_PAGE},
        },
        **_signing("decisions_create", "Sign a criterion as met (assessor)", "enrolment_id",
                   "DecisionRequest", "Decision"),
    },
    "/enrolments/{enrolment_id}/decision-state": {"get": {
        "operationId": "decision_state",
        "summary": "The expected_state token for deciding on the given evidence",
        "parameters": [_id_param("enrolment_id"),
                       {"name": "evidence_ids", "in": "query", "required": False,
                        "schema": {"type": "string"},
                        "description": "Comma-separated ids; none means no evidence"}],
        "responses": {"200": {"description": "Token", "content": {"application/json": {
            "schema": {"type": "object", "required": ["expected_state"],
                       "properties": {"expected_state": {"type": "string"}}}}}},
            **_ERRORS, **_NOT_FOUND},
    }},
    "/decisions/{decision_id}/countersign": _signing(
        "decision_countersign", "Countersign a trainee's decision (qualified assessor)",
        "decision_id", "SignRequest", "Decision", "200"),
    "/enrolments/{enrolment_id}/declaration": _signing(
        "unit_declare", "The learner's unit declaration of authenticity", "enrolment_id",
        "SignRequest", "Signature"),
    "/enrolments/{enrolment_id}/sign-off": _signing(
        "unit_sign_off", "The assessor signs the unit off", "enrolment_id", "SignRequest",
        "Signature"),
    "/enrolments/{enrolment_id}/cosign": _signing(
        "unit_cosign", "The learner co-signs the sign-off", "enrolment_id", "SignRequest",
        "Signature"),
    "/enrolments/{enrolment_id}/signatures": {"get": {
        "operationId": "signatures_list",
        "summary": "Every signature, each verified now: valid, invalidated (why) or broken; the "
                   "summary counts all of the enrolment's signatures, whichever the page",
        "parameters": [_id_param("enrolment_id"), *_PAGE_PARAMS],
        "responses": {"200": _ok("SignatureList", "Signatures, in id order"), **_ERRORS,
                      **_NOT_FOUND, **_BAD_PAGE},
    }},
})


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
