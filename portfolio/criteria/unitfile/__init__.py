"""Read and check the human-editable unit files in ``criteria/*.toml``.

A unit file describes one unit: its qualification, assessment rules, learning outcomes,
assessment criteria (with amplification and accepted methods) and guidance. This module is
pure Python (no database, no Flask); ``criteria/README.md`` documents the format.
"""

from __future__ import annotations

from portfolio.criteria.unitfile.builders import (  # noqa: F401
    _build,
    _build_assessment,
    _build_criterion,
    _build_guidance,
    _build_outcome,
    _build_unit,
    _markdown,
)
from portfolio.criteria.unitfile.checker import (  # noqa: F401
    _Checker,
    _Outcome,
)
from portfolio.criteria.unitfile.loading import (  # noqa: F401
    _load_toml,
    _read,
    _syntax_problem,
    check_file,
    parse_file,
)
from portfolio.criteria.unitfile.schema import (  # noqa: F401
    _ASSESSMENT_FIELDS,
    _CRITERION_FIELDS,
    _GUIDANCE_FIELDS,
    _MAX_LENGTHS,
    _OUTCOME_FIELDS,
    _QUALIFICATION_FIELDS,
    _ROOT_FIELDS,
    _TYPES,
    _UNIT_FIELDS,
    _declared_numbers,
    _describe,
    _Field,
    _is_int,
    _is_list_of,
    _suggest,
)
from portfolio.criteria.unitfile.source import (  # noqa: F401
    _HEADER_RE,
    _KEY_RE,
    _TRIPLE_QUOTE_RE,
    _open_quote_after,
    _SourceIndex,
    _Table,
)
from portfolio.criteria.unitfile.specs import (  # noqa: F401
    AssessmentSpec,
    CriterionSpec,
    GuidanceSpec,
    LearningOutcomeSpec,
    Problem,
    QualificationSpec,
    UnitFile,
    UnitFileInvalid,
    UnitSpec,
)
from portfolio.criteria.unitfile.vocabulary import (  # noqa: F401
    _CRITERION_NUMBER_RE,
    _TITLE_KINDS,
    _UNIT_REFERENCE_RE,
    GUIDANCE_KINDS,
    LO_KINDS,
    METHODS,
    SCHEMA_VERSION,
)

__all__ = [
    "GUIDANCE_KINDS",
    "LO_KINDS",
    "METHODS",
    "SCHEMA_VERSION",
    "AssessmentSpec",
    "CriterionSpec",
    "GuidanceSpec",
    "LearningOutcomeSpec",
    "Problem",
    "QualificationSpec",
    "UnitFile",
    "UnitFileInvalid",
    "UnitSpec",
    "check_file",
    "parse_file",
]
