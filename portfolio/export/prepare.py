"""Laying out a learner's PDF ahead of the click: after a change that goes into the portfolio
(an evidence review, a signature of any kind: a decision, a countersignature, a sign-off, an IQA
outcome) is committed, that enrolment's parts are laid out in the background into the render
cache, keyed by their content as every export's parts are. "Export" then finds them there and
only lays out the few parts that carry the export's own id and time, merges, attaches and signs.

The work goes to RQ's `prepare` queue when Redis is configured (a worker takes it after emails,
exports and imports), else to one low-priority thread of this process; several changes to the
same enrolment before it starts are laid out once. Nothing here is needed for correctness: a
part that is not ready is laid out at the click, as before. `EXPORT_PREPARE` turns it off."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from flask import Flask, current_app, has_request_context
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from portfolio import jobkit
from portfolio.db import get_database, utcnow
from portfolio.evidence.storage import file_store_for
from portfolio.export.content import gather
from portfolio.export.pipeline import (
    PartRenderer,
    RenderPool,
    build_parts,
    evidence_parts,
    footer_part,
    locations_part,
    remember_parts,
)
from portfolio.export.render import qr_svg
from portfolio.models import Enrolment, Evidence
from portfolio.models.assessment import EvidenceReview, Signature
from portfolio.storage import as_backend

log = logging.getLogger(__name__)

QUEUE_NAME = "prepare"
JOB_TIMEOUT = 1800
_PENDING_KEY = "portfolio.prepare_pdf"


def prepare_portfolio(session: Session, enrolment: Enrolment, *, config: Any,
                      instance_path: Path, static_dir: Path, store: Any) -> tuple[int, int]:
    """Lay out into the render cache every part of this enrolment's PDF that is not there
    yet; return (parts laid out, parts already there)."""
    from portfolio.export.services import render_cache_dir

    cache_dir = render_cache_dir(config, instance_path)
    # The export's own id and time go only into the front sheet, the summary and the
    # certificate: those few are laid out at the click, with the real ones.
    content = gather(session, enrolment, now=utcnow(), public_id="prepared",
                     verify_url="https://prepared.invalid/verify")
    head, matrix, tail = build_parts(content, qr_svg(content.verify_url))
    body = [*matrix, *evidence_parts(content)]
    parts = [*head, *body, *tail, footer_part(content)]
    processes = int(config.get("EXPORT_PROCESSES") or 0) or 1
    pool = RenderPool(processes)
    try:
        renderer = PartRenderer(static_dir=static_dir, store=as_backend(store).settings,
                                cache_dir=cache_dir, pool=pool)
        renderer.render(parts)
        # The location sheet's page numbers follow from the parts' page counts, now known.
        parts.append(locations_part(content, renderer, head, body))
    finally:
        pool.close()
    remember_parts(cache_dir, f"enrolment-{enrolment.id}", [part.key for part in parts])
    return len(renderer.rendered), renderer.reused


def run_prepare(app: Flask, enrolment_id: int) -> None:
    """Prepare one enrolment's PDF parts, in an app context of its own; never raises."""
    try:
        with app.app_context(), get_database(app).sessionmaker() as s:
            enrolment = s.get(Enrolment, enrolment_id)
            if enrolment is None:
                return
            laid_out, reused = prepare_portfolio(
                s, enrolment, config=app.config, instance_path=Path(app.instance_path),
                static_dir=Path(app.static_folder or "static"),
                store=file_store_for(app.config))
            log.info("prepared PDF parts of enrolment %s: %s laid out, %s ready already",
                     enrolment_id, laid_out, reused)
    except Exception:  # noqa: BLE001 - a background warm-up: the export does it anyway
        log.exception("preparing the PDF parts of enrolment %s failed", enrolment_id)


def run_queued(enrolment_id: int) -> None:
    """The RQ job: configured like the web app."""
    jobkit.run_in_new_app(run_prepare, enrolment_id)


def queue_for(redis_url: str) -> Any:
    return jobkit.queue_for(redis_url, QUEUE_NAME)


class _Backlog:
    """The enrolments waiting for the one preparing thread of this process."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.waiting: dict[int, Flask] = {}
        self.thread: threading.Thread | None = None

    def add(self, app: Flask, enrolment_ids: Iterable[int]) -> None:
        with self.lock:
            for enrolment_id in enrolment_ids:
                self.waiting[enrolment_id] = app
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._drain, name="prepare-pdf",
                                               daemon=True)
                self.thread.start()

    def _drain(self) -> None:
        while True:
            with self.lock:
                if not self.waiting:
                    self.thread = None
                    return
                enrolment_id, app = self.waiting.popitem()
            run_prepare(app, enrolment_id)


BACKLOG = _Backlog()


def dispatch(app: Flask, enrolment_ids: set[int]) -> None:
    """Queue the preparation of these enrolments' PDFs (see the module's description)."""
    if app.config.get("REDIS_URL"):
        from redis.exceptions import RedisError

        try:
            queue = queue_for(app.config["REDIS_URL"])
            for enrolment_id in sorted(enrolment_ids):
                queue.enqueue(run_queued, enrolment_id, job_timeout=JOB_TIMEOUT,
                              result_ttl=0, failure_ttl=3600,
                              description=f"prepare the PDF of enrolment {enrolment_id}")
        except RedisError as exc:  # only a warm-up: the export lays them out at the click
            log.warning("could not queue PDF preparation: %s", exc)
    elif app.config.get("EXPORT_RUN_INLINE"):
        for enrolment_id in sorted(enrolment_ids):
            run_prepare(app, enrolment_id)
    else:
        BACKLOG.add(app, enrolment_ids)


# --- noticing the changes -----------------------------------------------------------------------

@event.listens_for(Session, "after_flush")
def _note_changes(session: Session, _context: Any) -> None:
    """Remember which enrolments this transaction changed in a way the PDF shows."""
    enrolments: set[int] = set()
    reviewed: set[int] = set()
    for obj in session.new:
        if isinstance(obj, Signature):
            enrolments.add(obj.enrolment_id)
        elif isinstance(obj, EvidenceReview):
            reviewed.add(obj.evidence_id)
    if reviewed:
        enrolments |= set(session.connection().scalars(
            select(Evidence.enrolment_id).where(Evidence.id.in_(reviewed))))
    if enrolments:
        session.info.setdefault(_PENDING_KEY, set()).update(
            e for e in enrolments if e is not None)


@event.listens_for(Session, "after_commit")
def _prepare_after_commit(session: Session) -> None:
    pending = session.info.pop(_PENDING_KEY, None)
    # Only for what people do in the app (pages and API): a command loading data in bulk
    # (the demo, an import) leaves the layout to the first export.
    if not pending or not has_request_context() or not current_app.config.get("EXPORT_PREPARE"):
        return
    dispatch(current_app._get_current_object(), pending)  # type: ignore[attr-defined]


@event.listens_for(Session, "after_rollback")
def _forget_after_rollback(session: Session) -> None:
    session.info.pop(_PENDING_KEY, None)
