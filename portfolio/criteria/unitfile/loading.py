"""Entry points: parse a unit file, or check it and list every problem with its line."""

from __future__ import annotations

import os
import re
import tomllib
from typing import Any

from portfolio.criteria.unitfile.builders import _build
from portfolio.criteria.unitfile.checker import _Checker
from portfolio.criteria.unitfile.source import _SourceIndex
from portfolio.criteria.unitfile.specs import Problem, UnitFile, UnitFileInvalid


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
