"""Evidence pages: add, read, revise, submit, withdraw, map; coverage; files; Markdown preview."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required

from portfolio import db, notify
from portfolio.assessment.services import (
    STATEMENTS,
    confirm_signer,
    sign_assessor_record,
    submit_with_declaration,
)
from portfolio.criteria.queries import get_unit_view
from portfolio.enrolments.queries import get_enrolment
from portfolio.errors import DomainError, InvalidTransition, NotFound, ValidationFailed
from portfolio.evidence import services
from portfolio.evidence.coverage import (
    CELL_MEANINGS,
    CELL_STATES,
    CELL_SYMBOLS,
    compute_coverage,
)
from portfolio.evidence.forms import CAPTURE, EvidenceForm, WithdrawForm, form_class
from portfolio.evidence.kinds import KINDS
from portfolio.evidence.pages import (  # noqa: F401
    _detail_context,
    _version_or_404,
    render_criterion,
    render_evidence,
    render_index,
)
from portfolio.evidence.queries import get_evidence, get_file
from portfolio.evidence.redaction import may_open, use_descriptor
from portfolio.evidence.redaction import redact as mask_version
from portfolio.evidence.storage import StoredFileDamaged, record_file_damaged
from portfolio.ids import parse_id, parse_ids
from portfolio.markdown import render_markdown
from portfolio.models import Evidence
from portfolio.permissions import (
    can_add_evidence,
    can_assess,
    can_change_evidence,
    can_map_evidence,
)
from portfolio.viewkit import (  # noqa: F401
    confirmation_from,
    file_store,
    form_action,
    limits,
    mapping_inputs,
    run_signed,
    send_evidence_file,
    send_screen_copy,
    show_error,
)
from portfolio.web import problem, wants_problem_json

bp = Blueprint("evidence", __name__)


@bp.app_errorhandler(StoredFileDamaged)
def stored_file_damaged(exc: StoredFileDamaged) -> Any:
    """Refuse a damaged stored file clearly, and tell the centre once (audit trail)."""
    s = db.session()
    s.rollback()  # whatever the request had begun is not kept; the record of the damage is
    try:
        record_file_damaged(s, exc.sha256, request.endpoint or request.path)
        s.commit()
    except Exception:  # noqa: BLE001 - the refusal must still be answered; it is logged
        s.rollback()
        current_app.logger.exception("could not record damaged object %s", exc.sha256)
    if wants_problem_json():
        return problem(exc.status, exc.title, exc.message)
    return render_template(
        "errors/error.html", status=exc.status, title=exc.title, detail=exc.message,
        next_step="You need not do anything else. The centre's admin can restore the file "
                  "from a backup."), exc.status


def _today() -> date:
    return date.today()


def _max_bytes() -> int:
    return int(current_app.config["MAX_FILE_MB"]) * 1024 * 1024


def _uploads() -> list[Any]:
    uploads = [f for f in request.files.getlist("files") if f and f.filename]
    if len(uploads) > int(current_app.config["MAX_FILES_PER_UPLOAD"]):
        raise ValidationFailed(
            f"Upload at most {current_app.config['MAX_FILES_PER_UPLOAD']} files at once.",
            field="files")
    return uploads


def _input_from(form: EvidenceForm, kind_key: str) -> services.EvidenceInput:
    kind = KINDS[kind_key]
    details = {spec.name: getattr(form, spec.name).data for spec in kind.details}
    return services.EvidenceInput(
        title=form.title.data or "", activity_on=form.activity_on.data,
        activity_place=form.activity_place.data or "", body_md=form.body_md.data or "",
        details=details, is_simulated=bool(form.is_simulated.data),
        personal_data_confirmed=bool(form.personal_data_confirmed.data),
        change_note=form.change_note.data or "")


@bp.route("/enrolments/<int:enrolment_id>/evidence")
@login_required
def index(enrolment_id: int) -> Any:
    return render_index(get_enrolment(db.session(), enrolment_id, current_user))


@bp.route("/enrolments/<int:enrolment_id>/evidence/new")
@login_required
def choose(enrolment_id: int) -> Any:
    enrolment = get_enrolment(db.session(), enrolment_id, current_user)
    addable = [k for k in KINDS.values() if can_add_evidence(current_user, enrolment, k.added_by)]
    if not addable:
        abort(403)
    return render_template("evidence/choose.html", enrolment=enrolment, addable=addable)


@bp.route("/enrolments/<int:enrolment_id>/evidence/new/<kind>", methods=["GET", "POST"])
@login_required
def new(enrolment_id: int, kind: str) -> Any:
    s = db.session()
    enrolment = get_enrolment(s, enrolment_id, current_user)
    if kind not in KINDS:
        raise NotFound("No such kind of evidence.")
    spec = KINDS[kind]
    if not can_add_evidence(current_user, enrolment, spec.added_by):
        abort(403)
    form = form_class(kind)()
    status = 200
    # The assessor's own record (an observation) is ticked and signed on this one form.
    can_record = can_assess(current_user, enrolment) and "assessor" in spec.added_by
    recording = can_record and request.form.get("record") == "1"
    if form.validate_on_submit():
        def add() -> Any:
            signed = _record_signer(s) if recording else None
            with file_store().batch() as batch:
                for upload in _uploads():
                    batch.add(upload.stream, upload.filename, _max_bytes())
                evidence = services.add_evidence(
                    s, actor=current_user, enrolment=enrolment, kind=kind,
                    data=_input_from(form, kind), files=batch.files, today=_today())
                if signed is not None:
                    sign_assessor_record(s, evidence, actor=current_user, typed=signed[0],
                                         wanted=signed[1])
                batch.commit(s)
            return evidence, signed

        refused, added = form_action(form, add, statuses=(422, 429))
        status = refused or 200
        if not refused:
            evidence, signed = added
            if signed is not None:
                flash("Recorded and signed. It counts now, and the learner has been told.",
                      "success")
                return redirect(url_for("evidence.detail", evidence_id=evidence.id))
            flash("Saved as a draft. Now tick the criteria it shows, then submit it.", "success")
            return redirect(url_for("evidence.detail", evidence_id=evidence.id) + "#mapping")
    elif form.is_submitted():
        status = 422
    return _form_page(enrolment, spec, form, can_record), status


def _record_signer(s: Any) -> tuple[str, list[services.MappingInput]]:
    """Check the ticks, then the signer, before anything is written. A wrong password is kept
    (committed at once) so that it counts towards the throttle."""
    wanted = mapping_inputs(request.form)
    if not wanted:
        raise ValidationFailed("Tick at least one criterion the record shows.",
                               field="criteria")
    try:
        typed = confirm_signer(s, current_user, confirmation_from(request.form), **limits())
    except DomainError:
        s.commit()
        raise
    return typed, wanted


def _form_page(enrolment: Any, spec: Any, form: Any, can_record: bool) -> str:
    return render_template(
        "evidence/form.html", enrolment=enrolment, kind=spec, form=form, evidence=None,
        capture=CAPTURE.get(spec.key),
        version=None, can_record=can_record,
        unit=get_unit_view(db.session(), enrolment.unit_id) if can_record else None,
        ticked=set(parse_ids(request.form.getlist("criteria"))),
        record_statement=STATEMENTS["assessor_record"])






@bp.route("/evidence/<int:evidence_id>")
@login_required
def detail(evidence_id: int) -> Any:
    return render_evidence(evidence_id)




@bp.route("/evidence/<int:evidence_id>/versions/<int:number>")
@login_required
def version(evidence_id: int, number: int) -> Any:
    evidence = get_evidence(db.session(), evidence_id, current_user)
    old = _version_or_404(evidence, number)
    if not may_open(current_user, old, evidence.enrolment):
        raise NotFound("That version held customers' personal data: only the assessor can "
                       "open it now.")
    context = _detail_context(evidence, old)
    context.update(can_change=False, can_map=False)
    return render_template("evidence/detail.html", **context)


@bp.route("/evidence/<int:evidence_id>/edit", methods=["GET", "POST"])
@login_required
def edit(evidence_id: int) -> Any:
    s = db.session()
    evidence = get_evidence(s, evidence_id, current_user)
    if not can_change_evidence(current_user, evidence.enrolment, evidence.created_by_id):
        abort(403)
    current = services.current_version(evidence)
    spec = KINDS[evidence.kind]
    form = form_class(evidence.kind)(obj=None if request.method == "POST" else current)
    if request.method == "GET":
        for field in spec.details:
            getattr(form, field.name).data = current.details.get(field.name)
        form.expected_version.data = str(evidence.current_version)
        form.personal_data_confirmed.data = False
    status = 200
    if request.method == "GET" and evidence.status not in services.EDITABLE:
        flash(f"This evidence is {evidence.status} and cannot be changed now.", "error")
        return redirect(url_for("evidence.detail", evidence_id=evidence.id))
    if form.validate_on_submit():
        keep = parse_ids(request.form.getlist("keep_files"))
        def revise() -> Any:
            expected = int(form.expected_version.data or 0)
            with file_store().batch() as batch:
                for upload in _uploads():
                    batch.add(upload.stream, upload.filename, _max_bytes())
                new_version = services.revise_evidence(
                    s, evidence, actor=current_user, data=_input_from(form, evidence.kind),
                    keep_file_ids=keep, files=batch.files, expected_version=expected,
                    today=_today())
                batch.commit(s)
            return new_version

        refused, new_version = form_action(form, revise, statuses=None)
        status = refused or 200
        if not refused:
            flash(f"Saved as version {new_version.version}. The earlier version is kept.",
                  "success")
            return redirect(url_for("evidence.detail", evidence_id=evidence.id))
    elif form.is_submitted():
        status = 422
    return render_template("evidence/form.html", enrolment=evidence.enrolment, kind=spec,
                           capture=CAPTURE.get(spec.key),
                           form=form, evidence=evidence, version=current), status


def _expected_version() -> int:
    raw = request.form.get("expected_version") or ""
    return parse_id(raw) or 0


def _refused_here(evidence: Evidence, exc: DomainError) -> Any:
    """Show a refused change on the evidence page, with the right status; nothing was kept."""
    db.session().rollback()
    flash(exc.message, "error")
    return render_evidence(evidence.id), exc.status


@bp.route("/evidence/<int:evidence_id>/redact", methods=["POST"])
@login_required
def redact(evidence_id: int) -> Any:
    """Mask the customers' personal data found, in a new version; the original is kept for
    the assessor alone."""
    s = db.session()
    evidence = get_evidence(s, evidence_id, current_user)
    store = file_store()
    try:
        with store.batch() as batch:
            version = mask_version(s, evidence, actor=current_user, store=store, batch=batch,
                                   max_bytes=_max_bytes(), today=_today(),
                                   expected_version=_expected_version())
            batch.commit(s)
    except (InvalidTransition, ValidationFailed) as exc:
        return _refused_here(evidence, exc)
    flash(f"Saved as version {version.version}, with customers' details masked. The earlier "
          "version is kept, and only your assessor can open it now.", "success")
    return redirect(url_for("evidence.detail", evidence_id=evidence.id))


@bp.route("/evidence/<int:evidence_id>/descriptor", methods=["POST"])
@login_required
def descriptor(evidence_id: int) -> Any:
    """Replace the evidence with a descriptor: what it is, and where the original is held."""
    s = db.session()
    evidence = get_evidence(s, evidence_id, current_user)
    try:
        version = use_descriptor(s, evidence, actor=current_user,
                                 description=request.form.get("description", ""),
                                 held_at=request.form.get("held_at", ""), today=_today(),
                                 expected_version=_expected_version())
        s.commit()
    except (InvalidTransition, ValidationFailed) as exc:
        return _refused_here(evidence, exc)
    flash(f"Saved as version {version.version}: a descriptor, with the original held at work. "
          "The earlier version is kept, and only your assessor can open it now.", "success")
    return redirect(url_for("evidence.detail", evidence_id=evidence.id))


@bp.route("/evidence/<int:evidence_id>/submit", methods=["POST"])
@login_required
def submit(evidence_id: int) -> Any:
    s = db.session()
    evidence = get_evidence(s, evidence_id, current_user)
    is_learner = current_user.id == evidence.enrolment.learner_id
    refused, _ = run_signed(lambda: submit_with_declaration(
        s, evidence, actor=current_user,
        confirmation=confirmation_from(request.form) if is_learner else None, **limits()),
        lambda: render_evidence(evidence.id))
    if refused:
        return refused

    assessor = evidence.enrolment.assessor
    title = services.current_version(evidence).title
    link = url_for("evidence.detail", evidence_id=evidence.id, _external=True)
    if assessor.id != current_user.id:  # nobody is emailed about what they did themselves
        notify.queue(notify.Message(
            (assessor.email,), f"Evidence to review: {title}",
            f"{evidence.enrolment.learner.full_name} submitted “{title}” "
            f"(version {evidence.current_version}) for review.\n\n{link}\n"))
    flash("Submitted" + (" with your signed declaration" if is_learner else "")
          + ". Your assessor can now review it.", "success")
    return redirect(url_for("evidence.detail", evidence_id=evidence.id))


@bp.route("/evidence/<int:evidence_id>/withdraw", methods=["POST"])
@login_required
def withdraw(evidence_id: int) -> Any:
    s = db.session()
    evidence = get_evidence(s, evidence_id, current_user)
    form = WithdrawForm()
    form.validate()
    services.withdraw_evidence(s, evidence, actor=current_user, reason=form.reason.data or "")
    s.commit()
    flash("Withdrawn. It stays in the history but no longer counts towards any criterion.",
          "success")
    return redirect(url_for("evidence.index", enrolment_id=evidence.enrolment_id))


@bp.route("/evidence/<int:evidence_id>/mappings", methods=["POST"])
@login_required
def mappings(evidence_id: int) -> Any:
    s = db.session()
    evidence = get_evidence(s, evidence_id, current_user)
    added, removed = services.set_mappings(s, evidence, actor=current_user,
                                           wanted=mapping_inputs(request.form))
    s.commit()
    parts = []
    if added:
        parts.append("now mapped to " + ", ".join(added))
    if removed:
        parts.append("no longer mapped to " + ", ".join(removed))
    flash(("Saved: " + "; ".join(parts) + ".") if parts else "Mapping saved.", "success")
    return redirect(url_for("evidence.detail", evidence_id=evidence.id) + "#mapping")


@bp.route("/enrolments/<int:enrolment_id>/criteria/<int:criterion_id>",
          methods=["GET", "POST"])
@login_required
def criterion(enrolment_id: int, criterion_id: int) -> Any:
    if request.method == "GET":
        return render_criterion(enrolment_id, criterion_id)
    s = db.session()
    enrolment = get_enrolment(s, enrolment_id, current_user)
    coverage = compute_coverage(s, enrolment, _today())
    entry = next((c for c in coverage.criteria if c.criterion_id == criterion_id), None)
    if entry is None:
        raise NotFound("No such criterion in this unit.")
    if not can_map_evidence(current_user, enrolment, current_user.id):
        abort(403)
    raw = request.form.get("evidence_id", "")
    chosen = parse_id(raw)
    if chosen is None:
        raise ValidationFailed("Choose the evidence to map.")
    evidence = get_evidence(s, chosen, current_user)
    if evidence.enrolment_id != enrolment.id:
        raise NotFound("No such evidence in this portfolio.")
    services.map_to_criterion(s, evidence, actor=current_user, mapping=services.MappingInput(
        criterion_id, request.form.get("rationale", "")[:500],
        request.form.get("location", "")[:120]))
    s.commit()
    flash(f"Mapped to {entry.number}.", "success")
    return redirect(url_for("evidence.criterion", enrolment_id=enrolment.id,
                            criterion_id=criterion_id))






@bp.route("/enrolments/<int:enrolment_id>/coverage")
@login_required
def coverage(enrolment_id: int) -> Any:
    s = db.session()
    enrolment = get_enrolment(s, enrolment_id, current_user)
    return render_template("evidence/coverage.html", enrolment=enrolment,
                           coverage=compute_coverage(s, enrolment, _today()), kinds=KINDS,
                           cell_states=CELL_STATES, cell_symbols=CELL_SYMBOLS,
                           cell_meanings=CELL_MEANINGS)


@bp.route("/files/<int:file_id>")
@login_required
def file(file_id: int) -> Any:
    item = get_file(db.session(), file_id, current_user)
    return send_evidence_file(item, download=bool(request.args.get("download")),
                              missing="The stored file is missing. Tell your centre admin.")


@bp.route("/files/<int:file_id>/preview")
@login_required
def file_preview(file_id: int) -> Any:
    """The picture shown for a file a browser cannot show: page 1 of a PDF, a HEIC photo."""
    item = get_file(db.session(), file_id, current_user)
    return send_screen_copy(item, missing="The stored file is missing. Tell your centre admin.")


@bp.route("/markdown-preview", methods=["POST"])
@login_required
def markdown_preview() -> Any:
    source = (request.get_json(silent=True) or {}).get("text", "")
    if not isinstance(source, str) or len(source) > 100_000:
        raise ValidationFailed("Text too long to preview.")
    return jsonify({"html": str(render_markdown(source))})
