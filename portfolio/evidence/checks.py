"""Things worth a second look about an evidence version's files, shown on its page to the
learner and the assessor (they block nothing):

- the same file (the same SHA-256) is already in another evidence item of the portfolio;
- a photo was taken (its EXIF date) far from the activity date the learner gave.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from portfolio.models import Evidence, EvidenceFile, EvidenceVersion

# A photo taken more than this many days from the activity date is pointed out.
DATE_GAP_DAYS = 14


@dataclass(frozen=True)
class Check:
    filename: str
    message: str
    evidence_id: int | None = None  # the other item, for a duplicate


def _taken_on(preview: dict | None) -> date | None:
    raw = (preview or {}).get("taken_at")
    if not raw:
        return None
    try:
        return datetime.fromisoformat(str(raw)).date()
    except ValueError:
        return None


def checks_for(session: Session, evidence: Evidence, version: EvidenceVersion) -> list[Check]:
    """The version's duplicates and far-off photo dates, in one query whatever the files."""
    found: list[Check] = []
    names = {f.sha256: f.filename for f in version.files}
    if names:
        rows = session.execute(
            select(EvidenceFile.sha256, Evidence.id, EvidenceVersion.title)
            .join(EvidenceVersion, EvidenceVersion.id == EvidenceFile.version_id)
            .join(Evidence, Evidence.id == EvidenceVersion.evidence_id)
            .where(Evidence.enrolment_id == evidence.enrolment_id, Evidence.id != evidence.id,
                   Evidence.status != "withdrawn",
                   EvidenceVersion.version == Evidence.current_version,
                   EvidenceFile.sha256.in_(sorted(names)))
            .order_by(Evidence.id)).all()
        seen: set[tuple[str, int]] = set()
        for digest, other_id, title in rows:
            if (digest, other_id) in seen:
                continue
            seen.add((digest, other_id))
            found.append(Check(names[digest], f"The same file is also in “{title}”. A file "
                               "counts once: say what each item shows, or remove one.",
                               other_id))
    if version.activity_on is not None:
        for f in version.files:
            taken = _taken_on(f.preview)
            if taken is None:
                continue
            gap = abs((taken - version.activity_on).days)
            if gap > DATE_GAP_DAYS:
                found.append(Check(f.filename, f"The photo was taken on {taken:%d %b %Y}, "
                                   f"{gap} days from the activity date "
                                   f"({version.activity_on:%d %b %Y}). Check the date, or say "
                                   "in the text why they differ."))
    return found
