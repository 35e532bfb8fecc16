"""What background jobs share: starting one out of the request (an RQ queue with REDIS_URL,
the request itself, or a thread), running a queued one in the worker, and, for the jobs whose
row carries a heartbeat (PDF exports and EQA packs), the heartbeat, progress, and taking a job
whose worker died for failed.

A job row here has `status` (`portfolio.job_states`), `progress`, `message`, `created_at`,
`started_at` and `heartbeat_at`; one with `finished_at` has it set when it fails.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from flask import Flask
from sqlalchemy import func, update
from sqlalchemy.orm import Session

from portfolio import create_app
from portfolio.db import get_database, must_get, rowcount, utcnow
from portfolio.job_states import MACHINE, JobStatus

RESULT_TTL = 60  # the jobs' functions return nothing worth keeping
FAILURE_TTL = 7 * 24 * 3600  # failed RQ jobs stay inspectable (rq info) for a week


class JobAbandoned(Exception):
    """The job was marked failed (its heartbeat was late) while it still ran: stop working."""


def queue_for(redis_url: str, name: str) -> Any:
    """The RQ queue `name` on the Redis server at redis_url."""
    from redis import Redis
    from rq import Queue

    return Queue(name, connection=Redis.from_url(redis_url))


def start_off_request(app: Flask, *, queue: str, queued: Any, run: Any, args: tuple[Any, ...],
                      timeout: int, description: str, unqueued: Any = None,
                      inline: bool | None = None) -> None:
    """Start a job out of the request: on the RQ queue `queue` when Redis is configured
    (`queued(*args)` in the worker), now when `inline` (by default EXPORT_RUN_INLINE), else
    in a thread (`run(app, *args)`).

    When Redis cannot take it, `unqueued(exc)` says so on the job's page rather than leave it
    waiting for ever; without `unqueued` the job runs in a thread instead.
    """
    if app.config.get("REDIS_URL"):
        from redis.exceptions import RedisError

        try:
            queue_for(app.config["REDIS_URL"], queue).enqueue(
                queued, *args, job_timeout=timeout, result_ttl=RESULT_TTL,
                failure_ttl=FAILURE_TTL, description=description)
            return
        except RedisError as exc:
            if unqueued is not None:
                app.logger.error("%s could not be queued: %s", description, exc)
                unqueued(exc)
                return
            app.logger.warning("%s not queued (%s): running it in a thread", description,
                               type(exc).__name__)
    elif app.config["EXPORT_RUN_INLINE"] if inline is None else inline:
        run(app, *args)
        return
    # The work is long (CPU-heavy rendering, many rows): out of the request, so the page can
    # show its progress.
    threading.Thread(target=run, args=(app, *args), daemon=True,
                     name=description.replace(" ", "-")).start()


def run_in_new_app(run: Callable[..., Any], *args: Any) -> None:
    """Run `run(app, *args)` in an app configured like the web app (an RQ job in the worker's
    horse); its pooled connections go with it, never handed to the next job."""
    app = create_app()
    try:
        run(app, *args)
    finally:
        get_database(app).engine.dispose()


# --- jobs with a heartbeat ----------------------------------------------------------------------

def heartbeat_every(config: Mapping[str, Any]) -> float:
    """Seconds between heartbeats: a quarter of the timeout, so one late beat is no failure."""
    return max(0.2, min(30.0, float(config["EXPORT_HEARTBEAT_TIMEOUT"]) / 4))


def _ends(model: Any, now: datetime) -> dict[str, datetime]:
    return {"finished_at": now} if hasattr(model, "finished_at") else {}


def stale_message(job: Any, config: Mapping[str, Any], now: datetime, *, died: str,
                  never_started: str) -> str | None:
    """Why the job's worker must be taken for dead (`died`, or `never_started` while it still
    waits in the queue), or None while it may still be alive."""
    if job.status == JobStatus.RUNNING:
        last = job.heartbeat_at or job.started_at or job.created_at
        if now - last > timedelta(seconds=float(config["EXPORT_HEARTBEAT_TIMEOUT"])):
            return died
    elif job.status == JobStatus.QUEUED and now - job.created_at > timedelta(
            seconds=float(config["EXPORT_QUEUED_TIMEOUT"])):
        return never_started
    return None


def fail_if_stale(session: Session, job: Any, config: Mapping[str, Any], *, died: str,
                  never_started: str) -> bool:
    """Mark a job failed if its worker died; True when it did. Flushes, never commits."""
    now = utcnow()
    message = stale_message(job, config, now, died=died, never_started=never_started)
    if message is None:
        return False
    model = type(job)
    last: Any
    if job.status == JobStatus.RUNNING:
        cutoff = now - timedelta(seconds=float(config["EXPORT_HEARTBEAT_TIMEOUT"]))
        last = func.coalesce(model.heartbeat_at, model.started_at, model.created_at)
    else:
        cutoff = now - timedelta(seconds=float(config["EXPORT_QUEUED_TIMEOUT"]))
        last = model.created_at
    where, values = MACHINE.claim_clause(model.status, "fail")
    # Judged again in the database, so a heartbeat that lands in between wins.
    changed = rowcount(session.execute(
        update(model).where(model.id == job.id, model.status == job.status, where,
                            last < cutoff)
        .values(**values, message=message, **_ends(model, now))
        .execution_options(synchronize_session=False)))
    session.refresh(job)
    return bool(changed)


def mark_failed(app: Flask, model: Any, job_id: int, message: str) -> None:
    """Mark a job failed from outside its run (it could not be queued, its horse died)."""
    with app.app_context(), get_database(app).sessionmaker() as s:
        row = s.get(model, job_id)
        if row is not None and row.status in MACHINE["fail"].sources:
            MACHINE.move(row, "fail")
            row.message = message[:300]
            for name, value in _ends(model, utcnow()).items():
                setattr(row, name, value)
            s.commit()


@contextmanager
def heartbeat(app: Flask, model: Any, job_id: int, label: str) -> Iterator[None]:
    """Beat the running job's heartbeat from a thread while the block runs (and the process
    lives): a job whose beats stop is taken for dead by `fail_if_stale`."""
    stop = threading.Event()

    def beat() -> None:
        maker = get_database(app).sessionmaker
        while not stop.wait(heartbeat_every(app.config)):
            try:
                with maker() as s:
                    s.execute(update(model).where(model.id == job_id,
                                                  model.status == JobStatus.RUNNING)
                              .values(heartbeat_at=utcnow()))
                    s.commit()
            except Exception as exc:  # noqa: BLE001 - a missed beat is retried; never crash
                app.logger.warning("%s heartbeat failed: %s", label, exc)

    thread = threading.Thread(target=beat, daemon=True,
                              name=f"{label.replace(' ', '-')}-heartbeat")
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


def progress_writer(app: Flask, model: Any, job_id: int) -> Callable[[int, str], None]:
    """A `progress(percent, message)` that commits the job's progress (and a beat) in a
    session of its own, and raises JobAbandoned once the job was given up on as dead."""
    maker = get_database(app).sessionmaker

    def progress(percent: int, message: str) -> None:
        with maker() as p:
            row = must_get(p, model, job_id)
            if row.status != JobStatus.RUNNING:  # given up on as dead: stop, leave its message
                raise JobAbandoned(row.message)
            row.progress, row.message, row.heartbeat_at = percent, message, utcnow()
            p.commit()

    return progress
