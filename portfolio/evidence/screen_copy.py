"""The screen copy of a stored file a browser cannot show itself: page 1 of a PDF (PNG) or a
HEIC/HEIF photo (JPEG), at most 1200 px a side, shown on the evidence page in place of the
original (which is still what is downloaded, attached and signed, byte for byte).

It lives beside the original in the file store, under `screen/`, named by the original's
SHA-256, like the print copy. It is made while an upload is staged (before any database write,
in a child process: see `portfolio.evidence.parsing.rendering`) and written once the upload has
committed; for files stored another way (a bundle import), it is made the first time someone
opens it. Like the print copy, it is only made from, and only served for, an original that
still hashes to its name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, BinaryIO

from portfolio.evidence.parsing.limits import MAX_IMAGE_PIXELS
from portfolio.evidence.parsing.rendering import MAX_SIDE, SCREEN_FORMATS, render
from portfolio.evidence.paths import object_path
from portfolio.storage import as_backend

FOLDER = "screen"
MIMETYPES = {"png": "image/png", "jpg": "image/jpeg"}


def has_screen_copy(media_type: str) -> bool:
    """True for the types shown through a screen copy (PDF, HEIC, HEIF)."""
    return media_type in SCREEN_FORMATS


def screen_copy_path(store_root: Path, sha256: str, media_type: str) -> Path:
    """Where the screen copy of the object with this hash lives (whether or not it exists).

    :raises ValueError: not a SHA-256, or a type that has no screen copy.
    """
    if media_type not in SCREEN_FORMATS:
        raise ValueError("no screen copy for this type")
    original = object_path(Path(store_root) / FOLDER, sha256)
    return original.with_name(f"{sha256}-{MAX_SIDE}.{SCREEN_FORMATS[media_type]}")


def screen_copy_key(sha256: str, media_type: str) -> str:
    """The storage key of the screen copy (in whichever backend holds the originals)."""
    return screen_copy_path(Path(), sha256, media_type).as_posix()


def screen_mimetype(media_type: str) -> str:
    """The image type a screen copy of this type is served as."""
    return MIMETYPES[SCREEN_FORMATS[media_type]]


def write_screen_copy(store: Any, sha256: str, media_type: str, data: bytes) -> None:
    """Keep a screen copy just made (derived: made again if a crash loses it). `store` is a
    storage backend, a `FileStore`, or a local store's folder."""
    as_backend(store).put_bytes(screen_copy_key(sha256, media_type), data, durable=False)


def remove_screen_copies(store: Any, sha256: str) -> None:
    """Delete whatever screen copy the object has."""
    backend = as_backend(store)
    for media_type in SCREEN_FORMATS:
        backend.delete(screen_copy_key(sha256, media_type))


def ensure_screen_copy(store: Any, sha256: str, media_type: str,
                       verified: BinaryIO) -> bytes | None:
    """Return the screen copy of a stored object, making it first if need be; None when the
    file has none (a note on its preview says why).

    `verified` is the original, opened and checked against its SHA-256 by the caller: a copy
    is only made from checked bytes.
    """
    backend = as_backend(store)
    try:
        return backend.read(screen_copy_key(sha256, media_type))
    except FileNotFoundError:
        pass
    made = render(verified, media_type, pixel_limit=MAX_IMAGE_PIXELS)
    if made.image is None:
        return None
    backend.put_bytes(screen_copy_key(sha256, media_type), made.image, durable=False)
    return made.image
