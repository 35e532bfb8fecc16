"""Evidence pages: add, read, revise, submit, withdraw, map; coverage; files; Markdown preview."""

from __future__ import annotations

import contextlib
import os
from datetime import date
from pathlib import Path
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
    send_file,
    url_for,
)
from flask_login import current_user, login_required
from sqlalchemy import select

from portfolio import db
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
from portfolio.evidence.forms import EvidenceForm, WithdrawForm, form_class
from portfolio.evidence.kinds import KINDS
from portfolio.evidence.parsing import SAFE_INLINE_IMAGE_TYPES, Preview
from portfolio.evidence.queries import get_evidence, get_file, list_evidence
from portfolio.evidence.storage import FileStore, StoredFileDamaged, record_file_damaged
from portfolio.ids import parse_id, parse_ids
from portfolio.markdown import render_markdown
from portfolio.models import Evidence, EvidenceVersion
from portfolio.permissions import (
    can_add_evidence,
    can_assess,
    can_change_evidence,
    can_map_evidence,
)
from portfolio.web import problem, wants_problem_json

bp = Blueprint("evidence", __name__)


def file_store() -> FileStore:
    """Return the app's content-addressed store."""
    return FileStore(Path(current_app.config["STORAGE_DIR"]))


def send_evidence_file(item: Any, *, download: bool, missing: str) -> Any:
    """Answer with a stored evidence file whose access was already checked.

    The bytes are re-hashed (streamed; a good check is remembered while the object's inode is
    unchanged) before anything is sent, and sent from the very handle that was checked, so a
    file swapped in the store is refused, never served; byte ranges and 304s come only after
    the check too. Only safe image types are shown inline; everything else is an attachment,
    and the response can never run script in our origin.

    :raises StoredFileDamaged: the stored bytes no longer match (a 409 page or problem+json).
    """
    store = file_store()
    try:
        handle = store.open_verified(item.sha256, route=request.endpoint or "file")
    except FileNotFoundError:
        raise NotFound(missing) from None
    inline = item.media_type in SAFE_INLINE_IMAGE_TYPES and not download
    try:
        size = os.fstat(handle.fileno()).st_size
        response = send_file(handle, mimetype=item.media_type, as_attachment=not inline,
                             download_name=item.filename, conditional=False,
                             etag=item.sha256, max_age=0)
        # send_file cannot know a handle's length: give it, so byte ranges work (recordings
        # can be sought) and Content-Length is right.
        response.content_length = size
        response = response.make_conditional(request.environ, accept_ranges=True,
                                             complete_length=size)
    except BaseException:
        handle.close()
        raise
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response.headers["Cache-Control"] = "private, no-store"
    return response


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


def _show_error(form: EvidenceForm, exc: ValidationFailed) -> None:
    field = getattr(form, exc.field, None) if exc.field else None
    if field is not None:
        field.errors = [*field.errors, exc.message]
    else:
        form.form_errors.append(exc.message)


@bp.route("/enrolments/<int:enrolment_id>/evidence")
@login_required
def index(enrolment_id: int) -> Any:
    s = db.session()
    enrolment = get_enrolment(s, enrolment_id, current_user)
    kind = request.args.get("kind") if request.args.get("kind") in KINDS else None
    status = request.args.get("status") or None
    rows = list_evidence(s, enrolment.id, kind=kind, status=status)
    # Referred-back items lead the list: they are what the learner must act on first.
    rows.sort(key=lambda r: r.status != "referred")
    addable = [k for k in KINDS.values() if can_add_evidence(current_user, enrolment, k.added_by)]
    return render_template("evidence/index.html", enrolment=enrolment, rows=rows, kinds=KINDS,
                           addable=addable, kind=kind, status=status)


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
        try:
            signed = _record_signer(s) if recording else None
            with file_store().batch() as batch:
                for upload in _uploads():
                    batch.add(upload.stream, upload.filename, _max_bytes())
                evidence = services.add_evidence(
                    s, actor=current_user, enrolment=enrolment, kind=kind,
                    data=_input_from(form, kind), files=batch.files, today=_today())
                if signed is not None:
                    from portfolio.assessment.services import sign_assessor_record

                    sign_assessor_record(s, evidence, actor=current_user, typed=signed[0],
                                         wanted=signed[1])
                batch.commit(s)
        except DomainError as exc:
            if exc.status not in (422, 429):
                raise
            s.rollback()
            _show_error(form, exc)
            status = exc.status
        else:
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
    from portfolio.assessment.services import confirm_signer
    from portfolio.assessment.views import confirmation_from, limits

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
    from portfolio.assessment.services import STATEMENTS

    return render_template(
        "evidence/form.html", enrolment=enrolment, kind=spec, form=form, evidence=None,
        version=None, can_record=can_record,
        unit=get_unit_view(db.session(), enrolment.unit_id) if can_record else None,
        ticked=set(parse_ids(request.form.getlist("criteria"))),
        record_statement=STATEMENTS["assessor_record"])


def _version_or_404(evidence: Evidence, number: int) -> EvidenceVersion:
    for version in evidence.versions:
        if version.version == number:
            return version
    raise NotFound("No such version.")


def _detail_context(evidence: Evidence, version: EvidenceVersion, *, posted: bool = False
                    ) -> dict[str, Any]:
    """What the evidence page shows; `posted` re-shows a refused review with what was typed
    and ticked, so nothing is lost."""
    enrolment = evidence.enrolment
    unit = get_unit_view(db.session(), enrolment.unit_id)
    from portfolio.evidence.redaction import findings_for

    findings = findings_for(version, enrolment)
    source = services.mapping_source(current_user, evidence)
    live = services.live_mappings(evidence, source)
    other = services.live_mappings(evidence, "assessor" if source == "learner" else "learner")
    from portfolio.assessment.forms import ReviewForm, SignFields
    from portfolio.assessment.queries import list_reviews
    from portfolio.assessment.services import STATEMENTS
    from portfolio.assessment.signing import verify_signature
    from portfolio.models import Signature

    s = db.session()
    declarations = list(s.scalars(select(Signature).where(
        Signature.subject_type == "evidence", Signature.subject_id == evidence.id)
        .order_by(Signature.id)))
    review_form = ReviewForm() if posted else ReviewForm(formdata=None)
    if not posted:
        review_form.expected_version.data = str(evidence.current_version)
    posted_map = None
    if posted and request.form.get("mapping") == "1":
        with contextlib.suppress(ValidationFailed):
            posted_map = {m.criterion_id: m for m in mapping_inputs(request.form)}
    effective_source = "assessor" if evidence.assessor_mapped_at is not None else "learner"
    # The assessor starts from the learner's ticks: confirming them is then one click.
    prefill = other if source == "assessor" and evidence.assessor_mapped_at is None else {}
    return {
        "file_url": lambda f, download=False: url_for("evidence.file", file_id=f.id,
                                                      download=1 if download else None),
        "mapping_source": source, "other_mappings": other, "prefill": prefill,
        "reviews": list_reviews(s, evidence.id), "review_form": review_form,
        "can_review": can_assess(current_user, enrolment)
        and evidence.status in ("submitted", "accepted")
        and version.version == evidence.current_version,
        "declarations": [(d, verify_signature(s, d)) for d in declarations],
        "sign_form": SignFields(formdata=None),
        "is_learner": current_user.id == enrolment.learner_id,
        "is_assessor": can_assess(current_user, enrolment),
        "can_record": can_assess(current_user, enrolment)
        and evidence.created_by_id == current_user.id
        and "assessor" in KINDS[evidence.kind].added_by
        and evidence.status in ("draft", "referred")
        and version.version == evidence.current_version,
        "record_statement": STATEMENTS["assessor_record"],
        "evidence": evidence, "version": version, "enrolment": enrolment, "unit": unit,
        "kind": KINDS[evidence.kind], "previews": {f.id: Preview.from_json(f.preview)
                                                   for f in version.files},
        "findings": findings, "live": live, "posted_map": posted_map,
        "effective": services.live_mappings(evidence, effective_source),
        "effective_source": effective_source,
        "can_change": can_change_evidence(current_user, enrolment, evidence.created_by_id)
        and evidence.status in services.EDITABLE,
        "can_map": can_map_evidence(current_user, enrolment, evidence.created_by_id)
        and evidence.status not in ("withdrawn", "accepted"),
        "history": [m for m in evidence.mappings if m.removed_at is not None],
        "inline_types": SAFE_INLINE_IMAGE_TYPES, "withdraw_form": WithdrawForm(),
    }


@bp.route("/evidence/<int:evidence_id>")
@login_required
def detail(evidence_id: int) -> Any:
    return render_evidence(evidence_id)


def render_evidence(evidence_id: int, *, posted: bool = False) -> str:
    """Render an evidence item's page (also used to show a refused action on it)."""
    evidence = get_evidence(db.session(), evidence_id, current_user)
    version = services.current_version(evidence)
    return render_template("evidence/detail.html",
                           **_detail_context(evidence, version, posted=posted))


@bp.route("/evidence/<int:evidence_id>/versions/<int:number>")
@login_required
def version(evidence_id: int, number: int) -> Any:
    from portfolio.evidence.redaction import may_open

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
        try:
            expected = int(form.expected_version.data or 0)
            with file_store().batch() as batch:
                for upload in _uploads():
                    batch.add(upload.stream, upload.filename, _max_bytes())
                new_version = services.revise_evidence(
                    s, evidence, actor=current_user, data=_input_from(form, evidence.kind),
                    keep_file_ids=keep, files=batch.files, expected_version=expected,
                    today=_today())
                batch.commit(s)
        except ValidationFailed as exc:
            s.rollback()
            _show_error(form, exc)
            status = 422
        except DomainError as exc:
            s.rollback()
            form.form_errors.append(exc.message)
            status = exc.status
        else:
            flash(f"Saved as version {new_version.version}. The earlier version is kept.",
                  "success")
            return redirect(url_for("evidence.detail", evidence_id=evidence.id))
    elif form.is_submitted():
        status = 422
    return render_template("evidence/form.html", enrolment=evidence.enrolment, kind=spec,
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
    from portfolio.evidence.redaction import redact as mask_version

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
    from portfolio.evidence.redaction import use_descriptor

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
    from portfolio.assessment.services import submit_with_declaration
    from portfolio.assessment.views import confirmation_from, limits, run_signed

    s = db.session()
    evidence = get_evidence(s, evidence_id, current_user)
    is_learner = current_user.id == evidence.enrolment.learner_id
    refused, _ = run_signed(lambda: submit_with_declaration(
        s, evidence, actor=current_user,
        confirmation=confirmation_from(request.form) if is_learner else None, **limits()),
        lambda: render_evidence(evidence.id))
    if refused:
        return refused
    from portfolio import notify

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


def mapping_inputs(form: Any) -> list[services.MappingInput]:
    wanted = []
    for raw in form.getlist("criteria"):
        cid = parse_id(raw)
        if cid is None:
            raise ValidationFailed("Tick criteria from the list.", field="criteria")
        wanted.append(services.MappingInput(cid, form.get(f"rationale-{cid}", "")[:500],
                                            form.get(f"location-{cid}", "")[:120]))
    return wanted


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




def render_criterion(enrolment_id: int, criterion_id: int) -> str:
    """Render a criterion's page in a portfolio: coverage, evidence, guidance, decisions."""
    from portfolio.assessment.forms import SignFields
    from portfolio.assessment.queries import list_decisions
    from portfolio.assessment.services import decision_evidence_state, returned_decision
    from portfolio.assessment.signing import verify_signature

    s = db.session()
    enrolment = get_enrolment(s, enrolment_id, current_user)
    coverage = compute_coverage(s, enrolment, _today())
    entry = next((c for c in coverage.criteria if c.criterion_id == criterion_id), None)
    if entry is None:
        raise NotFound("No such criterion in this unit.")
    unit = get_unit_view(s, enrolment.unit_id)
    spec = next(c for lo in unit.outcomes for c in lo.criteria if c.id == criterion_id)
    mapped_ids = {i.evidence_id for i in entry.items}
    candidates = [r for r in list_evidence(s, enrolment.id)
                  if r.id not in mapped_ids and r.status not in ("withdrawn", "accepted")
                  and can_map_evidence(current_user, enrolment, r.created_by_id)]
    decisions = [d for d in list_decisions(s, enrolment.id) if d.criterion_id == criterion_id]
    live = next((d for d in decisions if d.status in ("met", "awaiting_countersignature")), None)
    usable = [i for i in entry.items if i.status == "accepted" and i.counts]
    latest = max(decisions, key=lambda d: d.id, default=None)
    returned = returned_decision(s, latest) if live is None and latest is not None else None
    return render_template(
        "evidence/criterion.html", enrolment=enrolment, entry=entry, spec=spec,
        candidates=candidates, kinds=KINDS,
        decisions=[(d, verify_signature(s, d.signature)) for d in decisions], live=live,
        can_decide=can_assess(current_user, enrolment) and live is None,
        usable=usable, returned=returned,
        expected_state=decision_evidence_state(s, enrolment, [i.evidence_id for i in usable]),
        sign_form=SignFields(formdata=None))


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


@bp.route("/markdown-preview", methods=["POST"])
@login_required
def markdown_preview() -> Any:
    source = (request.get_json(silent=True) or {}).get("text", "")
    if not isinstance(source, str) or len(source) > 100_000:
        raise ValidationFailed("Text too long to preview.")
    return jsonify({"html": str(render_markdown(source))})
