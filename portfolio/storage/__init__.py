"""Where stored bytes live: one small interface, two backends.

`LocalBackend` keeps objects in a folder (the default; `make run` needs nothing else).
`S3Backend` keeps them in a bucket of any S3-compatible object store (AWS S3, MinIO, Ceph,
SeaweedFS). Both are addressed by keys such as `objects/ab/cd/<sha256>`, the same relative
paths the local folder has always used, so `portfolio storage migrate` copies key for key.

Whatever the backend, uploads are still staged (hashed, sniffed, previewed) in a local folder
first (`STORAGE_DIR/tmp`), and every read that serves or embeds an object checks it against
its SHA-256 first. Nothing here imports the web app or the database: the PDF render processes
build their backend from `StorageSettings`, which can be pickled.

Kept free of boto3 unless the S3 backend is configured.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from portfolio.config import read_secret_file
from portfolio.storage.local import LocalBackend
from portfolio.storage.s3 import S3Backend
from portfolio.storage.settings import StorageSettings

__all__ = ["BACKENDS", "Backend", "StorageSettings", "as_backend", "open_backend",
           "settings_from_config"]

BACKENDS = ("local", "s3")


class Backend(Protocol):
    """What the file store needs from wherever its bytes are kept."""

    name: str

    @property
    def settings(self) -> StorageSettings:
        """How to open this backend again (in another process)."""

    def put_file(self, key: str, path: Path) -> None:
        """Store a complete local file under key; the file is handed over (it may be moved).
        The object is visible only once whole."""

    def put_copy(self, key: str, path: Path) -> None:
        """Store a copy of a complete local file under key, leaving the file in place."""

    def put_bytes(self, key: str, data: bytes, *, durable: bool = True) -> None:
        """Store bytes under key, whole or not at all."""

    def open(self, key: str) -> BinaryIO:
        """Open for reading, unchecked (the caller hashes what it reads).

        :raises FileNotFoundError: no such object.
        """

    def read(self, key: str) -> bytes:
        """Return the whole object, unchecked.

        :raises FileNotFoundError: no such object.
        """

    def open_range(self, key: str, start: int, length: int) -> bytes:
        """Return up to `length` bytes from `start`, unchecked."""

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None:
        """Remove the object; nothing happens when there is none."""

    def size(self, key: str) -> int:
        """:raises FileNotFoundError: no such object."""

    def iter_keys(self, prefix: str) -> Iterator[str]:
        """Every key under prefix (a folder such as `objects/`), sorted."""

    def open_verified(self, key: str, sha256: str, *, route: str = "") -> BinaryIO:
        """Open a seekable reader over the object once its bytes hash to sha256.

        :raises FileNotFoundError: no such object.
        :raises StoredFileDamaged: the bytes no longer match (logged with the route).
        """

    def read_verified(self, key: str, sha256: str, *, route: str = "") -> bytes:
        """Return the object's bytes, hashed as read; nothing unless they match.

        :raises FileNotFoundError: no such object.
        :raises StoredFileDamaged: the bytes no longer match (logged with the route).
        """

    def verify(self, key: str, sha256: str, *, use_cache: bool = True) -> bool:
        """True when the object exists and its bytes hash to sha256."""

    def check(self) -> str | None:
        """None when the store can be written and read; else what is wrong (no secrets)."""

    def describe(self) -> str:
        """Where the bytes are, for messages (never a secret)."""


def settings_from_config(config: Mapping[str, Any], *, backend: str | None = None
                         ) -> StorageSettings:
    """Read the store's settings from the app config (`backend` overrides STORAGE_BACKEND).

    :raises ValueError: an unknown backend, or S3 without a bucket.
    """
    name = (backend or config.get("STORAGE_BACKEND") or "local").strip().lower()
    if name not in BACKENDS:
        raise ValueError(f"STORAGE_BACKEND must be one of {', '.join(BACKENDS)}, not {name!r}")
    secret = str(config.get("S3_SECRET_ACCESS_KEY") or "")
    if name == "s3" and not secret and config.get("S3_SECRET_ACCESS_KEY_FILE"):
        secret = read_secret_file(str(config["S3_SECRET_ACCESS_KEY_FILE"]))
    if name == "s3" and not config.get("S3_BUCKET"):
        raise ValueError("STORAGE_BACKEND is s3 but S3_BUCKET is not set")
    prefix = str(config.get("S3_PREFIX") or "").strip("/")
    return StorageSettings(
        backend=name, root=str(config["STORAGE_DIR"]),
        endpoint_url=str(config.get("S3_ENDPOINT_URL") or ""),
        bucket=str(config.get("S3_BUCKET") or ""), region=str(config.get("S3_REGION") or ""),
        access_key_id=str(config.get("S3_ACCESS_KEY_ID") or ""), secret_access_key=secret,
        prefix=f"{prefix}/" if prefix else "")


def open_backend(settings: StorageSettings) -> Backend:
    """Return the backend the settings describe."""
    if settings.backend == "s3":
        return S3Backend(settings)
    return LocalBackend(Path(settings.root))


def as_backend(store: Any) -> Backend:
    """The backend behind a store: a folder (the local store there), a `FileStore`, or a
    backend itself."""
    if isinstance(store, (str, Path)):
        return LocalBackend(Path(store))
    inner = getattr(store, "blobs", None)
    if inner is not None:
        return inner  # type: ignore[no-any-return]
    return store  # type: ignore[no-any-return]
