"""Where a stored object lives, by its SHA-256 (no database needed: PDF render workers use it)."""

from __future__ import annotations

from pathlib import Path

HEX = frozenset("0123456789abcdef")


def object_path(objects_root: Path, sha256: str) -> Path:
    """Return the path of the object with this hash under objects_root.

    :raises ValueError: not a lower-case SHA-256 hex digest (so never a path of our choosing).
    """
    if len(sha256) != 64 or not HEX.issuperset(sha256):
        raise ValueError("not a SHA-256 hex digest")
    return objects_root / sha256[:2] / sha256[2:4] / sha256


def object_key(sha256: str) -> str:
    """The storage key of the object with this hash (its path relative to the store's root).

    :raises ValueError: not a lower-case SHA-256 hex digest.
    """
    return object_path(Path("objects"), sha256).as_posix()

