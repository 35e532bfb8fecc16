"""The local-folder backend: a key is a path under the store's root folder.

Objects are renamed into place (atomic on one filesystem), and a good SHA-256 check is
remembered while the file's inode is unchanged (see `portfolio.evidence.integrity`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from portfolio.atomic import write_atomically
from portfolio.evidence import integrity
from portfolio.storage.settings import StorageSettings

__all__ = ["LocalBackend"]


class LocalBackend:
    name = "local"

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @property
    def settings(self) -> StorageSettings:
        return StorageSettings(backend="local", root=str(self.root))

    def path(self, key: str) -> Path:
        """The file a key names; keys never climb out of the root."""
        parts = key.split("/")
        if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise ValueError("not a storage key")
        return self.root.joinpath(*parts)

    def put_file(self, key: str, path: Path) -> None:
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, target)
        os.chmod(target, 0o640)

    def put_copy(self, key: str, path: Path) -> None:
        """Store a copy of a local file, leaving the file where it is."""
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=".partial-", suffix=".tmp")
        os.close(fd)
        try:
            shutil.copyfile(path, temporary)
            os.chmod(temporary, 0o640)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def put_bytes(self, key: str, data: bytes, *, durable: bool = True) -> None:
        write_atomically(self.path(key), data, durable=durable)

    def open(self, key: str) -> BinaryIO:
        return open(self.path(key), "rb")  # noqa: SIM115 - the caller closes it

    def read(self, key: str) -> bytes:
        return self.path(key).read_bytes()

    def open_range(self, key: str, start: int, length: int) -> bytes:
        with open(self.path(key), "rb") as handle:
            handle.seek(start)
            return handle.read(length)

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def size(self, key: str) -> int:
        return self.path(key).stat().st_size

    def iter_keys(self, prefix: str) -> Iterator[str]:
        folder = self.path(prefix.rstrip("/")) if prefix.strip("/") else self.root
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames.sort()
            for name in sorted(filenames):
                yield (Path(dirpath) / name).relative_to(self.root).as_posix()

    def open_verified(self, key: str, sha256: str, *, route: str = "") -> BinaryIO:
        return integrity.open_verified(self.path(key), sha256, route=route)

    def read_verified(self, key: str, sha256: str, *, route: str = "") -> bytes:
        return integrity.read_verified(self.path(key), sha256, route=route)

    def verify(self, key: str, sha256: str, *, use_cache: bool = True) -> bool:
        return integrity.verify_object(self.path(key), sha256, use_cache=use_cache)

    def check(self) -> str | None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=self.root, prefix=".ready-",
                                             delete=True) as probe:
                probe.write(b"ok")
                probe.flush()
        except OSError as exc:
            return f"the file store cannot be written ({exc.strerror or type(exc).__name__})"
        return None

    def describe(self) -> str:
        return str(self.root)
