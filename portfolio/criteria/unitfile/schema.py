"""The keys each table of a unit file may and must have, with their types."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class _Field:
    type: str
    required: bool = True


def _is_int(value: Any) -> bool:
    """Tell whether ``value`` is an integer and not a boolean."""
    return isinstance(value, int) and not isinstance(value, bool)


def _is_list_of(kind: type) -> Callable[[Any], bool]:
    """Return a test for a list whose items are all of ``kind``."""
    return lambda value: isinstance(value, list) and all(isinstance(v, kind) for v in value)


_TYPES: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "string": ("a string (in quotes)", lambda v: isinstance(v, str)),
    "integer": ("a whole number", _is_int),
    "boolean": ("true or false", lambda v: isinstance(v, bool)),
    "strings": ('a list of strings, e.g. ["a", "b"]', _is_list_of(str)),
    "table": ("a table", lambda v: isinstance(v, dict)),
    "tables": ("an array of tables ([[...]] sections)", _is_list_of(dict)),
}

_ROOT_FIELDS = {
    "schema_version": _Field("integer"),
    "qualification": _Field("table"),
    "unit": _Field("table"),
    "assessment": _Field("table"),
    "learning_outcomes": _Field("tables"),
    "guidance": _Field("tables", required=False),
}
_QUALIFICATION_FIELDS = {
    "code": _Field("string"),
    "title": _Field("string"),
    "level": _Field("integer"),
}
_UNIT_FIELDS = {
    "reference": _Field("string"),
    "number": _Field("string"),
    "title": _Field("string"),
    "level": _Field("integer"),
    "credits": _Field("integer"),
    "guided_learning_hours": _Field("integer"),
    "unit_type": _Field("string"),
    "summary": _Field("string", required=False),
}
_ASSESSMENT_FIELDS = {
    "workplace_only": _Field("boolean"),
    "simulation_allowed": _Field("boolean"),
    "rpl_allowed": _Field("boolean"),
    "currency_months": _Field("integer"),
    "default_required_occurrences": _Field("integer", required=False),
    "notes": _Field("string", required=False),
}
_OUTCOME_FIELDS = {
    "number": _Field("integer"),
    "title": _Field("string"),
    "kind": _Field("string"),
    "criteria": _Field("tables"),
}
_CRITERION_FIELDS = {
    "number": _Field("string"),
    "text": _Field("string"),
    "amplification": _Field("string", required=False),
    "methods": _Field("strings"),
    "preferred_methods": _Field("strings", required=False),
    "required_occurrences": _Field("integer", required=False),
}
_GUIDANCE_FIELDS = {
    "kind": _Field("string"),
    "text": _Field("string"),
    "criteria": _Field("strings", required=False),
    "source": _Field("string", required=False),
}

# Longest values the database columns hold.
_MAX_LENGTHS = {
    "code": 40,
    "reference": 20,
    "number": 10,
    "title": 300,
    "unit_type": 40,
    "source": 200,
}


def _describe(value: Any) -> str:
    """Name the TOML type of ``value`` for an error message."""
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int):
        return "a whole number"
    if isinstance(value, float):
        return "a decimal number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        if all(isinstance(v, str) for v in value):
            return "a list of strings"
        return "an array of tables" if all(isinstance(v, dict) for v in value) else "a mixed list"
    return f"a {type(value).__name__}"


def _declared_numbers(criteria: Sequence[Mapping[str, Any]]) -> set[str]:
    """Return the criterion numbers written in ``criteria``, however malformed."""
    return {c["number"].strip() for c in criteria if isinstance(c.get("number"), str)}


def _suggest(word: str, choices: Sequence[str]) -> str:
    """Return a ' (did you mean ...?)' hint for a misspelt ``word``, or ''."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean `{close[0]}`?)" if close else ""
