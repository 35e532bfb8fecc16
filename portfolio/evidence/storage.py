"""Content-addressed file storage: streamed to a temp file, hashed, then renamed into place.

A file is stored whole or not at all. Uploads are staged first (size limit, type by content,
preview); the objects are renamed into place just before the database commit, and removed again
if that commit fails, so a failed request leaves neither rows nor files behind.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from portfolio.errors import DomainError, ValidationFailed
from portfolio.evidence.parsing import Preview, Sniffed, UnsupportedFile, build_preview, sniff
from portfolio.evidence.paths import object_path
from portfolio.evidence.print_copy import ensure_print_copy, print_copy_path
from portfolio.models import StoredFile

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

    def place(self, staged: StagedFile) -> bool:
        """Rename a staged file into place; return True when the object is new.

        A photo also gets its print copy now, so no PDF export has to make it later.
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
        if staged.preview is not None and staged.preview.kind == "image":
            # Best effort: when no copy can be made, an export prints from the original.
            ensure_print_copy(self.root, staged.sha256)
        return created

    def remove(self, sha256: str) -> None:
        """Delete an object and anything derived from it."""
        self.path_for(sha256).unlink(missing_ok=True)
        print_copy_path(self.root, sha256).unlink(missing_ok=True)

    def open(self, sha256: str) -> BinaryIO:
        """Open a stored object for reading."""
        return open(self.path_for(sha256), "rb")  # noqa: SIM115 - caller closes

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
        """Place every staged object, then commit the session; undo the new objects on failure."""
        created = [s.sha256 for s in self.files if self.store.place(s)]
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
