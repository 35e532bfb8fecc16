"""`portfolio criteria check` and `portfolio criteria load`, run through Flask's CLI runner.

The runner passes ``obj=ScriptInfo(create_app=lambda: app)``, so the commands use the test
app and its fresh database. The database is read afterwards in a new app context (the
commands push, commit and close their own).
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from portfolio import db
from portfolio.cli import cli
from portfolio.criteria.unitfile import check_file
from portfolio.models import AuditEvent, Criterion, Unit

CRITERIA_DIR = Path(__file__).resolve().parent.parent / "criteria"
UNIT40_FILE = CRITERIA_DIR / "unit-40-resolve-customers-complaints.toml"
GOOD = UNIT40_FILE.read_text(encoding="utf-8")


def replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"expected exactly one {old!r} in the text"
    return text.replace(old, new)


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    position = -1
    for _ in range(occurrence):
        position = text.find(needle, position + 1)
        assert position >= 0, f"{needle!r} not in the text"
    return text.count("\n", 0, position) + 1


def broken_text() -> str:
    """The Unit 40 file with three separate problems."""
    text = replace_once(GOOD, "credits = 4", "credits = true")
    text = replace_once(text, 'kind = "performance"', 'kind = "knowledge"')
    return replace_once(text, 'criteria = ["1.7", "2.9"]', 'criteria = ["1.7", "2.10"]')


def write(tmp_path: Path, text: str, name: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def invoke(app, *args: str):
    return app.test_cli_runner().invoke(cli, list(args))


def row_counts(app) -> tuple[int, int, int]:
    """(units, criteria, audit events) in the app's database."""
    with app.app_context():
        s = db.session()
        return tuple(
            s.scalar(select(func.count()).select_from(model))
            for model in (Unit, Criterion, AuditEvent)
        )


# --------------------------------------------------------------------------- check


def test_check_passes_the_shipped_file(app):
    result = invoke(app, "criteria", "check", str(UNIT40_FILE))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "1 file(s) OK."
    assert result.stderr == ""


def test_check_reports_every_problem_with_path_and_line(app, tmp_path):
    text = broken_text()
    path = write(tmp_path, text, "broken.toml")
    result = invoke(app, "criteria", "check", str(path))
    assert result.exit_code == 1
    lines = result.stderr.strip().split("\n")
    assert lines[-1] == "3 problem(s) in 1 file(s)."
    problems = lines[:-1]
    assert len(problems) == 3
    expected_lines = [
        line_of(text, "credits = true"),
        line_of(text, 'kind = "knowledge"', 2),
        line_of(text, 'criteria = ["1.7", "2.10"]'),
    ]
    for printed, line in zip(problems, expected_lines, strict=True):
        assert printed.startswith(f"{path}:{line}: "), printed
    assert "`credits` must be a whole number, not true/false" in problems[0]
    assert 'kind is "knowledge" but the title starts "Be able to"' in problems[1]
    assert "refers to criterion '2.10', which is not in this file" in problems[2]
    assert problems == [str(p) for p in check_file(path)]
    assert "OK" not in result.output


def test_check_several_files_reports_only_the_broken_ones(app, tmp_path):
    broken = write(
        tmp_path, replace_once(GOOD, "schema_version = 1", "schema_version = 7"), "broken.toml"
    )
    missing = tmp_path / "missing.toml"
    result = invoke(app, "criteria", "check", str(UNIT40_FILE), str(broken), str(missing))
    assert result.exit_code == 1
    lines = result.stderr.strip().split("\n")
    assert lines[0].startswith(
        f"{broken}:{line_of(GOOD, 'schema_version = 1')}: schema_version 7 is not supported"
    )
    assert lines[1].startswith(f"{missing}: cannot read the file")  # no line: `path: message`
    assert lines[2] == "2 problem(s) in 3 file(s)."
    assert str(UNIT40_FILE) not in result.output


def test_check_needs_a_file(app):
    result = invoke(app, "criteria", "check")
    assert result.exit_code == 2  # click usage error


def test_check_does_not_touch_the_database(app):
    assert invoke(app, "criteria", "check", str(UNIT40_FILE)).exit_code == 0
    assert row_counts(app) == (0, 0, 0)


# --------------------------------------------------------------------------- load


def test_load_creates_then_reports_unchanged(app):
    result = invoke(app, "criteria", "load", str(UNIT40_FILE))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "R/506/2151: created (version 1)"
    assert row_counts(app) == (1, 17, 1)

    result = invoke(app, "criteria", "load", str(UNIT40_FILE))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "R/506/2151: unchanged (version 1)"
    assert row_counts(app) == (1, 17, 1)


def test_load_reports_a_rewording(app, tmp_path):
    assert invoke(app, "criteria", "load", str(UNIT40_FILE)).exit_code == 0
    path = write(
        tmp_path,
        replace_once(
            GOOD,
            'text = "Keep customers informed of progress"',
            'text = "Keep customers informed of progress at every stage"',
        ),
        "unit-40.toml",
    )
    result = invoke(app, "criteria", "load", str(path))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "R/506/2151: updated (version 2); reworded 2.6"
    with app.app_context():
        criterion = db.session().scalar(select(Criterion).where(Criterion.number == "2.6"))
        assert criterion.version == 2
        assert criterion.text == "Keep customers informed of progress at every stage"


def test_load_of_a_broken_file_loads_nothing(app, tmp_path):
    text = broken_text()
    path = write(tmp_path, text, "broken.toml")
    result = invoke(app, "criteria", "load", str(path))
    assert result.exit_code == 1
    assert "Nothing was loaded." in result.stderr
    for problem in check_file(path):
        assert f"{path}:{problem.line}: {problem.message}" in result.stderr
    assert result.stdout == ""
    assert row_counts(app) == (0, 0, 0)


def test_load_with_one_broken_file_loads_none_of_them(app, tmp_path):
    broken = write(tmp_path, replace_once(GOOD, "credits = 4", "credits = 0"), "broken.toml")
    result = invoke(app, "criteria", "load", str(UNIT40_FILE), str(broken))
    assert result.exit_code == 1
    assert (
        f"{broken}:{line_of(GOOD, 'credits = 4')}: [unit]: `credits` must be at least 1"
        in result.stderr
    )
    assert "created" not in result.output
    assert row_counts(app) == (0, 0, 0)


def test_load_without_files_loads_the_criteria_folder(make_app, tmp_path):
    folder = tmp_path / "criteria"
    folder.mkdir()
    write(folder, GOOD, "unit-40-resolve-customers-complaints.toml")
    write(folder, "not a unit file", "README.md")
    app = make_app(CRITERIA_DIR=str(folder))
    result = invoke(app, "criteria", "load")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "R/506/2151: created (version 1)"
    assert row_counts(app) == (1, 17, 1)


def test_load_with_an_empty_criteria_folder_fails(make_app, tmp_path):
    app = make_app(CRITERIA_DIR=str(tmp_path))
    result = invoke(app, "criteria", "load")
    assert result.exit_code == 1
    assert f"No unit files in {tmp_path}." in result.stderr
    assert row_counts(app) == (0, 0, 0)


def test_load_rejects_a_missing_file(app, tmp_path):
    result = invoke(app, "criteria", "load", str(tmp_path / "missing.toml"))
    assert result.exit_code == 2  # click checks the path exists
    assert row_counts(app) == (0, 0, 0)
