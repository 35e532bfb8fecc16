"""Copy a local store into another backend (an S3 bucket), checking every object on arrival.

Evidence objects are named by their SHA-256, so each one is checked twice: the local bytes
before they are sent (a damaged local file is reported and never copied as if it were the
evidence), and the bytes in the target after the upload, read back in full. An object already
in the target with the right hash is left alone, so running it again only copies what is
missing. Print copies (derived from the originals, no hash of their own) are copied when the
target lacks them and compared with the local bytes after the upload.
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
                "damaged_locally": self.damaged_locally,
                "failed_after_upload": self.failed_after_upload, "stray": self.stray}


def _hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def migrate_store(source: LocalBackend, target: Backend,
                  progress: Callable[[str], None] | None = None) -> MigrationReport:
    """Copy every object and print copy from source to target; see the module docstring."""
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
        path = source.path(key)
        if target.exists(key):
            report.print_already_there += 1
            continue
        local = _hash_file(path)
        target.put_copy(key, path)
        if hashlib.sha256(target.read(key)).hexdigest() == local:
            report.print_copied += 1
        else:
            report.failed_after_upload.append(key)
    return report
