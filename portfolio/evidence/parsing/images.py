"""Photos: size checked before decoding, the EXIF date kept; HEIC and HEIF photos (the iPhone's
default) converted to a JPEG screen copy in a child process (see `rendering`)."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

from PIL import Image

from portfolio.evidence.parsing.limits import MAX_DECODE_PIXELS, MAX_IMAGE_PIXELS
from portfolio.evidence.parsing.model import Preview, _PreviewRefused
from portfolio.evidence.parsing.rendering import render
from portfolio.evidence.parsing.sniffing import Sniffed

_EXIF_DATE = re.compile(r"(\d{4}):(\d{2}):(\d{2})[ T](\d{2}):(\d{2}):(\d{2})")


def _taken_at(image: Image.Image) -> str | None:
    try:
        exif = image.getexif()
        sub = exif.get_ifd(0x8769)
        value = sub.get(36867) or sub.get(36868) or exif.get(36867)
    except Exception:
        return None
    if isinstance(value, bytes):
        value = value.decode("ascii", errors="replace")
    return _exif_date(value)


def _exif_date(value: object) -> str | None:
    """An EXIF date ("2024:03:05 10:11:12") as an ISO date-time, or None."""
    match = _EXIF_DATE.match(str(value or "").strip("\0 "))
    if not match:
        return None
    try:
        return datetime(*(int(g) for g in match.groups())).isoformat()
    except ValueError:
        return None  # e.g. "0000:00:00 00:00:00" from a camera with no clock set


_PIL_FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/gif": "GIF",
                "image/webp": "WEBP"}


def _jpeg_complete(path: Path) -> bool:
    with open(path, "rb") as handle:
        handle.seek(max(0, path.stat().st_size - 4096))
        return b"\xff\xd9" in handle.read()


def _preview_image(path: Path, sniffed: Sniffed) -> Preview:
    too_large = ("This photo is too large to preview, so it is kept as it is without a "
                 "preview. Download it to see it.")
    try:
        with Image.open(path, formats=[_PIL_FORMATS[sniffed.media_type]]) as image:
            width, height = image.size
            if width * height > MAX_IMAGE_PIXELS:
                raise _PreviewRefused(too_large)
            taken_at = _taken_at(image)
            if image.format == "JPEG":
                # Decode at 1/8 scale: cheap, and still reads every byte, so truncation shows.
                image.draft("RGB", (max(1, width // 8), max(1, height // 8)))
                image.load()
                # WeasyPrint switches Pillow's LOAD_TRUNCATED_IMAGES on for the whole process,
                # so do not rely on load() failing: a whole JPEG ends with its EOI marker.
                if not _jpeg_complete(path):
                    raise OSError("image file is truncated")
            elif image.format == "PNG":
                # verify() must come straight after open (reading EXIF above does not count).
                with Image.open(path, formats=["PNG"]) as fresh:
                    fresh.verify()
            elif width * height <= MAX_DECODE_PIXELS:
                image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _PreviewRefused(too_large) from exc
    return Preview(kind="image", taken_at=taken_at, width=width, height=height)


def _preview_heif(path: Path, sniffed: Sniffed) -> Preview:
    """A HEIC or HEIF photo: its size and EXIF date, and a JPEG screen copy (browsers other than
    Safari cannot show HEIC). The original is kept as it is."""
    with open(path, "rb") as handle:
        made = render(handle, sniffed.media_type, pixel_limit=MAX_IMAGE_PIXELS)
    if made.image is None:
        raise _PreviewRefused(made.note or "This photo could not be read, so it is kept as it "
                              "is without a preview.")
    return Preview(kind="image", taken_at=_exif_date(made.taken), width=made.width,
                   height=made.height, screen=made.image)
