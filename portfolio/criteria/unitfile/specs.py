"""What a checked unit file becomes: the unit, its outcomes, criteria and guidance, and the
problems found."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class QualificationSpec:
    """The qualification a unit belongs to."""

    code: str
    title: str
    level: int


@dataclass(frozen=True)
class UnitSpec:
    """A unit's identity and size, as in its specification."""

    reference: str
    number: str
    title: str
    level: int
    credits: int
    guided_learning_hours: int
    unit_type: str
    summary: str


@dataclass(frozen=True)
class AssessmentSpec:
    """A unit's assessment rules, as data."""

    workplace_only: bool
    simulation_allowed: bool
    rpl_allowed: bool
    currency_months: int
    default_required_occurrences: int
    notes: str


@dataclass(frozen=True)
class CriterionSpec:
    """One assessment criterion, the methods it accepts and how much evidence it needs."""

    number: str
    text: str
    amplification: str
    methods: tuple[str, ...]
    preferred_methods: tuple[str, ...]
    required_occurrences: int


@dataclass(frozen=True)
class LearningOutcomeSpec:
    """One learning outcome and its criteria."""

    number: int
    title: str
    kind: str
    criteria: tuple[CriterionSpec, ...]


@dataclass(frozen=True)
class GuidanceSpec:
    """One piece of guidance, for the whole unit (no criteria) or for some criteria."""

    kind: str
    text: str
    criteria: tuple[str, ...]
    source: str


@dataclass(frozen=True)
class UnitFile:
    """A parsed, valid unit file."""

    path: str
    schema_version: int
    qualification: QualificationSpec
    unit: UnitSpec
    assessment: AssessmentSpec
    learning_outcomes: tuple[LearningOutcomeSpec, ...]
    guidance: tuple[GuidanceSpec, ...]

    @property
    def criteria(self) -> tuple[CriterionSpec, ...]:
        """Return every criterion of the unit, in file order."""
        return tuple(c for lo in self.learning_outcomes for c in lo.criteria)


@dataclass(frozen=True)
class Problem:
    """One problem found in a unit file, with its line when known."""

    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        if self.line is None:
            return f"{self.path}: {self.message}"
        return f"{self.path}:{self.line}: {self.message}"


class UnitFileInvalid(Exception):
    """A unit file has one or more problems; ``problems`` lists them all."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems: list[Problem] = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))
