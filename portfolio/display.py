"""Words people read in place of the codes the records keep: audit actions, signature purposes,
decision states, file sizes. Registered as Jinja filters in `create_app`."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import current_app, has_app_context, has_request_context
from flask_login import current_user

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
    "centre.settings": "Centre settings changed",
    "retention.policy": "Retention period changed",
    "retention.hold": "Legal hold placed",
    "retention.hold_lifted": "Legal hold lifted",
    "retention.evidence_removed": "Evidence text and files removed (retention)",
    "retention.work_removed": "Learner work removed (retention)",
    "centre.import": "Centre imported",
    "comment.added": "Comment added",
    "decision.reopened": "Decision reopened",
    "enrolment.create": "Enrolled",
    "enrolment.update": "Enrolment changed",
    "eqa.pack_create": "EQA pack shared",
    "eqa.pack_download": "EQA pack downloaded",
    "eqa.pack_request": "EQA pack asked for",
    "eqa.pack_revoke": "EQA pack withdrawn",
    "evidence.accepted": "Evidence accepted",
    "evidence.recorded": "Evidence recorded and signed by the assessor",
    "evidence.redacted": "Personal data masked in a new version",
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
    "people_import.done": "Learners and enrolments imported from a spreadsheet",
    "people_import.failed": "Spreadsheet import stopped",
    "people_import.refused": "Spreadsheet import refused",
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
    "user.invited": "Invitation sent",
    "user.invite_accepted": "Invitation accepted",
    "user.invite_cancelled": "Invitation cancelled",
    "user.reset_requested": "Password reset link sent",
    "user.reset_sent": "Password link sent by an admin",
    "user.reset_used": "Password reset",
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


def valid_timezone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def viewer_zone() -> ZoneInfo:
    """The zone times are shown in: the signed-in person's centre's, else DEFAULT_TIMEZONE."""
    name = None
    if has_request_context():
        centre = getattr(current_user, "centre", None) if current_user else None
        name = getattr(centre, "timezone", None)
    if not name and has_app_context():
        name = current_app.config.get("DEFAULT_TIMEZONE")
    try:
        return ZoneInfo(name or "Europe/London")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _instant(value: datetime | str) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)  # stored times are UTC
    return value.astimezone(viewer_zone())


def when(value: datetime | str | None, seconds: bool = False, as_is: bool = False) -> str:
    """'14 Mar 2025 10:05 GMT': a stored UTC time in the reader's time zone. `as_is` shows a
    clock time that has no zone (a camera's) as it was recorded."""
    if value in (None, ""):
        return ""
    try:
        if as_is:
            moment = datetime.fromisoformat(value) if isinstance(value, str) else value
            return moment.strftime(f"%d %b %Y %H:%M{':%S' if seconds else ''}")
        local = _instant(value)
    except ValueError:
        return str(value)
    return local.strftime(f"%d %b %Y %H:%M{':%S' if seconds else ''} %Z")


def day(value: date | datetime | str | None) -> str:
    """'14 Mar 2025', for a date, or for a time (on the reader's calendar)."""
    if value in (None, ""):
        return ""
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value) if len(value) == 10 else _instant(value)
        except ValueError:
            return value
    elif isinstance(value, datetime):
        value = _instant(value)
    return value.strftime("%d %b %Y")


FILTERS = {"action_label": action_label, "purpose_label": purpose_label,
           "decision_state": decision_state, "filesize": filesize, "when": when, "day": day}
