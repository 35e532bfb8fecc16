"""Routes on the assessment blueprint for countersign work (imported at the end of views.py).

A countersigner is usually not the learner's assessor, so the portfolio's own pages are closed
to them. These routes open exactly what they sign for: one decision waiting for them, and the
versions of the evidence it cites (text, previews and files), nothing else of the learner's.
"""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from portfolio import db
from portfolio.assessment import services
from portfolio.assessment.forms import SignFields
from portfolio.assessment.queries import (
    get_centre_decision,
    get_decision_to_countersign,
    list_reviews,
)
from portfolio.assessment.views import _countersign_page, bp
from portfolio.errors import NotFound
from portfolio.evidence.kinds import KINDS
from portfolio.evidence.parsing import SAFE_INLINE_IMAGE_TYPES, Preview
from portfolio.models import CriterionDecision, Evidence, EvidenceFile, EvidenceVersion, Role
from portfolio.security import roles_required
from portfolio.viewkit import (
    confirmation_from,
    limits,
    loads,
    run_signed,
    send_evidence_file,
    send_screen_copy,
)


def cited_versions(decision: CriterionDecision) -> list[tuple[Evidence, EvidenceVersion]]:
    """The evidence versions the decision relied on, in the order it cites them."""
    s = db.session()
    found = []
    for ref in decision.evidence:
        version = s.scalar(select(EvidenceVersion).where(
            EvidenceVersion.evidence_id == ref["evidence_id"],
            EvidenceVersion.version == ref["version"]))
        evidence = s.get(Evidence, ref["evidence_id"])
        if version is not None and evidence is not None \
                and evidence.enrolment_id == decision.enrolment_id:
            found.append((evidence, version))
    return found


@bp.route("/decisions/<int:decision_id>/review")
@roles_required(Role.ASSESSOR)
@loads(decision=get_decision_to_countersign)
def countersign_review(decision: CriterionDecision) -> Any:
    return _review_page(decision)


def _review_page(decision: CriterionDecision, comment: str = "") -> Any:
    items = cited_versions(decision)
    s = db.session()
    return render_template(
        "assessment/countersign_review.html", d=decision, items=items, kinds=KINDS,
        reviews={e.id: list_reviews(s, e.id) for e, _v in items},
        previews={f.id: Preview.from_json(f.preview) for _e, v in items for f in v.files},
        inline_types=SAFE_INLINE_IMAGE_TYPES, sign_form=SignFields(), comment=comment,
        comment_limit=services.RETURN_COMMENT_LIMIT,
        file_url=lambda f, download=False: url_for(
            "assessment.countersign_file", decision_id=decision.id, file_id=f.id,
            download=1 if download else None),
        preview_url=lambda f: url_for("assessment.countersign_file_preview",
                                      decision_id=decision.id, file_id=f.id))


def _cited_file(decision: CriterionDecision, file_id: int) -> EvidenceFile:
    """A file of the evidence the decision cites; 404 otherwise."""
    item = db.session().get(EvidenceFile, file_id)
    cited = {(ref["evidence_id"], ref["version"]) for ref in decision.evidence}
    if item is None or (item.version.evidence_id, item.version.version) not in cited:
        raise NotFound("No such file in the evidence this decision cites.")
    return item


@bp.route("/decisions/<int:decision_id>/files/<int:file_id>")
@roles_required(Role.ASSESSOR)
@loads(decision=get_decision_to_countersign)
def countersign_file(decision: CriterionDecision, file_id: int) -> Any:
    return send_evidence_file(_cited_file(decision, file_id),
                              download=bool(request.args.get("download")),
                              missing="The stored file is missing. Tell your centre admin.")


@bp.route("/decisions/<int:decision_id>/files/<int:file_id>/preview")
@roles_required(Role.ASSESSOR)
@loads(decision=get_decision_to_countersign)
def countersign_file_preview(decision: CriterionDecision, file_id: int) -> Any:
    return send_screen_copy(_cited_file(decision, file_id),
                            missing="The stored file is missing. Tell your centre admin.")


@bp.route("/decisions/<int:decision_id>/return", methods=["POST"])
@roles_required(Role.ASSESSOR)
@loads(decision=get_decision_to_countersign)
def return_to_trainee(decision: CriterionDecision) -> Any:
    """Send a trainee's decision back with comments, signed; it then waits on the trainee."""
    comment = request.form.get("comment_md", "")[:services.RETURN_COMMENT_LIMIT + 1]

    def again() -> Any:
        db.session().refresh(decision)
        if decision.status == "awaiting_countersignature":
            return _review_page(decision, comment)
        return _countersign_page()

    refused, _ = run_signed(lambda: services.return_decision(
        db.session(), decision, actor=current_user, comment_md=comment,
        confirmation=confirmation_from(request.form), **limits()), again)
    if refused:
        return refused
    flash(f"Returned: {decision.criterion.number} for {decision.enrolment.learner.full_name} "
          f"goes back to {decision.decided_by.full_name} with your comments.", "success")
    return redirect(url_for("assessment.countersign_queue"))


@bp.route("/countersign", methods=["POST"])
@roles_required(Role.ASSESSOR)
def countersign_batch() -> Any:
    """Countersign the ticked decisions in one ceremony (one name, one password)."""
    s = db.session()
    ids = [int(v) for v in request.form.getlist("decision_ids")[:200]
           if v.isascii() and v.isdigit() and len(v) < 12]
    decisions = []
    for decision_id in dict.fromkeys(ids):
        decisions.append(get_centre_decision(s, decision_id, current_user))
    refused, signatures = run_signed(lambda: services.countersign_decisions(
        s, decisions, actor=current_user, confirmation=confirmation_from(request.form),
        **limits()), _countersign_page)
    if refused:
        return refused
    flash(f"Countersigned {len(signatures)} decision{'s' if len(signatures) != 1 else ''}: "
          + ", ".join(f"{d.criterion.number} for {d.enrolment.learner.full_name}"
                      for d in decisions) + ". They are now met.", "success")
    return redirect(url_for("assessment.countersign_queue"))
