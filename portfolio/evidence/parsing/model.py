"""What a preview is (stored as JSON beside the file), and the zip-bomb check made before any
library opens a container."""

from __future__ import annotations

import zipfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from portfolio.evidence.parsing.limits import (
    MAX_COMPRESSION_RATIO,
    MAX_UNZIPPED_BYTES,
    MAX_ZIP_MEMBERS,
    RATIO_CHECK_FROM_BYTES,
)
from portfolio.evidence.parsing.sniffing import TYPES, Sniffed


@dataclass
class EmailPreview:
    """What an email says, for showing: never its HTML."""

    sender: str = ""
    to: list[str] = field(default_factory=list)
    cc: list[str] = field(default_factory=list)
    date: str | None = None
    subject: str = ""
    body_text: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    attachments: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Preview:
    """What the app can show of an evidence file, stored as JSON beside it."""

    kind: str
    html: str | None = None
    table: list[list[str]] | None = None
    truncated: bool = False
    email: EmailPreview | None = None
    taken_at: str | None = None
    width: int | None = None
    height: int | None = None
    text: str = ""
    note: str | None = None
    pages: int | None = None  # a PDF's page count, when its first page is shown
    # The screen copy just made (page 1 of a PDF, a HEIC photo as JPEG): written beside the
    # original once it is stored, never kept in the JSON.
    screen: bytes | None = field(default=None, repr=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        """Return the preview as a JSON-ready dict."""
        data = asdict(replace(self, screen=None))
        del data["screen"]
        if self.email is not None:
            data["email"]["headers"] = [[n, v] for n, v in self.email.headers]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Preview:
        """Rebuild a preview from its JSON dict, tolerating missing keys."""
        data = data or {}
        email = None
        if isinstance(data.get("email"), dict):
            raw = data["email"]
            email = EmailPreview(
                sender=str(raw.get("sender") or ""), to=list(raw.get("to") or []),
                cc=list(raw.get("cc") or []), date=raw.get("date"),
                subject=str(raw.get("subject") or ""), body_text=str(raw.get("body_text") or ""),
                headers=[(str(h[0]), str(h[1])) for h in raw.get("headers") or []
                         if isinstance(h, list | tuple) and len(h) == 2],
                attachments=[dict(a) for a in raw.get("attachments") or []
                             if isinstance(a, dict)])
        table = data.get("table")
        return cls(
            kind=str(data.get("kind") or "none"), html=data.get("html"),
            table=[[str(c) for c in row] for row in table] if isinstance(table, list) else None,
            truncated=bool(data.get("truncated")), email=email, taken_at=data.get("taken_at"),
            width=data.get("width"), height=data.get("height"), text=str(data.get("text") or ""),
            note=data.get("note"), pages=data.get("pages"))


# Nouns for notes, by media type: "This Word file could not be read ...".
def _noun(sniffed: Sniffed) -> str:
    return {
        "docx": "Word file", "xlsx": "Excel file", "csv": "CSV file", "eml": "email",
        "msg": "Outlook email", "txt": "text file", "pdf": "PDF",
    }.get(_key_of(sniffed), "photo" if sniffed.category == "image" else "file")


def _key_of(sniffed: Sniffed) -> str:
    for key, value in TYPES.items():
        if value.media_type == sniffed.media_type:
            return key
    return ""


class _PreviewRefused(Exception):
    """A file that was read far enough to know there will be no preview: the note says why."""

    def __init__(self, note: str) -> None:
        super().__init__(note)
        self.note = note


def _check_zip(path: Path, sniffed: Sniffed) -> None:
    """Refuse to open a zip container that would unpack to too much, before any library does."""
    noun = _noun(sniffed)
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
    if len(infos) > MAX_ZIP_MEMBERS:
        raise _PreviewRefused(f"This {noun} holds too many parts to preview, so it is kept as it "
                              "is without a preview.")
    if any(info.flag_bits & 0x1 for info in infos):
        raise _PreviewRefused(f"This {noun} is protected with a password, so it is kept as it "
                              "is without a preview.")
    total = sum(info.file_size for info in infos)
    packed = sum(info.compress_size for info in infos)
    if total > MAX_UNZIPPED_BYTES:
        raise _PreviewRefused(
            f"This {noun} unpacks to more than {MAX_UNZIPPED_BYTES // (1024 * 1024)} MB, which "
            "is too large to preview, so it is kept as it is without a preview.")
    bomb = total > RATIO_CHECK_FROM_BYTES and total > MAX_COMPRESSION_RATIO * max(packed, 1)
    bomb = bomb or any(
        info.file_size > RATIO_CHECK_FROM_BYTES
        and info.file_size > MAX_COMPRESSION_RATIO * max(info.compress_size, 1) for info in infos)
    if bomb:
        raise _PreviewRefused(f"This {noun} is packed in an unusual way (it would unpack to far "
                              "more than its size), so it is kept as it is without a preview.")
