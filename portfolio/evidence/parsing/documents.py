"""Word documents shown as sanitised HTML; PDFs by a picture of their first page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nh3

from portfolio.evidence.parsing.emails import _html_to_text
from portfolio.evidence.parsing.limits import MAX_HTML_CHARS, MAX_IMAGE_PIXELS, MAX_TEXT_CHARS
from portfolio.evidence.parsing.model import Preview, _check_zip, _PreviewRefused
from portfolio.evidence.parsing.rendering import render
from portfolio.evidence.parsing.sniffing import Sniffed
from portfolio.markdown import ALLOWED_ATTRIBUTES, ALLOWED_SCHEMES, ALLOWED_TAGS


def _sanitise(html: str) -> str:
    return nh3.clean(html, tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRIBUTES,
                     url_schemes=ALLOWED_SCHEMES, link_rel="noopener noreferrer nofollow",
                     strip_comments=True)


# Headings start at h2 in the app (h1 belongs to the page), as in portfolio.markdown.
_DOCX_STYLE_MAP = "\n".join(
    [f"p[style-name='Heading {n}'] => h{min(n + 1, 6)}:fresh" for n in range(1, 7)]
    + ["p[style-name='Title'] => h2:fresh", "p[style-name='Subtitle'] => h3:fresh"])


def _drop_image(image: Any) -> list[Any]:
    return []  # embedded images are never copied into the preview (no data: URIs)


def _preview_docx(path: Path, sniffed: Sniffed) -> Preview:
    import mammoth

    _check_zip(path, sniffed)
    with open(path, "rb") as handle:
        result = mammoth.convert_to_html(handle, convert_image=_drop_image,
                                         style_map=_DOCX_STYLE_MAP,
                                         include_embedded_style_map=False,
                                         external_file_access=False)
    raw = result.value or ""
    truncated = len(raw) > MAX_HTML_CHARS
    html = _sanitise(raw[:MAX_HTML_CHARS])
    text = _html_to_text(html)
    if not text.strip():
        return Preview(kind="none", note="This Word file has no text to preview.")
    return Preview(kind="html", html=html, truncated=truncated or len(text) > MAX_TEXT_CHARS,
                   text=text[:MAX_TEXT_CHARS])


def _preview_pdf(path: Path, sniffed: Sniffed) -> Preview:
    """A PDF (often an RPL certificate): its first page drawn as a PNG screen copy, made in a
    child process with time and memory limits; a note when there can be none."""
    with open(path, "rb") as handle:
        made = render(handle, sniffed.media_type, pixel_limit=MAX_IMAGE_PIXELS)
    if made.image is None:
        raise _PreviewRefused(made.note or "This PDF could not be read, so it is kept as it is "
                              "without a preview.")
    return Preview(kind="page", width=made.width, height=made.height, pages=made.pages,
                   screen=made.image, text=made.text)
