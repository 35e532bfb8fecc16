"""Download an EQA pack: each portfolio as a signed PDF, plus a signed sampling-record PDF, zipped.

Each portfolio is made by `export.services.export_portfolio`, exactly as the centre's own exports
(so `/verify` knows it). The sampling record is rendered here with WeasyPrint and the same
restricted fetcher, and signed with the centre's key. The ZIP also holds a manifest with every
file's SHA-256, and is written whole or not at all.
"""

from __future__ import annotations

import hashlib
import io
import json
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import render_template
from sqlalchemy.orm import Session

from portfolio.audit import record_event
from portfolio.db import utcnow
from portfolio.eqa import services
from portfolio.eqa.sampling_records import gather_sampling_records
from portfolio.errors import DomainError
from portfolio.evidence.integrity import StoredFileDamaged
from portfolio.export.files import export_files
from portfolio.models import EqaPack, Role, User

SAMPLING_PDF = "sampling-record.pdf"
MANIFEST = "manifest.json"


class PackDownloadFailed(DomainError):
    status = 503
    title = "The pack could not be made"


@dataclass(frozen=True)
class PackZip:
    path: Path | None  # on this machine's disk; None when kept in the S3 bucket
    sha256: str
    members: list[dict[str, Any]]
    data: bytes = b""
    filename: str = ""


def _slug(text: str) -> str:
    """Plain ASCII for names inside the ZIP, which every unzip tool shows the same way."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = "".join(ch if ch.isalnum() else "-" for ch in ascii_text.lower())
    return "-".join(part for part in slug.split("-") if part) or "learner"


def render_sampling_pdf(session: Session, pack: EqaPack, *, static_dir: Path, store: Any,
                        generated_at: Any) -> bytes:
    """The pack's sampling record (strategy, plan, IQA samples, staff) as unsigned PDF bytes."""
    import weasyprint

    from portfolio.export.fetcher import STATIC_SCHEME, make_fetcher

    html = render_template(
        "eqa/sampling_pdf.html", pack=pack, generated_at=generated_at,
        records=gather_sampling_records(session, pack),
        enrolments=services.pack_enrolments(session, pack),
        staff=services.staff_list(session, pack))
    fetcher = make_fetcher(static_dir, store)
    return weasyprint.HTML(string=html, base_url=STATIC_SCHEME + "/",
                           url_fetcher=fetcher).write_pdf()


def build_pack_zip(session: Session, pack: EqaPack, *, actor: User, config: Any,
                   instance_path: Path, static_dir: Path, store: Any,
                   verify_base: str) -> PackZip:
    """Export every portfolio in the pack, add the signed sampling record, and zip them.

    The caller has checked that the actor is the pack's EQA and the pack is open.
    :raises PackDownloadFailed: the centre has no signing key, or a PDF could not be made.
    :raises StoredFileDamaged: a sampled evidence file no longer matches its SHA-256.
    """
    from portfolio.export.services import export_portfolio
    from portfolio.export.signing import load_signer, sign_pdf

    try:
        signer = load_signer(config, instance_path, pack.centre_id)
    except (FileNotFoundError, ValueError) as exc:
        raise PackDownloadFailed(
            "The centre's signing key is not set up, so no signed PDF can be made. "
            "Ask the centre's admin to set it up, then try again.") from exc
    now = utcnow()
    files = export_files(config, store)
    members: list[tuple[str, bytes]] = []
    manifest_files: list[dict[str, Any]] = []
    export_ids: list[int] = []
    written: list[str] = []
    try:
        for enrolment in services.pack_enrolments(session, pack):
            name = (f"portfolio-{_slug(enrolment.learner.full_name)}-unit-"
                    f"{_slug(enrolment.unit.number)}-{enrolment.id}.pdf")
            # Made with no actor: the EQA may not use the portfolio's own export route, and
            # the pack is the permission (checked by the caller); the audit event says who.
            export = export_portfolio(
                session, enrolment, actor=None, config=config, instance_path=instance_path,
                static_dir=static_dir, store=store, verify_base=verify_base)
            written.append(export.filename)
            export_ids.append(export.id)
            members.append((name, files.read(export.filename)))
            manifest_files.append({"name": name, "sha256": export.sha256, "size": export.size,
                                   "enrolment_id": enrolment.id, "pages": export.pages,
                                   "export_public_id": export.public_id})
        pdf = render_sampling_pdf(session, pack, static_dir=static_dir, store=store,
                                  generated_at=now)
        signed = sign_pdf(pdf, signer, reason=f"EQA sampling record, pack {pack.id}",
                          location=pack.eqa.centre.name,
                          tsa_url=config.get("SIGNING_TSA_URL") or "")
    except StoredFileDamaged:
        # A file in the sample is damaged in the store: say which (the message names the
        # evidence item), keep nothing; the web layer records the damage once.
        for written_name in written:
            files.delete(written_name)
        raise
    except Exception as exc:  # noqa: BLE001 - say so, and keep nothing
        for written_name in written:
            files.delete(written_name)
        raise PackDownloadFailed("The pack's PDFs could not be made. Nothing was kept; try "
                                 "again in a moment, and tell the centre if it keeps "
                                 "happening.") from exc
    members.append((SAMPLING_PDF, signed))
    manifest_files.append({"name": SAMPLING_PDF, "sha256": hashlib.sha256(signed).hexdigest(),
                           "size": len(signed)})
    manifest = {"format": "eqa-pack-manifest", "version": 1, "generated_at": now.isoformat(),
                "pack": services.summary(pack), "title": pack.title, "files": manifest_files,
                "verify": verify_base}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members:
            archive.writestr(name, data)
        archive.writestr(MANIFEST, json.dumps(manifest, indent=1, sort_keys=True))
    data = buffer.getvalue()
    filename = f"eqa-pack-{pack.id}-{now:%Y%m%d-%H%M%S}.zip"
    files.write(f"eqa/{filename}", data)
    digest = hashlib.sha256(data).hexdigest()
    record_event(session, action="eqa.pack_download", subject_type="eqa_pack",
                 subject_id=pack.id, actor=actor, actor_role=Role.EQA.value,
                 centre_id=pack.centre_id,
                 detail={"sha256": digest, "file": filename, "export_ids": export_ids})
    return PackZip(files.local_path(f"eqa/{filename}"), digest, manifest_files, data, filename)
