"""The evidence pages' own rendering, shared with the views that re-show them after a refused
action (a review, a decision, a comment): the evidence item and a criterion of a portfolio."""


from __future__ import annotations

import contextlib
from datetime import date
from typing import Any

from flask import (
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from sqlalchemy import select

from portfolio import db
from portfolio.assessment.forms import ReviewForm, SignFields
from portfolio.assessment.queries import list_decisions, list_reviews
from portfolio.assessment.services import STATEMENTS, decision_evidence_state, returned_decision
from portfolio.assessment.signing import verify_signature
from portfolio.criteria.queries import get_unit_view
from portfolio.enrolments.queries import get_enrolment
from portfolio.errors import NotFound, ValidationFailed
from portfolio.evidence import services
from portfolio.evidence import states as evidence_states
from portfolio.evidence.checks import checks_for
from portfolio.evidence.coverage import (
    compute_coverage,
)
from portfolio.evidence.forms import WithdrawForm
from portfolio.evidence.kinds import KINDS
from portfolio.evidence.parsing import SAFE_INLINE_IMAGE_TYPES, Preview
from portfolio.evidence.queries import get_evidence, list_evidence
from portfolio.evidence.redaction import findings_for
from portfolio.models import Evidence, EvidenceVersion, Signature
from portfolio.permissions import (
    can_add_evidence,
    can_assess,
    can_change_evidence,
    can_map_evidence,
)
from portfolio.viewkit import file_store, mapping_inputs, send_evidence_file  # noqa: F401


def render_index(enrolment: Any) -> Any:
    """The enrolment's evidence list, filtered by `?kind=` and `?status=`."""
    kind = request.args.get("kind") if request.args.get("kind") in KINDS else None
    status = request.args.get("status") or None
    rows = list_evidence(db.session(), enrolment.id, kind=kind, status=status)
    # Referred-back items lead the list: they are what the learner must act on first.
    rows.sort(key=lambda r: r.status != "referred")
    addable = [k for k in KINDS.values() if can_add_evidence(current_user, enrolment, k.added_by)]
    # The learner ticks drafts to submit together (the batch view allows only them).
    submittable = {r.id for r in rows if current_user.id == enrolment.learner_id
                   and "submit" in evidence_states.MACHINE.possible(r.status)}
    return render_template("evidence/index.html", enrolment=enrolment, rows=rows, kinds=KINDS,
                           addable=addable, kind=kind, status=status, submittable=submittable)


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

    findings = findings_for(version, enrolment)
    source = services.mapping_source(current_user, evidence)
    live = services.live_mappings(evidence, source)
    other = services.live_mappings(evidence, "assessor" if source == "learner" else "learner")

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
        "preview_url": lambda f: url_for("evidence.file_preview", file_id=f.id),
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
        "checks": checks_for(s, evidence, version)
        if current_user.id == enrolment.learner_id or can_assess(current_user, enrolment)
        else [],
    }


def render_evidence(evidence_id: int, *, posted: bool = False) -> str:
    """Render an evidence item's page (also used to show a refused action on it)."""
    evidence = get_evidence(db.session(), evidence_id, current_user)
    version = services.current_version(evidence)
    return render_template("evidence/detail.html",
                           **_detail_context(evidence, version, posted=posted))


def render_criterion(enrolment_id: int, criterion_id: int) -> str:
    """Render a criterion's page in a portfolio: coverage, evidence, guidance, decisions."""
    s = db.session()
    enrolment = get_enrolment(s, enrolment_id, current_user)
    coverage = compute_coverage(s, enrolment, date.today())
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
