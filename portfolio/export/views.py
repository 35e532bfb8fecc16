"""Export buttons, progress, downloads, and the public /verify page."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from flask import (
    Blueprint,
    current_app,
    flash,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_login import current_user, login_required
from sqlalchemy import select
from werkzeug.exceptions import RequestEntityTooLarge

from portfolio import db
from portfolio.enrolments.queries import get_enrolment
from portfolio.errors import NotFound, Removed, ValidationFailed
from portfolio.export.files import export_files
from portfolio.export.jobs import (
    TooManyExports,
    dispatch_export,
    fail_if_stale,
    get_export_job,
    start_export_job,
)
from portfolio.export.services import verdict_for_link, verify_export
from portfolio.job_states import JobStatus, is_active
from portfolio.models import AuditEvent, EqaPack, Export, ExportJob
from portfolio.paging import paginate
from portfolio.permissions import can_view_enrolment
from portfolio.security import client_address
from portfolio.viewkit import loads, send_checked
from portfolio.witness.services import rate_limited

bp = Blueprint("export", __name__)
# A portfolio's past exports, newest first, a page at a time.
EXPORTS_PAGE = 25
VERIFY_CHUNK = 1024 * 1024


def _verify_base() -> str:
    return current_app.config["PUBLIC_URL"].rstrip("/") + "/verify"


@bp.route("/enrolments/<int:enrolment_id>/exports", methods=["GET", "POST"])
@login_required
def index(enrolment_id: int) -> Any:
    s = db.session()
    enrolment = get_enrolment(s, enrolment_id, current_user)
    if request.method == "POST":
        try:
            job = start_export_job(s, enrolment, actor=current_user, config=current_app.config)
        except TooManyExports as exc:
            s.commit()  # keeps any dead job found on the way marked failed; adds no job
            flash(exc.message, "error")
            response = redirect(url_for("export.job", job_id=exc.running.id))
            response.status_code = 303
            return response
        s.commit()
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        dispatch_export(app, job.id, _verify_base())
        return redirect(url_for("export.job", job_id=job.id))
    page = paginate(s, select(Export).where(Export.enrolment_id == enrolment.id),
                    (Export.id,), size=EXPORTS_PAGE, descending=True)
    exports = page.items
    return render_template("export/index.html", enrolment=enrolment, exports=exports,
                           page=page, made_for=_made_for_eqa(s, enrolment, exports))


def _made_for_eqa(s: Any, enrolment: Any, exports: list[Export]) -> dict[int, str]:
    """Exports made without a person (no `created_by`) by an EQA pack download: which pack,
    for whom, read from the download's audit event (it lists the exports it made)."""
    orphans = {e.id for e in exports if e.created_by_id is None}
    if not orphans:
        return {}
    found: dict[int, str] = {}
    for event in s.scalars(select(AuditEvent).where(
            AuditEvent.action == "eqa.pack_download",
            AuditEvent.centre_id == enrolment.learner.centre_id)):
        ids = orphans.intersection((event.detail or {}).get("export_ids") or [])
        if ids:
            pack = s.get(EqaPack, event.subject_id)
            label = (f"EQA pack “{pack.title}”, downloaded by {pack.eqa.full_name}"
                     if pack else "An EQA pack download")
            found.update(dict.fromkeys(ids, label))
    return found


def _job_view(job: ExportJob) -> dict[str, Any]:
    """What the job's page and its poll show, decided here rather than in the template; a job
    whose worker died is marked failed first."""
    s = db.session()
    if fail_if_stale(s, job, current_app.config):
        s.commit()
    return {"status": str(job.status), "progress": job.progress, "message": job.message,
            "active": is_active(job.status), "failed": job.status == JobStatus.FAILED,
            "download": url_for("export.download", export_id=job.export_id)
            if job.export_id else None}


@bp.route("/export-jobs/<int:job_id>")
@login_required
@loads(job=get_export_job)
def job(job: ExportJob) -> Any:
    view = _job_view(job)
    return render_template("export/job.html", job=job, view=view)


@bp.route("/export-jobs/<int:job_id>.json")
@login_required
@loads(job=get_export_job)
def job_status(job: ExportJob) -> Any:
    return jsonify(_job_view(job))


@bp.route("/exports/<int:export_id>/download")
@login_required
def download(export_id: int) -> Any:
    s = db.session()
    export = s.get(Export, export_id)
    if export is None or not can_view_enrolment(current_user, export.enrolment):
        raise NotFound("No such export.")
    removed_at = export.enrolment.work_removed_at
    if removed_at is not None and export.created_at <= removed_at:
        raise Removed(f"This PDF held learner work that was removed on {removed_at:%d %B %Y} "
                      "under the centre's retention policy. A new export shows the record of "
                      "the assessment.")
    gone = "The file of this export is no longer on the server."
    files = export_files(current_app.config)
    path = files.local_path(export.filename)
    response: Any
    if path is not None:
        if not path.is_file():
            raise NotFound(gone)
        response = send_file(path, mimetype="application/pdf", as_attachment=True,
                             download_name=export.filename)
    else:
        # From the bucket, streamed through this (permission-checked) view once its bytes
        # match the SHA-256 recorded when it was made; byte ranges still work.
        try:
            handle = files.open_verified(export.filename, export.sha256,
                                         route="export download")
        except FileNotFoundError:
            raise NotFound(gone) from None
        response = send_checked(handle, mimetype="application/pdf", filename=export.filename,
                                etag=export.sha256, attachment=True)
    response.headers["Cache-Control"] = "private, no-store"
    return response


def _public(body: Any, status: int = 200) -> Any:
    response = make_response(body, status)
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response


def _limited() -> bool:
    s = db.session()
    over = rate_limited(s, f"verify:{client_address()}",
                        limit=int(current_app.config["WITNESS_RATE_LIMIT"]), window_minutes=10)
    s.commit()
    return over


def _trust() -> dict[str, Any]:
    """Where the centres' trust lists are read from (each centre's current and retired certs)."""
    return {"config": current_app.config, "instance_path": Path(current_app.instance_path)}


def _verify_limit() -> int:
    return int(current_app.config["VERIFY_MAX_MB"]) * 1024 * 1024


def _too_large() -> Any:
    mb = int(current_app.config["VERIFY_MAX_MB"])
    return _public(render_template("export/verify.html", verdict=None, error=(
        f"That file is larger than {mb} MB, so it cannot be one of our exports. Check that you "
        "chose the portfolio PDF itself, not a folder or an archive.")), 413)


@bp.url_value_preprocessor
def _limit_verify_upload(endpoint: str | None, _values: Any) -> None:
    # Runs before the form is parsed (the CSRF check reads it): the upload limit of /verify is
    # its own, far below the app's, and a larger body is refused before it is read.
    if endpoint == "export.verify" and request.method == "POST":
        request.max_content_length = _verify_limit() + 64 * 1024  # the form's other fields


@bp.errorhandler(RequestEntityTooLarge)
def _verify_too_large(exc: RequestEntityTooLarge) -> Any:
    if request.endpoint == "export.verify":
        return _too_large()
    return exc


def _save_upload(upload: Any, limit: int) -> Path | None:
    """Copy an upload to a temporary file in chunks; None (and no file) when over the limit."""
    fd, name = tempfile.mkstemp(prefix="verify-", suffix=".pdf")
    path = Path(name)
    try:
        written = 0
        with os.fdopen(fd, "wb") as out:
            while chunk := upload.stream.read(VERIFY_CHUNK):
                written += len(chunk)
                if written > limit:
                    path.unlink(missing_ok=True)
                    return None
                out.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


@bp.route("/verify", methods=["GET", "POST"])
def verify() -> Any:
    if request.method == "GET":
        return _public(render_template("export/verify.html", verdict=None))
    if request.content_length is not None and request.content_length > _verify_limit() + 65536:
        return _too_large()
    if _limited():
        return _public(render_template("export/verify.html", verdict=None, error=(
            "Too many checks from your connection. Wait ten minutes and try again.")), 429)
    upload = request.files.get("pdf")
    if upload is None or not upload.filename:
        raise ValidationFailed("Choose the PDF to check.")
    path = _save_upload(upload, _verify_limit())
    if path is None:
        return _too_large()
    try:
        verdict = verify_export(db.session(), path, **_trust())
    finally:
        path.unlink(missing_ok=True)
    return _public(render_template("export/verify.html", verdict=verdict,
                                   filename=upload.filename),
                   200 if verdict.ok else 422)


@bp.route("/verify/<public_id>")
def verify_link(public_id: str) -> Any:
    if _limited():
        return _public(render_template("export/verify.html", verdict=None, error=(
            "Too many checks from your connection. Wait ten minutes and try again.")), 429)

    s = db.session()
    export = s.scalar(select(Export).where(Export.public_id == public_id))
    if export is None:
        return _public(render_template("export/verify.html", verdict=None, error=(
            "This verification link does not match any export made here.")), 404)
    verdict = verdict_for_link(s, export, **_trust())
    return _public(render_template("export/verify.html", verdict=verdict, export=export,
                                   by_link=True))
