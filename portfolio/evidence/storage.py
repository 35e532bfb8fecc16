"""Content-addressed file storage: streamed to a temp file, hashed, then renamed into place.

A file is stored whole or not at all. Uploads are staged first (size limit, type by content,
preview); the objects are renamed into place just before the database commit, and removed again
if that commit fails, so a failed request leaves neither rows nor files behind.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from portfolio.audit import record_event
from portfolio.errors import DomainError, ValidationFailed
from portfolio.evidence.integrity import StoredFileDamaged, report_damage
from portfolio.evidence.parsing import (
    TYPES,
    Preview,
    Sniffed,
    UnsupportedFile,
    build_preview,
    safe_filename,
    sniff,
)
from portfolio.evidence.parsing.rendering import SCREEN_FORMATS
from portfolio.evidence.paths import HEX, object_key, object_path
from portfolio.evidence.print_copy import ensure_print_copy, print_copy_key
from portfolio.evidence.screen_copy import remove_screen_copies, write_screen_copy
from portfolio.models import AuditEvent, EvidenceFile, StoredFile
from portfolio.storage import Backend, open_backend, settings_from_config
from portfolio.storage.local import LocalBackend

logger = logging.getLogger(__name__)
CHUNK = 1024 * 1024
HEAD = 64 * 1024


class FileTooLarge(DomainError):
    status = 413
    title = "File too large"


@dataclass
class StagedFile:
    sha256: str
    size: int
    sniffed: Sniffed
    filename: str
    temp_path: Path
    preview: Preview


@dataclass
class FileStore:
    """Evidence files by SHA-256, kept by a storage backend (a local folder by default).

    `root` is always a local folder: uploads are staged in root/tmp whatever the backend.
    """

    root: Path
    backend: Backend | None = None

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        if self.backend is None:
            self.backend = LocalBackend(self.root)

    @property
    def blobs(self) -> Backend:
        """The backend that keeps the bytes."""
        assert self.backend is not None  # set in __post_init__
        return self.backend

    @property
    def objects(self) -> Path:
        return self.root / "objects"

    def path_for(self, sha256: str) -> Path:
        """Return where the object with this hash lives in a local store."""
        return object_path(self.objects, sha256)

    def exists(self, sha256: str) -> bool:
        return self.blobs.exists(object_key(sha256))

    def stage(self, stream: BinaryIO, filename: str, max_bytes: int) -> StagedFile:
        """Copy an upload to a temp file in chunks, hashing it; check size and type.

        :raises FileTooLarge: over max_bytes (nothing is kept).
        :raises ValidationFailed: empty, or a type not on the allow-list.
        """
        tmp_dir = self.root / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed below, kept on success
            dir=tmp_dir, delete=False, prefix="upload-")
        temp_path = Path(handle.name)
        try:
            with handle:
                while chunk := stream.read(CHUNK):
                    size += len(chunk)
                    if size > max_bytes:
                        raise FileTooLarge(
                            f"“{filename}” is larger than the {max_bytes // (1024 * 1024)} MB "
                            "limit for one file. Make it smaller (for example, export a PDF "
                            "or shorten the recording) and try again.")
                    digest.update(chunk)
                    handle.write(chunk)
                handle.flush()
                os.fsync(handle.fileno())
            if size == 0:
                raise ValidationFailed(f"“{filename}” is empty.", field="files")
            with open(temp_path, "rb") as reader:
                head = reader.read(HEAD)
            try:
                sniffed = sniff(head, filename, temp_path)
            except UnsupportedFile as exc:
                raise ValidationFailed(f"“{filename}”: {exc.message}", field="files") from exc
            preview = build_preview(temp_path, sniffed)
        except BaseException:
            temp_path.unlink(missing_ok=True)
            raise
        return StagedFile(digest.hexdigest(), size, sniffed,
                          safe_filename(filename, sniffed.extension), temp_path, preview)

    def place(self, staged: StagedFile, *, print_copy: bool = True) -> bool:
        """Put a staged file in the store under its hash; return True when the object is new.

        Locally a rename; in S3 one PUT (atomic: nobody sees half an object). A photo also
        gets its print copy, so no PDF export has to make it later (unless `print_copy` is
        False: an upload makes it once its transaction has committed).
        """
        key = object_key(staged.sha256)
        if self.blobs.exists(key):
            staged.temp_path.unlink(missing_ok=True)
            created = False
        else:
            self.blobs.put_file(key, staged.temp_path)
            staged.temp_path.unlink(missing_ok=True)
            created = True
        if print_copy:
            self.make_copies(staged)
        return created

    def make_copies(self, staged: StagedFile) -> None:
        """Keep a stored file's screen copy (made when it was staged) and make a photo's print
        copy. Best effort, after the commit: when no print copy can be made (or the store does
        not answer), an export prints from the original, and a lost screen copy is made again
        when it is first asked for."""
        preview = staged.preview
        if preview is None:
            return
        try:
            if preview.screen is not None and staged.sniffed is not None:
                write_screen_copy(self, staged.sha256, staged.sniffed.media_type,
                                  preview.screen)
            if preview.kind == "image":
                ensure_print_copy(self, staged.sha256)
        except Exception:  # noqa: BLE001 - derived copies only; the upload itself is kept
            logger.warning("copies of a stored file could not be made now; made when needed",
                           exc_info=True)

    def remove(self, sha256: str) -> None:
        """Delete an object and anything derived from it."""
        self.blobs.delete(object_key(sha256))
        self.blobs.delete(print_copy_key(sha256))
        remove_screen_copies(self, sha256)

    def open(self, sha256: str) -> BinaryIO:
        """Open a stored object for reading, unchecked: only for code that hashes what it
        reads itself. Anything served or embedded goes through `open_verified`."""
        return self.blobs.open(object_key(sha256))

    def verify(self, sha256: str) -> bool:
        """True when the object exists and its bytes still hash to its name (streamed)."""
        return self.blobs.verify(object_key(sha256), sha256)

    def open_verified(self, sha256: str, *, route: str = "") -> BinaryIO:
        """Open a stored object once its bytes have been checked; the caller closes it.

        :raises FileNotFoundError: no such object.
        :raises StoredFileDamaged: its bytes no longer match its SHA-256 (logged).
        """
        return self.blobs.open_verified(object_key(sha256), sha256, route=route)

    def read_verified(self, sha256: str, *, route: str = "") -> bytes:
        """Return a stored object's bytes, hashed as read; nothing unless they match.

        :raises FileNotFoundError: no such object.
        :raises StoredFileDamaged: its bytes no longer match its SHA-256 (logged).
        """
        return self.blobs.read_verified(object_key(sha256), sha256, route=route)

    @contextmanager
    def batch(self) -> Iterator[UploadBatch]:
        """Stage uploads for one request; whatever is not committed is removed on the way out."""
        batch = UploadBatch(self)
        try:
            yield batch
        finally:
            for staged in batch.files:
                staged.temp_path.unlink(missing_ok=True)


@dataclass
class UploadBatch:
    store: FileStore
    files: list[StagedFile] = field(default_factory=list)

    def add(self, stream: BinaryIO, filename: str, max_bytes: int) -> StagedFile:
        staged = self.store.stage(stream, filename, max_bytes)
        self.files.append(staged)
        return staged

    def commit(self, session: Session) -> None:
        """Place every staged object, then commit the session; undo the new objects on failure.

        Only renames (locally) or PUTs (S3) happen while the write transaction is open:
        photos' print copies are made, and screen copies written, after the commit, so an
        upload never holds the
        database's write lock for them."""
        created = [s.sha256 for s in self.files if self.store.place(s, print_copy=False)]
        try:
            session.commit()
        except BaseException:
            session.rollback()
            for sha in created:
                # Another request may have committed the same content meanwhile: keep it then.
                if session.scalar(select(StoredFile.sha256).where(StoredFile.sha256 == sha)):
                    continue
                self.store.remove(sha)
            raise
        for staged in self.files:
            self.store.make_copies(staged)


def sweep_staging(root: Path, *, older_than: timedelta) -> int:
    """Delete the temporary files under `root/tmp` not touched for `older_than`: uploads and
    bundles a process was writing when it was killed (a write in progress keeps its file's
    time current). Nothing there is an object the app serves. Returns how many went."""
    folder = Path(root) / "tmp"
    if not folder.is_dir():
        return 0
    cutoff = time.time() - older_than.total_seconds()
    removed = 0
    for path in folder.iterdir():
        try:
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except FileNotFoundError:  # another machine's sweep, or the upload finished
            continue
    return removed


def file_store_for(config: Mapping[str, Any]) -> FileStore:
    """Return the store an app's config describes (STORAGE_BACKEND, STORAGE_DIR, S3_*)."""
    settings = settings_from_config(config)
    return FileStore(Path(settings.root), open_backend(settings))


def damaged_objects(store: FileStore, sha256s: Iterable[str]) -> list[str]:
    """Return the hashes, in the order given (each once), whose object is missing or whose
    bytes no longer match; an empty list means every file is intact.

    For signature verification: a signature over evidence covers its files' hashes, so it
    holds only while the stored bytes still have them. Checks are streamed and a good one is
    remembered while the object's inode is unchanged (see `portfolio.evidence.integrity`).
    """
    bad: list[str] = []
    seen: set[str] = set()
    for sha in sha256s:
        if sha in seen:
            continue
        seen.add(sha)
        try:
            good = store.verify(sha)
        except ValueError:  # not a SHA-256 at all: nothing in the store can match it
            good = False
        if not good:
            bad.append(sha)
    return bad


DAMAGED_ACTION = "file.damaged"


def record_file_damaged(session: Session, sha256: str, route: str) -> bool:
    """Record a damaged or missing stored object in the audit trail, once per object;
    return True when this call recorded it. No personal data: the hash and the route.

    Flushes; the caller commits (after rolling back the failed work, so the event is kept).
    """
    seen = session.scalar(select(AuditEvent.seq).where(
        AuditEvent.action == DAMAGED_ACTION, AuditEvent.subject_type == "file",
        AuditEvent.subject_id == sha256).limit(1))
    if seen is not None:
        return False
    record_event(session, action=DAMAGED_ACTION, subject_type="file",
                 subject_id=sha256, detail={"sha256": sha256, "route": route})
    return True


@dataclass
class ScrubReport:
    """What a full pass over the store found."""

    checked: int = 0
    bytes_read: int = 0
    damaged: list[str] = field(default_factory=list)  # bytes no longer match the name
    missing: list[str] = field(default_factory=list)  # in the database, not in the store
    unreferenced: list[str] = field(default_factory=list)  # in the store, in no row
    stray: list[str] = field(default_factory=list)  # not named like an object at all

    @property
    def ok(self) -> bool:
        return not self.damaged and not self.missing

    def as_dict(self) -> dict[str, object]:
        return {"ok": self.ok, "checked": self.checked, "bytes_read": self.bytes_read,
                "damaged": self.damaged, "missing": self.missing,
                "unreferenced": self.unreferenced, "stray": self.stray}


def scrub_store(session: Session, store: FileStore) -> ScrubReport:
    """Re-hash every object in the store (streamed, never from the cache) and compare the
    store with the StoredFile rows. Reads only; the caller decides what to record."""
    report = ScrubReport()
    referenced = set(session.scalars(select(StoredFile.sha256).where(
        StoredFile.removed_at.is_(None))))
    present: set[str] = set()
    for key in store.blobs.iter_keys("objects/"):
        name = key.rsplit("/", 1)[-1]
        if len(name) != 64 or not HEX.issuperset(name) or key != object_key(name):
            report.stray.append(key)
            continue
        present.add(name)
        report.checked += 1
        try:
            with store.blobs.open(key) as handle:
                digest = hashlib.sha256()
                while chunk := handle.read(CHUNK):
                    report.bytes_read += len(chunk)
                    digest.update(chunk)
                good = digest.hexdigest() == name
        except OSError:
            good = False
        if not good:
            report.damaged.append(name)
    report.missing = sorted(referenced - present)
    report.unreferenced = sorted(present - referenced)
    return report


@dataclass
class PictureRefresh:
    """What `refresh_pictures` did."""

    checked: int = 0  # stored PDFs and HEIC/HEIF photos that had no picture
    pictured: int = 0  # of those, the ones that have one now
    files: int = 0  # file records whose preview was rebuilt (pictured or not)
    unreadable: list[str] = field(default_factory=list)  # damaged or missing: left as they were


def refresh_pictures(session: Session, store: FileStore) -> PictureRefresh:
    """Give PDFs and HEIC/HEIF photos stored before they could be pictured (their preview is
    a "none" note) their first-page picture or JPEG copy, and rebuild those previews.

    Only originals that still match their SHA-256 are read; the pictures and print copies are
    written as uploads write them. Flushes the rebuilt previews; the caller commits.
    """
    report = PictureRefresh()
    sniffed_by_type = {t.media_type: t for t in TYPES.values()}
    groups: dict[tuple[str, str], list[EvidenceFile]] = {}
    for row in session.scalars(select(EvidenceFile).where(
            EvidenceFile.media_type.in_(sorted(SCREEN_FORMATS))).order_by(EvidenceFile.id)):
        if Preview.from_json(row.preview).kind == "none":
            groups.setdefault((row.sha256, row.media_type), []).append(row)
    for (sha, media_type), rows in groups.items():
        report.checked += 1
        sniffed = sniffed_by_type[media_type]
        (store.root / "tmp").mkdir(parents=True, exist_ok=True)
        try:
            with store.open_verified(sha, route="files pictures") as handle, \
                    tempfile.NamedTemporaryFile(dir=store.root / "tmp") as copy:
                # The previewer reads a file: the checked bytes, copied (the store may be S3).
                while chunk := handle.read(CHUNK):
                    copy.write(chunk)
                copy.flush()
                preview = build_preview(Path(copy.name), sniffed)
        except (FileNotFoundError, StoredFileDamaged):
            report.unreadable.append(sha)
            continue
        for row in rows:  # still none (a password, no pages ...): the note now says why
            row.preview = preview.to_json()
            report.files += 1
        if preview.kind == "none":
            continue
        report.pictured += 1
        store.make_copies(StagedFile(sha, rows[0].size, sniffed, rows[0].filename,
                                     store.path_for(sha), preview))
    session.flush()
    return report


__all__ = ["FileStore", "FileTooLarge", "PictureRefresh", "ScrubReport", "StagedFile",
           "StoredFileDamaged", "UploadBatch", "damaged_objects", "record_file_damaged",
           "refresh_pictures", "report_damage", "scrub_store", "file_store_for"]
