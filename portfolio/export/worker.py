"""Lay out one part of a portfolio PDF: the code that runs in the render processes.

Kept apart from the rest of the export so a worker process imports WeasyPrint and Pillow but
not the web app, the database layer or the models.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from portfolio.atomic import write_atomically
from portfolio.export.fetcher import STATIC_SCHEME, PortfolioFetcher, _response

PRINT_SCHEME = "evidence-print:"
PRINT_IMAGE_BOX = (1100, 1000)  # pixels: about 150 dpi over the printed image box
PRINT_JPEG_QUALITY = 82
SECTION_DIR = "sections"
IMAGE_DIR = "print-images"


class PrintFetcher(PortfolioFetcher):
    """The restricted fetcher, plus `evidence-print:<sha256>`: a photo prepared for print.

    WeasyPrint copies JPEG data straight into the PDF but re-encodes other images, slowly; a
    camera photo is also far larger than its printed box needs. The prepared copy (turned
    upright, at most about 150 dpi, JPEG) is cached by the original's hash. The original file is
    still attached to the PDF byte for byte.
    """

    def __init__(self, static_dir: Path, store: Any, cache_dir: Path) -> None:
        super().__init__(static_dir, store)
        self._allowed_protocols = ("portfolio-static", "evidence", "evidence-print")
        self.image_dir = cache_dir / IMAGE_DIR

    def fetch(self, url: str, headers: Any = None) -> Any:
        if url.startswith(PRINT_SCHEME):
            digest = url[len(PRINT_SCHEME):]
            try:
                prepared = self.print_image(digest)
            except (ValueError, OSError):
                prepared = None
            if prepared is not None:
                return _response(url, prepared, "image/jpeg")
            # Not an image we can prepare: fall back to the original (still only by hash).
            return super().fetch("evidence:" + digest, headers)
        return super().fetch(url, headers)

    def print_image(self, digest: str) -> bytes | None:
        source = self.store.path_for(digest)
        if not source.is_file():
            return None
        target = self.image_dir / f"{digest}-{PRINT_IMAGE_BOX[0]}-{PRINT_JPEG_QUALITY}.jpg"
        if target.is_file():
            return target.read_bytes()
        from PIL import Image, ImageOps

        with Image.open(source) as image:
            # JPEG can decode straight at a fraction of its size: far faster for camera photos.
            image.draft("RGB", (PRINT_IMAGE_BOX[0] * 2, PRINT_IMAGE_BOX[1] * 2))
            upright = ImageOps.exif_transpose(image)
            if upright.mode not in ("RGB", "L"):
                background = Image.new("RGB", upright.size, (255, 255, 255))
                rgba = upright.convert("RGBA")
                background.paste(rgba, mask=rgba.getchannel("A"))
                upright = background
            upright.thumbnail(PRINT_IMAGE_BOX)
            out = io.BytesIO()
            upright.save(out, "JPEG", quality=PRINT_JPEG_QUALITY, optimize=False)
        data = out.getvalue()
        write_atomically(target, data, durable=False)
        return data


_FONT_CONFIG: Any = None
_STYLESHEETS: dict[str, Any] = {}
STYLESHEETS = ("print.css", "print-section.css")


def _forget() -> None:
    """Drop the cached stylesheets and fonts while the interpreter is still whole (at exit),
    rather than leave their C objects to be torn down in any order."""
    global _FONT_CONFIG
    _STYLESHEETS.clear()
    _FONT_CONFIG = None
    import gc

    gc.collect()


def warm_up() -> None:
    """Load WeasyPrint and find the fonts, so a new render process is ready for its first part."""
    global _FONT_CONFIG
    import weasyprint  # noqa: F401
    from weasyprint.text.fonts import FontConfiguration

    if _FONT_CONFIG is None:
        import atexit

        _FONT_CONFIG = FontConfiguration()
        atexit.register(_forget)


def _stylesheets(static_dir: str) -> list[Any]:
    """The print stylesheets, parsed once per process (not once per part)."""
    import weasyprint

    if static_dir not in _STYLESHEETS:
        css = "\n".join((Path(static_dir) / "css" / name).read_text() for name in STYLESHEETS)
        _STYLESHEETS[static_dir] = weasyprint.CSS(string=css, font_config=_FONT_CONFIG)
    return [_STYLESHEETS[static_dir]]


def render_part(html: str, key: str, static_dir: str, store_root: str,
                cache_dir: str) -> tuple[int, dict[str, int]]:
    """Lay out one part into the cache; return its page count and the page (from 0) of each
    element id in it, which page references need. Both are also kept beside the PDF."""
    import json

    import weasyprint

    from portfolio.evidence.paths import ObjectPaths

    warm_up()  # one font configuration per process: fonts are found once, not for every part
    folder = Path(cache_dir) / SECTION_DIR
    fetcher = PrintFetcher(Path(static_dir), ObjectPaths(Path(store_root)), Path(cache_dir))
    document = weasyprint.HTML(string=html, base_url=STATIC_SCHEME + "/",
                               url_fetcher=fetcher).render(
        stylesheets=_stylesheets(static_dir), font_config=_FONT_CONFIG)
    anchors: dict[str, int] = {}
    for number, page in enumerate(document.pages):
        for name in page.anchors:
            anchors.setdefault(name, number)
    write_atomically(folder / f"{key}.pdf", document.write_pdf(), durable=False)
    info = {"pages": len(document.pages), "anchors": anchors}
    write_atomically(folder / f"{key}.json", json.dumps(info).encode(), durable=False)
    return info["pages"], anchors
