"""Where an export job runs: an RQ worker (REDIS_URL set), the request itself, or a thread.

With REDIS_URL, the web process only enqueues the job; `portfolio worker` renders it in a work
horse it forks for each job, so WeasyPrint's memory (not given back after a large render) goes
when the horse exits, and web processes stay small. The ExportJob row carries the progress the
browser shows in every case.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from portfolio import jobkit
from portfolio.db import get_database, must_get, utcnow
from portfolio.errors import DomainError, NotFound, StoredFileDamaged
from portfolio.evidence.storage import file_store_for, record_file_damaged
from portfolio.export.services import export_portfolio
from portfolio.job_states import ACTIVE as JOB_ACTIVE
from portfolio.job_states import MACHINE, JobStatus
from portfolio.jobkit import JobAbandoned
from portfolio.models import Enrolment, EqaPackJob, ExportJob, User
from portfolio.ops import record_export

QUEUE_NAME = "exports"
JOB_TIMEOUT = 600  # seconds; the horse is stopped after this and the job marked failed


ACTIVE = JOB_ACTIVE  # kept for callers of this module
DIED = ("The export stopped: the process making it is no longer running (the server may have "
        "restarted, or it ran out of memory). Nothing was saved. Try again.")
NEVER_STARTED = ("The export never started: no worker picked it up in time. Try again; if it "
                 "keeps happening, tell your centre admin.")


class TooManyExports(DomainError):
    """A person asked for more exports than may be queued or running at once."""
    status = 429
    title = "Too many exports at once"

    def __init__(self, message: str, running: ExportJob) -> None:
        super().__init__(message)
        self.running = running


def stale_message(job: ExportJob, config: Mapping[str, Any], now: datetime) -> str | None:
    """Why the job's worker must be taken for dead, or None while it may still be alive."""
    return jobkit.stale_message(job, config, now, died=DIED, never_started=NEVER_STARTED)


def fail_if_stale(session: Session, job: ExportJob, config: Mapping[str, Any]) -> bool:
    """Mark a job failed if its worker died; True when it did. Flushes, never commits."""
    return jobkit.fail_if_stale(session, job, config, died=DIED, never_started=NEVER_STARTED)


def get_export_job(session: Session, job_id: int, user: User) -> ExportJob:
    """A job the user asked for; NotFound for anyone else's."""
    job = session.get(ExportJob, job_id)
    if job is None or job.requested_by_id != user.id:
        raise NotFound("No such export.")
    return job


def fail_stale_jobs(session: Session, config: Mapping[str, Any]) -> int:
    """Mark every job whose worker died failed (run when `portfolio worker` starts)."""
    return sum(fail_if_stale(session, job, config) for job in list(session.scalars(
        select(ExportJob).where(ExportJob.status.in_(ACTIVE)))))


def recover_dead_jobs(app: Flask) -> int:
    """On start-up: mark failed every export whose worker died; return how many (never raises).

    Judged by heartbeat only, so a job another machine is still running is left alone.
    """
    try:
        with app.app_context(), get_database(app).sessionmaker() as s:
            dead = fail_stale_jobs(s, app.config)
            s.commit()
    except Exception as exc:  # noqa: BLE001 - start-up goes on; reading a job checks it again
        app.logger.warning("dead export jobs not checked at start-up: %s", exc)
        return 0
    if dead:
        app.logger.warning("marked %s export job(s) failed: their worker had stopped", dead)
    return dead


def start_export_job(session: Session, enrolment: Enrolment, *, actor: User,
                     config: Mapping[str, Any]) -> ExportJob:
    """Add a queued export job for the actor, within their limit of jobs at once.

    :raises TooManyExports: they already have the most exports queued or running.
    """
    # A no-op write to the person's row: concurrent requests (a double click) queue behind it
    # here, on PostgreSQL (row lock) and SQLite (write lock) alike, so the count holds.
    session.execute(update(User).where(User.id == actor.id).values(full_name=User.full_name))
    active = list(session.scalars(select(ExportJob).where(
        ExportJob.requested_by_id == actor.id, ExportJob.status.in_(ACTIVE))
        .order_by(ExportJob.id)))
    active = [job for job in active if not fail_if_stale(session, job, config)]
    limit = int(config["EXPORT_MAX_QUEUED_PER_PERSON"])
    if len(active) >= limit:
        raise TooManyExports(
            f"You already have {len(active)} export{'s' if len(active) != 1 else ''} queued or "
            f"running (at most {limit} at once). Wait for one to finish, then try again.",
            active[-1])
    job = ExportJob(enrolment_id=enrolment.id, requested_by_id=actor.id)
    session.add(job)
    session.flush()
    return job


def queue_for(redis_url: str) -> Any:
    """The RQ queue of export jobs on the Redis server at redis_url."""
    return jobkit.queue_for(redis_url, QUEUE_NAME)


def dispatch_export(app: Flask, job_id: int, verify_base: str) -> None:
    """Start the export job: queue it for a worker, run it now, or run it in a thread."""
    jobkit.start_off_request(
        app, queue=QUEUE_NAME, queued=run_queued, run=run_job, args=(job_id, verify_base),
        timeout=JOB_TIMEOUT, description=f"export job {job_id}",
        unqueued=lambda _exc: jobkit.mark_failed(
            app, ExportJob, job_id,
            "The export could not be queued: the job queue is not reachable. "
            "Try again later or tell your centre admin."))


def run_queued(job_id: int, verify_base: str) -> None:
    """Run one queued export job (in the worker's horse), configured like the web app."""
    jobkit.run_in_new_app(run_job, job_id, verify_base)


def horse_killed(rq_job: Any, _pid: int, _status: int, _rusage: Any) -> None:
    """Mark the export failed when its horse died (out of memory, killed), not left running."""
    from portfolio.eqa import pack_jobs

    model: Any
    if rq_job.func_name == f"{__name__}.run_queued" and rq_job.args:
        model = ExportJob
    elif rq_job.func_name == f"{pack_jobs.__name__}.run_queued" and rq_job.args:
        model = EqaPackJob
    else:
        return
    jobkit.run_in_new_app(jobkit.mark_failed, model, int(rq_job.args[0]),
                          "The export failed: the process making it stopped unexpectedly (it "
                          "may have run out of memory).")


def run_job(app: Flask, job_id: int, verify_base: str) -> None:
    """Run one export job in its own session, recording progress and a heartbeat as it goes."""
    with app.app_context():
        maker = get_database(app).sessionmaker
        with maker() as claim:
            row = claim.get(ExportJob, job_id)
            if row is None or row.status != JobStatus.QUEUED:
                return  # already given up on (failed, retried) or run by another worker
            now = utcnow()
            MACHINE.move(row, "start")
            row.message = "Starting"
            row.started_at = row.heartbeat_at = now
            claim.commit()
        with jobkit.heartbeat(app, ExportJob, job_id, f"export job {job_id}"):
            _render_job(app, job_id, verify_base, file_store_for(app.config))


def _render_job(app: Flask, job_id: int, verify_base: str, store: Any) -> None:
    maker = get_database(app).sessionmaker
    with maker() as s:
        job = must_get(s, ExportJob, job_id)
        enrolment = must_get(s, Enrolment, job.enrolment_id)
        actor = must_get(s, User, job.requested_by_id)

        started = time.perf_counter()
        try:
            export = export_portfolio(
                s, enrolment, actor=actor, config=app.config,
                instance_path=Path(app.instance_path),
                static_dir=Path(app.static_folder or "static"),
                store=store, verify_base=verify_base,
                progress=jobkit.progress_writer(app, ExportJob, job_id))
            s.flush()
            job = must_get(s, ExportJob, job_id)
            MACHINE.move(job, "finish")
            job.progress, job.export_id = 100, export.id
            job.message = f"Ready: {export.pages} pages, signed"
            s.commit()
            record_export(time.perf_counter() - started, ok=True)
        except JobAbandoned:
            s.rollback()
            app.logger.warning("export job %s was marked failed while running; stopped",
                               job_id)
        except Exception as exc:  # noqa: BLE001 - the job records why and the page says so
            s.rollback()
            with maker() as f:
                row = must_get(f, ExportJob, job_id)
                if row.status in MACHINE["fail"].sources:
                    MACHINE.move(row, "fail")
                row.message = ("The export failed: " + str(exc))[:300]
                damaged = getattr(exc, "sha256", None)
                if isinstance(exc, StoredFileDamaged) and damaged:
                    record_file_damaged(f, damaged, "export job")
                f.commit()
            record_export(time.perf_counter() - started, ok=False)
            app.logger.warning("export job %s failed: %s", job_id, type(exc).__name__)
