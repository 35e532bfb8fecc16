"""API v1 routes for evidence, mappings and coverage (registered on the API blueprint)."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from flask import current_app, g, jsonify, request, url_for

from portfolio import db
from portfolio.api.inputs import json_object, next_page_url, page_params, paged, whole_number
from portfolio.api.views import bp
from portfolio.enrolments.queries import get_enrolment
from portfolio.errors import NotFound, PermissionDenied, ValidationFailed
from portfolio.evidence import services
from portfolio.evidence.coverage import Coverage, compute_coverage
from portfolio.evidence.kinds import KINDS
from portfolio.evidence.queries import get_evidence, get_file, list_evidence
from portfolio.evidence.redaction import findings_for
from portfolio.ids import parse_id
from portfolio.models import Evidence, EvidenceVersion
from portfolio.permissions import can_change_evidence
from portfolio.viewkit import file_store, send_evidence_file

TRUE = {"1", "true", "yes", "on"}


def _date(raw: Any, field: str) -> date | None:
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str):
        raise ValidationFailed("Dates are YYYY-MM-DD text.", field=field)
    try:
        return date.fromisoformat(raw)
    except ValueError as exc:
        raise ValidationFailed("Dates are YYYY-MM-DD.", field=field) from exc


def _payload() -> dict[str, Any]:
    """Read fields from JSON or from a multipart form (details as JSON text)."""
    if request.is_json:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise ValidationFailed("Send a JSON object.")
        return body
    data: dict[str, Any] = {k: v for k, v in request.form.items() if k != "details"}
    if request.form.get("details"):
        try:
            data["details"] = json.loads(request.form["details"])
        except ValueError as exc:
            raise ValidationFailed("details must be a JSON object.", field="details") from exc
    if "keep_file_ids" in request.form:
        data["keep_file_ids"] = request.form.getlist("keep_file_ids")
    return data


def _flag(value: Any) -> bool:
    return value is True or str(value).lower() in TRUE


def _input(data: dict[str, Any]) -> services.EvidenceInput:
    details = data.get("details") or {}
    if not isinstance(details, dict):
        raise ValidationFailed("details must be an object.", field="details")
    return services.EvidenceInput(
        title=str(data.get("title") or ""),
        activity_on=_date(data.get("activity_on"), "activity_on"),
        activity_place=str(data.get("activity_place") or ""),
        body_md=str(data.get("body_md") or ""),
        details=details, is_simulated=_flag(data.get("is_simulated")),
        personal_data_confirmed=_flag(data.get("personal_data_confirmed")),
        change_note=str(data.get("change_note") or ""))


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


@bp.get("/enrolments/<int:enrolment_id>/evidence")
def evidence_list(enrolment_id: int) -> Any:
    enrolment = get_enrolment(db.session(), enrolment_id, g.api_user)
    kind = request.args.get("kind") or None
    status = request.args.get("status") or None
    after, limit = page_params()
    rows = list_evidence(db.session(), enrolment.id, kind=kind, status=status,
                         after_id=after, limit=limit + 1)
    following = next_page_url(rows[limit - 1].id, limit) if len(rows) > limit else None
    return paged([{
        "id": r.id, "kind": r.kind, "status": r.status, "title": r.title,
        "activity_on": r.activity_on.isoformat() if r.activity_on else None,
        "current_version": r.version, "file_count": r.file_count, "criteria": list(r.criteria),
    } for r in rows[:limit]], following)


@bp.post("/enrolments/<int:enrolment_id>/evidence")
def evidence_create(enrolment_id: int) -> Any:
    s = db.session()
    enrolment = get_enrolment(s, enrolment_id, g.api_user)
    data = _payload()
    with file_store().batch() as batch:
        for upload in _uploads():
            batch.add(upload.stream, upload.filename, _max_bytes())
        evidence = services.add_evidence(s, actor=g.api_user, enrolment=enrolment,
                                         kind=str(data.get("kind") or ""), data=_input(data),
                                         files=batch.files, today=date.today())
        batch.commit(s)
    response = jsonify(evidence_json(get_evidence(s, evidence.id, g.api_user)))
    response.status_code = 201
    response.headers["Location"] = url_for("api.evidence_read", evidence_id=evidence.id)
    return response


@bp.get("/evidence/<int:evidence_id>")
def evidence_read(evidence_id: int) -> Any:
    return jsonify(evidence_json(get_evidence(db.session(), evidence_id, g.api_user)))


@bp.patch("/evidence/<int:evidence_id>")
def evidence_update(evidence_id: int) -> Any:
    s = db.session()
    evidence = get_evidence(s, evidence_id, g.api_user)
    if not can_change_evidence(g.api_user, evidence.enrolment, evidence.created_by_id):
        raise PermissionDenied("Only the person who added this evidence can change it.")
    data = _payload()
    expected = whole_number(data.get("expected_version"), "expected_version",
                            "Send expected_version: the version you are changing.")
    keep = data.get("keep_file_ids")
    if keep is None:
        keep = [f.id for f in services.current_version(evidence).files]
    elif not isinstance(keep, list) or any(parse_id(k) is None for k in keep):
        raise ValidationFailed("keep_file_ids is a list of file ids.", field="keep_file_ids")
    keep = [parse_id(k) for k in keep]
    with file_store().batch() as batch:
        for upload in _uploads():
            batch.add(upload.stream, upload.filename, _max_bytes())
        services.revise_evidence(s, evidence, actor=g.api_user, data=_input(data),
                                 keep_file_ids=keep,
                                 files=batch.files, expected_version=expected,
                                 today=date.today())
        batch.commit(s)
    return jsonify(evidence_json(get_evidence(s, evidence.id, g.api_user)))


@bp.post("/evidence/<int:evidence_id>/submit")
def evidence_submit(evidence_id: int) -> Any:
    s = db.session()
    evidence = get_evidence(s, evidence_id, g.api_user)
    services.submit_evidence(s, evidence, actor=g.api_user)
    s.commit()
    return jsonify(evidence_json(evidence))


@bp.post("/evidence/<int:evidence_id>/withdraw")
def evidence_withdraw(evidence_id: int) -> Any:
    s = db.session()
    evidence = get_evidence(s, evidence_id, g.api_user)
    body = json_object(optional=True)
    services.withdraw_evidence(s, evidence, actor=g.api_user, reason=str(body.get("reason", "")))
    s.commit()
    return jsonify(evidence_json(evidence))


@bp.post("/evidence/<int:evidence_id>/mappings")
def mapping_add(evidence_id: int) -> Any:
    s = db.session()
    evidence = get_evidence(s, evidence_id, g.api_user)
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("criterion_id"), int) \
            or parse_id(body["criterion_id"]) is None:
        raise ValidationFailed("Send JSON with criterion_id (and optional rationale, location).",
                               field="criterion_id")
    created = services.map_to_criterion(s, evidence, actor=g.api_user, mapping=(
        services.MappingInput(body["criterion_id"], str(body.get("rationale", ""))[:500],
                              str(body.get("location", ""))[:120])))
    s.commit()
    response = jsonify(evidence_json(get_evidence(s, evidence.id, g.api_user)))
    response.status_code = 201 if created else 200
    return response


@bp.delete("/evidence/<int:evidence_id>/mappings/<int:criterion_id>")
def mapping_remove(evidence_id: int, criterion_id: int) -> Any:
    s = db.session()
    evidence = get_evidence(s, evidence_id, g.api_user)
    if not services.unmap_from_criterion(s, evidence, actor=g.api_user, criterion_id=criterion_id):
        raise NotFound("This evidence is not mapped to that criterion.")
    s.commit()
    return "", 204


@bp.get("/enrolments/<int:enrolment_id>/coverage")
def enrolment_coverage(enrolment_id: int) -> Any:
    s = db.session()
    enrolment = get_enrolment(s, enrolment_id, g.api_user)
    return jsonify(coverage_json(compute_coverage(s, enrolment, date.today())))


@bp.get("/files/<int:file_id>")
def evidence_file(file_id: int) -> Any:
    item = get_file(db.session(), file_id, g.api_user)
    return send_evidence_file(item, download=False, missing="The stored file is missing.")
