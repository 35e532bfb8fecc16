"""Where finished exports are kept: EXPORTS_DIR locally, or `exports/` in the S3 bucket.

Signed PDFs and EQA packs are written whole (a temp file renamed into place, or one PUT) and
served only through permission-checked views, never from a bucket URL.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from portfolio.storage import Backend, as_backend, open_backend, settings_from_config
from portfolio.storage.local import LocalBackend

__all__ = ["ExportFiles", "export_files"]

BUCKET_FOLDER = "exports/"


@dataclass
class ExportFiles:
    backend: Backend
    folder: str  # "" in EXPORTS_DIR (the backend's root); "exports/" in a bucket

    def key(self, name: str) -> str:
        """The key of an export file; names are ours (`eqa/...` for packs), never a path."""
        if not name or name.startswith("/") or ".." in name.split("/"):
            raise ValueError("not an export file name")
        return self.folder + name

    def write(self, name: str, data: bytes) -> None:
        self.backend.put_bytes(self.key(name), data)

    def write_file(self, name: str, path: Path) -> None:
        """Store a copy of a complete local file, whole or not at all (the file stays)."""
        self.backend.put_copy(self.key(name), path)

    def read(self, name: str) -> bytes:
        """:raises FileNotFoundError: no such export file."""
        return self.backend.read(self.key(name))

    def exists(self, name: str) -> bool:
        return self.backend.exists(self.key(name))

    def delete(self, name: str) -> None:
        self.backend.delete(self.key(name))

    def local_path(self, name: str) -> Path | None:
        """The file itself when exports are on this machine's disk, else None."""
        if isinstance(self.backend, LocalBackend):
            return self.backend.path(self.key(name))
        return None

    def open_verified(self, name: str, sha256: str, *, route: str = "") -> BinaryIO:
        """Open an export once its bytes match the SHA-256 recorded when it was made.

        :raises FileNotFoundError: no such export file.
        :raises StoredFileDamaged: its bytes no longer match.
        """
        return self.backend.open_verified(self.key(name), sha256, route=route)


def export_files(config: Mapping[str, Any], store: Any = None) -> ExportFiles:
    """Exports go where the evidence is: the bucket with the S3 backend, else EXPORTS_DIR."""
    backend = (open_backend(settings_from_config(config)) if store is None
               else as_backend(store))
    if backend.name == "s3":
        return ExportFiles(backend, BUCKET_FOLDER)
    return ExportFiles(LocalBackend(Path(config["EXPORTS_DIR"])), "")
