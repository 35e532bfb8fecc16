"""The `portfolio` command: people, tokens, enrolments and the idempotent demo."""

from __future__ import annotations

import os
import time

from sqlalchemy import func, select

from portfolio.cli import cli
from portfolio.models import ApiToken, AuditEvent, Enrolment, User
from tests.factories import PASSWORD, load_unit40


def _run(app, *args: str, input: str | None = None):
    return app.test_cli_runner().invoke(cli, list(args), input=input)


def test_users_create_token_and_revoke(app, session):
    created = _run(app, "users", "create", "--email", "Sam@Example.org", "--name", "Sam Smith",
                   "--role", "assessor", "--role", "iqa", "--assessor-status", "trainee",
                   "--centre", "Town College", "--password", PASSWORD)
    assert created.exit_code == 0, created.output
    user = session.scalar(select(User).where(User.email == "sam@example.org"))
    assert {r.value for r in user.roles} == {"assessor", "iqa"}
    assert user.assessor_status == "trainee"

    token = _run(app, "users", "token", "sam@example.org", "--name", "reports")
    raw = token.output.strip()
    assert token.exit_code == 0 and raw.startswith("pat_")
    me = app.test_client().get("/api/v1/me", headers={"Authorization": f"Bearer {raw}"})
    assert me.get_json()["roles"] == ["assessor", "iqa"]

    revoked = _run(app, "users", "revoke-token", "sam@example.org")
    assert revoked.exit_code == 0 and "Revoked 1 token" in revoked.output
    assert app.test_client().get(
        "/api/v1/me", headers={"Authorization": f"Bearer {raw}"}).status_code == 401
    assert session.scalar(select(func.count()).select_from(ApiToken)
                          .where(ApiToken.revoked_at.is_(None))) == 0


def test_users_create_refuses_bad_input_cleanly(app, session):
    short = _run(app, "users", "create", "--email", "a@example.org", "--name", "A",
                 "--role", "learner", "--centre", "C", "--password", "short")
    assert short.exit_code == 1 and "at least 12 characters" in short.output
    bad_email = _run(app, "users", "create", "--email", "not-an-email", "--name", "A",
                     "--role", "learner", "--centre", "C", "--password", PASSWORD)
    assert bad_email.exit_code == 1 and "email address" in bad_email.output
    assert session.scalar(select(func.count()).select_from(User)) == 0


def test_enrol_command_applies_the_same_rules(app, session):
    load_unit40(session)
    session.commit()
    for email, role in (("l@example.org", "learner"), ("a@example.org", "assessor"),
                        ("q@example.org", "iqa")):
        assert _run(app, "users", "create", "--email", email, "--name", email, "--role", role,
                    "--centre", "C", "--password", PASSWORD).exit_code == 0
    same = _run(app, "enrol", "l@example.org", "--unit", "R/506/2151", "--assessor",
                "a@example.org", "--iqa", "a@example.org", "--start", "2026-01-01", "--end",
                "2026-12-31", "--employer", "E", "--workplace", "W")
    assert same.exit_code == 1
    ok = _run(app, "enrol", "l@example.org", "--unit", "R/506/2151", "--assessor",
              "a@example.org", "--iqa", "q@example.org", "--start", "2026-01-01", "--end",
              "2026-12-31", "--employer", "E", "--workplace", "W")
    assert ok.exit_code == 0, ok.output
    again = _run(app, "enrol", "l@example.org", "--unit", "R/506/2151", "--assessor",
                 "a@example.org", "--start", "2026-01-01", "--end", "2026-12-31",
                 "--employer", "E", "--workplace", "W")
    assert again.exit_code == 1 and "already enrolled" in again.output
    assert session.scalar(select(func.count()).select_from(Enrolment)) == 1


def test_demo_needs_the_unit_then_is_idempotent(app, session):
    missing = _run(app, "demo")
    assert missing.exit_code == 1 and "criteria load" in missing.output
    assert _run(app, "criteria", "load").exit_code == 0
    first = _run(app, "demo")
    assert first.exit_code == 0, first.output
    counts = (session.scalar(select(func.count()).select_from(User)),
              session.scalar(select(func.count()).select_from(Enrolment)),
              session.scalar(select(func.count()).select_from(AuditEvent)))
    second = _run(app, "demo")
    assert second.exit_code == 0
    assert first.output == second.output  # same logins, same password
    assert counts == (session.scalar(select(func.count()).select_from(User)),
                      session.scalar(select(func.count()).select_from(Enrolment)),
                      session.scalar(select(func.count()).select_from(AuditEvent)))
    assert counts[:2] == (8, 3)
    users = {u.email: u for u in session.scalars(select(User))}
    assert users["trainee@demo.example"].assessor_status == "trainee"
    employers = {e.employer for e in session.scalars(select(Enrolment))}
    assert len(employers) == 2
    password = first.output.split("password: ")[1].split()[0]
    page = app.test_client()
    from tests.conftest import Browserless

    assert Browserless(page).login("admin@demo.example", password).status_code == 302


def test_db_commands(app):
    current = _run(app, "db", "current")
    lines = dict(line.split(":", 1) for line in current.output.strip().splitlines())
    assert current.exit_code == 0 and lines["database"].strip() == lines["newest"].strip()
    assert _run(app, "db", "check").exit_code == 0


def test_the_cli_and_the_web_app_load_without_the_pdf_renderer(tmp_path):
    """WeasyPrint costs about a second to import; only rendering may load it (issue 16)."""
    import subprocess
    import sys

    probe = (
        "import sys\n"
        "from portfolio.cli import cli\n"
        "from portfolio import create_app\n"
        "create_app({'TESTING': True, 'DATABASE_URL': 'sqlite:///' + sys.argv[1]})\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('weasyprint', 'fontTools'))\n"
        "print(heavy)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe, str(tmp_path / "probe.db")],
        capture_output=True, text=True, timeout=120,
        env={**__import__("os").environ, "PORTFOLIO_INSTANCE_PATH": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_maintenance_runs_every_step(app, session):
    """`portfolio maintenance`: old witness addresses removed, dead export jobs failed, an audit
    checkpoint written, the render cache trimmed; a timer runs it (issue 14)."""
    from datetime import timedelta
    from pathlib import Path

    from portfolio.db import utcnow
    from portfolio.models import ExportJob, WitnessRequest
    from tests.factories import make_world

    world = make_world(session, app.config["STORAGE_DIR"])
    request = session.get(WitnessRequest, world.witness_request_id)
    request.status = "declined"
    request.created_at = utcnow() - timedelta(days=400)
    now = utcnow()
    session.add(ExportJob(enrolment_id=world.enrolment.id, requested_by_id=world.learner.id,
                          status="running", progress=20, message="Laying out",
                          started_at=now - timedelta(minutes=30),
                          heartbeat_at=now - timedelta(minutes=30)))
    session.commit()
    cache = Path(app.config["RENDER_CACHE_DIR"]) / "sections"
    cache.mkdir(parents=True, exist_ok=True)
    (cache / "old.pdf").write_bytes(b"%PDF-1.4 " + b"x" * 2048)
    app.config["RENDER_CACHE_MB"] = 0
    staging = Path(app.config["STORAGE_DIR"]) / "tmp"
    staging.mkdir(parents=True, exist_ok=True)
    (staging / "upload-left").write_bytes(b"half an upload")
    (staging / "upload-now").write_bytes(b"an upload in progress")
    two_days_ago = time.time() - 48 * 3600
    os.utime(staging / "upload-left", (two_days_ago, two_days_ago))

    result = _run(app, "maintenance")
    assert result.exit_code == 0, result.output
    assert "removed the email address from 1 finished witness request" in result.output
    assert "marked 1 export job(s) and 0 EQA pack job(s) failed" in result.output
    assert "audit checkpoint at event #" in result.output
    assert "removed 1 cached" in result.output
    assert "removed 1 upload temp file(s)" in result.output
    assert not (staging / "upload-left").exists() and (staging / "upload-now").exists()
    session.expire_all()
    assert session.get(WitnessRequest, world.witness_request_id).witness_email == ""
    assert session.scalar(select(ExportJob.status)) == "failed"
    assert not (cache / "old.pdf").exists()
    checkpoints = list(Path(app.config["AUDIT_CHECKPOINT_DIR"]).glob("*.json"))
    assert checkpoints
