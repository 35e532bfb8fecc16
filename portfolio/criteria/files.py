"""Read and check the human-editable unit files in ``criteria/*.toml``.

A unit file describes one unit: its qualification, assessment rules, learning outcomes,
assessment criteria (with amplification and accepted methods) and guidance. This module is
pure Python (no database, no Flask); ``criteria/README.md`` documents the format.
"""

from __future__ import annotations

import difflib
import os
import re
import textwrap
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

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

SCHEMA_VERSION = 1

METHODS: dict[str, str] = {
    "direct_observation": "Direct observation",
    "professional_discussion": "Professional discussion",
    "witness_testimony": "Witness testimony",
    "expert_witness_testimony": "Expert witness testimony",
    "product_evidence": "Work products",
    "reflective_account": "Reflective account",
    "questioning": "Questioning",
    "rpl": "Recognition of prior learning (RPL)",
    "simulation": "Simulation",
}

GUIDANCE_KINDS: dict[str, str] = {
    "tip": "Tips for learners",
    "mistake": "Common mistakes",
    "assessor_looks_for": "What an assessor looks for",
}

LO_KINDS: tuple[str, ...] = ("knowledge", "performance")

_UNIT_REFERENCE_RE = re.compile(r"^[A-Z]/\d{3}/\d{4}$")
_CRITERION_NUMBER_RE = re.compile(r"^([1-9]\d*)\.([1-9]\d*)$")
_TITLE_KINDS: tuple[tuple[str, str], ...] = (
    ("Understand", "knowledge"),
    ("Be able to", "performance"),
)


# --------------------------------------------------------------------------- public types


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


# --------------------------------------------------------------------------- entry points


def check_file(path: str | os.PathLike[str]) -> list[Problem]:
    """Return every problem found in the unit file at ``path`` (empty when it is valid)."""
    return _read(os.fspath(path))[1]


def parse_file(path: str | os.PathLike[str]) -> UnitFile:
    """Parse the unit file at ``path``, raising UnitFileInvalid if it has any problem."""
    unit_file, problems = _read(os.fspath(path))
    if unit_file is None:
        raise UnitFileInvalid(problems)
    return unit_file


def _read(path: str) -> tuple[UnitFile | None, list[Problem]]:
    """Load, check and (when valid) build the unit file at ``path``."""
    loaded = _load_toml(path)
    if isinstance(loaded, Problem):
        return None, [loaded]
    text, raw = loaded
    checker = _Checker(path, _SourceIndex(text))
    checker.check(raw)
    problems = sorted(checker.problems, key=lambda p: p.line or 0)
    if problems:
        return None, problems
    return _build(path, raw), []


def _load_toml(path: str) -> tuple[str, dict[str, Any]] | Problem:
    """Return the text and parsed TOML of ``path``, or the problem that stopped it."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        return Problem(path, None, f"cannot read the file: {exc.strerror or exc}")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        return Problem(path, line, "the file is not UTF-8 text; save it with UTF-8 encoding")
    try:
        return text, tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return _syntax_problem(path, text, exc)


def _syntax_problem(path: str, text: str, exc: tomllib.TOMLDecodeError) -> Problem:
    """Turn a tomllib error into a Problem on the line it names."""
    message = str(exc)
    at = re.search(r"\s*\(at (?:line (\d+), column (\d+)|end of document)\)$", message)
    if at is None:
        return Problem(path, None, f"TOML syntax error: {message}")
    base = message[: at.start()]
    if at.group(1) is None:
        # The last line of the file (a final line break does not start another line).
        last = max(1, text.count("\n") + (0 if text.endswith("\n") else 1))
        return Problem(path, last, f"TOML syntax error at end of file: {base}")
    return Problem(path, int(at.group(1)), f"TOML syntax error: {base} (column {at.group(2)})")


# --------------------------------------------------------------------------- source lines

_HEADER_RE = re.compile(r"^\s*(\[\[|\[)\s*([A-Za-z0-9_.\-\s]+?)\s*(\]\]|\])\s*(?:#.*)?$")
_KEY_RE = re.compile(r"""^\s*("[^"]*"|'[^']*'|[A-Za-z0-9_-]+)\s*[=.]""")
_TRIPLE_QUOTE_RE = re.compile(r"\"\"\"|'''")


@dataclass
class _Table:
    """Where a table starts in the source and where each of its keys is set."""

    name: str
    line: int | None
    keys: dict[str, int] = field(default_factory=dict)

    def line_of(self, key: str | None = None) -> int | None:
        """Return the line setting ``key`` in this table, else the table's header line."""
        if key is not None and key in self.keys:
            return self.keys[key]
        return self.line


class _SourceIndex:
    """Line numbers of the table headers and keys of a TOML text, found by scanning it."""

    def __init__(self, text: str) -> None:
        self.root = _Table("", None)
        self.tables: list[_Table] = []
        self._scan(text)

    def nth(self, name: str, index: int) -> _Table:
        """Return the ``index``-th table headed ``[name]`` or ``[[name]]`` (0-based)."""
        matches = [t for t in self.tables if t.name == name]
        return matches[index] if index < len(matches) else _Table(name, None)

    def _scan(self, text: str) -> None:
        """Record headers and keys line by line, skipping multi-line strings."""
        current, open_quote = self.root, None
        for number, line in enumerate(text.split("\n"), start=1):
            if open_quote is None:
                current = self._scan_line(line, number, current)
            open_quote = _open_quote_after(line, open_quote)
        for table in self.tables:
            self.root.keys.setdefault(table.name.split(".")[0], table.line or 0)

    def _scan_line(self, line: str, number: int, current: _Table) -> _Table:
        """Record a header or key on this line; return the table now being filled."""
        header = _HEADER_RE.match(line)
        if header and (header.group(1) == "[") == (header.group(3) == "]"):
            table = _Table(re.sub(r"\s*\.\s*", ".", header.group(2)), number)
            self.tables.append(table)
            return table
        key = _KEY_RE.match(line)
        if key:
            current.keys.setdefault(key.group(1).strip("\"'"), number)
        return current


def _open_quote_after(line: str, open_quote: str | None) -> str | None:
    """Return the multi-line string delimiter still open at the end of ``line``."""
    position = 0
    while True:
        if open_quote is None:
            start = _TRIPLE_QUOTE_RE.search(line, position)
            if start is None:
                return None
            open_quote, position = start.group(), start.end()
        else:
            end = line.find(open_quote, position)
            if end < 0:
                return open_quote
            open_quote, position = None, end + 3


# --------------------------------------------------------------------------- key schemas


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


# --------------------------------------------------------------------------- checks


@dataclass(frozen=True)
class _Outcome:
    """The learning outcome a criterion is listed under."""

    number: int | None
    label: str
    where: _Table


class _Checker:
    """Collect every problem in a parsed unit file, with the best line number available."""

    def __init__(self, path: str, index: _SourceIndex) -> None:
        self.path = path
        self.index = index
        self.problems: list[Problem] = []

    def report(self, line: int | None, message: str) -> None:
        """Record one problem."""
        self.problems.append(Problem(self.path, line, message))

    # ----- generic helpers

    def table(
        self, raw: Mapping[str, Any], fields: Mapping[str, _Field], where: _Table, label: str
    ) -> dict[str, Any]:
        """Check a table's keys and value types; return the values of the right type."""
        good: dict[str, Any] = {}
        for key, spec in fields.items():
            if key not in raw:
                if spec.required:
                    self.report(where.line_of(), f"{label}: missing required key `{key}`")
                continue
            expected, test = _TYPES[spec.type]
            if test(raw[key]):
                good[key] = raw[key]
            else:
                found = _describe(raw[key])
                self.report(where.line_of(key), f"{label}: `{key}` must be {expected}, not {found}")
        for key in raw:
            if key not in fields:
                self.report(
                    where.line_of(key), f"{label}: unknown key `{key}`{_suggest(key, list(fields))}"
                )
        return good

    def one_line(self, values: Mapping[str, Any], where: _Table, label: str, *keys: str) -> None:
        """Check that short text values are non-empty, trimmed and not too long."""
        for key in keys:
            value = values.get(key)
            if value is None:
                continue
            line = where.line_of(key)
            if not value.strip():
                self.report(line, f"{label}: `{key}` must not be empty")
            elif value != value.strip():
                self.report(
                    line,
                    f"{label}: `{key}` has spaces or line breaks at its start or end; remove them",
                )
            elif len(value) > _MAX_LENGTHS.get(key, len(value)):
                self.report(line, f"{label}: `{key}` is longer than {_MAX_LENGTHS[key]} characters")

    def not_blank(self, values: Mapping[str, Any], where: _Table, label: str, key: str) -> None:
        """Check that a Markdown text value has some content."""
        if key in values and not values[key].strip():
            self.report(where.line_of(key), f"{label}: `{key}` must not be empty")

    def in_range(
        self,
        values: Mapping[str, Any],
        where: _Table,
        label: str,
        key: str,
        low: int,
        high: int | None = None,
    ) -> None:
        """Check that a whole-number value lies between ``low`` and ``high``."""
        value = values.get(key)
        if value is None:
            return
        if value < low or (high is not None and value > high):
            wanted = f"between {low} and {high}" if high is not None else f"at least {low}"
            self.report(where.line_of(key), f"{label}: `{key}` must be {wanted}, not {value}")

    # ----- top level

    def check(self, raw: Mapping[str, Any]) -> None:
        """Check a whole parsed unit file."""
        top = self.table(raw, _ROOT_FIELDS, self.index.root, "top level")
        if not self.schema_version_ok(top):
            return
        if "qualification" in top:
            self.check_qualification(top["qualification"])
        if "unit" in top:
            self.check_unit(top["unit"])
        rules = self.check_assessment(top["assessment"]) if "assessment" in top else {}
        criteria = self.check_outcomes(top.get("learning_outcomes"), rules)
        self.check_guidance(top.get("guidance", []), criteria)

    def schema_version_ok(self, top: Mapping[str, Any]) -> bool:
        """Check the schema version; tell whether the rest of the file can be checked."""
        version = top.get("schema_version", SCHEMA_VERSION)
        if version == SCHEMA_VERSION:
            return True
        self.report(
            self.index.root.line_of("schema_version"),
            f"schema_version {version} is not supported; this program reads "
            f"schema_version = {SCHEMA_VERSION} (see criteria/README.md)",
        )
        return False

    def check_qualification(self, raw: Mapping[str, Any]) -> None:
        """Check the [qualification] table."""
        where, label = self.index.nth("qualification", 0), "[qualification]"
        values = self.table(raw, _QUALIFICATION_FIELDS, where, label)
        self.one_line(values, where, label, "code", "title")
        self.in_range(values, where, label, "level", 1, 8)

    def check_unit(self, raw: Mapping[str, Any]) -> None:
        """Check the [unit] table."""
        where, label = self.index.nth("unit", 0), "[unit]"
        values = self.table(raw, _UNIT_FIELDS, where, label)
        self.one_line(values, where, label, "reference", "number", "title", "unit_type")
        reference = values.get("reference")
        if reference is not None and not _UNIT_REFERENCE_RE.match(reference):
            self.report(
                where.line_of("reference"),
                f"{label}: `reference` must look like R/506/2151 (a capital letter, "
                f"3 digits and 4 digits, separated by /), not {reference!r}",
            )
        self.in_range(values, where, label, "level", 1, 8)
        self.in_range(values, where, label, "credits", 1)
        self.in_range(values, where, label, "guided_learning_hours", 1)

    def check_assessment(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        """Check the [assessment] table; return its well-typed values."""
        where, label = self.index.nth("assessment", 0), "[assessment]"
        values = self.table(raw, _ASSESSMENT_FIELDS, where, label)
        self.in_range(values, where, label, "currency_months", 1)
        self.in_range(values, where, label, "default_required_occurrences", 1)
        return values

    # ----- learning outcomes and criteria

    def check_outcomes(
        self, outcomes: list[dict[str, Any]] | None, rules: Mapping[str, Any]
    ) -> set[str]:
        """Check every learning outcome; return the criterion numbers the file declares."""
        if outcomes == []:
            self.report(
                self.index.root.line_of("learning_outcomes"),
                "the file must have at least one [[learning_outcomes]] table",
            )
        seen_outcomes: set[int] = set()
        seen_criteria: dict[str, int | None] = {}
        declared: set[str] = set()
        position = 0
        for index, raw in enumerate(outcomes or []):
            outcome, criteria = self.check_outcome(index, raw, seen_outcomes)
            declared.update(_declared_numbers(criteria))
            for offset, raw_criterion in enumerate(criteria):
                self.check_criterion(
                    position + offset, raw_criterion, outcome, rules, seen_criteria
                )
            position += len(criteria)
        return declared

    def check_outcome(
        self, index: int, raw: Mapping[str, Any], seen: set[int]
    ) -> tuple[_Outcome, list[dict[str, Any]]]:
        """Check one [[learning_outcomes]] table; return it and its raw criteria."""
        where = self.index.nth("learning_outcomes", index)
        number = raw.get("number")
        label = f"learning outcome {number if _is_int(number) else f'#{index + 1}'}"
        values = self.table(raw, _OUTCOME_FIELDS, where, label)
        self.one_line(values, where, label, "title")
        number = self.check_outcome_number(values, where, label, index, seen)
        self.check_outcome_kind(values, where, label)
        criteria = values.get("criteria", [])
        if "criteria" in values and not criteria:
            self.report(where.line_of("criteria"), f"{label} has no criteria")
        return _Outcome(number, label, where), criteria

    def check_outcome_number(
        self, values: Mapping[str, Any], where: _Table, label: str, index: int, seen: set[int]
    ) -> int | None:
        """Check that outcomes are numbered 1, 2, 3... in order; return the valid number."""
        number = values.get("number")
        if number is None:
            return None
        if number in seen:
            self.report(
                where.line_of("number"),
                f"{label}: learning outcome number {number} is used more than once",
            )
            return None
        seen.add(number)
        if number != index + 1:
            self.report(
                where.line_of("number"),
                f"{label}: learning outcomes must be numbered 1, 2, 3... in file "
                f"order; expected {index + 1} here, found {number}",
            )
            return None
        return number

    def check_outcome_kind(self, values: Mapping[str, Any], where: _Table, label: str) -> None:
        """Check the outcome's kind, and that it agrees with how its title starts."""
        kind = values.get("kind")
        if kind is None:
            return
        if kind not in LO_KINDS:
            self.report(
                where.line_of("kind"),
                f'{label}: `kind` must be "knowledge" or "performance", not {kind!r}',
            )
            return
        title = values.get("title", "")
        for start, expected in _TITLE_KINDS:
            if title.startswith(start) and kind != expected:
                self.report(
                    where.line_of("kind"),
                    f'{label}: kind is "{kind}" but the title starts "{start}", '
                    f'which makes it a {expected} outcome (kind = "{expected}")',
                )

    def check_criterion(
        self,
        position: int,
        raw: Mapping[str, Any],
        outcome: _Outcome,
        rules: Mapping[str, Any],
        seen: dict[str, int | None],
    ) -> None:
        """Check one [[learning_outcomes.criteria]] table."""
        where = self.index.nth("learning_outcomes.criteria", position)
        number = raw.get("number")
        label = (
            f"criterion {number.strip()}"
            if isinstance(number, str) and number.strip()
            else f"criterion #{position + 1} (under {outcome.label})"
        )
        values = self.table(raw, _CRITERION_FIELDS, where, label)
        self.one_line(values, where, label, "number", "text")
        self.check_criterion_number(values, where, label, outcome, seen)
        self.check_methods(values, where, label, rules)
        self.in_range(values, where, label, "required_occurrences", 1)

    def check_criterion_number(
        self,
        values: Mapping[str, Any],
        where: _Table,
        label: str,
        outcome: _Outcome,
        seen: dict[str, int | None],
    ) -> None:
        """Check a criterion number's form, outcome prefix, uniqueness and order."""
        number = values.get("number")
        if number is None or not number or number != number.strip():
            return
        line = where.line_of("number")
        match = _CRITERION_NUMBER_RE.match(number)
        if match is None:
            self.report(
                line,
                f'{label}: `number` must look like "1.2" (outcome number, '
                f"a dot, criterion number), not {number!r}",
            )
            return
        if outcome.number is not None and int(match.group(1)) != outcome.number:
            self.report(
                line,
                f"{label}: the number says learning outcome {match.group(1)} "
                f"but it is listed under {outcome.label}",
            )
        if number in seen:
            first = seen[number]
            where_first = f" (first used on line {first})" if first else ""
            self.report(line, f"{label}: number {number} is used more than once{where_first}")
            return
        self.check_criterion_order(number, line, label, seen)
        seen[number] = line

    def check_criterion_order(
        self, number: str, line: int | None, label: str, seen: Mapping[str, int | None]
    ) -> None:
        """Check that a criterion comes after the previous one of the same outcome."""
        outcome, position = (int(part) for part in number.split("."))
        earlier = [int(n.split(".")[1]) for n in seen if int(n.split(".")[0]) == outcome]
        if earlier and position < max(earlier):
            self.report(
                line,
                f"{label}: criteria must be in number order, but {number} is listed "
                f"after {outcome}.{max(earlier)}",
            )

    def check_methods(
        self, values: Mapping[str, Any], where: _Table, label: str, rules: Mapping[str, Any]
    ) -> None:
        """Check a criterion's methods and preferred methods against METHODS and the rules."""
        methods = values.get("methods")
        if methods is not None:
            if not methods:
                self.report(
                    where.line_of("methods"),
                    f"{label}: `methods` must list at least one assessment method",
                )
            self.method_names(methods, where, label, "methods")
            self.methods_allowed(methods, where, label, rules)
        preferred = values.get("preferred_methods")
        if preferred is not None:
            self.method_names(preferred, where, label, "preferred_methods")
            extra = [m for m in preferred if m in METHODS and m not in (methods or [])]
            if methods is not None and extra:
                self.report(
                    where.line_of("preferred_methods"),
                    f"{label}: `preferred_methods` must also be in `methods`; "
                    f"missing from `methods`: {', '.join(extra)}",
                )

    def method_names(self, names: list[str], where: _Table, label: str, key: str) -> None:
        """Check that every name is a known method, listed once."""
        for position, name in enumerate(names):
            if name not in METHODS:
                self.report(
                    where.line_of(key),
                    f"{label}: unknown assessment method {name!r} in `{key}`"
                    f"{_suggest(name, list(METHODS))}; known methods: "
                    f"{', '.join(METHODS)}",
                )
            elif name in names[:position]:
                self.report(where.line_of(key), f"{label}: `{key}` lists {name!r} twice")

    def methods_allowed(
        self, methods: list[str], where: _Table, label: str, rules: Mapping[str, Any]
    ) -> None:
        """Check that the unit's assessment rules allow simulation and RPL where listed."""
        for method, rule in (("simulation", "simulation_allowed"), ("rpl", "rpl_allowed")):
            if method in methods and rules.get(rule) is False:
                self.report(
                    where.line_of("methods"),
                    f'{label}: lists "{method}" but [assessment] {rule} = false',
                )

    # ----- guidance

    def check_guidance(self, items: list[dict[str, Any]], criteria: set[str]) -> None:
        """Check every [[guidance]] table."""
        texts: dict[str, int] = {}
        for index, raw in enumerate(items):
            where, label = self.index.nth("guidance", index), f"guidance item {index + 1}"
            values = self.table(raw, _GUIDANCE_FIELDS, where, label)
            self.check_guidance_kind(values, where, label)
            self.not_blank(values, where, label, "text")
            self.one_line(values, where, label, "source")
            self.check_guidance_criteria(values, where, label, criteria)
            text = " ".join(values.get("text", "").split())
            if text and text in texts:
                self.report(
                    where.line_of("text"), f"{label}: same text as guidance item {texts[text]}"
                )
            texts.setdefault(text, index + 1)

    def check_guidance_kind(self, values: Mapping[str, Any], where: _Table, label: str) -> None:
        """Check that a guidance item's kind is one of GUIDANCE_KINDS."""
        kind = values.get("kind")
        if kind is not None and kind not in GUIDANCE_KINDS:
            self.report(
                where.line_of("kind"),
                f"{label}: `kind` must be one of {', '.join(GUIDANCE_KINDS)}, "
                f"not {kind!r}{_suggest(kind, list(GUIDANCE_KINDS))}",
            )

    def check_guidance_criteria(
        self,
        values: Mapping[str, Any],
        where: _Table,
        label: str,
        criteria: set[str],
    ) -> None:
        """Check that a guidance item names only criteria of this file, each once."""
        refs = values.get("criteria", [])
        for position, ref in enumerate(refs):
            if ref not in criteria:
                self.report(
                    where.line_of("criteria"),
                    f"{label}: refers to criterion {ref!r}, which is not in this file",
                )
            elif ref in refs[:position]:
                self.report(where.line_of("criteria"), f"{label}: lists criterion {ref} twice")


# --------------------------------------------------------------------------- building


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
