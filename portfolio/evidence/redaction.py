"""Customers' personal data in evidence, and the two ways to deal with it before submission.

The scan looks at what a version shows: its title, text, the details that are not about the
witness or observer (their contact is meant to be there), and the text previews of its files.
The learner's own email, name and work address, and their assessor's, are never findings.

While a finding remains, the evidence cannot be submitted. Either:
- `redact`: a new version with every finding masked ("[phone number removed]"); text files
  (.csv, .txt) and Excel workbooks get masked copies, other files with findings are left
  out. The original version is kept, and from then on only the learner's assessor may open it;
- `use_descriptor`: a new version that describes the evidence in place of it, saying where
  the original is held at work and who can show it; again the original is the assessor's alone.
"""

from __future__ import annotations

import io
from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from portfolio.audit import record_event
from portfolio.errors import InvalidTransition, PermissionDenied, ValidationFailed
from portfolio.evidence.parsing import Preview
from portfolio.evidence.personal_data import Finding, find_personal_data, mask_personal_data
from portfolio.evidence.services import EvidenceInput, current_version, revise_evidence
from portfolio.models import Enrolment, Evidence, EvidenceVersion, User
from portfolio.permissions import can_assess, can_change_evidence

# Details that name the people the evidence is meant to name (the witness, the observer).
PEOPLE_FIELDS = frozenset({"witness_name", "witness_role", "witness_contact", "relationship",
                           "observer", "expert_competence"})
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MASKABLE_TYPES = frozenset({"text/csv", "text/plain", XLSX})


def allow_list(enrolment: Enrolment) -> list[str]:
    """What is not a customer's: the learner's and assessor's own names and emails, and the
    learner's workplace and employer (with the postcode and phone number in them)."""
    people = [enrolment.learner, enrolment.assessor]
    return [*(p.email for p in people), *(p.full_name for p in people),
            enrolment.workplace, enrolment.employer, enrolment.learner.centre.name]


def _texts(version: EvidenceVersion) -> list[str]:
    texts = [version.title, version.activity_place, version.body_md]
    texts += [str(v) for k, v in (version.details or {}).items()
              if isinstance(v, str) and k not in PEOPLE_FIELDS]
    texts += [Preview.from_json(f.preview).text for f in version.files if f.preview]
    return [t for t in texts if t]


def findings_for(version: EvidenceVersion, enrolment: Enrolment) -> list[Finding]:
    """Likely customers' personal data in a version (at most 50)."""
    return find_personal_data("\n".join(_texts(version)), allow=allow_list(enrolment))


def check_clean(evidence: Evidence) -> None:
    """Refuse to submit a version that still seems to hold customers' personal data."""
    found = findings_for(current_version(evidence), evidence.enrolment)
    if found:
        kinds = sorted({f.kind for f in found})
        raise InvalidTransition(
            f"This evidence still seems to hold customers' personal data ({len(found)}: "
            f"{', '.join(kinds)}). Mask it, or replace it with a descriptor that says where "
            "the original is kept at work, before you submit it. Nothing was submitted.")


def _check_own(evidence: Evidence, actor: User) -> None:
    if not can_change_evidence(actor, evidence.enrolment, evidence.created_by_id):
        raise PermissionDenied("Only the person who added this evidence can change it.")


def _masked_file(store: Any, file: Any, allow: list[str]) -> tuple[bytes, int] | None:
    """A text file's bytes with its findings masked, or None if it is not text we can mask."""
    if file.media_type not in MASKABLE_TYPES:
        return None
    with store.open(file.sha256) as handle:
        raw = handle.read()
    if file.media_type == XLSX:
        return _masked_workbook(raw, allow)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    masked, count = mask_personal_data(text, allow=allow)
    return masked.encode("utf-8"), count


def _masked_workbook(raw: bytes, allow: list[str]) -> tuple[bytes, int] | None:
    """An Excel log with every text cell's findings masked (values kept, formulas dropped)."""
    import openpyxl

    try:
        workbook = openpyxl.load_workbook(io.BytesIO(raw), data_only=True)
    except Exception:  # noqa: BLE001 - any unreadable workbook is simply not maskable here
        return None
    count = 0
    for sheet in workbook.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                if isinstance(cell.value, str):
                    masked, found = mask_personal_data(cell.value, allow=allow)
                    if found:
                        cell.value, count = masked, count + found
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue(), count


def redact(session: Session, evidence: Evidence, *, actor: User, store: Any, batch: Any,
           max_bytes: int, today: date, expected_version: int) -> EvidenceVersion:
    """Save a new version with every finding masked; the original is kept for the assessor.

    `batch` stages the masked copies of text files (the caller commits it).
    :raises InvalidTransition: nothing to mask, or not the learner's to change now.
    :raises ValidationFailed: a file that cannot be masked is all the evidence has.
    """
    _check_own(evidence, actor)
    original = current_version(evidence)
    allow = allow_list(evidence.enrolment)
    if not findings_for(original, evidence.enrolment):
        raise InvalidTransition("Nothing in this evidence looks like customers' personal data.")

    def mask(value: str) -> str:
        return mask_personal_data(value, allow=allow)[0]

    keep, left_out, staged = [], [], []
    for file in original.files:
        preview = Preview.from_json(file.preview) if file.preview else None
        if not (preview and find_personal_data(preview.text or "", allow=allow)):
            keep.append(file.id)
            continue
        masked = _masked_file(store, file, allow)
        if masked is None:
            left_out.append(file.filename)
        else:
            staged.append(batch.add(io.BytesIO(masked[0]), file.filename, max_bytes))
    details = {k: (mask(v) if isinstance(v, str) and k not in PEOPLE_FIELDS else v)
               for k, v in (original.details or {}).items()}
    note = "Customers' personal data masked; the original is kept for the assessor only."
    if left_out:
        note = (f"Personal data masked; left out, as they cannot be masked here: "
                f"{', '.join(left_out)}.")[:300]
    data = EvidenceInput(
        title=mask(original.title), activity_on=original.activity_on,
        activity_place=mask(original.activity_place), body_md=mask(original.body_md),
        details=details, is_simulated=original.is_simulated, personal_data_confirmed=True,
        change_note=note)
    try:
        version = revise_evidence(session, evidence, actor=actor, data=data, keep_file_ids=keep,
                                  files=staged, expected_version=expected_version, today=today)
    except ValidationFailed as exc:
        if not left_out:
            raise
        raise ValidationFailed(
            f"{', '.join(left_out)} cannot be masked here, and this evidence needs a file. "
            "Upload a copy with customers' details removed (Revise), or use a descriptor "
            "instead.", field=exc.field) from exc
    return _replaces(session, evidence, original, version, actor=actor, how="masked",
                     files_left_out=len(left_out))


def use_descriptor(session: Session, evidence: Evidence, *, actor: User, description: str,
                   held_at: str, today: date, expected_version: int) -> EvidenceVersion:
    """Save a new version that describes the evidence instead of holding it, with where the
    original is kept at work; the original is kept for the assessor only."""
    _check_own(evidence, actor)
    original = current_version(evidence)
    description = (description or "").strip()
    held_at = " ".join((held_at or "").split())
    if not description:
        raise ValidationFailed("Describe the evidence: what it is and what it shows you "
                               "doing.", field="description")
    if not held_at:
        raise ValidationFailed("Say where the original is kept at work and who can show it.",
                               field="held_at")
    if len(held_at) > 300:
        raise ValidationFailed("Keep where the original is held under 300 characters.",
                               field="held_at")
    details = {k: v for k, v in (original.details or {}).items() if k in PEOPLE_FIELDS}
    data = EvidenceInput(
        title=original.title, activity_on=original.activity_on,
        activity_place=original.activity_place, body_md=description, details=details,
        is_simulated=original.is_simulated, personal_data_confirmed=True,
        change_note="Replaced by a descriptor; the original is held at work.")
    version = revise_evidence(session, evidence, actor=actor, data=data, keep_file_ids=[],
                              files=[], expected_version=expected_version, today=today,
                              held_at_work=True)
    version.original_held_at = held_at
    return _replaces(session, evidence, original, version, actor=actor, how="descriptor",
                     files_left_out=len(original.files))


def _replaces(session: Session, evidence: Evidence, original: EvidenceVersion,
              version: EvidenceVersion, *, actor: User, how: str,
              files_left_out: int) -> EvidenceVersion:
    version.redacted_from = original.version
    original.assessor_only = True
    session.flush()
    # Counts only: the audit trail must not repeat the personal data it took out.
    record_event(session, action="evidence.redacted", subject_type="evidence",
                 subject_id=evidence.id, actor=actor, learner_id=evidence.enrolment.learner_id,
                 detail={"from": original.version, "to": version.version, "how": how,
                         "files_left_out": files_left_out})
    return version


def may_open(user: User, version: EvidenceVersion, enrolment: Enrolment) -> bool:
    """An original replaced for its personal data opens for the learner's assessor alone."""
    return not version.assessor_only or can_assess(user, enrolment)

