"""Content-addressed file storage: streamed to a temp file, hashed, then renamed into place.

A file is stored whole or not at all. Uploads are staged first (size limit, type by content,
preview); the objects are renamed into place just before the database commit, and removed again
if that commit fails, so a failed request leaves neither rows nor files behind.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from portfolio.errors import DomainError, ValidationFailed
from portfolio.evidence.integrity import (
    StoredFileDamaged,
    hash_handle,
    open_verified,
    report_damage,
    verify_object,
)
from portfolio.evidence.parsing import Preview, Sniffed, UnsupportedFile, build_preview, sniff
from portfolio.evidence.paths import HEX, object_path
from portfolio.evidence.print_copy import ensure_print_copy, print_copy_path
from portfolio.evidence.screen_copy import remove_screen_copies, write_screen_copy
from portfolio.models import AuditEvent, EvidenceFile, StoredFile

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
    root: Path

    @property
    def objects(self) -> Path:
        return self.root / "objects"

    def path_for(self, sha256: str) -> Path:
        """Return where the object with this hash lives."""
        return object_path(self.objects, sha256)

    def exists(self, sha256: str) -> bool:
        return self.path_for(sha256).is_file()

    def stage(self, stream: BinaryIO, filename: str, max_bytes: int) -> StagedFile:
        """Copy an upload to a temp file in chunks, hashing it; check size and type.

        :raises FileTooLarge: over max_bytes (nothing is kept).
        :raises ValidationFailed: empty, or a type not on the allow-list.
        """
        from portfolio.evidence.parsing import safe_filename

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
        """Rename a staged file into place; return True when the object is new.

        A photo also gets its print copy, so no PDF export has to make it later (unless
        `print_copy` is False: an upload makes it once its transaction has committed).
        """
        target = self.path_for(staged.sha256)
        if target.exists():
            staged.temp_path.unlink(missing_ok=True)
            created = False
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staged.temp_path, target)
            os.chmod(target, 0o640)
            created = True
        if print_copy:
            self.make_copies(staged)
        return created

    def make_copies(self, staged: StagedFile) -> None:
        """Keep a stored file's screen copy (made when it was staged) and make a photo's print
        copy. Best effort: when no print copy can be made, an export prints from the original;
        a lost screen copy is made again when it is first asked for."""
        preview = staged.preview
        if preview is None:
            return
        if preview.screen is not None and staged.sniffed is not None:
            with suppress(OSError):
                write_screen_copy(self.root, staged.sha256, staged.sniffed.media_type,
                                  preview.screen)
        if preview.kind == "image":
            ensure_print_copy(self.root, staged.sha256)

    def remove(self, sha256: str) -> None:
        """Delete an object and anything derived from it."""
        self.path_for(sha256).unlink(missing_ok=True)
        print_copy_path(self.root, sha256).unlink(missing_ok=True)
        remove_screen_copies(self.root, sha256)

    def open(self, sha256: str) -> BinaryIO:
        """Open a stored object for reading, unchecked: only for code that hashes what it
        reads itself. Anything served or embedded goes through `open_verified`."""
        return open(self.path_for(sha256), "rb")  # noqa: SIM115 - caller closes

    def verify(self, sha256: str) -> bool:
        """True when the object exists and its bytes still hash to its name (streamed)."""
        return verify_object(self.path_for(sha256), sha256)

    def open_verified(self, sha256: str, *, route: str = "") -> BinaryIO:
        """Open a stored object once its bytes have been checked; the caller closes it.

        :raises FileNotFoundError: no such object.
        :raises StoredFileDamaged: its bytes no longer match its SHA-256 (logged).
        """
        return open_verified(self.path_for(sha256), sha256, route=route)

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

        Only renames happen while the write transaction is open: photos' print copies are
        made, and screen copies written, after the commit, so an upload never holds the
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
    from portfolio.audit import record_event

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


def _objects_on_disk(store: FileStore) -> Iterator[tuple[str, Path]]:
    """Every file under objects/, with its name (whether or not it is a valid object name)."""
    for dirpath, dirnames, filenames in os.walk(store.objects):
        dirnames.sort()
        for name in sorted(filenames):
            yield name, Path(dirpath) / name


def scrub_store(session: Session, store: FileStore) -> ScrubReport:
    """Re-hash every object in the store (streamed, never from the cache) and compare the
    store with the StoredFile rows. Reads only; the caller decides what to record."""
    report = ScrubReport()
    referenced = set(session.scalars(select(StoredFile.sha256)))
    present: set[str] = set()
    for name, path in _objects_on_disk(store):
        if len(name) != 64 or not HEX.issuperset(name) or path != store.path_for(name):
            report.stray.append(str(path.relative_to(store.root)))
            continue
        present.add(name)
        report.checked += 1
        try:
            with open(path, "rb") as handle:
                report.bytes_read += os.fstat(handle.fileno()).st_size
                good = hash_handle(handle) == name
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
    from portfolio.evidence.parsing import TYPES
    from portfolio.evidence.parsing.rendering import SCREEN_FORMATS

    report = PictureRefresh()
    sniffed_by_type = {t.media_type: t for t in TYPES.values()}
    groups: dict[tuple[str, str], list[EvidenceFile]] = {}
    for row in session.scalars(select(EvidenceFile).where(
            EvidenceFile.media_type.in_(sorted(SCREEN_FORMATS))).order_by(EvidenceFile.id)):
        if Preview.from_json(row.preview).kind == "none":
            groups.setdefault((row.sha256, row.media_type), []).append(row)
    for (sha, media_type), rows in groups.items():
        report.checked += 1
        try:
            # Checked here, then read by the previewer from the same path: this is an
            # operator's command, and a copy made from swapped bytes would not be served
            # anyway (the file routes check the original before each picture they send).
            store.open_verified(sha, route="files pictures").close()
        except (FileNotFoundError, StoredFileDamaged):
            report.unreadable.append(sha)
            continue
        sniffed = sniffed_by_type[media_type]
        preview = build_preview(store.path_for(sha), sniffed)
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
           "refresh_pictures", "report_damage", "scrub_store"]
