"""Export a portfolio as a signed PDF, and verify one against the database."""

from __future__ import annotations

import hashlib
import io
import json
import os
import secrets
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portfolio.atomic import write_atomically
from portfolio.audit import Checkpoint, read_checkpoint, record_event
from portfolio.db import utcnow
from portfolio.errors import PermissionDenied
from portfolio.export.content import enrolment_events, gather
from portfolio.export.files import export_files
from portfolio.export.keys import _describe, trusted_certificates
from portfolio.export.pipeline import (
    RenderPool,
    manifest_bytes,
    prune_cache,
    remember_parts,
    render_portfolio,
    start_early,
)
from portfolio.export.render import MANIFEST_NAME, attachments, qr_svg
from portfolio.export.signing import fingerprint_of, inspect_signed_pdf, load_signer, sign_pdf
from portfolio.models import (
    Centre,
    Enrolment,
    Evidence,
    Export,
    Signature,
    User,
    WitnessRequest,
    WitnessStatus,
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
        # Each centre signs with its own key; the export records which certificate.
        signer = load_signer(config, instance_path, enrolment.centre_id)
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
    if out is not None:
        write_atomically(out, signed)
        filename = out.name
    else:
        # EXPORTS_DIR, or the bucket with the S3 backend: served only by the download view.
        export_files(config, store).write(filename, signed)
    export = Export(enrolment_id=enrolment.id, created_by_id=actor.id if actor else None,
                    created_at=now, public_id=public_id, filename=filename,
                    sha256=hashlib.sha256(signed).hexdigest(), size=len(signed), pages=pages,
                    manifest=content.manifest,
                    signer_fingerprint=fingerprint_of(_certificate(signer).dump()))
    # Not stored: how the render went (the benchmark reports it).
    export.render_report = {  # type: ignore[attr-defined]
        "timings": result.timings, "parts_rendered": len(result.rendered),
        "rendered": result.rendered, "parts_reused": result.reused}
    session.add(export)
    session.flush()
    prune_cache(cache_dir, int(config.get("RENDER_CACHE_MB") or 0) * 1024 * 1024)
    record_event(session, action="export.pdf", subject_type="export", subject_id=export.id,
                 actor=actor, learner_id=enrolment.learner_id,
                 centre_id=enrolment.learner.centre_id,
                 detail={"sha256": export.sha256, "pages": pages, "file": filename})
    return export


# --- verifying an exported PDF ---------------------------------------------------------------

# Outcomes of checking a file. The first two are genuine; the rest are refused.
GENUINE_CURRENT = "intact and current"
GENUINE_CHANGED = "intact but changed"
ALTERED = "altered"
NOT_OUR_SIGNER = "not signed by this centre"
NOT_OUR_EXPORT = "not one of our exports"
NOT_SIGNED = "not a signed PDF"
OUTCOMES = (GENUINE_CURRENT, GENUINE_CHANGED, ALTERED, NOT_OUR_SIGNER, NOT_OUR_EXPORT,
            NOT_SIGNED)
HASH_CHUNK = 1024 * 1024


@dataclass
class ExportVerdict:
    """What checking a PDF found: the outcome, why, and who signed it with which certificate."""
    state: str  # one of OUTCOMES
    signature_problem: str = ""  # the main reason, one sentence
    changes: list[str] = field(default_factory=list)  # what changed in the portfolio since
    manifest: dict[str, Any] | None = None
    problems: list[str] = field(default_factory=list)  # what was altered, one line each
    signer: str = ""  # the signing certificate's common name
    fingerprint: str = ""  # its SHA-256 (lowercase hex)
    signed_at: datetime | None = None
    signer_centre: str = ""  # the centre whose trust list holds the certificate
    certificate_status: str = ""  # current, retired, pkcs12, legacy
    export_id: int | None = None
    exported_at: datetime | None = None
    centre: str = ""  # the centre the export belongs to

    @property
    def ok(self) -> bool:
        return self.state in (GENUINE_CURRENT, GENUINE_CHANGED)


def read_manifest(pdf: bytes | Path) -> dict[str, Any] | None:
    """Return the export manifest embedded in a PDF (bytes or a file), or None."""
    from pypdf import PdfReader

    try:
        reader = PdfReader(pdf if isinstance(pdf, Path) else io.BytesIO(pdf))
        data = reader.attachments.get(MANIFEST_NAME)
    except Exception:  # noqa: BLE001 - any unreadable file is simply "no manifest"
        return None
    if not data or len(data) != 1:
        return None
    try:
        manifest = json.loads(data[0])
    except ValueError:
        return None
    return manifest if isinstance(manifest, dict) else None


def checkpoint_in_pdf(pdf: bytes, source: str) -> Checkpoint | str:
    """Return the checkpoint embedded in an exported PDF's manifest; a message when none."""
    manifest = read_manifest(pdf)
    if manifest is None or "audit_checkpoint" not in manifest:
        return f"{source} holds no audit checkpoint"
    return read_checkpoint(manifest["audit_checkpoint"], source)


def _exported_at(manifest: dict[str, Any]) -> datetime | None:
    try:
        value = datetime.fromisoformat(str(manifest.get("generated_at")))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def compare_with_database(session: Session, manifest: dict[str, Any], *,
                          exported_at: datetime | None = None) -> list[str]:
    """List what changed in the portfolio after the export was made (never what came before)."""
    exported_at = exported_at or _exported_at(manifest)
    if exported_at is not None and exported_at.tzinfo is None:
        exported_at = exported_at.replace(tzinfo=UTC)
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
        elif signature.invalidated_at is not None and (
                exported_at is None or signature.invalidated_at > exported_at):
            # An invalidation the export already showed is not a change since.
            changes.append(f"signature #{signature.id} has since been invalidated")
    witnesses = set(session.scalars(select(WitnessRequest.content_hash).where(
        WitnessRequest.enrolment_id == manifest.get("enrolment_id"),
        WitnessRequest.status == WitnessStatus.SIGNED)))
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


def hash_file(path: Path) -> str:
    """SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def check_attachments(path: Path, manifest: dict[str, Any]) -> list[str]:
    """Hash every embedded file against the manifest: none changed, none extra, none missing."""
    from pypdf import PdfReader

    expected: dict[str, str] = {}
    for item in manifest.get("evidence", []):
        for digest in item.get("files", []):
            expected.setdefault(str(digest), f"E{item.get('evidence_id')}")
    try:
        attached = PdfReader(path).attachments
        names = list(attached)
    except Exception:  # noqa: BLE001 - an unreadable file has no trustworthy attachments
        return ["its attached files cannot be read"]
    problems: list[str] = []
    seen: set[str] = set()
    for name in names:
        copies = attached[name]
        if name == MANIFEST_NAME:
            if len(copies) != 1:
                problems.append("it carries more than one manifest")
            continue
        for data in copies:
            digest = hashlib.sha256(data).hexdigest()
            if digest not in expected:
                problems.append(f"the attached file “{name}” is not the file the portfolio "
                                "listed (its SHA-256 matches nothing in the manifest)")
            elif digest in seen:
                problems.append(f"the attached file “{name}” is an extra copy")
            elif not name.startswith(f"{expected[digest]}-"):
                problems.append(f"the attached file “{name}” is filed under the wrong item "
                                f"(the manifest lists it under {expected[digest]})")
            seen.add(digest)
    for digest, item in expected.items():
        if digest not in seen:
            problems.append(f"a file of {item} listed in the manifest is missing "
                            f"(SHA-256 {digest[:12]}…)")
    return problems


def _page_count(path: Path) -> int | None:
    from pypdf import PdfReader

    try:
        return len(PdfReader(path).pages)
    except Exception:  # noqa: BLE001 - a count is a detail
        return None


def _same_manifest(embedded: dict[str, Any], recorded: dict[str, Any]) -> bool:
    return json.loads(manifest_bytes(embedded)) == json.loads(manifest_bytes(recorded))


def _trust_index(session: Session, config: Mapping[str, Any] | None, instance_path: Path | None,
                 trust_cert_pem: bytes | None) -> dict[str, list[tuple[int | None, Any]]]:
    """Map each trusted certificate's fingerprint to the centres (id, certificate) trusting it."""
    index: dict[str, list[tuple[int | None, Any]]] = {}
    if trust_cert_pem is not None:
        # An explicit certificate (tests, a one-off check): trusted for any centre.
        try:
            cert = _describe(trust_cert_pem, "given", None, None)
        except ValueError:
            return index
        index[cert.fingerprint] = [(None, cert)]
        return index
    if config is None or instance_path is None:
        return index
    for centre_id in session.scalars(select(Centre.id).order_by(Centre.id)):
        for cert in trusted_certificates(config, instance_path, centre_id):
            index.setdefault(cert.fingerprint, []).append((centre_id, cert))
    return index


def _centre_name(session: Session, centre_id: int | None) -> str:
    if centre_id is None:
        return ""
    centre = session.get(Centre, centre_id)
    return centre.name if centre else ""


def verify_export(session: Session, pdf: bytes | Path, *,
                  config: Mapping[str, Any] | None = None, instance_path: Path | None = None,
                  trust_cert_pem: bytes | None = None) -> ExportVerdict:
    """Check a PDF: signed once by a centre's trusted key over the whole file, a recorded export
    byte for byte, its attachments and manifest as recorded; then what changed since.

    Trust comes from each centre's trust list (config and instance_path), or from exactly the
    certificate given as trust_cert_pem.
    """
    if not isinstance(pdf, Path):
        with tempfile.NamedTemporaryFile(prefix="verify-", suffix=".pdf") as temporary:
            temporary.write(bytes(pdf))
            temporary.flush()
            return verify_export(session, Path(temporary.name), config=config,
                                 instance_path=instance_path, trust_cert_pem=trust_cert_pem)

    sig = inspect_signed_pdf(pdf)
    if not sig.readable or sig.signatures == 0:
        return ExportVerdict(NOT_SIGNED, sig.problem or "the file carries no signature")
    base: dict[str, Any] = {"signer": sig.signer, "fingerprint": sig.fingerprint,
                            "signed_at": sig.signed_at}

    digest = hash_file(pdf)
    export = session.scalar(select(Export).where(Export.sha256 == digest).order_by(Export.id))
    manifest = read_manifest(pdf)
    claimed = export
    if claimed is None and manifest is not None and isinstance(manifest.get("public_id"), str):
        claimed = session.scalar(select(Export).where(Export.public_id == manifest["public_id"]))
    if claimed is not None:
        base.update(export_id=claimed.id, exported_at=claimed.created_at,
                    centre=_centre_name(session, claimed.enrolment.centre_id))

    # What in the file is not as it was signed or recorded.
    altered: list[str] = []
    if sig.signatures > 1:
        altered.append("a further signature was added after the first, by "
                       + ", ".join(sig.other_signers))
    if sig.updates_after:
        pages = (f" (changing page{'s' if len(sig.changed_pages) > 1 else ''} "
                 + ", ".join(str(n) for n in sig.changed_pages) + ")"
                 if sig.changed_pages else "")
        altered.append(f"content was added after signing, in {sig.updates_after} incremental "
                       f"update{'s' if sig.updates_after > 1 else ''}{pages}")
    elif not sig.covers_whole_file:
        altered.append("the signature does not cover the whole file")
    if not sig.intact:
        altered.append("the signed content was modified after signing (its digest no longer "
                       "matches)")
    elif not sig.valid:
        altered.append("the signature does not verify with the certificate it names")
    details: list[str] = []
    if manifest is None:
        details.append("it carries no portfolio manifest")
    else:
        details += check_attachments(pdf, manifest)
        if claimed is not None and not _same_manifest(manifest, claimed.manifest):
            details.append("its manifest differs from the one recorded for the export")
    if claimed is not None and export is None:
        details.append(f"its bytes differ from export #{claimed.id} as recorded (SHA-256 "
                       "does not match)")
        counted = _page_count(pdf)
        if counted is not None and counted != claimed.pages:
            details.append(f"it has {counted} pages; the export on record has {claimed.pages}")

    if altered:
        return ExportVerdict(ALTERED, altered[0], manifest=manifest, problems=altered + details,
                             **base)

    trust = _trust_index(session, config, instance_path, trust_cert_pem)
    holders = trust.get(sig.fingerprint, [])
    if not holders:
        return ExportVerdict(
            NOT_OUR_SIGNER, f"it was signed by “{sig.signer or 'an unnamed certificate'}”, "
            "whose certificate is not one this centre signs with", manifest=manifest,
            problems=details, **base)
    owner_id = claimed.enrolment.centre_id if claimed is not None else None
    mine = [(cid, cert) for cid, cert in holders if cid is None or cid == owner_id]
    if claimed is not None and not mine:
        names = sorted({_centre_name(session, cid) for cid, _cert in holders})
        return ExportVerdict(
            NOT_OUR_SIGNER, f"it was signed with the key of {', '.join(names)}, but this "
            f"portfolio belongs to {base['centre']}", manifest=manifest, problems=details,
            signer_centre=", ".join(names), certificate_status=holders[0][1].status, **base)
    holder_id, cert = (mine or holders)[0]
    base.update(signer_centre=_centre_name(session, holder_id)
                or (_centre_name(session, owner_id) if owner_id else ""),
                certificate_status=cert.status)
    if export is None:
        # The centre's key signed it, but the centre never issued these bytes (a file signed
        # outside the export, e.g. with a stolen key): what it claims to be is in the details.
        return ExportVerdict(NOT_OUR_EXPORT, "the centre's signature is genuine, but no export "
                             "with these exact bytes was ever recorded here", manifest=manifest,
                             problems=details, **base)
    if export.signer_fingerprint and export.signer_fingerprint != sig.fingerprint:
        return ExportVerdict(NOT_OUR_SIGNER, "it is signed with a different certificate from "
                             "the one recorded for this export", manifest=manifest,
                             problems=details, **base)
    if details:
        return ExportVerdict(ALTERED, details[0], manifest=manifest, problems=details, **base)
    changes = compare_with_database(session, export.manifest, exported_at=export.created_at)
    return ExportVerdict(GENUINE_CURRENT if not changes else GENUINE_CHANGED, "", changes,
                         export.manifest, **base)


def verdict_for_link(session: Session, export: Export, *,
                     config: Mapping[str, Any] | None = None,
                     instance_path: Path | None = None) -> ExportVerdict:
    """What the QR link can say: the export on record and what changed since (no file to check)."""
    changes = compare_with_database(session, export.manifest, exported_at=export.created_at)
    centre_id = export.enrolment.centre_id
    signer, status = "", ""
    if export.signer_fingerprint and config is not None and instance_path is not None:
        for cert in trusted_certificates(config, instance_path, centre_id):
            if cert.fingerprint == export.signer_fingerprint:
                signer, status = cert.subject, cert.status
    return ExportVerdict(GENUINE_CURRENT if not changes else GENUINE_CHANGED, "", changes,
                         export.manifest, signer=signer,
                         fingerprint=export.signer_fingerprint or "", certificate_status=status,
                         signer_centre=_centre_name(session, centre_id) if signer else "",
                         export_id=export.id, exported_at=export.created_at,
                         centre=_centre_name(session, centre_id))


def _certificate(signer: Any) -> Any:
    """The signer's certificate; every signer this app builds has one."""
    if signer.signing_cert is None:
        raise ValueError("The signing key has no certificate.")
    return signer.signing_cert
