"""The bundle manifest's JSON Schema (format version 1), and checking a manifest against it."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

FORMAT = "portfolio-bundle"
FORMAT_VERSION = 1
SCHEMA_PATH = Path(__file__).with_name("bundle-manifest-1.schema.json")
MAX_REPORTED = 25


@lru_cache(maxsize=1)
def manifest_schema() -> dict[str, Any]:
    """Return the manifest schema as a dict."""
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def _validator() -> Draft202012Validator:
    schema = manifest_schema()
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def schema_problems(manifest: Any) -> list[str]:
    """Return what is wrong with a manifest against the schema (empty when it conforms)."""
    problems = []
    errors = sorted(_validator().iter_errors(manifest), key=lambda e: list(e.absolute_path))
    for error in errors[:MAX_REPORTED]:
        where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        message = error.message if len(error.message) <= 200 else error.message[:200] + "…"
        problems.append(f"manifest.json {where}: {message}")
    if len(errors) > MAX_REPORTED:
        problems.append(f"… and {len(errors) - MAX_REPORTED} more schema problem(s).")
    return problems
