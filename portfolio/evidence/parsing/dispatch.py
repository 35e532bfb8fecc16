"""build_preview: the previewer for each type, and a plain-words note when there is none."""

from __future__ import annotations

import logging
from pathlib import Path

from portfolio.evidence.parsing.documents import _preview_docx, _preview_pdf
from portfolio.evidence.parsing.emails import _preview_eml, _preview_msg
from portfolio.evidence.parsing.images import _preview_heif, _preview_image
from portfolio.evidence.parsing.model import Preview, _key_of, _noun, _PreviewRefused
from portfolio.evidence.parsing.sniffing import Sniffed
from portfolio.evidence.parsing.tables import _preview_csv, _preview_xlsx
from portfolio.evidence.parsing.text import _preview_text

logger = logging.getLogger(__name__)


def build_preview(path: Path, sniffed: Sniffed) -> Preview:
    """Build a safe preview of a stored evidence file; never raise."""
    key = _key_of(sniffed)
    builders = {"docx": _preview_docx, "xlsx": _preview_xlsx, "csv": _preview_csv,
                "eml": _preview_eml, "msg": _preview_msg, "txt": _preview_text,
                "pdf": _preview_pdf, "heic": _preview_heif, "heif": _preview_heif,
                **dict.fromkeys(("jpeg", "png", "gif", "webp"), _preview_image)}
    try:
        if key in builders:
            return builders[key](Path(path), sniffed)
        if sniffed.category in ("audio", "video"):
            return Preview(kind="media")
        if sniffed.category == "image":
            return Preview(kind="none", note=f"Web browsers can't show {sniffed.label}s, so there "
                           "is no preview. Download the file to see it.")
        article = "an" if sniffed.label[:1] in "AEIOU" else "a"
        return Preview(kind="none", note=f"There is no preview for {article} {sniffed.label} "
                       "here. Download the file to open it.")
    except _PreviewRefused as exc:
        return Preview(kind="none", note=exc.note)
    except Exception:
        logger.info("no preview for a %s", sniffed.media_type, exc_info=True)
        return Preview(kind="none", note=f"This {_noun(sniffed)} could not be read, so it is "
                       "kept as it is without a preview.")
