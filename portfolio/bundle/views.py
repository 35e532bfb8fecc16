"""Admin pages for bundles: download a learner's bundle, and import one into this centre."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    send_file,
    url_for,
)
from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.file import FileField

from portfolio import db
from portfolio.bundle.export import export_bundle
from portfolio.bundle.importer import BundleRefused, import_and_commit
from portfolio.enrolments.queries import get_centre_enrolment
from portfolio.errors import DomainError
from portfolio.models import Enrolment, Role
from portfolio.security import roles_required
from portfolio.viewkit import file_store, loads

bp = Blueprint("bundle", __name__, url_prefix="/admin")
CHUNK = 1024 * 1024


class ImportForm(FlaskForm):
    bundle = FileField("Bundle file (.zip)",
                       description="The .zip made by “Download bundle” on an enrolment, or by "
                                   "the “portfolio bundle export” command.")


def _max_bytes() -> int:
    return int(current_app.config["BUNDLE_MAX_MB"]) * 1024 * 1024


@bp.route("/enrolments/<int:enrolment_id>/bundle", methods=["POST"])
@roles_required(Role.ADMIN)
@loads(enrolment=get_centre_enrolment)
def download(enrolment: Enrolment) -> Any:
    """Send the learner's bundle (a POST with CSRF: every download is audited)."""
    s = db.session()
    learner = enrolment.learner
    handle = tempfile.TemporaryFile()  # noqa: SIM115 - closed by send_file after the response
    try:
        export_bundle(s, learner, store=file_store(), out=handle, actor=current_user)
    except (DomainError, FileNotFoundError) as exc:
        handle.close()
        s.rollback()
        flash(getattr(exc, "message", str(exc)), "error")
        return redirect(url_for("admin.edit_enrolment", enrolment_id=enrolment.id))
    s.commit()
    handle.seek(0)
    slug = "".join(ch if ch.isalnum() else "-" for ch in learner.full_name.lower()).strip("-")
    return send_file(handle, mimetype="application/zip", as_attachment=True,
                     download_name=f"portfolio-bundle-{slug or 'learner'}.zip", max_age=0)


def _save_upload(storage: Any, folder: Path) -> Path | None:
    """Copy the upload to a temp file; None when it is over the size limit (nothing kept)."""
    folder.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=folder, prefix="bundle-upload-", suffix=".zip")
    path = Path(name)
    size = 0
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := storage.stream.read(CHUNK):
                size += len(chunk)
                if size > _max_bytes():
                    path.unlink(missing_ok=True)
                    return None
                out.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


@bp.route("/bundles/import", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def import_page() -> Any:
    form = ImportForm()
    problems: list[str] = []
    status = 200
    if form.validate_on_submit():
        upload = form.bundle.data
        if upload is None or not getattr(upload, "filename", ""):
            form.bundle.errors = ["Choose the bundle file to import."]
            return render_template("bundle/import.html", form=form, problems=[]), 422
        store = file_store()
        path = _save_upload(upload, store.root / "tmp")
        if path is None:
            form.bundle.errors = [f"The bundle is larger than the "
                                  f"{current_app.config['BUNDLE_MAX_MB']} MB limit."]
            return render_template("bundle/import.html", form=form, problems=[]), 413
        try:
            report = import_and_commit(db.session(), path, store=store,
                                       centre=current_user.centre, actor=current_user,
                                       max_bytes=_max_bytes())
        except BundleRefused as exc:
            problems = exc.problems
            status = 422
        else:
            for line in report.lines():
                flash(line, "success")
            return redirect(url_for("admin.enrolments_list"))
        finally:
            path.unlink(missing_ok=True)
    elif form.is_submitted():
        status = 422
    return render_template("bundle/import.html", form=form, problems=problems), status

