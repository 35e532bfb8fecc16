"""Large imports run in the background: on an RQ worker when REDIS_URL is set, else in a thread
of the web process (as exports do). Rows are written in batches; each batch is committed with
the import's progress, and the invitations of its new people are sent after that commit.

Files of up to IMPORT_BACKGROUND_ROWS rows are imported inside the request instead, all in one
transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from flask import Flask, url_for
from sqlalchemy import func, update
from sqlalchemy.orm import Session

from portfolio import jobkit, notify
from portfolio.auth import resets
from portfolio.db import get_database, must_get, rowcount, utcnow
from portfolio.job_states import MACHINE, JobStatus
from portfolio.models import PeopleImport, User
from portfolio.people_import import services

QUEUE_NAME = "imports"
JOB_TIMEOUT = 3600  # seconds: the largest file, with every row a new person, fits well inside
BATCH = 25  # rows per committed batch: the progress the page shows moves this often
# A running import writes its progress after every batch; one silent this long has lost its
# process. One still queued this long was never picked up by a worker.
STALE_AFTER = timedelta(minutes=5)
QUEUED_TIMEOUT = timedelta(hours=1)
DIED = ("The import stopped: the process running it is no longer running (the server may have "
        "restarted). The rows imported before it stopped are kept; upload the file again to "
        "import the rest (rows already imported show as already enrolled).")
NEVER_STARTED = ("The import never started: no worker picked it up. Nothing was imported. "
                 "Upload the file again; if it keeps happening, tell whoever runs the server.")


def runs_in_background(config: Mapping[str, Any], rows: int) -> bool:
    """Whether this many rows to import go to a background job rather than the request."""
    return rows > int(config["IMPORT_BACKGROUND_ROWS"])


def fail_if_stale(session: Session, upload: PeopleImport) -> bool:
    """Mark an import whose process died (or that never started) failed; True when it did.
    Flushes, never commits."""
    now = utcnow()
    last: Any
    if upload.status == JobStatus.RUNNING:
        message, cutoff = DIED, now - STALE_AFTER
        last = func.coalesce(PeopleImport.heartbeat_at, PeopleImport.started_at,
                             PeopleImport.created_at)
        seen = upload.heartbeat_at or upload.started_at or upload.created_at
    elif upload.status == JobStatus.QUEUED:
        message, cutoff = NEVER_STARTED, now - QUEUED_TIMEOUT
        last = func.coalesce(PeopleImport.confirmed_at, PeopleImport.created_at)
        seen = upload.confirmed_at or upload.created_at
    else:
        return False
    if seen >= cutoff:
        return False
    # Judged again in the database, so progress written in between wins.
    where, values = MACHINE.claim_clause(PeopleImport.status, "fail")
    changed = rowcount(session.execute(
        update(PeopleImport).where(PeopleImport.id == upload.id,
                                   PeopleImport.status == upload.status, where, last < cutoff)
        .values(**values, message=message, content="", finished_at=now)
        .execution_options(synchronize_session=False)))
    session.refresh(upload)
    return bool(changed)


def queue_for(redis_url: str) -> Any:
    """The RQ queue import jobs wait on."""
    return jobkit.queue_for(redis_url, QUEUE_NAME)


def dispatch_import(app: Flask, import_id: int, link_base: str) -> None:
    """Start a queued import: on the RQ queue with REDIS_URL, else (or when the queue cannot
    take it) in a thread; never in the request, whatever EXPORT_RUN_INLINE says."""
    jobkit.start_off_request(
        app, queue=QUEUE_NAME, queued=run_queued, run=run_import, args=(import_id, link_base),
        timeout=JOB_TIMEOUT, description=f"people import {import_id}", inline=False)


def run_queued(import_id: int, link_base: str) -> None:
    """The RQ job: run one import with the worker's settings."""
    jobkit.run_in_new_app(run_import, import_id, link_base)


def run_import(app: Flask, import_id: int, link_base: str) -> None:
    """Claim a queued import and run it; record a failure on the import, never raise."""
    with app.app_context():
        maker = get_database(app).sessionmaker
        with maker() as claim:
            now = utcnow()
            where, values = MACHINE.claim_clause(PeopleImport.status, "start")
            claimed = rowcount(claim.execute(
                update(PeopleImport).where(PeopleImport.id == import_id, where)
                .values(**values, started_at=now, heartbeat_at=now,
                        message="Checking the file again")
                .execution_options(synchronize_session=False)))
            claim.commit()
        if not claimed:
            return  # already run, or given up on
        try:
            _run(app, import_id, link_base)
        except Exception as exc:  # noqa: BLE001 - the import records why and the page says so
            app.logger.warning("people import %s failed: %s", import_id, type(exc).__name__)
            with maker() as f:
                row = must_get(f, PeopleImport, import_id)
                if row.status in MACHINE["fail"].sources:
                    MACHINE.move(row, "fail")
                row.finished_at, row.content = utcnow(), ""
                row.message = (f"The import stopped after {row.done_rows} of {row.total_rows} "
                               "rows: those are kept. Upload the file again to import the rest "
                               "(rows already imported show as already enrolled).")
                services.audit_import(f, row, must_get(f, User, row.created_by_id),
                                      action="people_import.failed", rows=row.row_count,
                                      good=row.total_rows)
                f.commit()


def _invitation_messages(app: Flask, link_base: str, inviter: str,
                         invitations: list[tuple[User, str]]) -> list[notify.Message]:
    days = int(app.config["INVITE_LINK_DAYS"])
    with app.test_request_context("/", base_url=link_base):
        return [resets.invitation_email(user, url_for("auth.reset", token=raw, _external=True),
                                        inviter=inviter, days=days)
                for user, raw in invitations]


def _run(app: Flask, import_id: int, link_base: str) -> None:
    with get_database(app).sessionmaker() as s:
        upload = must_get(s, PeopleImport, import_id)
        actor = must_get(s, User, upload.created_by_id)
        centre = upload.centre
        checked = services.check_file(s, upload.content, centre,
                                      max_rows=int(app.config["IMPORT_MAX_ROWS"]))
        if upload.mode == "all" and checked.bad:
            MACHINE.move(upload, "fail")
            upload.finished_at, upload.content = utcnow(), ""
            bad = len(checked.bad)
            upload.message = (f"Nothing was imported: {bad} "
                              f"{'row no longer passes' if bad == 1 else 'rows no longer pass'} "
                              "the checks (something changed since the preview). Upload the "
                              "file again to see why.")
            services.audit_import(s, upload, actor, action="people_import.refused",
                                  rows=len(checked.rows), good=len(checked.good))
            s.commit()
            return
        good = checked.good
        upload.total_rows, upload.done_rows = len(good), 0
        upload.message = f"Importing {len(good)} rows"
        s.commit()
        outcome = services.Outcome()
        created: dict[str, User] = {}
        for start in range(0, len(good), BATCH):
            sent = len(outcome.invitations)
            services.import_rows(
                s, good[start:start + BATCH], centre=centre, actor=actor,
                min_password_length=int(app.config["PASSWORD_MIN_LENGTH"]),
                invite_days=int(app.config["INVITE_LINK_DAYS"]), all_or_nothing=False,
                created=created, outcome=outcome)
            new = outcome.invitations[sent:]
            messages = _invitation_messages(app, link_base, actor.full_name, new)
            upload.done_rows = outcome.rows_done
            upload.people_created = outcome.people_created
            upload.people_reused = outcome.people_reused
            upload.enrolments_created = outcome.enrolments_created
            upload.rows_skipped = len(outcome.skipped)
            upload.heartbeat_at = utcnow()
            upload.message = f"Imported {outcome.rows_done} of {len(good)} rows"
            s.commit()
            if messages:
                notify.dispatch(messages, app.config)
        services.finish(upload, outcome)
        services.audit_import(s, upload, actor, action="people_import.done",
                              rows=len(checked.rows), good=len(good))
        s.commit()
