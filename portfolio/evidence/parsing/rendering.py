"""Screen copies of files a browser cannot show itself: page 1 of a PDF (as PNG), and HEIC or
HEIF photos (as JPEG), at most `MAX_SIDE` pixels on the long side.

PDFium and libheif are C libraries reading untrusted bytes, so the reading is done in a child
process (this file, run as a script), with a time limit and caps on its memory and CPU time: a
file that makes a library crash, hang or balloon costs a child process and gives a plain-words
"no preview" note, never a stuck or dead web worker. The child reads the
file from its standard input (the very handle the parent opened, so bytes checked against
their SHA-256 are the bytes read) and writes one JSON line, then the image, to its output.

Checks made before any page is drawn or any photo decoded: a PDF must open without a
password, have at least one page and at most `MAX_PDF_PAGES`, and a first page no larger than
the PDF format allows (200 inches a side); a photo must be no larger than the pixel limit that
guards every use of Pillow. The image drawn is then never more than `MAX_SIDE` a side.

The script imports nothing from the app (only the standard library, PDFium, Pillow and
pillow-heif), so it starts quickly and reads no configuration.
"""

from __future__ import annotations

import io
import json
import os
import resource
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

MAX_SIDE = 1200
MAX_PDF_PAGES = 2_000
# The text read from a PDF for search: from its first pages, up to this many characters.
TEXT_PAGES = 30
TEXT_CHARS = 100_000
MAX_PAGE_POINTS = 14_400  # the largest page side the PDF format allows: 200 inches
RENDER_SECONDS = 30
RENDER_MEMORY_BYTES = 1536 * 1024 * 1024
JPEG_QUALITY = 85
PDF_MEDIA_TYPE = "application/pdf"
HEIF_MEDIA_TYPES = frozenset({"image/heic", "image/heif"})
SCREEN_FORMATS = {PDF_MEDIA_TYPE: "png", **dict.fromkeys(HEIF_MEDIA_TYPES, "jpg")}


@dataclass(frozen=True)
class Rendered:
    """What the child made: the image and what it learnt, or a note saying why there is none."""

    image: bytes | None = None
    width: int | None = None  # of the original photo, or of the page as drawn
    height: int | None = None
    pages: int | None = None
    taken: str | None = None  # a photo's EXIF date, as written in the file
    text: str = ""  # a PDF's text (its first pages), for search
    note: str | None = None


def render(handle: BinaryIO, media_type: str, *, pixel_limit: int,
           seconds: float = RENDER_SECONDS) -> Rendered:
    """Make the screen copy of an open PDF, HEIC or HEIF file in a child process; never raise
    for anything the file holds (a note then says why there is none)."""
    noun = "PDF" if media_type == PDF_MEDIA_TYPE else "photo"
    handle.seek(0)
    # A small environment: where to find Python packages, if the app was told, and no more.
    env = {"PATH": os.environ.get("PATH", ""), "LANG": "C.UTF-8"}
    if os.environ.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    # A real file is handed over as it is (the child reads the same open file); anything else
    # is piped.
    try:
        handle.fileno()
        given: dict[str, Any] = {"stdin": handle}
    except (AttributeError, OSError, io.UnsupportedOperation):
        given = {"input": handle.read()}
    try:
        done = subprocess.run(
            # -P: the script's own folder (this package's modules) is not put on sys.path.
            [sys.executable, "-P", str(Path(__file__).resolve()), media_type, str(pixel_limit),
             str(int(seconds) + 1)],
            capture_output=True, timeout=seconds, env=env, check=False, **given)
    except subprocess.TimeoutExpired:
        return Rendered(note=f"This {noun} took too long to read, so it is kept as it is "
                        "without a preview. Download it to see it.")
    if done.returncode != 0 or b"\n" not in done.stdout:
        return Rendered(note=f"This {noun} could not be read, so it is kept as it is without "
                        "a preview.")
    head, _, image = done.stdout.partition(b"\n")
    try:
        report = json.loads(head)
    except ValueError:
        return Rendered(note=f"This {noun} could not be read, so it is kept as it is without "
                        "a preview.")
    if report.get("note"):
        return Rendered(note=str(report["note"]))
    return Rendered(image=image or None, width=report.get("width"),
                    height=report.get("height"), pages=report.get("pages"),
                    taken=report.get("taken"), text=str(report.get("text") or ""))


# --- the child process ---------------------------------------------------------------------


class _Refused(Exception):
    """The file was read far enough to know there will be no preview; the note says why."""


def _limit_resources(seconds: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (RENDER_MEMORY_BYTES, RENDER_MEMORY_BYTES))
    resource.setrlimit(resource.RLIMIT_CPU, (seconds, seconds))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _fit(width: float, height: float) -> float:
    return MAX_SIDE / max(width, height)


def _pdf_page(data: bytes) -> tuple[bytes, dict[str, Any]]:
    import pypdfium2 as pdfium

    try:
        document = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        code = getattr(exc, "err_code", None)
        if code == 4:  # FPDF_ERR_PASSWORD
            raise _Refused("This PDF is protected with a password, so there is no preview. "
                           "Download it and open it with the password.") from exc
        if code == 0:  # PDFium refuses a well-formed PDF with no pages, reporting no error
            raise _Refused("This PDF has no pages, so there is nothing to preview.") from exc
        raise _Refused("This PDF is damaged or not really a PDF, so there is no preview. "
                       "Download it to check it opens.") from exc
    pages = len(document)
    if pages == 0:
        raise _Refused("This PDF has no pages, so there is nothing to preview.")
    if pages > MAX_PDF_PAGES:
        raise _Refused(f"This PDF has more than {MAX_PDF_PAGES:,} pages, which is too many to "
                       "preview. Download it to read it.")
    page = document[0]
    width, height = page.get_size()
    if not (1 <= width <= MAX_PAGE_POINTS and 1 <= height <= MAX_PAGE_POINTS):
        raise _Refused("The first page of this PDF is larger than a PDF page can be, so there "
                       "is no preview. Download it to see it.")
    scale = _fit(width, height)
    bitmap = page.render(scale=scale, may_draw_forms=True, fill_color=(255, 255, 255, 255))
    image = bitmap.to_pil().convert("RGB")
    out = io.BytesIO()
    image.save(out, "PNG", optimize=False)
    return out.getvalue(), {"width": image.width, "height": image.height, "pages": pages,
                            "text": _pdf_text(document, pages)}


def _pdf_text(document: Any, pages: int) -> str:
    """The words of the first pages (a scanned page has none), for search; never fails."""
    parts: list[str] = []
    size = 0
    for number in range(min(pages, TEXT_PAGES)):
        try:
            text = document[number].get_textpage().get_text_bounded()
        except Exception:  # noqa: BLE001, S112 - an unreadable page adds no words, no more
            continue
        text = " ".join(text.split())
        parts.append(text)
        size += len(text)
        if size >= TEXT_CHARS:
            break
    return "\n".join(p for p in parts if p)[:TEXT_CHARS]


def _exif_date(image: Any) -> str | None:
    try:
        exif = image.getexif()
        sub = exif.get_ifd(0x8769)
        value = sub.get(36867) or sub.get(36868) or exif.get(36867)
    except Exception:  # noqa: BLE001 - a photo with unreadable EXIF still has a preview
        return None
    if isinstance(value, bytes):
        value = value.decode("ascii", errors="replace")
    return str(value)[:64] if value else None


def _heif_photo(data: bytes, pixel_limit: int) -> tuple[bytes, dict[str, Any]]:
    import pillow_heif
    from PIL import Image, ImageOps

    pillow_heif.register_heif_opener(thumbnails=False, depth_images=False, aux_images=False)
    Image.MAX_IMAGE_PIXELS = pixel_limit
    try:
        image = Image.open(io.BytesIO(data), formats=["HEIF"])
    except Image.DecompressionBombError as exc:
        raise _Refused("This photo is too large to preview, so it is kept as it is without a "
                       "preview. Download it to see it.") from exc
    with image:
        width, height = image.size
        if width * height > pixel_limit:
            raise _Refused("This photo is too large to preview, so it is kept as it is without "
                           "a preview. Download it to see it.")
        taken = _exif_date(image)
        image.load()  # the whole photo is decoded: a damaged or cut-short one fails here
        upright = ImageOps.exif_transpose(image)
        if upright.mode != "RGB":
            upright = upright.convert("RGB")
        upright.thumbnail((MAX_SIDE, MAX_SIDE))
        out = io.BytesIO()
        upright.save(out, "JPEG", quality=JPEG_QUALITY)
    return out.getvalue(), {"width": width, "height": height, "taken": taken}


def _main(argv: list[str]) -> int:
    media_type, pixel_limit, seconds = argv[0], int(argv[1]), int(argv[2])
    _limit_resources(seconds)
    data = sys.stdin.buffer.read()
    try:
        if media_type == PDF_MEDIA_TYPE:
            image, report = _pdf_page(data)
        elif media_type in HEIF_MEDIA_TYPES:
            image, report = _heif_photo(data, pixel_limit)
        else:
            raise _Refused("There is no preview for this kind of file.")
    except _Refused as exc:
        image, report = b"", {"note": str(exc)}
    sys.stdout.buffer.write(json.dumps(report).encode() + b"\n" + image)
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
