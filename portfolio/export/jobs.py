"""Where an export job runs: an RQ worker (REDIS_URL set), the request itself, or a thread.

With REDIS_URL, the web process only enqueues the job; `portfolio worker` renders it in a work
horse it forks for each job, so WeasyPrint's memory (not given back after a large render) goes
when the horse exits, and web processes stay small. The ExportJob row carries the progress the
browser shows in every case.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from portfolio import create_app
from portfolio.db import get_database, must_get, rowcount, utcnow
from portfolio.errors import DomainError, NotFound, StoredFileDamaged
from portfolio.evidence.storage import file_store_for, record_file_damaged
from portfolio.export.services import export_portfolio
from portfolio.job_states import ACTIVE as JOB_ACTIVE
from portfolio.job_states import MACHINE, JobStatus
from portfolio.models import Enrolment, ExportJob, User
from portfolio.ops import record_export

QUEUE_NAME = "exports"
JOB_TIMEOUT = 600  # seconds; the horse is stopped after this and the job marked failed
RESULT_TTL = 60  # run_queued returns nothing worth keeping
FAILURE_TTL = 7 * 24 * 3600  # failed RQ jobs stay inspectable (rq info) for a week


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


class JobAbandoned(Exception):
    """The job was marked failed (its heartbeat was late) while it still ran: stop working."""


def heartbeat_every(config: Mapping[str, Any]) -> float:
    """Seconds between heartbeats: a quarter of the timeout, so one late beat is no failure."""
    return max(0.2, min(30.0, float(config["EXPORT_HEARTBEAT_TIMEOUT"]) / 4))


def stale_message(job: ExportJob, config: Mapping[str, Any], now: datetime) -> str | None:
    """Why the job's worker must be taken for dead, or None while it may still be alive."""
    if job.status == JobStatus.RUNNING:
        last = job.heartbeat_at or job.started_at or job.created_at
        if now - last > timedelta(seconds=float(config["EXPORT_HEARTBEAT_TIMEOUT"])):
            return DIED
    elif job.status == JobStatus.QUEUED and now - job.created_at > timedelta(
            seconds=float(config["EXPORT_QUEUED_TIMEOUT"])):
        return NEVER_STARTED
    return None


def fail_if_stale(session: Session, job: ExportJob, config: Mapping[str, Any]) -> bool:
    """Mark a job failed if its worker died; True when it did. Flushes, never commits."""
    now = utcnow()
    message = stale_message(job, config, now)
    if message is None:
        return False
    # Judged again in the database, so a heartbeat that lands in between wins.
    where, values = MACHINE.claim_clause(ExportJob.status, "fail")
    last: Any
    if job.status == JobStatus.RUNNING:
        cutoff = now - timedelta(seconds=float(config["EXPORT_HEARTBEAT_TIMEOUT"]))
        last = func.coalesce(ExportJob.heartbeat_at, ExportJob.started_at, ExportJob.created_at)
    else:
        cutoff = now - timedelta(seconds=float(config["EXPORT_QUEUED_TIMEOUT"]))
        last = ExportJob.created_at
    changed = rowcount(session.execute(
        update(ExportJob).where(ExportJob.id == job.id, ExportJob.status == job.status,
                                where, last < cutoff)
        .values(**values, message=message)
        .execution_options(synchronize_session=False)))
    session.refresh(job)
    return bool(changed)


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


def _mark_failed(app: Flask, job_id: int, message: str) -> None:
    with app.app_context(), get_database(app).sessionmaker() as s:
        row = s.get(ExportJob, job_id)
        if row is not None and row.status in MACHINE["fail"].sources:
            MACHINE.move(row, "fail")
            row.message = message[:300]
            s.commit()


def queue_for(redis_url: str) -> Any:
    """The RQ queue of export jobs on the Redis server at redis_url."""
    from redis import Redis
    from rq import Queue

    return Queue(QUEUE_NAME, connection=Redis.from_url(redis_url))


def start_off_request(app: Flask, *, queued: Any, run: Any, args: tuple[Any, ...],
                      timeout: int, description: str, unqueued: Any) -> None:
    """Start a job out of the request: on the exports queue for `portfolio worker` when Redis
    is configured (`queued(*args)` in the worker), now when EXPORT_RUN_INLINE, else in a
    thread (`run(app, *args)`). When Redis cannot take it, `unqueued(exc)` says so on the
    job's page rather than leave it waiting for ever. Exports and EQA packs share this."""
    if app.config.get("REDIS_URL"):
        from redis.exceptions import RedisError

        try:
            queue_for(app.config["REDIS_URL"]).enqueue(
                queued, *args, job_timeout=timeout, result_ttl=RESULT_TTL,
                failure_ttl=FAILURE_TTL, description=description)
        except RedisError as exc:
            app.logger.error("%s could not be queued: %s", description, exc)
            unqueued(exc)
    elif app.config["EXPORT_RUN_INLINE"]:
        run(app, *args)
    else:
        # Rendering is CPU-heavy: out of the request, so the page can show progress.
        threading.Thread(target=run, args=(app, *args), daemon=True,
                         name=description.replace(" ", "-")).start()


def dispatch_export(app: Flask, job_id: int, verify_base: str) -> None:
    """Start the export job: queue it for a worker, run it now, or run it in a thread."""
    start_off_request(
        app, queued=run_queued, run=run_job, args=(job_id, verify_base), timeout=JOB_TIMEOUT,
        description=f"export job {job_id}",
        unqueued=lambda _exc: _mark_failed(
            app, job_id, "The export could not be queued: the job queue is not reachable. "
                         "Try again later or tell your centre admin."))


def run_queued(job_id: int, verify_base: str) -> None:
    """Run one queued export job (in the worker's horse), configured like the web app."""
    app = create_app()
    try:
        run_job(app, job_id, verify_base)
    finally:
        get_database(app).engine.dispose()


def horse_killed(rq_job: Any, _pid: int, _status: int, _rusage: Any) -> None:
    """Mark the export failed when its horse died (out of memory, killed), not left running."""
    from portfolio import create_app
    from portfolio.eqa import pack_jobs

    mark: Any
    if rq_job.func_name == f"{__name__}.run_queued" and rq_job.args:
        mark = _mark_failed
    elif rq_job.func_name == f"{pack_jobs.__name__}.run_queued" and rq_job.args:
        mark = pack_jobs._mark_failed
    else:
        return
    app = create_app()
    try:
        mark(app, int(rq_job.args[0]), "The export failed: the process making it "
                                       "stopped unexpectedly (it may have run out of "
                                       "memory).")
    finally:
        # The worker forks a horse per job: it must not hand pooled connections to the next.
        get_database(app).engine.dispose()


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
        stop = threading.Event()
        beat = threading.Thread(target=_beat, args=(app, job_id, stop), daemon=True,
                                name=f"export-job-{job_id}-heartbeat")
        beat.start()
        try:
            _render_job(app, job_id, verify_base, file_store_for(app.config))
        finally:
            stop.set()
            beat.join(timeout=5)


def _beat(app: Flask, job_id: int, stop: threading.Event) -> None:
    """Record that the job's process is alive, until it ends (or the process dies)."""
    maker = get_database(app).sessionmaker
    every = heartbeat_every(app.config)
    while not stop.wait(every):
        try:
            with maker() as s:
                s.execute(update(ExportJob).where(ExportJob.id == job_id,
                                                  ExportJob.status == JobStatus.RUNNING)
                          .values(heartbeat_at=utcnow()))
                s.commit()
        except Exception as exc:  # noqa: BLE001 - a missed beat is retried; never crash
            app.logger.warning("export job %s heartbeat failed: %s", job_id, exc)


def _render_job(app: Flask, job_id: int, verify_base: str, store: Any) -> None:
    maker = get_database(app).sessionmaker
    with maker() as s:
        job = must_get(s, ExportJob, job_id)
        enrolment = must_get(s, Enrolment, job.enrolment_id)
        actor = must_get(s, User, job.requested_by_id)

        def progress(percent: int, message: str) -> None:
            with maker() as p:
                row = must_get(p, ExportJob, job_id)
                if row.status != JobStatus.RUNNING:  # given up on as dead: stop, leave its message
                    raise JobAbandoned(row.message)
                row.progress, row.message = percent, message
                row.heartbeat_at = utcnow()
                p.commit()

        started = time.perf_counter()
        try:
            export = export_portfolio(
                s, enrolment, actor=actor, config=app.config,
                instance_path=Path(app.instance_path),
                static_dir=Path(app.static_folder or "static"),
                store=store, verify_base=verify_base, progress=progress)
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
