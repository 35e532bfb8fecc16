"""Copy a local store into another backend (an S3 bucket), checking every object on arrival.

Evidence objects are named by their SHA-256, so each one is checked twice: the local bytes
before they are sent (a damaged local file is reported and never copied as if it were the
evidence), and the bytes in the target after the upload, read back in full. An object already
in the target with the right hash is left alone, so running it again only copies what is
missing. Print copies (derived from the originals, no hash of their own) and finished exports
(EXPORTS_DIR: signed PDFs, EQA packs) are copied unless the target has the same bytes, and
compared with the local bytes after the upload.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from portfolio.evidence.paths import HEX, object_key
from portfolio.storage import Backend
from portfolio.storage.local import LocalBackend

__all__ = ["MigrationReport", "migrate_store"]

CHUNK = 1024 * 1024


@dataclass
class MigrationReport:
    copied: int = 0
    already_there: int = 0
    bytes_copied: int = 0
    print_copied: int = 0
    print_already_there: int = 0
    exports_copied: int = 0
    exports_already_there: int = 0
    damaged_locally: list[str] = field(default_factory=list)  # not copied
    failed_after_upload: list[str] = field(default_factory=list)  # target bytes do not match
    stray: list[str] = field(default_factory=list)  # not named like an object: left alone

    @property
    def ok(self) -> bool:
        return not self.damaged_locally and not self.failed_after_upload

    def as_dict(self) -> dict[str, object]:
        return {"ok": self.ok, "copied": self.copied, "already_there": self.already_there,
                "bytes_copied": self.bytes_copied, "print_copied": self.print_copied,
                "print_already_there": self.print_already_there,
                "exports_copied": self.exports_copied,
                "exports_already_there": self.exports_already_there,
                "damaged_locally": self.damaged_locally,
                "failed_after_upload": self.failed_after_upload, "stray": self.stray}


def _hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _copy_checked(path: Path, key: str, target: Backend) -> bool | None:
    """Copy a file that has no hash of its own; None when the target already had these
    bytes, else whether they read back the same after the upload."""
    local = _hash_file(path)
    try:
        if hashlib.sha256(target.read(key)).hexdigest() == local:
            return None
    except FileNotFoundError:
        pass
    target.put_copy(key, path)
    return hashlib.sha256(target.read(key)).hexdigest() == local


def migrate_store(source: LocalBackend, target: Backend, *,
                  exports: LocalBackend | None = None, exports_folder: str = "exports/",
                  progress: Callable[[str], None] | None = None) -> MigrationReport:
    """Copy every object and print copy from source to target, and finished exports (signed
    PDFs, EQA packs) from `exports` to `exports_folder` there; see the module docstring."""
    report = MigrationReport()
    for key in source.iter_keys("objects/"):
        name = key.rsplit("/", 1)[-1]
        if len(name) != 64 or not HEX.issuperset(name) or key != object_key(name):
            report.stray.append(key)
            continue
        path = source.path(key)
        if _hash_file(path) != name:
            report.damaged_locally.append(name)
            continue
        if target.verify(key, name, use_cache=False):
            report.already_there += 1
            continue
        target.put_copy(key, path)
        if target.verify(key, name, use_cache=False):
            report.copied += 1
            report.bytes_copied += path.stat().st_size
            if progress:
                progress(name)
        else:
            report.failed_after_upload.append(name)
    for key in source.iter_keys("print/"):
        if key.rsplit("/", 1)[-1].startswith("."):  # a print copy being written
            continue
        copied = _copy_checked(source.path(key), key, target)
        if copied is None:
            report.print_already_there += 1
        elif copied:
            report.print_copied += 1
        else:
            report.failed_after_upload.append(key)
    if exports is not None:
        _copy_exports(exports, target, exports_folder, report)
    return report


def _copy_exports(exports: LocalBackend, target: Backend, folder: str,
                  report: MigrationReport) -> None:
    for name in exports.iter_keys(""):
        if name.rsplit("/", 1)[-1].startswith("."):  # .gitkeep, half-written .partial-*
            continue
        copied = _copy_checked(exports.path(name), folder + name, target)
        if copied is None:
            report.exports_already_there += 1
        elif copied:
            report.exports_copied += 1
        else:
            report.failed_after_upload.append(folder + name)
