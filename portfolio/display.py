"""Words people read in place of the codes the records keep: audit actions, signature purposes,
decision states, file sizes. Registered as Jinja filters in `create_app`."""

from __future__ import annotations

DECISION_STATES = {
    "met": "Met",
    "awaiting_countersignature": "Awaiting countersignature",
    "invalidated": "Invalidated",
    "reopened": "Reopened",
    "returned": "Returned to the trainee",
}

SIGNATURE_PURPOSES = {
    "evidence_declaration": "Learner's declaration on evidence",
    "unit_declaration": "Learner's unit declaration",
    "criterion_decision": "Assessor's decision on a criterion",
    "countersignature": "Countersignature",
    "unit_signoff": "Assessor's unit sign-off",
    "unit_cosign": "Learner's co-signature of the sign-off",
    "iqa_outcome": "IQA's sample outcome",
    "decision_return": "Decision returned to the trainee",
    "assessor_record": "Assessor's signed record of evidence",
}

ACTIONS = {
    "bundle.export": "Portfolio bundle exported",
    "bundle.import": "Portfolio bundle imported",
    "centre.import": "Centre imported",
    "comment.added": "Comment added",
    "decision.reopened": "Decision reopened",
    "enrolment.create": "Enrolled",
    "enrolment.update": "Enrolment changed",
    "eqa.pack_create": "EQA pack shared",
    "eqa.pack_download": "EQA pack downloaded",
    "eqa.pack_revoke": "EQA pack withdrawn",
    "evidence.accepted": "Evidence accepted",
    "evidence.recorded": "Evidence recorded and signed by the assessor",
    "evidence.referred": "Evidence referred back",
    "evidence.create": "Evidence added",
    "evidence.mapping": "Evidence mapped to criteria",
    "evidence.submit": "Evidence submitted",
    "evidence.version": "Evidence revised",
    "evidence.withdraw": "Evidence withdrawn",
    "export.pdf": "Portfolio PDF exported",
    "file.damaged": "Stored file found damaged",
    "iqa.outcome_recorded": "IQA outcome recorded",
    "iqa.sample_started": "IQA sample started",
    "login": "Signed in",
    "sampling.assessor_rate_changed": "Assessor's sampling rate changed",
    "sampling.assessor_rate_raised": "Assessor's sampling rate raised",
    "sampling.item_added": "Added to the sampling plan",
    "sampling.item_removed": "Removed from the sampling plan",
    "sampling.plan_generated": "Sampling plan made",
    "sampling.strategy_changed": "Sampling strategy changed",
    "session.end": "Signed out",
    "session.end_all": "Signed out everywhere",
    "signature.invalidated": "Signature invalidated by a later change",
    "token.create": "API token created",
    "token.revoke": "API token revoked",
    "unit.load": "Unit loaded",
    "unit.signoff_reopened": "Unit sign-off reopened",
    "user.create": "Account created",
    "user.import": "Accounts imported",
    "user.password": "Password changed",
    "user.update": "Account changed",
    "witness.cancel": "Witness request cancelled",
    "witness.decline": "Witness declined",
    "witness.minimise": "Witness contact details removed",
    "witness.request": "Witness asked for a testimony",
    "witness.resend": "Witness request sent again",
    "witness.sign": "Witness signed a testimony",
}


def action_label(code: str | None) -> str:
    """Plain words for an audit action; an unknown code is made readable, never shown raw."""
    if not code:
        return "Event"
    if code in ACTIONS:
        return ACTIONS[code]
    if code.startswith("signature."):
        purpose = code.split(".", 1)[1]
        return "Signed: " + SIGNATURE_PURPOSES.get(purpose, purpose.replace("_", " "))
    words = code.replace(".", " ").replace("_", " ").strip()
    return words[:1].upper() + words[1:]


def purpose_label(purpose: str) -> str:
    return SIGNATURE_PURPOSES.get(purpose, purpose.replace("_", " ").capitalize())


def decision_state(status: str) -> str:
    return DECISION_STATES.get(status, status.replace("_", " ").capitalize())


def filesize(size: int | None) -> str:
    """459 -> '459 bytes', 1536 -> '1.5 KB', 3_400_000 -> '3.2 MB' (never '0 KB')."""
    n = int(size or 0)
    if n < 1024:
        return f"{n} byte{'s' if n != 1 else ''}"
    for unit in ("KB", "MB", "GB"):
        n_units = n / 1024
        if n_units < 1024 or unit == "GB":
            text = f"{n_units:.1f}".rstrip("0").rstrip(".") if n_units < 10 else f"{n_units:.0f}"
            return f"{text} {unit}"
        n = int(n_units)
    return f"{n} GB"


FILTERS = {"action_label": action_label, "purpose_label": purpose_label,
           "decision_state": decision_state, "filesize": filesize}
