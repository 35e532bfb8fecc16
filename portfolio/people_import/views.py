"""The centre admin's "Import from a spreadsheet" pages: upload a CSV of learners and their
enrolments, read every row's problems in a preview, then import all of it or only the good rows.

Nothing is written until the admin confirms. The file is kept in the database between the two
(reached by a random token, for the admin who uploaded it only) and checked again on confirm,
which is refused if what it would write no longer matches the preview.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from sqlalchemy import update

from portfolio import db, notify
from portfolio.auth import resets
from portfolio.db import rowcount, utcnow
from portfolio.errors import ValidationFailed
from portfolio.job_states import MACHINE
from portfolio.models import PeopleImport, Role
from portfolio.people_import import jobs
from portfolio.people_import import services as imports
from portfolio.security import roles_required

bp = Blueprint("people_import", __name__, url_prefix="/admin/people/import")
# Good rows listed on the preview; the rest are counted (every row with a problem is listed).
GOOD_ROWS_SHOWN = 100


class UploadForm(FlaskForm):
    file = FileField("CSV file",
                     description="Save your spreadsheet as “CSV UTF-8”. The first row names the "
                                 "columns, as in the template.")


def _max_rows() -> int:
    return int(current_app.config["IMPORT_MAX_ROWS"])


def _upload_page(form: UploadForm, problems: list[str], status: int) -> Any:
    return render_template("people_import/upload.html", form=form, problems=problems,
                           max_rows=_max_rows(),
                           background_rows=int(current_app.config["IMPORT_BACKGROUND_ROWS"]),
                           ), status


@bp.route("", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def upload() -> Any:
    form = UploadForm()
    if not form.validate_on_submit():
        return _upload_page(form, [], 422 if form.is_submitted() else 200)
    storage = form.file.data
    if storage is None or not getattr(storage, "filename", ""):
        return _upload_page(form, ["Choose the CSV file to import."], 422)
    raw = storage.stream.read(imports.MAX_BYTES + 1)
    if len(raw) > imports.MAX_BYTES:
        return _upload_page(form, [f"The file is larger than {imports.MAX_BYTES // 1024 // 1024}"
                                   " MB. Split it into smaller files."], 413)
    try:
        text = imports.decode(raw)
        csv_file = imports.read_file(text, max_rows=_max_rows())
    except imports.FileRefused as exc:
        return _upload_page(form, exc.problems, 422)
    s = db.session()
    upload, token = imports.stash_upload(s, filename=storage.filename, text=text,
                                         row_count=len(csv_file.rows), actor=current_user)
    s.commit()
    return redirect(url_for("people_import.show", token=token), code=303)


@bp.get("/template.csv")
@roles_required(Role.ADMIN)
def template() -> Any:
    body = imports.template_csv(lambda: imports.example_row(db.session(), current_user.centre))
    # A byte-order mark, so Excel opens the file as UTF-8.
    return Response("\ufeff" + body, mimetype="text/csv", headers={
        "Content-Disposition": "attachment; filename=learners-and-enrolments-template.csv",
        "Cache-Control": "no-store"})


def _preview(upload: PeopleImport, token: str, status: int = 200, error: str = "") -> Any:
    try:
        checked = imports.check_file(db.session(), upload.content, upload.centre,
                                     max_rows=_max_rows())
    except imports.FileRefused as exc:
        return render_template("people_import/ended.html", upload=upload, problems=exc.problems,
                               token=token, state=imports.page_state(upload)), 422
    good = checked.good
    return render_template(
        "people_import/preview.html", upload=upload, token=token, checked=checked,
        bad=checked.bad, good=good[:GOOD_ROWS_SHOWN], good_count=len(good),
        fingerprint=checked.fingerprint(), error=error,
        background=jobs.runs_in_background(current_app.config, len(good))), status


@bp.get("/<token>")
@roles_required(Role.ADMIN)
def show(token: str) -> Any:
    s = db.session()
    upload = imports.get_import(s, token, current_user)
    if imports.page_state(upload)["pending"] and not imports.is_stale(upload):
        return _preview(upload, token)
    if jobs.fail_if_stale(s, upload):
        s.commit()
    return render_template("people_import/ended.html", upload=upload, token=token, problems=[],
                           state=imports.page_state(upload),
                           stale=imports.is_stale(upload),
                           skipped=(upload.report or {}).get("skipped", []))


@bp.get("/<token>/progress")
@roles_required(Role.ADMIN)
def progress(token: str) -> Any:
    s = db.session()
    upload = imports.get_import(s, token, current_user)
    if jobs.fail_if_stale(s, upload):
        s.commit()
    return jsonify({"status": str(upload.status),
                    "working": imports.page_state(upload)["working"], "done": upload.done_rows,
                    "total": upload.total_rows, "message": upload.message})


def _already(upload: PeopleImport, token: str) -> Any:
    if imports.page_state(upload)["refused"]:
        flash("This file was refused or its preview expired, so nothing was imported from it. "
              "Upload it again.", "error")
        return redirect(url_for("people_import.upload"), code=303)
    flash("This file was confirmed already (a second click, or another tab): nothing was "
          "imported twice.", "info")
    return redirect(url_for("people_import.show", token=token), code=303)


def _pending(view: Callable[[PeopleImport, str], Any]) -> Callable[..., Any]:
    """Confirm and discard act on the admin's own file while its preview waits: for any
    other file (confirmed already by a second click or another tab, refused, expired) they
    say what became of it and change nothing."""
    @wraps(view)
    def wrapped(token: str) -> Any:
        upload = imports.get_import(db.session(), token, current_user)
        if not imports.page_state(upload)["pending"]:
            return _already(upload, token)
        return view(upload, token)

    return wrapped


@bp.post("/<token>/confirm")
@roles_required(Role.ADMIN)
@_pending
def confirm(upload: PeopleImport, token: str) -> Any:
    s = db.session()
    mode = request.form.get("mode", "")
    if mode not in ("all", "good"):
        return _preview(upload, token, 422, "Choose one of the buttons under the rows.")
    if imports.is_stale(upload):
        MACHINE.move(upload, "expire")
        upload.content = ""
        upload.message = "This preview expired before it was confirmed."
        s.commit()
        return render_template("people_import/ended.html", upload=upload, token=token,
                               problems=[], stale=True, skipped=[],
                               state=imports.page_state(upload)), 410
    # Claim the file: of two confirms at once (a double click), the second waits here and
    # then finds it taken.
    where, values = MACHINE.claim_clause(PeopleImport.status, "confirm")
    claimed = rowcount(s.execute(
        update(PeopleImport).where(PeopleImport.id == upload.id, where)
        .values(**values, mode=mode, confirmed_at=utcnow())
        .execution_options(synchronize_session=False)))
    if claimed != 1:
        s.rollback()
        return _already(upload, token)
    s.refresh(upload)
    try:
        checked = imports.check_file(s, upload.content, upload.centre, max_rows=_max_rows())
    except imports.FileRefused:
        s.rollback()
        return _preview(upload, token)  # says why the file no longer reads (422)
    if request.form.get("checked") != checked.fingerprint():
        s.rollback()
        return _preview(upload, token, 409,
                        "Something changed since this preview was drawn (someone was added or "
                        "enrolled, or a role changed). Read the rows again below, then choose.")
    if mode == "all" and checked.bad:
        s.rollback()
        return _preview(upload, token, 422,
                        f"The whole file was refused: {len(checked.bad)} of "
                        f"{len(checked.rows)} rows have problems, and nothing was imported. "
                        "Fix them and upload the file again, or import only the good rows.")
    good = checked.good
    if not good:
        s.rollback()
        return _preview(upload, token, 422, "No row passes the checks, so there is nothing to "
                                            "import. Fix the file and upload it again.")
    upload.total_rows = len(good)
    if jobs.runs_in_background(current_app.config, len(good)):
        MACHINE.move(upload, "queue")
        upload.message = "Waiting to start"
        s.commit()
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        jobs.dispatch_import(app, upload.id, request.url_root)
        return redirect(url_for("people_import.show", token=token), code=303)
    try:
        outcome = imports.import_rows(
            s, good, centre=upload.centre, actor=current_user,
            min_password_length=int(current_app.config["PASSWORD_MIN_LENGTH"]),
            invite_days=int(current_app.config["INVITE_LINK_DAYS"]),
            all_or_nothing=mode == "all")
    except ValidationFailed as exc:
        s.rollback()
        return _preview(upload, token, 409, f"Nothing was imported. {exc.message}")
    imports.finish(upload, outcome)
    imports.audit_import(s, upload, current_user, action="people_import.done",
                         rows=len(checked.rows), good=len(good))
    s.commit()
    days = int(current_app.config["INVITE_LINK_DAYS"])
    for person, raw in outcome.invitations:
        notify.queue(resets.invitation_email(
            person, url_for("auth.reset", token=raw, _external=True),
            inviter=current_user.full_name, days=days))
    flash(upload.message, "success")
    return redirect(url_for("people_import.show", token=token), code=303)


@bp.post("/<token>/discard")
@roles_required(Role.ADMIN)
@_pending
def discard(upload: PeopleImport, token: str) -> Any:
    """Refuse the whole file: nothing is imported, and its content is forgotten."""
    s = db.session()
    rows = upload.row_count
    MACHINE.move(upload, "discard")
    upload.content, upload.finished_at = "", utcnow()
    upload.message = "Refused: nothing was imported from this file."
    imports.audit_import(s, upload, current_user, action="people_import.refused", rows=rows)
    s.commit()
    flash("The file was refused and nothing was imported from it. Fix the rows and upload it "
          "again when it is ready.", "success")
    return redirect(url_for("people_import.upload"), code=303)
