"""Checking a stored object against its SHA-256 before its bytes are used.

The store is content-addressed, so an object's name is the SHA-256 its bytes had when it was
uploaded. Anyone who can write the storage folder can still replace those bytes; every read
that serves or embeds an object therefore re-hashes it first (streaming, 1 MiB at a time) and
refuses it when the bytes no longer match.

Kept free of the web app and the database: the PDF render processes import it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from pathlib import Path
from typing import BinaryIO

from portfolio.errors import STORED_FILE_DAMAGED_DETAIL, StoredFileDamaged

__all__ = ["DAMAGED_DETAIL", "StoredFileDamaged", "check_handle", "forget_checks", "hash_handle",
           "open_verified", "read_verified", "report_damage", "verify_object"]

CHUNK = 1024 * 1024

log = logging.getLogger("portfolio.storage")

DAMAGED_DETAIL = STORED_FILE_DAMAGED_DETAIL


# A successful check, remembered per object path by what its inode looked like then:
# (device, inode, size, mtime_ns, ctime_ns). Replacing the file (rename) changes the inode;
# rewriting it in place changes mtime and ctime. mtime can be set back with os.utime, but
# ctime cannot be set back from user space (every write, rename, chmod or utime sets it to
# now; only changing the system clock, which needs root, could),
# so any swap makes the next read miss this cache and hash the bytes again.
_verified: dict[str, tuple[int, int, int, int, int]] = {}
_lock = threading.Lock()
_MAX_REMEMBERED = 100_000


def _key(st: os.stat_result) -> tuple[int, int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def forget_checks() -> None:
    """Drop every remembered check (tests; or after restoring files from a backup)."""
    with _lock:
        _verified.clear()


def hash_handle(handle: BinaryIO) -> str:
    """Return the SHA-256 of an open file from its start, reading 1 MiB at a time."""
    handle.seek(0)
    digest = hashlib.sha256()
    while chunk := handle.read(CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


def check_handle(handle: BinaryIO, sha256: str, *, use_cache: bool = True) -> bool:
    """True when the open object's bytes hash to sha256; leaves the handle at its start.

    The check is made on the open file itself, so what is served afterwards from the same
    handle is what was checked, even if the path is replaced meanwhile.
    """
    name = str(getattr(handle, "name", ""))
    before = _key(os.fstat(handle.fileno()))
    if use_cache and name:
        with _lock:
            if _verified.get(name) == before:
                handle.seek(0)
                return True
    good = hash_handle(handle) == sha256
    after = _key(os.fstat(handle.fileno()))
    handle.seek(0)
    if good and before == after and name:
        with _lock:
            if len(_verified) >= _MAX_REMEMBERED:
                _verified.clear()
            _verified[name] = after
    elif not good and name:
        with _lock:
            _verified.pop(name, None)
    return good and before == after


def verify_object(path: Path, sha256: str, *, use_cache: bool = True) -> bool:
    """True when the object at path exists and its bytes still hash to sha256."""
    try:
        with open(path, "rb") as handle:
            return check_handle(handle, sha256, use_cache=use_cache)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return False


def report_damage(sha256: str, route: str) -> None:
    """Log a damaged or missing object: its hash and where it was asked for, nothing personal."""
    log.warning("stored object %s failed its SHA-256 check (route: %s)", sha256, route)


def open_verified(path: Path, sha256: str, *, route: str = "") -> BinaryIO:
    """Open a stored object for reading once its bytes have been checked against sha256.

    :raises FileNotFoundError: there is no such object.
    :raises StoredFileDamaged: its bytes no longer match (logged with the route).
    """
    handle = open(path, "rb")  # noqa: SIM115 - returned to the caller, who closes it
    try:
        good = check_handle(handle, sha256)
    except BaseException:
        handle.close()
        raise
    if not good:
        handle.close()
        report_damage(sha256, route)
        raise StoredFileDamaged(sha256)
    return handle


def read_verified(path: Path, sha256: str, *, route: str = "") -> bytes:
    """Return a stored object's bytes (for the PDF renderer, which needs them whole), hashed
    as they are read; nothing is returned unless they match.

    :raises FileNotFoundError: there is no such object.
    :raises StoredFileDamaged: its bytes no longer match (logged with the route).
    """
    digest = hashlib.sha256()
    parts: list[bytes] = []
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            parts.append(chunk)
    if digest.hexdigest() != sha256:
        report_damage(sha256, route)
        raise StoredFileDamaged(sha256)
    return b"".join(parts)
