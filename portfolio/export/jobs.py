"""Where an export job runs: an RQ worker (REDIS_URL set), the request itself, or a thread.

With REDIS_URL, the web process only enqueues the job; `portfolio worker` renders it in a work
horse it forks for each job, so WeasyPrint's memory (not given back after a large render) goes
when the horse exits, and web processes stay small. The ExportJob row carries the progress the
browser shows in every case.
"""

from __future__ import annotations

import threading
from typing import Any

from flask import Flask

from portfolio.db import get_database
from portfolio.models import ExportJob

QUEUE_NAME = "exports"
JOB_TIMEOUT = 600  # seconds; the horse is stopped after this and the job marked failed
RESULT_TTL = 60  # run_queued returns nothing worth keeping
FAILURE_TTL = 7 * 24 * 3600  # failed RQ jobs stay inspectable (rq info) for a week


def _mark_failed(app: Flask, job_id: int, message: str) -> None:
    with app.app_context(), get_database(app).sessionmaker() as s:
        row = s.get(ExportJob, job_id)
        if row is not None and row.status not in ("done", "failed"):
            row.status, row.message = "failed", message[:300]
            s.commit()


def queue_for(redis_url: str) -> Any:
    """The RQ queue of export jobs on the Redis server at redis_url."""
    from redis import Redis
    from rq import Queue

    return Queue(QUEUE_NAME, connection=Redis.from_url(redis_url))


def dispatch_export(app: Flask, job_id: int, verify_base: str) -> None:
    """Start the export job: queue it for a worker, run it now, or run it in a thread."""
    from portfolio.export.views import run_job

    if app.config.get("REDIS_URL"):
        from redis.exceptions import RedisError

        try:
            queue_for(app.config["REDIS_URL"]).enqueue(
                run_queued, job_id, verify_base, job_timeout=JOB_TIMEOUT,
                result_ttl=RESULT_TTL, failure_ttl=FAILURE_TTL,
                description=f"export job {job_id}")
        except RedisError as exc:
            # Say so on the job's page rather than leave it waiting for ever.
            app.logger.error("export job %s could not be queued: %s", job_id, exc)
            _mark_failed(app, job_id, "The export could not be queued: the job queue is not "
                                      "reachable. Try again later or tell your centre admin.")
    elif app.config["EXPORT_RUN_INLINE"]:
        run_job(app, job_id, verify_base)
    else:
        # Rendering is CPU-heavy: out of the request, so the page can show progress.
        threading.Thread(target=run_job, args=(app, job_id, verify_base), daemon=True).start()


def run_queued(job_id: int, verify_base: str) -> None:
    """Run one queued export job (in the worker's horse), configured like the web app."""
    from portfolio import create_app
    from portfolio.export.views import run_job

    app = create_app()
    try:
        run_job(app, job_id, verify_base)
    finally:
        get_database(app).engine.dispose()


def horse_killed(rq_job: Any, _pid: int, _status: int, _rusage: Any) -> None:
    """Mark the export failed when its horse died (out of memory, killed), not left running."""
    from portfolio import create_app

    if rq_job.func_name != f"{__name__}.run_queued" or not rq_job.args:
        return
    app = create_app()
    try:
        _mark_failed(app, int(rq_job.args[0]), "The export failed: the process making it "
                                               "stopped unexpectedly (it may have run out of "
                                               "memory).")
    finally:
        # The worker forks a horse per job: it must not hand pooled connections to the next.
        get_database(app).engine.dispose()
