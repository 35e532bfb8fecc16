"""Every check a unit file must pass, each problem named with its line and a suggestion."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from portfolio.criteria.unitfile.schema import (
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
    _suggest,
)
from portfolio.criteria.unitfile.source import _SourceIndex, _Table
from portfolio.criteria.unitfile.specs import Problem
from portfolio.criteria.unitfile.vocabulary import (
    _CRITERION_NUMBER_RE,
    _TITLE_KINDS,
    _UNIT_REFERENCE_RE,
    GUIDANCE_KINDS,
    LO_KINDS,
    METHODS,
    SCHEMA_VERSION,
)


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
