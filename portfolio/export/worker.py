"""Lay out one part of a portfolio PDF: the code that runs in the render processes.

Kept apart from the rest of the export so a worker process imports WeasyPrint and Pillow but
not the web app, the database layer or the models; and the web app and the CLI import this
module without loading WeasyPrint, which only `render_part` and `warm_up` need.
"""

from __future__ import annotations

import atexit
import gc
import json
from pathlib import Path
from typing import Any

from portfolio.atomic import write_atomically
from portfolio.export.schemes import PRINT_SCHEME, STATIC_SCHEME
from portfolio.storage import StorageSettings, open_backend

__all__ = ["IMAGE_DIR", "PRINT_SCHEME", "SECTION_DIR", "STYLESHEETS", "render_part", "warm_up"]
SECTION_DIR = "sections"
IMAGE_DIR = "print-images"  # where print copies were cached before they moved to the store


_FONT_CONFIG: Any = None
_STYLESHEETS: dict[str, Any] = {}
STYLESHEETS = ("print.css", "print-section.css")


def _forget() -> None:
    """Drop the cached stylesheets and fonts while the interpreter is still whole (at exit),
    rather than leave their C objects to be torn down in any order."""
    global _FONT_CONFIG
    _STYLESHEETS.clear()
    _FONT_CONFIG = None
    gc.collect()


def warm_up() -> None:
    """Load WeasyPrint and find the fonts, so a new render process is ready for its first part."""
    global _FONT_CONFIG
    import weasyprint  # noqa: F401
    from weasyprint.text.fonts import FontConfiguration

    if _FONT_CONFIG is None:
        _FONT_CONFIG = FontConfiguration()
        atexit.register(_forget)


def _stylesheets(static_dir: str) -> list[Any]:
    """The print stylesheets, parsed once per process (not once per part)."""
    import weasyprint

    if static_dir not in _STYLESHEETS:
        css = "\n".join((Path(static_dir) / "css" / name).read_text() for name in STYLESHEETS)
        _STYLESHEETS[static_dir] = weasyprint.CSS(string=css, font_config=_FONT_CONFIG)
    return [_STYLESHEETS[static_dir]]


def render_part(html: str, key: str, static_dir: str, store: StorageSettings | str,
                cache_dir: str) -> tuple[int, dict[str, int]]:
    """Lay out one part into the cache; return its page count and the page (from 0) of each
    element id in it, which page references need. Both are also kept beside the PDF."""
    import weasyprint

    from portfolio.export.fetcher import PrintFetcher

    warm_up()  # one font configuration per process: fonts are found once, not for every part
    folder = Path(cache_dir) / SECTION_DIR
    # The store's settings, not a path: with S3 this process reads the bucket itself.
    backend = open_backend(store) if isinstance(store, StorageSettings) else store
    fetcher = PrintFetcher(Path(static_dir), backend)
    document = weasyprint.HTML(string=html, base_url=STATIC_SCHEME + "/",
                               url_fetcher=fetcher).render(
        stylesheets=_stylesheets(static_dir), font_config=_FONT_CONFIG)
    anchors: dict[str, int] = {}
    for number, page in enumerate(document.pages):
        for name in page.anchors:
            anchors.setdefault(name, number)
    write_atomically(folder / f"{key}.pdf", document.write_pdf(), durable=False)
    pages = len(document.pages)
    info = {"pages": pages, "anchors": anchors}
    write_atomically(folder / f"{key}.json", json.dumps(info).encode(), durable=False)
    return pages, anchors
