"""EQA pack downloads as background jobs: ask, watch the progress, then download the ZIP.

Asking for a pack adds an `EqaPackJob` (or hands back the one already waiting or running for
that pack, so a double click starts one job, or the finished one when nothing in the pack has
changed since). The job runs where export jobs run: an RQ worker when REDIS_URL is set, in the
request with EXPORT_RUN_INLINE (tests), otherwise a thread. It beats a heartbeat while it
works; a job whose worker died is marked failed by the same sweep as export jobs. Finished
ZIPs are removed, and their jobs expired, EQA_PACK_KEEP_HOURS after they were made.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from portfolio import jobkit
from portfolio.audit import record_event
from portfolio.db import get_database, must_get, rowcount, utcnow
from portfolio.eqa import download, services
from portfolio.errors import StoredFileDamaged
from portfolio.evidence.storage import file_store_for, record_file_damaged
from portfolio.export import jobs as export_jobs
from portfolio.export.files import export_files
from portfolio.job_states import ACTIVE, MACHINE, JobStatus
from portfolio.jobkit import JobAbandoned
from portfolio.models import AuditEvent, EqaPack, EqaPackJob, Export, Role, User

QUEUE_NAME = "exports"  # the export workers' queue: packs are exports too
JOB_TIMEOUT = 3600  # seconds: a 20-learner pack fits well inside
# Audit actions a pack's own making writes: they do not change what the pack would hold.
_OWN_ACTIONS = ("eqa.", "export.")
DIED = export_jobs.DIED.replace("export", "pack")
NEVER_STARTED = export_jobs.NEVER_STARTED.replace("export", "pack")


def content_key(session: Session, pack: EqaPack) -> str:
    """What the pack would hold, as a SHA-256: its facts and sample, and the last recorded
    change in its centre (evidence, decisions, sampling...), read from the audit trail."""
    last = session.scalar(select(func.max(AuditEvent.id)).where(
        AuditEvent.centre_id == pack.centre_id,
        *(~AuditEvent.action.startswith(prefix) for prefix in _OWN_ACTIONS)))
    facts = {"pack": services.summary(pack), "title": pack.title, "last_change": last or 0}
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()


def stale_message(job: EqaPackJob, config: Mapping[str, Any], now: datetime) -> str | None:
    """Why the job's worker must be taken for dead, or None while it may still be alive."""
    return jobkit.stale_message(job, config, now, died=DIED, never_started=NEVER_STARTED)


def fail_if_stale(session: Session, job: EqaPackJob, config: Mapping[str, Any]) -> bool:
    """Mark the job failed if its worker died; True when it did. Flushes, never commits."""
    return jobkit.fail_if_stale(session, job, config, died=DIED, never_started=NEVER_STARTED)


def fail_stale_jobs(session: Session, config: Mapping[str, Any]) -> int:
    """Mark failed every pack job whose worker died; how many. Flushes, never commits."""
    return sum(fail_if_stale(session, job, config) for job in list(session.scalars(
        select(EqaPackJob).where(EqaPackJob.status.in_(ACTIVE)))))


def expire_old_packs(session: Session, config: Mapping[str, Any], store: Any = None) -> int:
    """Remove finished ZIPs older than EQA_PACK_KEEP_HOURS and mark their jobs expired."""
    cutoff = utcnow() - timedelta(hours=float(config["EQA_PACK_KEEP_HOURS"]))
    files = export_files(config, store)
    count = 0
    for job in list(session.scalars(select(EqaPackJob).where(
            EqaPackJob.status == JobStatus.DONE, EqaPackJob.finished_at < cutoff))):
        if job.filename:
            files.delete(f"eqa/{job.filename}")
        MACHINE.move(job, "expire")
        job.message = "This pack was removed after a while. Ask for it again."
        count += 1
    session.flush()
    return count


def reusable(session: Session, job: EqaPackJob | None, config: Mapping[str, Any]) -> bool:
    return (job is not None and job.status == JobStatus.DONE and job.filename is not None
            and export_files(config).exists(f"eqa/{job.filename}"))


def ask_for_pack(session: Session, pack: EqaPack, *, actor: User,
                 config: Mapping[str, Any]) -> tuple[EqaPackJob, bool]:
    """The job making this pack: the one already waiting or running, the finished one while
    the pack is unchanged, or a new queued one. Returns (job, new?). Flushes, never commits.

    The caller has checked the actor may download the pack (its EQA, open today).
    """
    # A no-op write to the pack's row: a second request for the same pack (a double click)
    # waits here for the first to commit, on PostgreSQL (row lock) and SQLite (write lock).
    session.execute(update(EqaPack).where(EqaPack.id == pack.id).values(title=EqaPack.title))
    for job in session.scalars(select(EqaPackJob).where(
            EqaPackJob.pack_id == pack.id, EqaPackJob.status.in_(ACTIVE))):
        if not fail_if_stale(session, job, config):
            return job, False
    key = content_key(session, pack)
    done = session.scalar(select(EqaPackJob).where(
        EqaPackJob.pack_id == pack.id, EqaPackJob.status == JobStatus.DONE,
        EqaPackJob.content_key == key).order_by(EqaPackJob.id.desc()).limit(1))
    if done is not None and reusable(session, done, config):
        return done, False
    job = EqaPackJob(pack_id=pack.id, requested_by_id=actor.id, content_key=key,
                     status=JobStatus.QUEUED, export_ids=[])
    try:
        with session.begin_nested():
            session.add(job)
            session.flush()
    except IntegrityError:
        # Another request's job got in first (the one-active-job index): show that one.
        return session.scalars(select(EqaPackJob).where(
            EqaPackJob.pack_id == pack.id, EqaPackJob.status.in_(ACTIVE))).one(), False
    record_event(session, action="eqa.pack_request", subject_type="eqa_pack",
                 subject_id=pack.id, actor=actor, actor_role=Role.EQA.value,
                 centre_id=pack.centre_id, detail={"job_id": job.id})
    return job, True


def record_download(session: Session, job: EqaPackJob, *, actor: User) -> None:
    """Write the audit event of the EQA taking the pack's ZIP away."""
    record_event(session, action="eqa.pack_download", subject_type="eqa_pack",
                 subject_id=job.pack_id, actor=actor, actor_role=Role.EQA.value,
                 centre_id=job.pack.centre_id,
                 detail={"sha256": job.sha256, "file": job.filename, "job_id": job.id,
                         "export_ids": list(job.export_ids or [])})


def dispatch(app: Flask, job_id: int, verify_base: str) -> None:
    """Start the job: queue it for a worker, run it now, or run it in a thread."""
    jobkit.start_off_request(
        app, queue=QUEUE_NAME, queued=run_queued, run=run_job, args=(job_id, verify_base),
        timeout=JOB_TIMEOUT, description=f"EQA pack job {job_id}",
        unqueued=lambda _exc: jobkit.mark_failed(
            app, EqaPackJob, job_id,
            "The pack could not be queued: the job queue is not reachable. "
            "Try again later."))


def run_queued(job_id: int, verify_base: str) -> None:
    """Run one queued pack job (in the worker's horse), configured like the web app."""
    jobkit.run_in_new_app(run_job, job_id, verify_base)


def run_job(app: Flask, job_id: int, verify_base: str) -> None:
    """Claim the queued job and make its pack, with progress and a heartbeat as it goes."""
    with app.app_context():
        maker = get_database(app).sessionmaker
        with maker() as claim:
            where, values = MACHINE.claim_clause(EqaPackJob.status, "start")
            now = utcnow()
            claimed = rowcount(claim.execute(
                update(EqaPackJob).where(EqaPackJob.id == job_id, where)
                .values(**values, message="Starting", started_at=now, heartbeat_at=now)))
            claim.commit()
        if not claimed:
            return  # already given up on, or run by another worker
        with jobkit.heartbeat(app, EqaPackJob, job_id, f"EQA pack job {job_id}"):
            _make(app, job_id, verify_base, file_store_for(app.config))


def _forget_exports(session: Session, export_ids: list[int]) -> None:
    """Remove the rows of the portfolio PDFs a failed pack had made (their files are already
    gone): nothing of a failed pack is left to list or hand out. Their audit events stay."""
    if export_ids:
        session.execute(delete(Export).where(Export.id.in_(export_ids)))
        session.commit()


def _make(app: Flask, job_id: int, verify_base: str, store: Any) -> None:
    maker = get_database(app).sessionmaker
    with maker() as s:
        job = must_get(s, EqaPackJob, job_id)
        pack = must_get(s, EqaPack, job.pack_id)

        exports: list[int] = []
        try:
            made = download.build_pack_zip(
                s, pack, config=app.config, instance_path=Path(app.instance_path),
                static_dir=Path(app.static_folder or "static"), store=store,
                verify_base=verify_base, progress=jobkit.progress_writer(app, EqaPackJob, job_id),
                checkpoint=s.commit,
                made=exports, scratch_dir=Path(app.config["STORAGE_DIR"]) / "tmp")
        except JobAbandoned:
            s.rollback()
            _forget_exports(s, exports)
            app.logger.warning("EQA pack job %s was marked failed while running; stopped",
                               job_id)
            return
        except Exception as exc:  # noqa: BLE001 - the job records why and the page says so
            s.rollback()
            _forget_exports(s, exports)
            with maker() as f:
                row = must_get(f, EqaPackJob, job_id)
                if row.status in MACHINE["fail"].sources:
                    MACHINE.move(row, "fail")
                    row.message = str(exc)[:300]  # says where it stopped, or which file
                    row.finished_at = utcnow()
                damaged = getattr(exc, "sha256", None)
                if isinstance(exc, StoredFileDamaged) and damaged:
                    record_file_damaged(f, damaged, "EQA pack job")
                f.commit()
            cause = exc.__cause__  # its type only: the message may hold personal data
            app.logger.warning("EQA pack job %s failed: %s%s", job_id, type(exc).__name__,
                               f" ({type(cause).__name__})" if cause else "")
            return
        job = must_get(s, EqaPackJob, job_id)
        s.refresh(job)
        if job.status != JobStatus.RUNNING:  # failed by the sweep meanwhile: keep nothing
            s.rollback()
            export_files(app.config, store).delete(f"eqa/{made.filename}")
            return
        MACHINE.move(job, "finish")
        job.progress, job.filename, job.sha256, job.size = 100, made.filename, made.sha256, \
            made.size
        job.export_ids, job.finished_at = made.export_ids, utcnow()
        files = len(made.members)
        job.message = f"Ready: {files} signed PDF{'s' if files != 1 else ''} and a manifest"
        s.commit()
