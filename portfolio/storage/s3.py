"""The S3 backend: objects in a bucket of any S3-compatible store, through boto3.

A PUT is atomic (an object is visible whole or not at all), so objects are uploaded straight
under their final key. Nothing is ever public: the app reads with its own credentials and
streams what it serves through its permission-checked views.

Reads are checked against the SHA-256 as on disk. A good check is remembered per key with the
object's ETag, Last-Modified and size (which any overwrite changes, and which a client cannot
set), and later reads are pinned to that ETag with If-Match, so bytes that changed since are
refused (412) rather than served. The first read of an object downloads it once into a
temporary file, hashing it on the way, and serves from that file; later reads (a video
player seeking through a recording) fetch only the ranges asked for.
"""

from __future__ import annotations

import base64
import hashlib
import io
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from portfolio.errors import StoredFileDamaged
from portfolio.evidence.integrity import report_damage
from portfolio.storage.settings import StorageSettings

__all__ = ["S3Backend", "S3Reader"]

CHUNK = 1024 * 1024
READ_BUFFER = 1024 * 1024  # one ranged GET per MiB when a checked object is streamed

_clients: dict[tuple[str, ...], Any] = {}
_clients_lock = threading.Lock()

# key -> (bucket, etag, last-modified, size) of the last good check, per process.
_verified: dict[tuple[str, str], tuple[str, str, int]] = {}
_verified_lock = threading.Lock()
_MAX_REMEMBERED = 100_000


def forget_checks() -> None:
    """Drop every remembered check (tests)."""
    with _verified_lock:
        _verified.clear()


def _client(settings: StorageSettings, *, probe: bool = False) -> Any:
    """One boto3 client per set of settings and process (clients are thread-safe, and slow
    to make). A probe (readiness) client tries once with short timeouts, so /readyz answers
    quickly when the store does not."""
    ident = (settings.endpoint_url, settings.region, settings.access_key_id,
             hashlib.sha256(settings.secret_access_key.encode()).hexdigest(), str(probe))
    with _clients_lock:
        client = _clients.get(ident)
        if client is None:
            import boto3
            from botocore.config import Config

            config = Config(
                s3={"addressing_style": "path" if settings.endpoint_url else "auto"},
                retries={"max_attempts": 1 if probe else 3, "mode": "standard"},
                connect_timeout=2 if probe else 5, read_timeout=3 if probe else 60,
                signature_version="s3v4",
                # Checksums only where the API requires them: newer boto3 otherwise adds
                # trailing CRC checksums that several S3-compatible stores refuse. Uploads
                # carry Content-MD5 instead (above), which all of them check.
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required")
            session = boto3.session.Session()
            client = session.client(
                "s3", endpoint_url=settings.endpoint_url or None,
                region_name=settings.region or None,
                aws_access_key_id=settings.access_key_id or None,
                aws_secret_access_key=settings.secret_access_key or None, config=config)
            _clients[ident] = client
    return client


def _code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    error = response.get("Error", {}).get("Code", "")
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return str(error or status)


def _missing(exc: Exception) -> bool:
    return _code(exc) in ("404", "NoSuchKey", "NotFound")


def _changed(exc: Exception) -> bool:
    return _code(exc) in ("412", "PreconditionFailed")


class S3Reader(io.RawIOBase):
    """A seekable reader over one object version: each read is a ranged GET with If-Match."""

    def __init__(self, backend: S3Backend, key: str, etag: str, size: int) -> None:
        super().__init__()
        self.backend, self.key, self.etag, self.length = backend, key, etag, size
        self.position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.length}[whence]
        self.position = max(0, base + offset)
        return self.position

    def tell(self) -> int:
        return self.position

    def readall(self) -> bytes:
        """The rest in one GET (the default would ask for 8 KiB at a time)."""
        wanted = self.length - self.position
        if wanted <= 0:
            return b""
        data = self.backend.get_range(self.key, self.position, wanted, etag=self.etag)
        self.position += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        wanted = min(len(buffer), self.length - self.position)
        if wanted <= 0:
            return 0
        data = self.backend.get_range(self.key, self.position, wanted, etag=self.etag)
        buffer[:len(data)] = data
        self.position += len(data)
        return len(data)


class S3Backend:
    name = "s3"

    def __init__(self, settings: StorageSettings) -> None:
        self.settings = settings
        self.bucket = settings.bucket
        self.prefix = settings.prefix
        self.staging = Path(settings.root) / "tmp"
        self.client = _client(settings)

    def _key(self, key: str) -> str:
        if not key or key.startswith("/") or any(p in ("", ".", "..") for p in key.split("/")):
            raise ValueError("not a storage key")
        return self.prefix + key

    # --- writing ---

    def _put(self, key: str, body: BinaryIO | bytes, size: int, md5: str) -> None:
        # Content-MD5: every S3-compatible store refuses a body that arrived different from
        # what was sent, so nothing damaged in transit is stored under the object's name.
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=body,
                               ContentLength=size, ContentMD5=md5,
                               ContentType="application/octet-stream")

    def put_file(self, key: str, path: Path) -> None:
        self.put_copy(key, path)
        Path(path).unlink(missing_ok=True)

    def put_copy(self, key: str, path: Path) -> None:
        """Upload a local file, leaving it in place (migration)."""
        with open(path, "rb") as handle:
            digest = hashlib.md5(usedforsecurity=False)
            size = 0
            while chunk := handle.read(CHUNK):
                digest.update(chunk)
                size += len(chunk)
            handle.seek(0)
            self._put(key, handle, size, base64.b64encode(digest.digest()).decode())

    def put_bytes(self, key: str, data: bytes, *, durable: bool = True) -> None:
        md5 = base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()
        self._put(key, data, len(data), md5)

    def delete(self, key: str) -> None:
        with _verified_lock:
            _verified.pop((self.bucket, self._key(key)), None)
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    # --- reading, unchecked ---

    def _head(self, key: str) -> dict[str, Any]:
        try:
            return self.client.head_object(  # type: ignore[no-any-return]
                Bucket=self.bucket, Key=self._key(key))
        except Exception as exc:
            if _missing(exc):
                raise FileNotFoundError(key) from None
            raise

    def _get(self, key: str, **extra: Any) -> dict[str, Any]:
        try:
            return self.client.get_object(  # type: ignore[no-any-return]
                Bucket=self.bucket, Key=self._key(key), **extra)
        except Exception as exc:
            if _missing(exc):
                raise FileNotFoundError(key) from None
            raise

    def get_range(self, key: str, start: int, length: int, *, etag: str = "") -> bytes:
        """Fetch bytes [start, start+length); with etag, only from that version.

        :raises StoredFileDamaged: the object changed since its bytes were checked.
        """
        extra: dict[str, Any] = {"Range": f"bytes={start}-{start + length - 1}"}
        if etag:
            extra["IfMatch"] = etag
        try:
            response = self._get(key, **extra)
        except Exception as exc:
            if etag and _changed(exc):
                self._forget(key)
                name = key.rsplit("/", 1)[-1]
                report_damage(name, "ranged read")
                raise StoredFileDamaged(name) from None
            raise
        with response["Body"] as body:
            return body.read()  # type: ignore[no-any-return]

    def open(self, key: str) -> BinaryIO:
        head = self._head(key)
        reader = S3Reader(self, key, head["ETag"], int(head["ContentLength"]))
        return io.BufferedReader(reader, buffer_size=READ_BUFFER)  # type: ignore[return-value]

    def read(self, key: str) -> bytes:
        response = self._get(key)
        with response["Body"] as body:
            return body.read()  # type: ignore[no-any-return]

    def open_range(self, key: str, start: int, length: int) -> bytes:
        if length <= 0:
            return b""
        try:
            return self.get_range(key, start, length)
        except Exception as exc:
            if _code(exc) in ("416", "InvalidRange"):  # from beyond the end
                return b""
            raise

    def exists(self, key: str) -> bool:
        try:
            self._head(key)
        except FileNotFoundError:
            return False
        return True

    def size(self, key: str) -> int:
        return int(self._head(key)["ContentLength"])

    def iter_keys(self, prefix: str) -> Iterator[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        full = self.prefix + prefix
        for page in paginator.paginate(Bucket=self.bucket, Prefix=full):
            for item in page.get("Contents", []):
                yield item["Key"][len(self.prefix):]

    # --- reading, checked ---

    def _stamp(self, head: dict[str, Any]) -> tuple[str, str, int]:
        return (str(head["ETag"]), str(head.get("LastModified", "")),
                int(head["ContentLength"]))

    def _remembered(self, key: str, head: dict[str, Any]) -> bool:
        with _verified_lock:
            return _verified.get((self.bucket, self._key(key))) == self._stamp(head)

    def _remember(self, key: str, head: dict[str, Any]) -> None:
        with _verified_lock:
            if len(_verified) >= _MAX_REMEMBERED:
                _verified.clear()
            _verified[(self.bucket, self._key(key))] = self._stamp(head)

    def _forget(self, key: str) -> None:
        with _verified_lock:
            _verified.pop((self.bucket, self._key(key)), None)

    def _download_checked(self, key: str, sha256: str, head: dict[str, Any],
                          target: BinaryIO | None) -> bool:
        """Stream the version `head` describes, hashing it (into target when given); True
        when it hashes to sha256. A version replaced meanwhile counts as not matching."""
        try:
            response = self._get(key, IfMatch=head["ETag"])
        except Exception as exc:
            if _changed(exc):
                return False
            raise
        digest = hashlib.sha256()
        with response["Body"] as body:
            while chunk := body.read(CHUNK):
                digest.update(chunk)
                if target is not None:
                    target.write(chunk)
        return digest.hexdigest() == sha256

    def open_verified(self, key: str, sha256: str, *, route: str = "") -> BinaryIO:
        head = self._head(key)
        if self._remembered(key, head):
            reader = S3Reader(self, key, head["ETag"], int(head["ContentLength"]))
            return io.BufferedReader(reader, buffer_size=READ_BUFFER)  # type: ignore[return-value]
        self.staging.mkdir(parents=True, exist_ok=True)
        # Served from a local copy this once: the whole object had to be read to check it.
        copy = tempfile.TemporaryFile(dir=self.staging, prefix="s3-read-")  # noqa: SIM115
        try:
            good = self._download_checked(key, sha256, head, copy)
        except BaseException:
            copy.close()
            raise
        if not good:
            copy.close()
            self._forget(key)
            report_damage(sha256, route)
            raise StoredFileDamaged(sha256)
        self._remember(key, head)
        copy.seek(0)
        return copy  # type: ignore[return-value]

    def read_verified(self, key: str, sha256: str, *, route: str = "") -> bytes:
        response = self._get(key)
        digest = hashlib.sha256()
        parts: list[bytes] = []
        with response["Body"] as body:
            while chunk := body.read(CHUNK):
                digest.update(chunk)
                parts.append(chunk)
        if digest.hexdigest() != sha256:
            self._forget(key)
            report_damage(sha256, route)
            raise StoredFileDamaged(sha256)
        return b"".join(parts)

    def verify(self, key: str, sha256: str, *, use_cache: bool = True) -> bool:
        try:
            head = self._head(key)
        except FileNotFoundError:
            return False
        if use_cache and self._remembered(key, head):
            return True
        good = self._download_checked(key, sha256, head, None)
        if good:
            self._remember(key, head)
        else:
            self._forget(key)
        return good

    def check(self) -> str | None:
        try:
            _client(self.settings, probe=True).head_bucket(Bucket=self.bucket)
        except Exception as exc:  # noqa: BLE001 - any failure means not ready
            return f"the S3 bucket does not answer ({_code(exc) or type(exc).__name__})"
        return None

    def describe(self) -> str:
        where = self.settings.endpoint_url or "AWS S3"
        return f"s3://{self.bucket}/{self.prefix} at {where}"
