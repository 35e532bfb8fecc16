"""Plain text files."""

from __future__ import annotations

from pathlib import Path

from portfolio.evidence.parsing.limits import HEAD_BYTES, MAX_TEXT_CHARS
from portfolio.evidence.parsing.model import Preview
from portfolio.evidence.parsing.sniffing import Sniffed
from portfolio.evidence.parsing.tables import _detect_encoding


def _preview_text(path: Path, sniffed: Sniffed) -> Preview:
    with open(path, "rb") as raw:
        sample = raw.read(HEAD_BYTES)
    encoding = _detect_encoding(sample)
    with open(path, encoding=encoding, errors="replace") as handle:
        text = handle.read(MAX_TEXT_CHARS + 1)
    return Preview(kind="text", text=text[:MAX_TEXT_CHARS], truncated=len(text) > MAX_TEXT_CHARS)
