"""Load unit files into the database: idempotent, versioned, never losing a referenced criterion."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from portfolio.audit import record_event
from portfolio.criteria.unitfile import CriterionSpec, UnitFile, parse_file
from portfolio.db import Base, utcnow
from portfolio.models import (
    Criterion,
    CriterionMethod,
    CriterionRevision,
    GuidanceNote,
    LearningOutcome,
    Qualification,
    Unit,
)

# Tables that belong to a criterion itself; rows elsewhere pointing at a criterion keep it alive.
_OWN_TABLES = {"criterion_methods", "criterion_revisions", "guidance_criteria"}


@dataclass
class LoadReport:
    reference: str
    outcome: str  # "created", "updated" or "unchanged"
    version: int
    reworded: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        parts = [f"{self.reference}: {self.outcome} (version {self.version})"]
        for label, items in (("reworded", self.reworded), ("added", self.added),
                             ("deleted", self.deleted), ("retired", self.retired)):
            if items:
                parts.append(f"{label} {', '.join(items)}")
        return "; ".join(parts)


def content_hash(unit_file: UnitFile) -> str:
    """Return a SHA-256 over the parsed content of a unit file (not its path or layout)."""
    data = asdict(unit_file)
    data.pop("path", None)
    canonical = json.dumps(data, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def criterion_is_referenced(session: Session, criterion_id: int) -> bool:
    """True when any row outside the criterion's own tables refers to it."""
    for table in Base.metadata.sorted_tables:
        if table.name in _OWN_TABLES:
            continue
        for fk in table.foreign_keys:
            if fk.column.table.name == "criteria" and fk.column.name == "id":
                count = session.scalar(
                    select(func.count()).select_from(table).where(fk.parent == criterion_id)
                )
                if count:
                    return True
    return False


def _qualification(session: Session, unit_file: UnitFile) -> Qualification:
    spec = unit_file.qualification
    qual = session.scalar(select(Qualification).where(Qualification.code == spec.code))
    if qual is None:
        qual = Qualification(code=spec.code, title=spec.title, level=spec.level)
        session.add(qual)
    else:
        qual.title, qual.level = spec.title, spec.level
    session.flush()
    return qual


def _apply_unit_fields(unit: Unit, unit_file: UnitFile, qual: Qualification) -> bool:
    spec, rules = unit_file.unit, unit_file.assessment
    reworded = unit.title != spec.title if unit.id else False
    unit.qualification_id = qual.id
    unit.reference = spec.reference
    unit.number = spec.number
    unit.title = spec.title
    unit.level = spec.level
    unit.credits = spec.credits
    unit.guided_learning_hours = spec.guided_learning_hours
    unit.unit_type = spec.unit_type
    unit.summary = spec.summary
    unit.workplace_only = rules.workplace_only
    unit.simulation_allowed = rules.simulation_allowed
    unit.rpl_allowed = rules.rpl_allowed
    unit.currency_months = rules.currency_months
    unit.assessment_notes_md = rules.notes
    unit.source_file = Path(unit_file.path).name
    return reworded


def _apply_criterion(criterion: Criterion, spec: CriterionSpec, lo: LearningOutcome,
                     position: int) -> None:
    criterion.learning_outcome_id = lo.id
    criterion.position = position
    criterion.required_occurrences = spec.required_occurrences
    criterion.is_retired = False
    wanted = {m: (m in spec.preferred_methods) for m in spec.methods}
    kept = []
    for row in criterion.methods:
        if row.method in wanted:
            row.preferred = wanted.pop(row.method)
            kept.append(row)
    criterion.methods = kept + [CriterionMethod(method=m, preferred=p) for m, p in wanted.items()]


def load_unit_file(session: Session, unit_file: UnitFile) -> LoadReport:
    """Create or update one unit from its parsed file (flushed, not committed)."""
    digest = content_hash(unit_file)
    unit = session.scalar(select(Unit).where(Unit.reference == unit_file.unit.reference))
    if unit is not None and unit.content_hash == digest:
        return LoadReport(unit.reference, "unchanged", unit.version)

    created = unit is None
    qual = _qualification(session, unit_file)
    if unit is None:
        unit = Unit(version=1)
    report = LoadReport(unit_file.unit.reference, "created" if created else "updated", 1)
    unit_reworded = _apply_unit_fields(unit, unit_file, qual)
    unit.content_hash = digest
    unit.loaded_at = utcnow()
    session.add(unit)
    session.flush()

    los = {lo.number: lo for lo in session.scalars(
        select(LearningOutcome).where(LearningOutcome.unit_id == unit.id))}
    criteria = {c.number: c for c in session.scalars(
        select(Criterion).where(Criterion.unit_id == unit.id))}

    position = 0
    for lo_spec in unit_file.learning_outcomes:
        lo = los.get(lo_spec.number)
        if lo is None:
            lo = LearningOutcome(unit_id=unit.id, number=lo_spec.number)
            session.add(lo)
        elif lo.title != lo_spec.title:
            unit_reworded = True
        lo.title, lo.kind = lo_spec.title, lo_spec.kind
        session.flush()
        for spec in lo_spec.criteria:
            position += 1
            criterion = criteria.pop(spec.number, None)
            if criterion is None:
                criterion = Criterion(unit_id=unit.id, number=spec.number, text=spec.text,
                                      amplification_md=spec.amplification, version=1)
                session.add(criterion)
                if not created:
                    report.added.append(spec.number)
            elif (criterion.text, criterion.amplification_md) != (spec.text, spec.amplification):
                session.add(CriterionRevision(
                    criterion_id=criterion.id, version=criterion.version,
                    text=criterion.text, amplification_md=criterion.amplification_md))
                criterion.text, criterion.amplification_md = spec.text, spec.amplification
                criterion.version += 1
                report.reworded.append(spec.number)
            elif criterion.is_retired:
                report.added.append(spec.number)
            _apply_criterion(criterion, spec, lo, position)
    session.flush()

    for number, criterion in sorted(criteria.items()):
        if criterion_is_referenced(session, criterion.id):
            if not criterion.is_retired:
                criterion.is_retired = True
                report.retired.append(number)
        else:
            session.delete(criterion)
            report.deleted.append(number)
    session.flush()
    kept_outcomes = {s.number for s in unit_file.learning_outcomes}
    for lo_number, lo in los.items():
        if lo_number not in kept_outcomes and not session.scalar(
            select(func.count(Criterion.id)).where(Criterion.learning_outcome_id == lo.id)
        ):
            session.delete(lo)

    _replace_guidance(session, unit, unit_file)
    if not created and (unit_reworded or report.reworded or report.added or report.deleted
                        or report.retired):
        unit.version += 1
    report.version = unit.version
    session.flush()
    record_event(session, action="unit.load", subject_type="unit", subject_id=unit.id,
                 detail={"reference": unit.reference, "outcome": report.outcome,
                         "version": unit.version, "reworded": report.reworded,
                         "added": report.added, "deleted": report.deleted,
                         "retired": report.retired})
    return report


def _replace_guidance(session: Session, unit: Unit, unit_file: UnitFile) -> None:
    session.execute(delete(GuidanceNote).where(GuidanceNote.unit_id == unit.id))
    by_number = {c.number: c for c in session.scalars(
        select(Criterion).where(Criterion.unit_id == unit.id))}
    for position, spec in enumerate(unit_file.guidance, start=1):
        session.add(GuidanceNote(
            unit_id=unit.id, position=position, kind=spec.kind, text=spec.text,
            source=spec.source, criteria=[by_number[n] for n in spec.criteria],
        ))
    session.flush()


def unit_files_in(directory: str | Path) -> list[Path]:
    """Return the unit files of a folder, sorted."""
    return sorted(Path(directory).glob("*.toml"))


def load_paths(session: Session, paths: list[Path]) -> list[LoadReport]:
    """Parse every file first (all or nothing), then load each."""
    parsed = [parse_file(p) for p in paths]
    return [load_unit_file(session, unit_file) for unit_file in parsed]
