"""The unit file parser/validator (portfolio/criteria/unitfile/) and the shipped Unit 40 file.

No database: these tests only read TOML files. Broken files are written into tmp_path by
editing a copy of the good file's text (each edit must match exactly once, so a change to the
shipped file makes these tests fail loudly instead of silently testing nothing) or from a
small minimal file. Expected line numbers are found by searching the text the test wrote.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from portfolio.criteria.unitfile import (
    GUIDANCE_KINDS,
    METHODS,
    Problem,
    UnitFile,
    UnitFileInvalid,
    check_file,
    parse_file,
)

CRITERIA_DIR = Path(__file__).resolve().parent.parent / "criteria"
UNIT40_FILE = CRITERIA_DIR / "unit-40-resolve-customers-complaints.toml"
GOOD = UNIT40_FILE.read_text(encoding="utf-8")

LO1 = [f"1.{n}" for n in range(1, 9)]
LO2 = [f"2.{n}" for n in range(1, 10)]

# A small valid file: the base for the cases the Unit 40 file cannot express neatly.
MINIMAL = """\
schema_version = 1

[qualification]
code = "Q1"
title = "A qualification"
level = 2

[unit]
reference = "A/123/4567"
number = "1"
title = "A unit"
level = 2
credits = 1
guided_learning_hours = 5
unit_type = "Competence"

[assessment]
workplace_only = true
simulation_allowed = false
rpl_allowed = false
currency_months = 12

[[learning_outcomes]]
number = 1
title = "Understand things"
kind = "knowledge"

[[learning_outcomes.criteria]]
number = "1.1"
text = "Explain the first thing"
methods = ["professional_discussion"]

[[learning_outcomes.criteria]]
number = "1.2"
text = "Explain the second thing"
methods = ["questioning"]

[[guidance]]
kind = "tip"
criteria = ["1.1"]
text = "A tip."
"""


# --------------------------------------------------------------------------- helpers


def replace_once(text: str, old: str, new: str) -> str:
    """Replace ``old``, which must occur exactly once in ``text``."""
    assert text.count(old) == 1, f"expected exactly one {old!r} in the text"
    return text.replace(old, new)


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    """Return the 1-based line of the ``occurrence``-th appearance of ``needle``."""
    position = -1
    for _ in range(occurrence):
        position = text.find(needle, position + 1)
        assert position >= 0, f"{needle!r} (occurrence {occurrence}) not in the text"
    return text.count("\n", 0, position) + 1


def header_before(text: str, needle: str, header: str = "[[learning_outcomes.criteria]]") -> int:
    """Return the line of the last ``header`` line before ``needle``."""
    target = line_of(text, needle)
    lines = text.split("\n")
    for number in range(target, 0, -1):
        if lines[number - 1].strip() == header:
            return number
    raise AssertionError(f"no {header} before {needle!r}")


def write(tmp_path: Path, text: str, name: str = "unit.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def unit40() -> UnitFile:
    return parse_file(UNIT40_FILE)


def by_number(unit_file: UnitFile) -> dict:
    return {c.number: c for c in unit_file.criteria}


# --------------------------------------------------------------------------- the Unit 40 file


def test_unit40_file_has_no_problems():
    assert check_file(UNIT40_FILE) == []


def test_unit40_identity(unit40):
    unit = unit40.unit
    assert unit40.schema_version == 1
    assert unit.reference == "R/506/2151"
    assert unit.number == "40"
    assert unit.title == "Resolve Customers’ Complaints"
    assert unit.level == 3
    assert unit.credits == 4
    assert unit.guided_learning_hours == 22
    assert unit.unit_type == "Competence"
    assert unit.summary and unit.summary == unit.summary.strip()
    assert unit40.qualification.code == "CS-L3"
    assert unit40.qualification.level == 3
    assert unit40.path == str(UNIT40_FILE)


def test_unit40_learning_outcomes_and_criteria(unit40):
    los = unit40.learning_outcomes
    assert [lo.number for lo in los] == [1, 2]
    assert [lo.kind for lo in los] == ["knowledge", "performance"]
    assert los[0].title == "Understand the monitoring and resolution of customers’ complaints"
    assert los[1].title == "Be able to deal with customers’ complaints"
    assert [c.number for c in los[0].criteria] == LO1
    assert [c.number for c in los[1].criteria] == LO2
    assert [c.number for c in unit40.criteria] == LO1 + LO2
    assert len(unit40.criteria) == 17


@pytest.mark.parametrize(
    ("number", "text"),
    [
        (
            "1.1",
            "Assess the suitability of a range of monitoring techniques for customers’ complaints",
        ),
        (
            "1.7",
            "Explain the cost and regulatory implications of admitting liability on the basis "
            "of a customer complaint",
        ),
        ("2.1", "Confirm the nature, cause and implications of customers’ complaint"),
        (
            "2.7",
            "Agree solutions with customers that address the complaint and which are within "
            "the limits of their own authority",
        ),
        (
            "2.9",
            "Adhere to organisational policies and procedures, legal and ethical requirements "
            "when dealing with customers’ complaints",
        ),
    ],
)
def test_unit40_exact_wording(unit40, number, text):
    assert by_number(unit40)[number].text == text


def test_unit40_keeps_typographic_apostrophes(unit40):
    criteria = by_number(unit40)
    for number in ("1.1", "1.3", "1.6", "2.1", "2.3", "2.9"):
        assert "customers’" in criteria[number].text
    assert all("'" not in c.text for c in unit40.criteria)


def test_unit40_assessment_rules(unit40):
    rules = unit40.assessment
    assert rules.workplace_only is True
    assert rules.simulation_allowed is False
    assert rules.rpl_allowed is True
    assert rules.currency_months == 24
    assert rules.default_required_occurrences == 1
    assert "simulation" in rules.notes.lower()
    assert all(c.required_occurrences == 1 for c in unit40.criteria)


def test_unit40_methods(unit40):
    criteria = by_number(unit40)
    for c in unit40.criteria:
        assert c.methods, c.number
        assert set(c.methods) <= set(METHODS), c.number
        assert len(set(c.methods)) == len(c.methods), c.number
        assert set(c.preferred_methods) <= set(c.methods), c.number
        assert "simulation" not in c.methods, c.number
        assert "rpl" in c.methods, c.number
    for number in ("2.1", "2.3", "2.6", "2.7"):
        assert "direct_observation" in criteria[number].preferred_methods, number
    for number in ("2.1", "2.3", "2.6", "2.7", "2.8"):
        assert "product_evidence" in criteria[number].preferred_methods, number
    for number in ["2.4", "2.5", *LO1]:
        assert "professional_discussion" in criteria[number].preferred_methods, number
    assert "witness_testimony" in criteria["2.9"].preferred_methods
    for number in LO2:
        assert "reflective_account" not in criteria[number].methods, number
    for number in LO1:
        assert "reflective_account" in criteria[number].methods, number


def test_unit40_amplification(unit40):
    criteria = by_number(unit40)
    for number in LO1:
        amplification = criteria[number].amplification
        assert amplification.startswith("- "), number
        assert amplification == amplification.strip(), number
    assert criteria["1.1"].amplification.startswith(
        "- Monitoring techniques: e.g. customer feedback cards"
    )


def test_unit40_guidance(unit40):
    guidance = unit40.guidance
    numbers = {c.number for c in unit40.criteria}
    assert {g.kind for g in guidance} == set(GUIDANCE_KINDS)
    for item in guidance:
        assert item.text and item.text == item.text.strip()
        assert set(item.criteria) <= numbers, item.criteria
        assert len(set(item.criteria)) == len(item.criteria)
    assert len({g.text for g in guidance}) == len(guidance)
    assert any(g.criteria == () for g in guidance), "no unit-wide guidance"
    craft = [g for g in guidance if g.text.startswith("A checklist such as CRAFT")]
    assert len(craft) == 1
    assert craft[0].kind == "tip"
    assert craft[0].criteria == ("2.1", "2.6", "2.7")
    assert craft[0].source == "001_db3af2fa78a581e9.txt"


def test_minimal_file_is_valid(tmp_path):
    unit_file = parse_file(write(tmp_path, MINIMAL))
    assert [c.number for c in unit_file.criteria] == ["1.1", "1.2"]
    # Defaults from the README.
    assert unit_file.unit.summary == ""
    assert unit_file.assessment.default_required_occurrences == 1
    assert unit_file.assessment.notes == ""
    assert unit_file.criteria[0].amplification == ""
    assert unit_file.criteria[0].preferred_methods == ()
    assert unit_file.criteria[0].required_occurrences == 1
    assert unit_file.guidance[0].source == ""


def test_markdown_is_dedented_and_default_occurrences_apply(tmp_path):
    text = replace_once(
        MINIMAL,
        "currency_months = 12\n",
        "currency_months = 12\ndefault_required_occurrences = 3\n",
    )
    text = replace_once(
        text,
        'methods = ["questioning"]\n',
        'methods = ["questioning"]\nrequired_occurrences = 2\n'
        'amplification = """\n    - one\n      - nested\n    - two\n    """\n',
    )
    unit_file = parse_file(write(tmp_path, text))
    first, second = unit_file.criteria
    assert first.required_occurrences == 3
    assert second.required_occurrences == 2
    assert second.amplification == "- one\n  - nested\n- two"


def test_comments_and_layout_do_not_change_the_parsed_content(tmp_path, unit40):
    text = GOOD.replace("\n\n", "\n\n# a comment\n\n").replace("credits = 4", "credits   =   4")
    reformatted = parse_file(write(tmp_path, text))
    assert reformatted.unit == unit40.unit
    assert reformatted.learning_outcomes == unit40.learning_outcomes
    assert reformatted.guidance == unit40.guidance


# --------------------------------------------------------------------------- broken files


@dataclass(frozen=True)
class Broken:
    """A broken file: how to make it, what must be reported, and where."""

    make: Callable[[], str]
    fragment: str
    locate: Callable[[str], int | None]  # the written text -> expected line
    count: int = 1  # how many problems the file has in all
    encoding: str = "utf-8"


def at(needle: str, occurrence: int = 1) -> Callable[[str], int]:
    return lambda text: line_of(text, needle, occurrence)


def header_of(needle: str, header: str = "[[learning_outcomes.criteria]]") -> Callable[[str], int]:
    return lambda text: header_before(text, needle, header)


def good(old: str, new: str) -> Callable[[], str]:
    return lambda: replace_once(GOOD, old, new)


def minimal(old: str, new: str) -> Callable[[], str]:
    return lambda: replace_once(MINIMAL, old, new)


EXTRA_CRITERION = (
    'preferred_methods = ["witness_testimony", "direct_observation"]\n\n'
    '[[learning_outcomes.criteria]]\nnumber = "{number}"\ntext = "An extra criterion"\n'
    'methods = ["direct_observation"]\n'
)
AFTER_2_9 = 'preferred_methods = ["witness_testimony", "direct_observation"]\n'

BROKEN = {
    "toml syntax error": Broken(
        good("credits = 4", "credits = = 4"), "TOML syntax error", at("credits = = 4")
    ),
    "unterminated string": Broken(
        good('title = "Resolve Customers’ Complaints"', 'title = "Resolve Customers’ Complaints'),
        "TOML syntax error",
        at('title = "Resolve Customers’ Complaints'),
    ),
    "unterminated multi-line string at the end": Broken(
        lambda: GOOD + '\n[[guidance]]\nkind = "tip"\ntext = """\nnever closed\n',
        "TOML syntax error at end of file",
        at("never closed"),
    ),
    "not UTF-8": Broken(lambda: GOOD, "the file is not UTF-8 text", at("’"), encoding="cp1252"),
    "unknown key (typo) in a criterion": Broken(
        good(
            'text = "Keep customers informed of progress"',
            'txet = "Keep customers informed of progress"',
        ),
        "criterion 2.6: unknown key `txet` (did you mean `text`?)",
        at("txet ="),
        count=2,
    ),
    "typo means the key is missing too": Broken(
        good(
            'text = "Keep customers informed of progress"',
            'txet = "Keep customers informed of progress"',
        ),
        "criterion 2.6: missing required key `text`",
        header_of('number = "2.6"'),
        count=2,
    ),
    "unknown key in [unit]": Broken(
        good('unit_type = "Competence"', 'unit_type = "Competence"\nunit_typ = "Competence"'),
        "[unit]: unknown key `unit_typ` (did you mean `unit_type`?)",
        at("unit_typ ="),
    ),
    "unknown table": Broken(
        good("[assessment]\n", "[assesment]\n"),
        "top level: unknown key `assesment` (did you mean `assessment`?)",
        at("[assesment]"),
        count=2,
    ),
    "missing required key in [unit]": Broken(
        good("guided_learning_hours = 22\n", ""),
        "[unit]: missing required key `guided_learning_hours`",
        at("[unit]"),
    ),
    "missing required key in a criterion": Broken(
        good(
            'methods = ["product_evidence", "direct_observation", "rpl"]\n'
            'preferred_methods = ["product_evidence"]\n',
            "",
        ),
        "criterion 2.8: missing required key `methods`",
        header_of('number = "2.8"'),
    ),
    "missing required key in a learning outcome": Broken(
        good('kind = "performance"\n', ""),
        "learning outcome 2: missing required key `kind`",
        header_of("number = 2\n", "[[learning_outcomes]]"),
    ),
    "missing schema_version has no line": Broken(
        good("schema_version = 1\n", ""),
        "top level: missing required key `schema_version`",
        lambda text: None,
    ),
    "bad method name": Broken(
        good(
            'methods = ["product_evidence", "direct_observation", "rpl"]',
            'methods = ["product_evidence", "direct_observation", "rpll"]',
        ),
        "criterion 2.8: unknown assessment method 'rpll' in `methods` (did you mean `rpl`?)",
        at('"rpll"'),
    ),
    "bad preferred method name": Broken(
        good(
            'preferred_methods = ["witness_testimony", "direct_observation"]',
            'preferred_methods = ["witness_testimony", "observation"]',
        ),
        "criterion 2.9: unknown assessment method 'observation' in `preferred_methods`",
        at('"observation"]'),
    ),
    "preferred method not in methods": Broken(
        good(
            'preferred_methods = ["product_evidence"]',
            'preferred_methods = ["product_evidence", "questioning"]',
        ),
        "criterion 2.8: `preferred_methods` must also be in `methods`; missing from "
        "`methods`: questioning",
        at('"questioning"]\n'),
    ),
    "method listed twice": Broken(
        good(
            'methods = ["product_evidence", "direct_observation", "rpl"]',
            'methods = ["product_evidence", "direct_observation", "rpl", "rpl"]',
        ),
        "criterion 2.8: `methods` lists 'rpl' twice",
        at('"rpl", "rpl"]'),
    ),
    "empty methods": Broken(
        minimal('methods = ["questioning"]', "methods = []"),
        "criterion 1.2: `methods` must list at least one assessment method",
        at("methods = []"),
    ),
    "simulation while simulation_allowed = false": Broken(
        good(
            'methods = ["product_evidence", "direct_observation", "rpl"]',
            'methods = ["product_evidence", "direct_observation", "simulation", "rpl"]',
        ),
        'criterion 2.8: lists "simulation" but [assessment] simulation_allowed = false',
        at('"simulation", "rpl"]'),
    ),
    "rpl while rpl_allowed = false": Broken(
        minimal('methods = ["questioning"]', 'methods = ["questioning", "rpl"]'),
        'criterion 1.2: lists "rpl" but [assessment] rpl_allowed = false',
        at('"rpl"]'),
    ),
    "duplicate criterion number": Broken(
        good(AFTER_2_9, EXTRA_CRITERION.format(number="2.9")),
        "criterion 2.9: number 2.9 is used more than once (first used on line ",
        at('number = "2.9"', 2),
    ),
    "criterion number not matching its outcome": Broken(
        good(AFTER_2_9, EXTRA_CRITERION.format(number="3.1")),
        "criterion 3.1: the number says learning outcome 3 but it is listed under "
        "learning outcome 2",
        at('number = "3.1"'),
    ),
    "criterion number badly formed": Broken(
        minimal('number = "1.2"', 'number = "1-2"'),
        'criterion 1-2: `number` must look like "1.2"',
        at('number = "1-2"'),
    ),
    "criteria out of order": Broken(
        lambda: replace_once(
            replace_once(MINIMAL, 'number = "1.1"', 'number = "1.3"'),
            'criteria = ["1.1"]',
            "criteria = []",
        ),
        "criterion 1.2: criteria must be in number order, but 1.2 is listed after 1.3",
        at('number = "1.2"'),
    ),
    "criterion text with surrounding spaces": Broken(
        minimal('text = "Explain the second thing"', 'text = "Explain the second thing "'),
        "criterion 1.2: `text` has spaces or line breaks at its start or end",
        at('text = "Explain the second thing "'),
    ),
    "empty criterion text": Broken(
        minimal('text = "Explain the second thing"', 'text = ""'),
        "criterion 1.2: `text` must not be empty",
        at('text = ""'),
    ),
    "learning outcome kind mismatching its title": Broken(
        good('kind = "performance"', 'kind = "knowledge"'),
        'learning outcome 2: kind is "knowledge" but the title starts "Be able to"',
        at('kind = "knowledge"', 2),
    ),
    "knowledge title marked performance": Broken(
        minimal('kind = "knowledge"', 'kind = "performance"'),
        'learning outcome 1: kind is "performance" but the title starts "Understand"',
        at('kind = "performance"'),
    ),
    "unknown learning outcome kind": Broken(
        good('kind = "performance"', 'kind = "practical"'),
        'learning outcome 2: `kind` must be "knowledge" or "performance"',
        at('kind = "practical"'),
    ),
    "learning outcomes numbered out of order": Broken(
        good("number = 2\n", "number = 3\n"),
        "learning outcome 3: learning outcomes must be numbered 1, 2, 3... in file order; "
        "expected 2 here, found 3",
        at("number = 3\n"),
    ),
    "bad unit reference": Broken(
        good('reference = "R/506/2151"', 'reference = "R/506/215"'),
        "[unit]: `reference` must look like R/506/2151",
        at('reference = "R/506/215"'),
    ),
    "lower-case unit reference": Broken(
        good('reference = "R/506/2151"', 'reference = "r/506/2151"'),
        "[unit]: `reference` must look like R/506/2151",
        at('reference = "r/506/2151"'),
    ),
    "guidance referring to an unknown criterion": Broken(
        good('criteria = ["1.7", "2.9"]', 'criteria = ["1.7", "2.10"]'),
        "refers to criterion '2.10', which is not in this file",
        at('criteria = ["1.7", "2.10"]'),
    ),
    "guidance listing a criterion twice": Broken(
        good('criteria = ["1.7", "2.9"]', 'criteria = ["1.7", "2.9", "1.7"]'),
        "lists criterion 1.7 twice",
        at('criteria = ["1.7", "2.9", "1.7"]'),
    ),
    "unknown guidance kind": Broken(
        minimal('kind = "tip"', 'kind = "tips"'),
        "guidance item 1: `kind` must be one of tip, mistake, assessor_looks_for, not 'tips' "
        "(did you mean `tip`?)",
        at('kind = "tips"'),
    ),
    "duplicate guidance text": Broken(
        lambda: MINIMAL + '\n[[guidance]]\nkind = "mistake"\ntext = """\n  A tip.\n"""\n',
        "guidance item 2: same text as guidance item 1",
        at('text = """'),
    ),
    "wrong schema_version": Broken(
        good("schema_version = 1", "schema_version = 2"),
        "schema_version 2 is not supported",
        at("schema_version = 2"),
    ),
    "bool where an integer is expected": Broken(
        good("credits = 4", "credits = true"),
        "[unit]: `credits` must be a whole number, not true/false",
        at("credits = true"),
    ),
    "bool as a learning outcome number": Broken(
        good("number = 2\n", "number = true\n"),
        "learning outcome #2: `number` must be a whole number, not true/false",
        at("number = true"),
    ),
    "bool as required_occurrences": Broken(
        minimal(
            'methods = ["questioning"]', 'methods = ["questioning"]\nrequired_occurrences = true'
        ),
        "criterion 1.2: `required_occurrences` must be a whole number, not true/false",
        at("required_occurrences = true"),
    ),
    "integer where a string is expected": Broken(
        good('number = "40"', "number = 40"),
        "[unit]: `number` must be a string (in quotes), not a whole number",
        at("number = 40"),
    ),
    "decimal where an integer is expected": Broken(
        good("guided_learning_hours = 22", "guided_learning_hours = 22.5"),
        "`guided_learning_hours` must be a whole number, not a decimal number",
        at("guided_learning_hours = 22.5"),
    ),
    "level out of range": Broken(
        good("level = 3\ncredits", "level = 9\ncredits"),
        "[unit]: `level` must be between 1 and 8, not 9",
        at("level = 9"),
    ),
    "zero credits": Broken(
        good("credits = 4", "credits = 0"),
        "[unit]: `credits` must be at least 1, not 0",
        at("credits = 0"),
    ),
    "zero currency_months": Broken(
        good("currency_months = 24", "currency_months = 0"),
        "[assessment]: `currency_months` must be at least 1, not 0",
        at("currency_months = 0"),
    ),
    "zero required_occurrences": Broken(
        minimal('methods = ["questioning"]', 'methods = ["questioning"]\nrequired_occurrences = 0'),
        "criterion 1.2: `required_occurrences` must be at least 1, not 0",
        at("required_occurrences = 0"),
    ),
    "over-long qualification code": Broken(
        minimal('code = "Q1"', f'code = "{"Q" * 41}"'),
        "[qualification]: `code` is longer than 40 characters",
        at("code = "),
    ),
    "learning outcome without criteria": Broken(
        lambda: MINIMAL.split("[[learning_outcomes.criteria]]")[0],
        "learning outcome 1: missing required key `criteria`",
        header_of("number = 1\n", "[[learning_outcomes]]"),
    ),
}


@pytest.mark.parametrize("case", list(BROKEN.values()), ids=list(BROKEN))
def test_broken_file_is_reported_with_its_line(tmp_path, case):
    text = case.make()
    path = tmp_path / "broken.toml"
    path.write_bytes(text.encode(case.encoding))
    problems = check_file(path)
    expected_line = case.locate(text)
    matching = [p for p in problems if case.fragment in p.message]
    assert matching, f"no problem mentions {case.fragment!r}; got {problems}"
    assert [p.line for p in matching] == [expected_line], problems
    assert len(problems) == case.count, problems
    assert all(p.path == str(path) for p in problems)
    with pytest.raises(UnitFileInvalid) as raised:
        parse_file(path)
    assert raised.value.problems == problems


def test_every_problem_is_reported_not_just_the_first(tmp_path):
    text = replace_once(GOOD, "credits = 4", "credits = true")
    text = replace_once(text, 'kind = "performance"', 'kind = "knowledge"')
    text = replace_once(text, 'criteria = ["1.7", "2.9"]', 'criteria = ["1.7", "2.10"]')
    path = write(tmp_path, text)
    problems = check_file(path)
    assert [(p.line, p.message.split(":")[0]) for p in problems] == [
        (line_of(text, "credits = true"), "[unit]"),
        (line_of(text, 'kind = "knowledge"', 2), "learning outcome 2"),
        (line_of(text, 'criteria = ["1.7", "2.10"]'), "guidance item 11"),
    ]
    with pytest.raises(UnitFileInvalid) as raised:
        parse_file(path)
    assert raised.value.problems == problems
    for problem in problems:
        assert str(problem) in str(raised.value)


def test_one_problem_per_criterion_when_rpl_is_not_allowed(tmp_path):
    text = replace_once(GOOD, "rpl_allowed = true", "rpl_allowed = false")
    problems = check_file(write(tmp_path, text))
    assert len(problems) == 17
    lines = [p.line for p in problems]
    assert lines == sorted(lines)
    for problem, number in zip(problems, LO1 + LO2, strict=True):
        assert problem.message == (
            f'criterion {number}: lists "rpl" but [assessment] rpl_allowed = false'
        )
        methods_line = line_of(text, f'number = "{number}"') + 2
        assert text.split("\n")[methods_line - 1].startswith("methods = ")
        assert problem.line == methods_line


def test_a_missing_file_is_a_problem_without_a_line(tmp_path):
    path = tmp_path / "missing.toml"
    problems = check_file(path)
    assert len(problems) == 1
    assert problems[0].line is None
    assert "cannot read the file" in problems[0].message
    with pytest.raises(UnitFileInvalid):
        parse_file(path)


def test_problem_formats():
    assert str(Problem("a.toml", 12, "bad")) == "a.toml:12: bad"
    assert str(Problem("a.toml", None, "bad")) == "a.toml: bad"


def test_header_like_text_inside_a_multiline_string_is_not_a_table(tmp_path):
    # A line reading [unit] inside a """ string must not shift the lines reported after it.
    text = replace_once(GOOD, 'notes = """\n', 'notes = """\n[unit]\nreference = "x"\n')
    text = replace_once(text, "credits = 4", "credits = 0")
    problems = check_file(write(tmp_path, text))
    assert [(p.line, p.message) for p in problems] == [
        (line_of(text, "credits = 0"), "[unit]: `credits` must be at least 1, not 0")
    ]
