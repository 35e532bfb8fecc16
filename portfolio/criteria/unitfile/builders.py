"""Building the checked specs from the TOML data."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from typing import Any

from portfolio.criteria.unitfile.specs import (
    AssessmentSpec,
    CriterionSpec,
    GuidanceSpec,
    LearningOutcomeSpec,
    QualificationSpec,
    UnitFile,
    UnitSpec,
)


def _markdown(value: str) -> str:
    """Return a Markdown block without common indentation or surrounding blank space."""
    return textwrap.dedent(value).strip()


def _build(path: str, raw: Mapping[str, Any]) -> UnitFile:
    """Build a UnitFile from a parsed file that has passed every check."""
    assessment = _build_assessment(raw["assessment"])
    return UnitFile(
        path=path,
        schema_version=raw["schema_version"],
        qualification=QualificationSpec(**raw["qualification"]),
        unit=_build_unit(raw["unit"]),
        assessment=assessment,
        learning_outcomes=tuple(
            _build_outcome(lo, assessment.default_required_occurrences)
            for lo in raw["learning_outcomes"]
        ),
        guidance=tuple(_build_guidance(item) for item in raw.get("guidance", [])),
    )


def _build_unit(raw: Mapping[str, Any]) -> UnitSpec:
    """Build the unit's description."""
    return UnitSpec(
        reference=raw["reference"],
        number=raw["number"],
        title=raw["title"],
        level=raw["level"],
        credits=raw["credits"],
        guided_learning_hours=raw["guided_learning_hours"],
        unit_type=raw["unit_type"],
        summary=_markdown(raw.get("summary", "")),
    )


def _build_assessment(raw: Mapping[str, Any]) -> AssessmentSpec:
    """Build the unit's assessment rules, applying defaults."""
    return AssessmentSpec(
        workplace_only=raw["workplace_only"],
        simulation_allowed=raw["simulation_allowed"],
        rpl_allowed=raw["rpl_allowed"],
        currency_months=raw["currency_months"],
        default_required_occurrences=raw.get("default_required_occurrences", 1),
        notes=_markdown(raw.get("notes", "")),
    )


def _build_outcome(raw: Mapping[str, Any], default_occurrences: int) -> LearningOutcomeSpec:
    """Build one learning outcome and its criteria."""
    return LearningOutcomeSpec(
        number=raw["number"],
        title=raw["title"],
        kind=raw["kind"],
        criteria=tuple(_build_criterion(c, default_occurrences) for c in raw["criteria"]),
    )


def _build_criterion(raw: Mapping[str, Any], default_occurrences: int) -> CriterionSpec:
    """Build one assessment criterion, applying defaults."""
    return CriterionSpec(
        number=raw["number"],
        text=raw["text"],
        amplification=_markdown(raw.get("amplification", "")),
        methods=tuple(raw["methods"]),
        preferred_methods=tuple(raw.get("preferred_methods", ())),
        required_occurrences=raw.get("required_occurrences", default_occurrences),
    )


def _build_guidance(raw: Mapping[str, Any]) -> GuidanceSpec:
    """Build one guidance item."""
    return GuidanceSpec(
        kind=raw["kind"],
        text=_markdown(raw["text"]),
        criteria=tuple(raw.get("criteria", ())),
        source=raw.get("source", ""),
    )
