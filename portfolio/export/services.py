"""Export a portfolio as a signed PDF, and verify one against the database."""

from __future__ import annotations

import hashlib
import io
import json
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portfolio.atomic import write_atomically
from portfolio.audit import record_event
from portfolio.db import utcnow
from portfolio.errors import PermissionDenied
from portfolio.export.content import enrolment_events, gather
from portfolio.export.pipeline import (
    RenderPool,
    prune_cache,
    remember_parts,
    render_portfolio,
    start_early,
)
from portfolio.export.render import MANIFEST_NAME, attachments, qr_svg
from portfolio.models import (
    Enrolment,
    Evidence,
    Export,
    Signature,
    User,
    WitnessRequest,
)
from portfolio.permissions import can_view_enrolment


def render_cache_dir(config: dict[str, Any], instance_path: Path) -> Path:
    """Where rendered parts are cached (RENDER_CACHE_DIR)."""
    return Path(config.get("RENDER_CACHE_DIR") or instance_path / "render-cache")


def export_portfolio(session: Session, enrolment: Enrolment, *, actor: User | None,
                     config: dict[str, Any], instance_path: Path, static_dir: Path,
                     store: Any, verify_base: str, out: Path | None = None,
                     progress: Any = None) -> Export:
    """Render, attach, sign and store the portfolio PDF; record who made it.

    :raises PermissionDenied: the actor may not see this portfolio.
    """
    from portfolio.export.signing import load_signer, sign_pdf

    if actor is not None and not can_view_enrolment(actor, enrolment):
        raise PermissionDenied("You cannot export this portfolio.")
    def step(percent: int, message: str) -> None:
        if progress is not None:
            progress(percent, message)

    now = utcnow()
    cache_dir = render_cache_dir(config, instance_path)
    pool = RenderPool(int(config.get("EXPORT_PROCESSES") or 0) or (os.cpu_count() or 1))
    try:
        items = session.scalar(select(func.count(Evidence.id)).where(
            Evidence.enrolment_id == enrolment.id)) or 0
        if start_early(cache_dir, f"enrolment-{enrolment.id}", items):
            pool.start()  # the processes get ready while the key and the content are read
        signer = load_signer(config, instance_path)
        step(10, "Gathering the evidence, decisions and signatures")
        public_id = secrets.token_urlsafe(32)
        content = gather(session, enrolment, now=now, public_id=public_id,
                         verify_url=f"{verify_base.rstrip('/')}/{public_id}")
        step(20, "Laying out the pages")

        def laid_out(done: int, total: int) -> None:
            step(20 + 55 * done // max(total, 1),
                 f"Laying out the pages ({done} of {total} parts)")

        result = render_portfolio(content, qr=qr_svg(content.verify_url), static_dir=static_dir,
                                  store=store, cache_dir=cache_dir, pool=pool,
                                  attachments=attachments(content, store), progress=laid_out)
    finally:
        pool.close()
    remember_parts(cache_dir, f"enrolment-{enrolment.id}", result.keys)
    pdf, pages = result.pdf, result.pages
    step(80, "Signing the PDF with the centre's key")
    signing_started = time.perf_counter()
    signed = sign_pdf(pdf, signer, reason=f"Portfolio of {content.learner}, unit "
                                          f"{content.unit.reference}",
                      location=content.centre, tsa_url=config.get("SIGNING_TSA_URL") or "")
    result.timings["sign"] = round(time.perf_counter() - signing_started, 3)
    slug = "".join(ch if ch.isalnum() else "-" for ch in content.learner.lower()).strip("-")
    filename = f"portfolio-{slug}-{now:%Y%m%d-%H%M%S}.pdf"
    target = out or Path(config["EXPORTS_DIR"]) / filename
    write_atomically(target, signed)
    export = Export(enrolment_id=enrolment.id, created_by_id=actor.id if actor else None,
                    created_at=now, public_id=public_id, filename=target.name,
                    sha256=hashlib.sha256(signed).hexdigest(), size=len(signed), pages=pages,
                    manifest=content.manifest)
    # Not stored: how the render went (the benchmark reports it).
    export.render_report = {"timings": result.timings, "parts_rendered": len(result.rendered),
                            "rendered": result.rendered,
                            "parts_reused": result.reused}
    session.add(export)
    session.flush()
    prune_cache(cache_dir, int(config.get("RENDER_CACHE_MB") or 0) * 1024 * 1024)
    record_event(session, action="export.pdf", subject_type="export", subject_id=export.id,
                 actor=actor, learner_id=enrolment.learner_id,
                 centre_id=enrolment.learner.centre_id,
                 detail={"sha256": export.sha256, "pages": pages, "file": target.name})
    return export


@dataclass
class ExportVerdict:
    state: str  # "intact and current", "intact but changed", "altered"
    signature_problem: str = ""
    changes: list[str] = field(default_factory=list)
    manifest: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.state != "altered"


def read_manifest(pdf: bytes) -> dict[str, Any] | None:
    """Return the export manifest embedded in a PDF, or None."""
    from pypdf import PdfReader

    try:
        reader = PdfReader(io.BytesIO(pdf))
        data = reader.attachments.get(MANIFEST_NAME)
    except Exception:  # noqa: BLE001 - any unreadable file is simply "no manifest"
        return None
    if not data:
        return None
    try:
        return json.loads(data[0])
    except ValueError:
        return None


def compare_with_database(session: Session, manifest: dict[str, Any]) -> list[str]:
    """List what changed in the portfolio since the export was made."""
    changes = []
    for item in manifest.get("evidence", []):
        evidence = session.get(Evidence, item["evidence_id"])
        if evidence is None:
            changes.append(f"evidence E{item['evidence_id']} no longer exists")
        elif evidence.current_version != item["version"]:
            changes.append(f"evidence E{evidence.id} is now version {evidence.current_version} "
                           f"(exported: version {item['version']})")
        elif evidence.status != item["status"]:
            changes.append(f"evidence E{evidence.id} is now {evidence.status} "
                           f"(exported: {item['status']})")
    known = {s["signature_id"]: s["content_hash"] for s in manifest.get("signatures", [])}
    rows = session.scalars(select(Signature).where(
        Signature.enrolment_id == manifest.get("enrolment_id"))).all()
    for signature in rows:
        if signature.id not in known:
            changes.append(f"signature #{signature.id} ({signature.purpose}) was added")
        elif known[signature.id] != signature.content_hash:
            changes.append(f"signature #{signature.id} no longer matches")
        elif signature.invalidated_at is not None:
            changes.append(f"signature #{signature.id} has since been invalidated")
    witnesses = set(session.scalars(select(WitnessRequest.content_hash).where(
        WitnessRequest.enrolment_id == manifest.get("enrolment_id"),
        WitnessRequest.status == "signed")))
    for digest in set(manifest.get("witnesses", [])) - witnesses:
        changes.append(f"a witness testimony ({digest[:12]}…) is no longer on record")
    enrolment = session.get(Enrolment, manifest.get("enrolment_id"))
    if enrolment is not None:
        # Exports are recorded too, but they change nothing in the portfolio.
        last = max((e.seq for e in enrolment_events(session, enrolment)
                    if not e.action.startswith("export.")), default=0)
        if last != manifest.get("learner_last_event", 0):
            changes.append("the portfolio's audit trail has events after the export")
    return changes


def verify_export(session: Session, pdf: bytes, *, trust_cert_pem: bytes | None) -> ExportVerdict:
    """Check the PDF's signature, then cross-check its manifest against the database."""
    from portfolio.export.signing import check_pdf_signature

    check = check_pdf_signature(pdf, trust_cert_pem=trust_cert_pem)
    if not check.intact or not check.covers_whole_file:
        problem = check.problem or "content was added after signing"
        return ExportVerdict("altered", problem)
    manifest = read_manifest(pdf)
    if manifest is None:
        return ExportVerdict("altered", "no portfolio manifest in the file")
    export = session.scalar(select(Export).where(Export.public_id == manifest.get("public_id")))
    if export is None:
        return ExportVerdict("altered", "this export is not on record here", manifest=manifest)
    changes = compare_with_database(session, manifest)
    state = "intact and current" if not changes else "intact but changed"
    return ExportVerdict(state, "", changes, manifest)
