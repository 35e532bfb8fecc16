"""API v1 routes for evidence, mappings and coverage (registered on the API blueprint)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from flask import current_app, g, jsonify, request, url_for

from portfolio import db
from portfolio.api import schemas
from portfolio.api.inputs import next_page_url, page_params, paged
from portfolio.api.openapi import BAD_PAGE, CHANGE, PAGE_PARAMS, UPLOAD, operation
from portfolio.api.views import bp
from portfolio.enrolments.queries import get_enrolment
from portfolio.errors import NotFound, PermissionDenied, ValidationFailed
from portfolio.evidence import services
from portfolio.evidence.coverage import Coverage, compute_coverage
from portfolio.evidence.kinds import KINDS
from portfolio.evidence.queries import get_evidence, get_file, list_evidence
from portfolio.evidence.redaction import findings_for
from portfolio.models import Evidence, EvidenceVersion
from portfolio.models.evidence import EvidenceStatus
from portfolio.permissions import can_change_evidence
from portfolio.viewkit import file_store, send_evidence_file


def _input(body: schemas.EvidenceCreate | schemas.EvidenceUpdate) -> services.EvidenceInput:
    return services.EvidenceInput(
        title=body.title, activity_on=body.activity_on, activity_place=body.activity_place,
        body_md=body.body_md, details=body.details, is_simulated=body.is_simulated,
        personal_data_confirmed=body.personal_data_confirmed, change_note=body.change_note)


def _uploads() -> list[Any]:
    uploads = [f for f in request.files.getlist("files") if f and f.filename]
    if len(uploads) > int(current_app.config["MAX_FILES_PER_UPLOAD"]):
        raise ValidationFailed("Too many files in one request.", field="files")
    return uploads


def _max_bytes() -> int:
    return int(current_app.config["MAX_FILE_MB"]) * 1024 * 1024


def _version_json(version: EvidenceVersion) -> dict[str, Any]:
    return {
        "version": version.version, "title": version.title,
        "activity_on": version.activity_on.isoformat() if version.activity_on else None,
        "activity_place": version.activity_place, "body_md": version.body_md,
        "details": version.details, "is_simulated": version.is_simulated,
        "personal_data_confirmed": version.personal_data_confirmed,
        "change_note": version.change_note, "created_at": version.created_at.isoformat(),
        "files": [{"id": f.id, "filename": f.filename, "media_type": f.media_type,
                   "category": f.category, "size": f.size, "sha256": f.sha256,
                   "url": url_for("api.evidence_file", file_id=f.id),
                   "preview": f.preview} for f in version.files],
    }


def evidence_json(evidence: Evidence) -> dict[str, Any]:
    """Return the API representation of an evidence item (current version in full)."""
    version = services.current_version(evidence)
    findings = findings_for(version, evidence.enrolment)
    return {
        "id": evidence.id, "enrolment_id": evidence.enrolment_id, "kind": evidence.kind,
        "kind_label": KINDS[evidence.kind].label, "status": evidence.status,
        "current_version": evidence.current_version,
        "created_at": evidence.created_at.isoformat(),
        "updated_at": evidence.updated_at.isoformat(),
        "submitted_at": evidence.submitted_at.isoformat() if evidence.submitted_at else None,
        "version": _version_json(version),
        "versions": [{"version": v.version, "title": v.title,
                      "created_at": v.created_at.isoformat()} for v in evidence.versions],
        "mappings": [{"criterion_id": m.criterion_id, "number": m.criterion.number,
                      "rationale": m.rationale, "location": m.location}
                     for m in sorted((m for m in evidence.mappings if m.removed_at is None),
                                     key=lambda m: m.criterion.position)],
        "personal_data_warnings": [{"kind": f.kind, "excerpt": f.excerpt} for f in findings],
    }


def coverage_json(coverage: Coverage) -> dict[str, Any]:
    """Return coverage per criterion with statuses, mapped evidence and reasons."""
    return {
        "enrolment_id": coverage.enrolment_id, "as_of": coverage.today.isoformat(),
        "total": coverage.total, "evidenced": coverage.evidenced, "met": coverage.met,
        "outcomes": [{"number": o.number, "title": o.title, "total": o.total,
                      "evidenced": o.evidenced} for o in coverage.outcomes],
        "criteria": [{
            "criterion_id": c.criterion_id, "number": c.number, "text": c.text,
            "status": c.status, "required": c.required, "counted": c.counted,
            "reasons": [{"code": r.code, "message": r.message} for r in c.reasons],
            "evidence": [{"evidence_id": i.evidence_id, "title": i.title, "kind": i.kind,
                          "method": i.method, "status": i.status, "counts": i.counts,
                          "problems": list(i.problems), "rationale": i.rationale,
                          "location": i.location} for i in c.items],
        } for c in coverage.criteria],
    }


_LIST_QUERY = [
    {"name": "kind", "in": "query", "required": False,
     "schema": {"type": "string", "enum": list(KINDS)}},
    {"name": "status", "in": "query", "required": False,
     "schema": {"type": "string", "enum": [s.value for s in EvidenceStatus]}},
    *PAGE_PARAMS,
]


@operation(bp, "GET", "/enrolments/<int:enrolment_id>/evidence",
           summary="An enrolment's evidence", query=_LIST_QUERY, errors=[BAD_PAGE],
           ok=("200", schemas.EvidenceList, "Evidence, in id order"))
def evidence_list(enrolment_id: int) -> Any:
    enrolment = get_enrolment(db.session(), enrolment_id, g.api_user)
    kind = request.args.get("kind") or None
    status = request.args.get("status") or None
    if kind is not None and kind not in KINDS:
        raise ValidationFailed("kind is one of the evidence kinds.", field="kind")
    if status is not None and status not in {s.value for s in EvidenceStatus}:
        raise ValidationFailed("status is one of the evidence statuses.", field="status")
    after, limit = page_params()
    rows = list_evidence(db.session(), enrolment.id, kind=kind, status=status,
                         after_id=after, limit=limit + 1)
    following = next_page_url(rows[limit - 1].id, limit) if len(rows) > limit else None
    return paged([{
        "id": r.id, "kind": r.kind, "status": r.status, "title": r.title,
        "activity_on": r.activity_on.isoformat() if r.activity_on else None,
        "current_version": r.version, "file_count": r.file_count, "criteria": list(r.criteria),
    } for r in rows[:limit]], following)


@operation(bp, "POST", "/enrolments/<int:enrolment_id>/evidence",
           summary="Add evidence (a draft), with files (multipart)", errors=[CHANGE, UPLOAD],
           body=schemas.EvidenceCreate, form=True, ok=("201", schemas.Evidence, "Created"))
def evidence_create(enrolment_id: int, read: Callable[[], schemas.EvidenceCreate]) -> Any:
    s = db.session()
    enrolment = get_enrolment(s, enrolment_id, g.api_user)
    body = read()
    with file_store().batch() as batch:
        for upload in _uploads():
            batch.add(upload.stream, upload.filename, _max_bytes())
        evidence = services.add_evidence(s, actor=g.api_user, enrolment=enrolment,
                                         kind=body.kind, data=_input(body),
                                         files=batch.files, today=date.today())
        batch.commit(s)
    response = jsonify(evidence_json(get_evidence(s, evidence.id, g.api_user)))
    response.status_code = 201
    response.headers["Location"] = url_for("api.evidence_read", evidence_id=evidence.id)
    return response


@operation(bp, "GET", "/evidence/<int:evidence_id>", summary="One evidence item, current version",
           ok=("200", schemas.Evidence, "The evidence"))
def evidence_read(evidence_id: int) -> Any:
    return jsonify(evidence_json(get_evidence(db.session(), evidence_id, g.api_user)))


@operation(bp, "PATCH", "/evidence/<int:evidence_id>",
           summary="Save a new version (draft or referred back only)", errors=[CHANGE, UPLOAD],
           body=schemas.EvidenceUpdate, form=True, ok=("200", schemas.Evidence, "Updated"))
def evidence_update(evidence_id: int, read: Callable[[], schemas.EvidenceUpdate]) -> Any:
    s = db.session()
    evidence = get_evidence(s, evidence_id, g.api_user)
    if not can_change_evidence(g.api_user, evidence.enrolment, evidence.created_by_id):
        raise PermissionDenied("Only the person who added this evidence can change it.")
    body = read()
    keep = body.keep_file_ids
    if keep is None:
        keep = [f.id for f in services.current_version(evidence).files]
    with file_store().batch() as batch:
        for upload in _uploads():
            batch.add(upload.stream, upload.filename, _max_bytes())
        services.revise_evidence(s, evidence, actor=g.api_user, data=_input(body),
                                 keep_file_ids=keep,
                                 files=batch.files, expected_version=body.expected_version,
                                 today=date.today())
        batch.commit(s)
    return jsonify(evidence_json(get_evidence(s, evidence.id, g.api_user)))


@operation(bp, "POST", "/evidence/<int:evidence_id>/submit", summary="Submit for assessment",
           errors=[CHANGE], ok=("200", schemas.Evidence, "Submitted"))
def evidence_submit(evidence_id: int) -> Any:
    s = db.session()
    evidence = get_evidence(s, evidence_id, g.api_user)
    services.submit_evidence(s, evidence, actor=g.api_user)
    s.commit()
    return jsonify(evidence_json(evidence))


@operation(bp, "POST", "/evidence/<int:evidence_id>/withdraw",
           summary="Withdraw (draft or referred back only)", errors=[CHANGE],
           body=schemas.WithdrawRequest, body_optional=True,
           ok=("200", schemas.Evidence, "Withdrawn"))
def evidence_withdraw(evidence_id: int, read: Callable[[], schemas.WithdrawRequest]) -> Any:
    s = db.session()
    evidence = get_evidence(s, evidence_id, g.api_user)
    services.withdraw_evidence(s, evidence, actor=g.api_user, reason=read().reason)
    s.commit()
    return jsonify(evidence_json(evidence))


@operation(bp, "POST", "/evidence/<int:evidence_id>/mappings",
           summary="Map the evidence to a criterion", errors=[CHANGE],
           body=schemas.MappingCreate, ok=("201", schemas.Evidence, "Mapped"),
           more={"200": (schemas.Evidence, "Already mapped: rationale and location updated")})
def mapping_add(evidence_id: int, read: Callable[[], schemas.MappingCreate]) -> Any:
    s = db.session()
    evidence = get_evidence(s, evidence_id, g.api_user)
    body = read()
    created = services.map_to_criterion(s, evidence, actor=g.api_user, mapping=(
        services.MappingInput(body.criterion_id, body.rationale, body.location)))
    s.commit()
    response = jsonify(evidence_json(get_evidence(s, evidence.id, g.api_user)))
    response.status_code = 201 if created else 200
    return response


@operation(bp, "DELETE", "/evidence/<int:evidence_id>/mappings/<int:criterion_id>",
           summary="Remove a mapping (kept as history)", errors=[CHANGE],
           ok=("204", None, "Removed"))
def mapping_remove(evidence_id: int, criterion_id: int) -> Any:
    s = db.session()
    evidence = get_evidence(s, evidence_id, g.api_user)
    if not services.unmap_from_criterion(s, evidence, actor=g.api_user, criterion_id=criterion_id):
        raise NotFound("This evidence is not mapped to that criterion.")
    s.commit()
    return "", 204


@operation(bp, "GET", "/enrolments/<int:enrolment_id>/coverage",
           summary="Coverage per criterion: status, mapped evidence, and why it is not covered",
           ok=("200", schemas.Coverage, "Coverage"))
def enrolment_coverage(enrolment_id: int) -> Any:
    s = db.session()
    enrolment = get_enrolment(s, enrolment_id, g.api_user)
    return jsonify(coverage_json(compute_coverage(s, enrolment, date.today())))


@operation(bp, "GET", "/files/<int:file_id>", summary="Download an evidence file",
           ok=("200", {"*/*": {"schema": {"type": "string", "format": "binary"}}},
               "The file, byte for byte, with its own media type (PDF, JPEG, audio ...)"))
def evidence_file(file_id: int) -> Any:
    item = get_file(db.session(), file_id, g.api_user)
    return send_evidence_file(item, download=False, missing="The stored file is missing.")
