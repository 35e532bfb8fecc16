"""The external quality assurer's pages: their packs, and inside one pack, read-only, its sample.

Every page under /eqa/packs/<pack_id>/ goes through `pack_page`: the pack must be the signed-in
EQA's own (404 otherwise, whatever the id), open today (403 before its first day, 410 after its
last or once revoked), and every id in the address must belong to it (404 otherwise). Each such
request, allowed or refused, is written to the pack's access log with its status.
"""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from sqlalchemy import func, select

from portfolio import db
from portfolio.assessment.queries import list_decisions, list_reviews
from portfolio.assessment.signing import verify_signature
from portfolio.criteria.queries import get_unit_view
from portfolio.eqa import pack_jobs, services
from portfolio.eqa.access import pack_page, today
from portfolio.eqa.sampling_records import gather_sampling_records
from portfolio.errors import NotFound
from portfolio.evidence.coverage import compute_coverage
from portfolio.evidence.kinds import KINDS
from portfolio.evidence.parsing import SAFE_INLINE_IMAGE_TYPES, Preview
from portfolio.evidence.queries import list_evidence
from portfolio.evidence.services import current_version
from portfolio.export.files import export_files
from portfolio.job_states import JobStatus, is_active
from portfolio.models import EqaPack, EqaPackJob, EvidenceComment, Role, Signature
from portfolio.security import roles_required
from portfolio.viewkit import send_checked, send_evidence_file, send_screen_copy

bp = Blueprint("eqa", __name__, url_prefix="/eqa")


@bp.route("")
@roles_required(Role.EQA)
def home() -> Any:
    packs = services.packs_of(db.session(), current_user)
    day = today()
    groups: dict[str, list[EqaPack]] = {"open": [], "upcoming": [], "ended": []}
    for pack in packs:
        state = pack.state(day)
        groups["ended" if state in ("expired", "revoked") else state].append(pack)
    return render_template("eqa/home.html", groups=groups, today=day)


@bp.route("/packs/<int:pack_id>")
@pack_page
def pack(pack: EqaPack) -> Any:
    s = db.session()
    day = today()
    rows = [(e, compute_coverage(s, e, day)) for e in services.pack_enrolments(s, pack)]
    return render_template("eqa/pack.html", pack=pack, rows=rows, today=day)


@bp.route("/packs/<int:pack_id>/staff")
@pack_page
def staff(pack: EqaPack) -> Any:
    return render_template("eqa/staff.html", pack=pack,
                           staff=services.staff_list(db.session(), pack))


@bp.route("/packs/<int:pack_id>/enrolments/<int:enrolment_id>")
@pack_page
def enrolment(pack: EqaPack, enrolment_id: int) -> Any:
    s = db.session()
    e = services.pack_enrolment(s, pack, enrolment_id)
    signatures = list(s.scalars(select(Signature).where(Signature.enrolment_id == e.id)
                                .order_by(Signature.id)))
    return render_template(
        "eqa/enrolment.html", pack=pack, enrolment=e, coverage=compute_coverage(s, e, today()),
        evidence=[r for r in list_evidence(s, e.id) if r.status != "withdrawn"],
        decisions=list_decisions(s, e.id), kinds=KINDS,
        witnesses=services.witness_list(s, e),
        signatures=[(sig, verify_signature(s, sig)) for sig in signatures])


@bp.route("/packs/<int:pack_id>/evidence/<int:evidence_id>")
@pack_page
def evidence(pack: EqaPack, evidence_id: int) -> Any:
    s = db.session()
    item = services.pack_evidence(s, pack, evidence_id)
    version = current_version(item)
    declarations = list(s.scalars(select(Signature).where(
        Signature.subject_type == "evidence", Signature.subject_id == item.id)
        .order_by(Signature.id)))
    mappings = sorted((m for m in item.mappings if m.removed_at is None),
                      key=lambda m: (m.criterion.position, m.source))
    return render_template(
        "eqa/evidence.html", pack=pack, evidence=item, version=version,
        file_url=lambda f, download=False: url_for("eqa.file", pack_id=pack.id, file_id=f.id,
                                                   download=1 if download else None),
        preview_url=lambda f: url_for("eqa.file_preview", pack_id=pack.id, file_id=f.id),
        enrolment=item.enrolment, kind=KINDS[item.kind], mappings=mappings,
        unit=get_unit_view(s, item.enrolment.unit_id),
        previews={f.id: Preview.from_json(f.preview) for f in version.files},
        inline_types=SAFE_INLINE_IMAGE_TYPES, reviews=list_reviews(s, item.id),
        declarations=[(d, verify_signature(s, d)) for d in declarations],
        comment_count=s.scalar(select(func.count()).select_from(EvidenceComment)
                               .where(EvidenceComment.evidence_id == item.id)))


@bp.route("/packs/<int:pack_id>/files/<int:file_id>")
@pack_page
def file(pack: EqaPack, file_id: int) -> Any:
    item = services.pack_file(db.session(), pack, file_id)
    return send_evidence_file(item, download=bool(request.args.get("download")),
                              missing="The stored file is missing. Tell the centre's admin.")


@bp.route("/packs/<int:pack_id>/files/<int:file_id>/preview")
@pack_page
def file_preview(pack: EqaPack, file_id: int) -> Any:
    item = services.pack_file(db.session(), pack, file_id)
    return send_screen_copy(item, missing="The stored file is missing. Tell the centre's admin.")


@bp.route("/packs/<int:pack_id>/sampling")
@pack_page
def sampling(pack: EqaPack) -> Any:
    s = db.session()
    return render_template("eqa/sampling.html", pack=pack,
                           records=gather_sampling_records(s, pack),
                           enrolments=services.pack_enrolments(s, pack))


@bp.route("/packs/<int:pack_id>/download", methods=["POST"])
@pack_page
def download(pack: EqaPack) -> Any:
    """Ask for the pack's ZIP: start its job (or find the one running, or the finished one
    while nothing changed) and show its progress page."""
    s = db.session()
    user = current_user._get_current_object()  # type: ignore[attr-defined]
    job, new = pack_jobs.ask_for_pack(s, pack, actor=user, config=current_app.config)
    s.commit()
    if new:
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        pack_jobs.dispatch(app, job.id,
                           current_app.config["PUBLIC_URL"].rstrip("/") + "/verify")
    return redirect(url_for("eqa.pack_job", pack_id=pack.id, job_id=job.id), 303)


def _pack_job(pack: EqaPack, job_id: int) -> EqaPackJob:
    """The pack's own job (404 for any other id), marked failed first if its worker died."""
    s = db.session()
    job = s.get(EqaPackJob, job_id)
    if job is None or job.pack_id != pack.id:
        raise NotFound("No such download of this pack.")
    if pack_jobs.fail_if_stale(s, job, current_app.config):
        s.commit()
    return job


def _job_view(pack: EqaPack, job: EqaPackJob) -> dict[str, Any]:
    """What the progress page and its poll need, decided here rather than in the template."""
    ready = job.status == JobStatus.DONE
    return {"status": str(job.status), "progress": job.progress, "message": job.message,
            "active": is_active(job.status), "failed": job.status == JobStatus.FAILED,
            "expired": job.status == JobStatus.EXPIRED,
            "download": url_for("eqa.pack_job_file", pack_id=pack.id, job_id=job.id)
            if ready else None,
            "size": job.size if ready else None}


@bp.route("/packs/<int:pack_id>/downloads/<int:job_id>")
@pack_page
def pack_job(pack: EqaPack, job_id: int) -> Any:
    job = _pack_job(pack, job_id)
    return render_template("eqa/pack_job.html", pack=pack, job=job, view=_job_view(pack, job))


@bp.route("/packs/<int:pack_id>/downloads/<int:job_id>.json")
@pack_page
def pack_job_status(pack: EqaPack, job_id: int) -> Any:
    return jsonify(_job_view(pack, _pack_job(pack, job_id)))


@bp.route("/packs/<int:pack_id>/downloads/<int:job_id>/zip")
@pack_page
def pack_job_file(pack: EqaPack, job_id: int) -> Any:
    s = db.session()
    job = _pack_job(pack, job_id)
    if job.status != JobStatus.DONE or not job.filename or not job.sha256:
        raise NotFound("This pack is not ready, or was removed. Ask for it again.")
    files = export_files(current_app.config)
    try:
        stream = files.open_verified(f"eqa/{job.filename}", job.sha256,
                                     route="eqa.pack_job_file")
    except FileNotFoundError as exc:
        raise NotFound("The pack's file is no longer on the server. Ask for it again.") from exc
    pack_jobs.record_download(s, job, actor=current_user._get_current_object())  # type: ignore[attr-defined]
    s.commit()
    return send_checked(stream, mimetype="application/zip", filename=job.filename,
                        etag=job.sha256, attachment=True)
