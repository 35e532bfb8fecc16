"""Read units with their outcomes, criteria and guidance as plain data for pages and the API."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from portfolio.criteria.unitfile import GUIDANCE_KINDS, METHODS
from portfolio.errors import NotFound
from portfolio.models import Criterion, GuidanceNote, LearningOutcome, Unit


@dataclass(frozen=True)
class GuidanceView:
    kind: str
    kind_label: str
    text: str
    criteria: tuple[str, ...]


@dataclass(frozen=True)
class CriterionView:
    id: int
    number: str
    text: str
    amplification_md: str
    required_occurrences: int
    version: int
    methods: tuple[tuple[str, str, bool], ...]  # (key, label, preferred)
    guidance: tuple[GuidanceView, ...]


@dataclass(frozen=True)
class OutcomeView:
    number: int
    title: str
    kind: str
    criteria: tuple[CriterionView, ...]


@dataclass(frozen=True)
class UnitView:
    id: int
    reference: str
    number: str
    title: str
    level: int
    credits: int
    guided_learning_hours: int
    unit_type: str
    summary: str
    qualification: str
    workplace_only: bool
    simulation_allowed: bool
    rpl_allowed: bool
    currency_months: int
    assessment_notes_md: str
    version: int
    outcomes: tuple[OutcomeView, ...]
    unit_guidance: tuple[GuidanceView, ...]

    @property
    def criteria_count(self) -> int:
        return sum(len(lo.criteria) for lo in self.outcomes)


def _guidance_view(note: GuidanceNote) -> GuidanceView:
    return GuidanceView(note.kind, GUIDANCE_KINDS.get(note.kind, note.kind), note.text,
                        tuple(c.number for c in note.criteria))


def get_unit_view(session: Session, unit_id: int) -> UnitView:
    """Return one unit with everything its page shows, in a fixed number of queries."""
    unit = session.scalar(
        select(Unit)
        .where(Unit.id == unit_id)
        .options(
            selectinload(Unit.qualification),
            selectinload(Unit.learning_outcomes)
            .selectinload(LearningOutcome.criteria)
            .selectinload(Criterion.methods),
            selectinload(Unit.guidance).selectinload(GuidanceNote.criteria),
        )
    )
    if unit is None:
        raise NotFound("No such unit.")
    by_criterion: dict[str, list[GuidanceView]] = {}
    unit_wide: list[GuidanceView] = []
    for note in unit.guidance:
        view = _guidance_view(note)
        if not view.criteria:
            unit_wide.append(view)
        for number in view.criteria:
            by_criterion.setdefault(number, []).append(view)
    outcomes = tuple(
        OutcomeView(
            lo.number, lo.title, lo.kind,
            tuple(
                CriterionView(
                    c.id, c.number, c.text, c.amplification_md, c.required_occurrences,
                    c.version,
                    tuple(sorted(((m.method, METHODS.get(m.method, m.method), m.preferred)
                                  for m in c.methods), key=lambda t: (not t[2], t[1]))),
                    tuple(by_criterion.get(c.number, ())),
                )
                for c in lo.criteria if not c.is_retired
            ),
        )
        for lo in unit.learning_outcomes
    )
    return UnitView(
        unit.id, unit.reference, unit.number, unit.title, unit.level, unit.credits,
        unit.guided_learning_hours, unit.unit_type, unit.summary, unit.qualification.title,
        unit.workplace_only, unit.simulation_allowed, unit.rpl_allowed, unit.currency_months,
        unit.assessment_notes_md, unit.version, outcomes, tuple(unit_wide),
    )
