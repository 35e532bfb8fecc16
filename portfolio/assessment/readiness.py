"""Portfolio readiness: everything that still stands between a learner and a certificate claim."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from portfolio.assessment.services import unit_cosign, unit_declaration, unit_signoff
from portfolio.assessment.signing import verify_all
from portfolio.evidence.coverage import compute_coverage
from portfolio.models import Enrolment, Evidence, EvidenceVersion, Signature, WitnessRequest
from portfolio.sampling.services import open_actions_for_enrolment


@dataclass
class Readiness:
    open_criteria: list[tuple[str, str, list[str]]] = field(default_factory=list)
    declarations: list[str] = field(default_factory=list)
    signatures: list[str] = field(default_factory=list)
    witnesses: list[str] = field(default_factory=list)
    iqa_actions: list[str] = field(default_factory=list)
    sign_off: str = ""

    @property
    def ready(self) -> bool:
        return not (self.open_criteria or self.declarations or self.signatures
                    or self.witnesses or self.iqa_actions) and self.sign_off == "complete"


def readiness(session: Session, enrolment: Enrolment, today: date) -> Readiness:
    """Return what is still open for this enrolment, grouped as a checklist."""
    report = Readiness()
    coverage = compute_coverage(session, enrolment, today)
    for c in coverage.criteria:
        if c.status != "met":
            report.open_criteria.append((c.number, c.text, [r.message for r in c.reasons]))

    declared = {s.subject_id for s in session.scalars(select(Signature).where(
        Signature.enrolment_id == enrolment.id, Signature.purpose == "evidence_declaration",
        Signature.invalidated_at.is_(None)))}
    for evidence_id, title in session.execute(
        select(Evidence.id, EvidenceVersion.title)
        .join(EvidenceVersion, (EvidenceVersion.evidence_id == Evidence.id)
              & (EvidenceVersion.version == Evidence.current_version))
        .where(Evidence.enrolment_id == enrolment.id,
               Evidence.status.in_(("submitted", "accepted")),
               Evidence.created_by_id == enrolment.learner_id)
    ):
        if evidence_id not in declared:
            report.declarations.append(f"“{title}” has no current declaration of "
                                       "authenticity from the learner.")
    if unit_declaration(session, enrolment) is None:
        report.declarations.append("The learner has not signed a current unit declaration.")

    for verdict in verify_all(session, [enrolment.id]):
        if verdict.state == "broken":
            report.signatures.append(f"Signature #{verdict.signature_id} is BROKEN: "
                                     f"{verdict.reason}.")
        elif verdict.state == "invalidated":
            report.signatures.append(f"Signature #{verdict.signature_id} was invalidated by a "
                                     f"later change: {verdict.reason}.")

    for request in session.scalars(select(WitnessRequest).where(
            WitnessRequest.enrolment_id == enrolment.id).order_by(WitnessRequest.id)):
        if request.status == "pending":
            report.witnesses.append(f"Testimony from {request.witness_name} is still awaited "
                                    f"(link valid until {request.expires_at:%d %b %Y}).")
        elif request.status == "declined":
            report.witnesses.append(f"{request.witness_name} declined: "
                                    f"“{request.decline_reason}”.")

    for action in open_actions_for_enrolment(session, enrolment.id):
        overdue = " (overdue)" if action.due_on < today else ""
        report.iqa_actions.append(f"IQA action for {action.owner.full_name}, due "
                                  f"{action.due_on:%d %b %Y}{overdue}, {action.status}: "
                                  f"{action.description}")

    if unit_cosign(session, enrolment) is not None:
        report.sign_off = "complete"
    elif unit_signoff(session, enrolment) is not None:
        report.sign_off = "Signed off by the assessor; the learner has not co-signed yet."
    else:
        report.sign_off = "Not signed off yet."
    return report
