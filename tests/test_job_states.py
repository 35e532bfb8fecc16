"""Background jobs (PDF exports, people imports, EQA packs) share one JobStatus and one table of
moves, `portfolio.job_states` (issue 15); nothing else sets or compares their status strings."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from portfolio.errors import InvalidTransition
from portfolio.job_states import MACHINE, MOVES, JobStatus
from portfolio.models import EqaPackJob, ExportJob, PeopleImport

ROOT = Path(__file__).resolve().parent.parent
EXPECTED = {
    ("confirm", "pending"): "running", ("queue", "running"): "queued",
    ("discard", "pending"): "discarded", ("start", "queued"): "running",
    ("finish", "running"): "done", ("fail", "queued"): "failed", ("fail", "running"): "failed",
    ("expire", "pending"): "expired", ("expire", "done"): "expired",
}
# The code of the three kinds of job, and the pages and scripts that show them.
JOB_CODE = ["portfolio/export/jobs.py", "portfolio/export/views.py",
            "portfolio/people_import/jobs.py", "portfolio/people_import/services.py",
            "portfolio/people_import/views.py", "portfolio/eqa/pack_jobs.py",
            "portfolio/eqa/views.py", "portfolio/eqa/download.py", "portfolio/jobkit.py"]
JOB_PAGES = ["templates/export/job.html", "templates/people_import/ended.html",
             "templates/eqa/pack_job.html", "static/js/job-progress.js",
             "static/js/import-progress.js"]
VALUES = {s.value for s in JobStatus}


@pytest.mark.parametrize("model", [ExportJob, PeopleImport, EqaPackJob])
def test_stored_values_are_enum_values(model):
    constraint = next((c for c in model.__table__.constraints
                       if "status_known" in str(getattr(c, "name", "") or "")), None)
    allowed = set(re.findall(r"'(\w+)'", str(constraint.sqltext))) if constraint else VALUES
    assert allowed <= VALUES
    # Every move a job of this kind makes lands in a state its table accepts.
    assert {str(m.target) for m in MOVES.values()
            if any(str(s) in allowed for s in m.sources)} & allowed


@pytest.mark.parametrize("name", sorted(MOVES))
@pytest.mark.parametrize("status", sorted(VALUES))
def test_every_move_from_every_state(name, status):
    job = ExportJob(status=status)
    expected = EXPECTED.get((name, status))
    assert (name in MACHINE.possible(status)) == (expected is not None)
    if expected is None:
        with pytest.raises(InvalidTransition) as refused:
            MACHINE.move(job, name)
        assert status in refused.value.message and job.status == status
    else:
        assert MACHINE.move(job, name) == expected and job.status == expected


def _literals(path: Path) -> list[str]:
    """Status words written as string literals where a status is set or compared."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                names = target.elts if isinstance(target, ast.Tuple) else [target]
                values = (node.value.elts if isinstance(node.value, ast.Tuple)
                          else [node.value])
                for t, v in zip(names, values, strict=False):
                    if (isinstance(t, ast.Attribute) and t.attr == "status"
                            and not (isinstance(v, ast.Call))):
                        found.append(f"{path.name}:{node.lineno} sets .status directly")
        if isinstance(node, ast.Compare):
            parts = [node.left, *node.comparators]
            if any(isinstance(p, ast.Attribute) and p.attr == "status" for p in parts):
                for p in ast.walk(node):
                    if isinstance(p, ast.Constant) and p.value in VALUES:
                        found.append(f"{path.name}:{node.lineno} compares with '{p.value}'")
        if isinstance(node, ast.keyword) and node.arg == "status" and isinstance(
                node.value, ast.Constant) and node.value.value in VALUES:
            found.append(f"{path.name}:{node.lineno} status='{node.value.value}'")
    return found


def test_job_code_uses_the_enum_and_the_table():
    offenders = [hit for name in JOB_CODE for hit in _literals(ROOT / name)]
    assert not offenders, offenders


def test_job_pages_get_their_state_from_the_views():
    pattern = re.compile(r"status\s*(==|!=|in|not in)|['\"](" + "|".join(VALUES) + r")['\"]")
    offenders = [f"{name}: {m.group(0)}" for name in JOB_PAGES
                 for m in pattern.finditer((ROOT / name).read_text())]
    assert not offenders, offenders
