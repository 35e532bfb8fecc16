"""Download an EQA pack: each portfolio as a signed PDF, plus a signed sampling-record PDF, zipped.

Each portfolio is made by `export.services.export_portfolio`, exactly as the centre's own exports
(so `/verify` knows it). The sampling record is rendered here with WeasyPrint and the same
restricted fetcher, and signed with the centre's key. The ZIP also holds a manifest with every
file's SHA-256. The ZIP is streamed into a temporary file, then stored whole (one rename or one
upload) or not at all; `eqa.pack_jobs` runs this in the background and keeps the result.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import tempfile
import unicodedata
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import render_template
from sqlalchemy.orm import Session

from portfolio.db import utcnow
from portfolio.eqa import services
from portfolio.eqa.sampling_records import gather_sampling_records
from portfolio.errors import DomainError
from portfolio.evidence.integrity import StoredFileDamaged
from portfolio.export.files import export_files
from portfolio.models import EqaPack

SAMPLING_PDF = "sampling-record.pdf"
MANIFEST = "manifest.json"
CHUNK = 1024 * 1024


class PackDownloadFailed(DomainError):
    status = 503
    title = "The pack could not be made"


@dataclass(frozen=True)
class PackZip:
    filename: str  # under eqa/ in the export files (EXPORTS_DIR, or exports/ in the bucket)
    sha256: str
    size: int
    members: list[dict[str, Any]]
    export_ids: list[int]


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


def build_pack_zip(session: Session, pack: EqaPack, *, config: Any, instance_path: Path,
                   static_dir: Path, store: Any, verify_base: str, scratch_dir: Path,
                   progress: Callable[[int, str], None] | None = None,
                   checkpoint: Callable[[], None] | None = None,
                   made: list[int] | None = None) -> PackZip:
    """Export every portfolio in the pack, add the signed sampling record, zip them into a
    temporary file (streamed, never whole in memory) and store it with the export files.

    The caller has checked that the pack is open and that its EQA asked for it. Whatever
    fails, no ZIP and no temporary file is kept, and the PDF files made on the way are removed.
    `checkpoint` (the job commits) runs after each portfolio, so that a long pack never holds
    the database's write lock while it reports progress; the ids of the exports made so far
    are appended to `made`, for the caller to remove their rows if the pack fails.
    :raises PackDownloadFailed: the centre has no signing key, or a PDF could not be made.
    :raises StoredFileDamaged: a sampled evidence file no longer matches its SHA-256.
    """
    from portfolio.export.services import export_portfolio
    from portfolio.export.signing import load_signer, sign_pdf

    say = progress or (lambda _percent, _message: None)
    stage = "the centre's signing key"
    try:
        signer = load_signer(config, instance_path, pack.centre_id)
    except (FileNotFoundError, ValueError) as exc:
        raise PackDownloadFailed(
            "The centre's signing key is not set up, so no signed PDF can be made. "
            "Ask the centre's admin to set it up, then try again.") from exc
    now = utcnow()
    files = export_files(config, store)
    filename = f"eqa-pack-{pack.id}-{now:%Y%m%d-%H%M%S}-{secrets.token_hex(4)}.zip"
    manifest_files: list[dict[str, Any]] = []
    export_ids: list[int] = made if made is not None else []
    written: list[str] = []
    enrolments = services.pack_enrolments(session, pack)
    steps = len(enrolments) + 2
    scratch_dir.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix="eqa-pack-", suffix=".zip", dir=scratch_dir)
    temp = Path(temp_name)
    stored = False
    try:
        with os.fdopen(handle, "wb") as raw, \
                zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for number, enrolment in enumerate(enrolments, start=1):
                say(int(90 * (number - 1) / steps),
                    f"Making portfolio {number} of {len(enrolments)}")
                stage = f"portfolio {number} of {len(enrolments)} (enrolment {enrolment.id})"
                name = (f"portfolio-{_slug(enrolment.learner.full_name)}-unit-"
                        f"{_slug(enrolment.unit.number)}-{enrolment.id}.pdf")
                # Made with no actor: the EQA may not use the portfolio's own export route,
                # and the pack is the permission; the audit event says who asked.
                export = export_portfolio(
                    session, enrolment, actor=None, config=config,
                    instance_path=instance_path, static_dir=static_dir, store=store,
                    verify_base=verify_base)
                written.append(export.filename)
                export_ids.append(export.id)
                with files.backend.open(files.key(export.filename)) as source, \
                        archive.open(name, "w") as member:
                    shutil.copyfileobj(source, member, CHUNK)
                manifest_files.append({"name": name, "sha256": export.sha256,
                                       "size": export.size, "enrolment_id": enrolment.id,
                                       "pages": export.pages,
                                       "export_public_id": export.public_id})
                if checkpoint is not None:
                    checkpoint()
            say(int(90 * len(enrolments) / steps), "Making the sampling record")
            stage = "the signed sampling record"
            pdf = render_sampling_pdf(session, pack, static_dir=static_dir, store=store,
                                      generated_at=now)
            signed = sign_pdf(pdf, signer, reason=f"EQA sampling record, pack {pack.id}",
                              location=pack.eqa.centre.name,
                              tsa_url=config.get("SIGNING_TSA_URL") or "")
            archive.writestr(SAMPLING_PDF, signed)
            manifest_files.append({"name": SAMPLING_PDF,
                                   "sha256": hashlib.sha256(signed).hexdigest(),
                                   "size": len(signed)})
            manifest = {"format": "eqa-pack-manifest", "version": 1,
                        "generated_at": now.isoformat(), "pack": services.summary(pack),
                        "title": pack.title, "files": manifest_files, "verify": verify_base}
            archive.writestr(MANIFEST, json.dumps(manifest, indent=1, sort_keys=True))
        say(95, "Storing the pack")
        stage = "storing the ZIP"
        digest = hashlib.sha256()
        with temp.open("rb") as done:
            for chunk in iter(lambda: done.read(CHUNK), b""):
                digest.update(chunk)
        size = temp.stat().st_size
        files.write_file(f"eqa/{filename}", temp)  # whole or not at all
        stored = True
    except StoredFileDamaged:
        # A file in the sample is damaged in the store: say which (the message names the
        # evidence item) and keep nothing; the job records the damage once.
        _discard(files, written, filename, stored)
        raise
    except Exception as exc:  # noqa: BLE001 - say so, and keep nothing
        _discard(files, written, filename, stored)
        raise PackDownloadFailed(f"It stopped at {stage}. Nothing was kept; try again in a "
                                 "moment, and tell the centre if it keeps happening.") from exc
    finally:
        temp.unlink(missing_ok=True)
    return PackZip(filename=filename, sha256=digest.hexdigest(), size=size,
                   members=manifest_files, export_ids=export_ids)


def _discard(files: Any, written: list[str], filename: str, stored: bool) -> None:
    for name in written:
        files.delete(name)
    files.delete(f"eqa/{filename}")  # in case the store kept a part
