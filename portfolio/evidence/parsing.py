"""Evidence files: tell the type by content, keep to an allow-list, build a safe preview.

``sniff`` looks at a file's first bytes (and, for zip and OLE containers, at the list of
members) and either names one allowed type or raises ``UnsupportedFile`` with a message that
says what can be uploaded. The file name is only a tie-breaker for containers too damaged to
open; it never turns a disallowed file into an allowed one.

``build_preview`` never raises: whatever a file holds (broken, truncated, a zip bomb), it returns
a ``Preview``, with kind ``"none"`` and a plain-words ``note`` when there is nothing to show.
Work is bounded: zip members are checked for size and compression ratio before a library
opens them, tables and text are capped, CSV is read as a stream, images are checked for size
before any pixels are decoded.
"""

from __future__ import annotations

import codecs
import csv
import io
import logging
import mimetypes
import re
import struct
import unicodedata
import zipfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, cast

import nh3
from PIL import Image

from portfolio.markdown import ALLOWED_ATTRIBUTES, ALLOWED_SCHEMES, ALLOWED_TAGS

logger = logging.getLogger(__name__)

CATEGORIES = ("document", "image", "audio", "video", "email", "spreadsheet")

# What may be shown inline (an <img> on our own pages); everything else is an attachment.
SAFE_INLINE_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})

HEAD_BYTES = 64 * 1024
# Zip containers (docx, xlsx): checked before any library opens them.
MAX_UNZIPPED_BYTES = 100 * 1024 * 1024
MAX_COMPRESSION_RATIO = 100
RATIO_CHECK_FROM_BYTES = 1024 * 1024  # small members cannot hurt, whatever their ratio
MAX_ZIP_MEMBERS = 10_000
# Previews.
MAX_TABLE_ROWS = 500
MAX_TABLE_COLUMNS = 50
MAX_CELL_CHARS = 1_000
MAX_TEXT_CHARS = 200_000
MAX_HTML_CHARS = 1_000_000
MAX_TEXT_ROWS = 20_000  # rows read for searchable text once the table preview is full
MAX_SHEETS = 20
MAX_LINE_CHARS = 1_000_000
MAX_HEADERS = 300
MAX_HEADER_CHARS = 2_000
MAX_ATTACHMENTS = 100
MAX_HTML_TO_TEXT_CHARS = 2_000_000
CSV_SNIFF_CHARS = 8 * 1024  # csv.Sniffer's patterns can be slow on long samples
# Images: a decompression-bomb guard for every use of Pillow in the app (Pillow raises above
# twice this); previews are refused above it, and full decoding is kept for smaller images.
MAX_IMAGE_PIXELS = 100_000_000
MAX_DECODE_PIXELS = 40_000_000
Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS

ALLOWED_SUMMARY = (
    "Upload documents (PDF, Word, PowerPoint, OpenDocument, RTF or plain text), images "
    "(JPEG, PNG, GIF, WebP or HEIC), audio, video, emails (.eml, .msg) or spreadsheets "
    "(.csv, .xlsx)."
)


class UnsupportedFile(Exception):
    """A file whose content is not on the allow-list."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Sniffed:
    """An allowed file type, as told by the file's content."""

    media_type: str
    category: str
    extension: str
    label: str


_OOXML = "application/vnd.openxmlformats-officedocument"
_ODF = "application/vnd.oasis.opendocument"
TYPES: dict[str, Sniffed] = {
    "pdf": Sniffed("application/pdf", "document", ".pdf", "PDF document"),
    "docx": Sniffed(f"{_OOXML}.wordprocessingml.document", "document", ".docx", "Word document"),
    "doc": Sniffed("application/msword", "document", ".doc", "Word document (old format)"),
    "pptx": Sniffed(f"{_OOXML}.presentationml.presentation", "document", ".pptx",
                    "PowerPoint presentation"),
    "ppt": Sniffed("application/vnd.ms-powerpoint", "document", ".ppt",
                   "PowerPoint presentation (old format)"),
    "odt": Sniffed(f"{_ODF}.text", "document", ".odt", "OpenDocument text"),
    "odp": Sniffed(f"{_ODF}.presentation", "document", ".odp", "OpenDocument presentation"),
    "rtf": Sniffed("application/rtf", "document", ".rtf", "Rich text document"),
    "txt": Sniffed("text/plain", "document", ".txt", "Text file"),
    "xlsx": Sniffed(f"{_OOXML}.spreadsheetml.sheet", "spreadsheet", ".xlsx", "Excel spreadsheet"),
    "xls": Sniffed("application/vnd.ms-excel", "spreadsheet", ".xls",
                   "Excel spreadsheet (old format)"),
    "ods": Sniffed(f"{_ODF}.spreadsheet", "spreadsheet", ".ods", "OpenDocument spreadsheet"),
    "csv": Sniffed("text/csv", "spreadsheet", ".csv", "CSV spreadsheet"),
    "eml": Sniffed("message/rfc822", "email", ".eml", "Email (.eml)"),
    "msg": Sniffed("application/vnd.ms-outlook", "email", ".msg", "Outlook email (.msg)"),
    "jpeg": Sniffed("image/jpeg", "image", ".jpg", "JPEG photo"),
    "png": Sniffed("image/png", "image", ".png", "PNG image"),
    "gif": Sniffed("image/gif", "image", ".gif", "GIF image"),
    "webp": Sniffed("image/webp", "image", ".webp", "WebP image"),
    "heic": Sniffed("image/heic", "image", ".heic", "HEIC photo"),
    "heif": Sniffed("image/heif", "image", ".heif", "HEIF image"),
    "avif": Sniffed("image/avif", "image", ".avif", "AVIF image"),
    "mp3": Sniffed("audio/mpeg", "audio", ".mp3", "MP3 audio"),
    "m4a": Sniffed("audio/mp4", "audio", ".m4a", "M4A audio"),
    "aac": Sniffed("audio/aac", "audio", ".aac", "AAC audio"),
    "wav": Sniffed("audio/wav", "audio", ".wav", "WAV audio"),
    "ogg": Sniffed("audio/ogg", "audio", ".ogg", "Ogg audio"),
    "flac": Sniffed("audio/flac", "audio", ".flac", "FLAC audio"),
    "amr": Sniffed("audio/amr", "audio", ".amr", "AMR voice recording"),
    "aiff": Sniffed("audio/aiff", "audio", ".aiff", "AIFF audio"),
    "mp4": Sniffed("video/mp4", "video", ".mp4", "MP4 video"),
    "mov": Sniffed("video/quicktime", "video", ".mov", "QuickTime video"),
    "3gp": Sniffed("video/3gpp", "video", ".3gp", "3GP video"),
    "webm": Sniffed("video/webm", "video", ".webm", "WebM video"),
    "mkv": Sniffed("video/x-matroska", "video", ".mkv", "Matroska video"),
    "avi": Sniffed("video/x-msvideo", "video", ".avi", "AVI video"),
    "ogv": Sniffed("video/ogg", "video", ".ogv", "Ogg video"),
}

# ISO base media (MP4 family) brands, major or compatible.
_FTYP_BRANDS = {
    **dict.fromkeys([b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs"],
                    "heic"),
    **dict.fromkeys([b"mif1", b"msf1"], "heif"),
    **dict.fromkeys([b"avif", b"avis"], "avif"),
    **dict.fromkeys([b"M4A ", b"M4B ", b"M4P ", b"F4A ", b"F4B "], "m4a"),
    b"qt  ": "mov",
    **dict.fromkeys([b"3gp4", b"3gp5", b"3gp6", b"3gp7", b"3gs7", b"3ge6", b"3ge7", b"3gg6",
                     b"3g2a", b"3g2b", b"3g2c"], "3gp"),
    **dict.fromkeys([b"isom", b"iso2", b"iso3", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42",
                     b"mp71", b"avc1", b"dash", b"M4V ", b"M4VH", b"M4VP", b"MSNV", b"F4V ",
                     b"F4P ", b"XAVC", b"mmp4", b"NDAS", b"NDSC", b"NDSH", b"NDSM", b"NDSP",
                     b"NDSS", b"NDXC", b"NDXH", b"NDXM", b"NDXP", b"NDXS"], "mp4"),
}
_MACRO_MEMBERS = ("word/vbaProject.bin", "xl/vbaProject.bin", "ppt/vbaProject.bin")
# Names the text check refuses whatever they hold: scripts, web pages, programs.
_REFUSED_EXTENSIONS = frozenset({
    ".js", ".mjs", ".cjs", ".jsx", ".ts", ".tsx", ".vbs", ".vbe", ".wsf", ".wsh", ".ps1",
    ".psm1", ".bat", ".cmd", ".sh", ".bash", ".zsh", ".py", ".pl", ".rb", ".php", ".hta",
    ".html", ".htm", ".xhtml", ".shtml", ".mht", ".mhtml", ".svg", ".svgz", ".xml", ".xsl",
    ".xslt", ".url", ".reg", ".lnk", ".desktop", ".jar", ".exe", ".dll", ".scr", ".com",
    ".msi", ".apk",
})
_ZIP_FALLBACK = {".docx": "docx", ".xlsx": "xlsx", ".pptx": "pptx", ".odt": "odt",
                 ".ods": "ods", ".odp": "odp"}
_OLE_FALLBACK = {".msg": "msg", ".doc": "doc", ".xls": "xls", ".ppt": "ppt"}
_OLE_SIGNATURE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def _refuse(reason: str = "This kind of file can't be uploaded.") -> UnsupportedFile:
    return UnsupportedFile(f"{reason} {ALLOWED_SUMMARY}")


def _extension_of(filename: str) -> str:
    name = re.split(r"[/\\]", filename or "")[-1]
    return ("." + name.rsplit(".", 1)[1].lower()) if "." in name else ""


def sniff(head: bytes, filename: str, path: Path | None = None) -> Sniffed:
    """Tell an uploaded file's type from its content, or raise UnsupportedFile."""
    if not head:
        raise UnsupportedFile("The file is empty. Choose the file again, or check it saved "
                              "properly, then upload it.")
    extension = _extension_of(filename)
    if head.startswith((b"MZ", b"\x7fELF", b"\xfe\xed\xfa\xce", b"\xfe\xed\xfa\xcf",
                        b"\xce\xfa\xed\xfe", b"\xcf\xfa\xed\xfe", b"\xca\xfe\xba\xbe",
                        b"dex\n")) or (head.startswith(b"#!") and not head.startswith(b"#!AMR")):
        raise _refuse("Programs and scripts can't be uploaded.")
    key = _binary_kind(head, extension, path)
    if key is None:
        key = _text_kind(head, extension)
    if key is None:
        raise _refuse()
    return TYPES[key]


def _binary_kind(head: bytes, extension: str, path: Path | None) -> str | None:
    if head.startswith(b"%PDF-"):
        return "pdf"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if head.startswith(b"RIFF") and len(head) >= 12:
        return {b"WEBP": "webp", b"WAVE": "wav", b"AVI ": "avi"}.get(head[8:12])
    if head[4:8] == b"ftyp":
        return _ftyp_kind(head)
    if head[4:8] in (b"moov", b"mdat", b"wide", b"pnot") and head[0] == 0 and any(head[1:4]):
        return "mov"  # QuickTime from before the ftyp box
    if head.startswith(b"ID3"):
        return "mp3"
    if head.startswith(b"OggS"):
        return "ogv" if (b"\x80theora" in head[:4096] or b"\x01video" in head[:4096]) else "ogg"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        doctype = head[:4096]
        if b"webm" in doctype:
            return "webm"
        return "mkv" if b"matroska" in doctype else None
    if head.startswith(b"fLaC"):
        return "flac"
    if head.startswith(b"#!AMR"):
        return "amr"
    if head.startswith(b"FORM") and head[8:12] in (b"AIFF", b"AIFC"):
        return "aiff"
    if head.startswith(_OLE_SIGNATURE):
        return _ole_kind(head, extension, path)
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")):
        return _zip_kind(head, extension, path)
    if head.startswith(b"{\\rtf"):
        return "rtf"
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 text, or else MPEG audio
        text_key = _text_kind(head, extension)
        if text_key is not None:
            return text_key
    if _is_mpeg_audio_frame(head):
        return "mp3"
    if len(head) >= 7 and head[0] == 0xFF and head[1] & 0xF6 == 0xF0 and (head[2] >> 2) & 0xF < 13:
        return "aac"
    return None


def _ftyp_kind(head: bytes) -> str | None:
    major = head[8:12]
    if major in _FTYP_BRANDS:
        return _FTYP_BRANDS[major]
    size = struct.unpack(">I", head[:4])[0]
    box = head[16:min(max(size, 16), 256, len(head))]
    for i in range(0, len(box) - 3, 4):
        if box[i:i + 4] in _FTYP_BRANDS:
            return _FTYP_BRANDS[box[i:i + 4]]
    return None


def _is_mpeg_audio_frame(head: bytes) -> bool:
    if len(head) < 4 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return False
    version = (head[1] >> 3) & 3
    layer = (head[1] >> 1) & 3
    bitrate = head[2] >> 4
    sample_rate = (head[2] >> 2) & 3
    return version != 1 and layer != 0 and bitrate not in (0, 15) and sample_rate != 3


def _ole_kind(head: bytes, extension: str, path: Path | None) -> str | None:
    import olefile

    try:
        ole = olefile.OleFileIO(str(path) if path is not None else head)
        try:
            top = {entry[0] for entry in ole.listdir(streams=True, storages=True) if entry}
        finally:
            ole.close()
    except Exception:  # damaged or truncated: fall back on the names in the head
        top = set()
        for stream in ("__substg1.0_", "WordDocument", "Workbook", "PowerPoint Document",
                       "EncryptedPackage"):
            if stream.encode("utf-16-le") in head:
                top.add(stream)
        if not top:
            return _OLE_FALLBACK.get(extension)
    if "EncryptedPackage" in top:
        raise _refuse("This file is protected with a password, so it can't be checked. Remove "
                      "the password, save it, and upload it again.")
    if any(name.startswith("__substg1.0_") for name in top):
        return "msg"
    if "WordDocument" in top:
        return "doc"
    if "Workbook" in top or "Book" in top:
        return "xls"
    if "PowerPoint Document" in top:
        return "ppt"
    return None


def _zip_kind(head: bytes, extension: str, path: Path | None) -> str | None:
    names: set[str] = set()
    mimetype = b""
    try:
        with zipfile.ZipFile(path if path is not None else io.BytesIO(head)) as zf:
            names = {info.filename for info in zf.infolist()}
            if "mimetype" in names and zf.getinfo("mimetype").file_size <= 256:
                mimetype = zf.read("mimetype")
    except Exception:  # damaged, truncated, or only the head was given
        names, mimetype = _local_zip_names(head)
        known = ("word/document.xml", "xl/workbook.xml", "ppt/presentation.xml", "mimetype")
        if not any(name in names for name in known):
            # Too damaged to list: an Office file by its name is kept, without a preview.
            return _ZIP_FALLBACK.get(extension)
    if any(name in names for name in _MACRO_MEMBERS) or any(
            name.startswith("Basic/") for name in names):
        raise _refuse("Files with macros can't be uploaded. Save it as a normal document or "
                      "spreadsheet (.docx, .xlsx) and upload that.")
    if "word/document.xml" in names:
        return "docx"
    if "xl/workbook.xml" in names:
        return "xlsx"
    if "ppt/presentation.xml" in names:
        return "pptx"
    odf = {b"application/vnd.oasis.opendocument.text": "odt",
           b"application/vnd.oasis.opendocument.spreadsheet": "ods",
           b"application/vnd.oasis.opendocument.presentation": "odp"}
    if mimetype.strip() in odf:
        return odf[mimetype.strip()]
    if "[Content_Types].xml" in names and any(
            n.startswith("word/") and n.endswith(".xml") for n in names):
        return "docx"
    raise _refuse("Zip archives can't be uploaded. Upload the files inside it one at a time.")


def _local_zip_names(head: bytes) -> tuple[set[str], bytes]:
    names: set[str] = set()
    mimetype = b""
    pos = 0
    while len(names) < 1000:
        i = head.find(b"PK\x03\x04", pos)
        if i < 0 or i + 30 > len(head):
            break
        flags, method = struct.unpack("<HH", head[i + 6:i + 10])
        csize = struct.unpack("<I", head[i + 18:i + 22])[0]
        name_len, extra_len = struct.unpack("<HH", head[i + 26:i + 30])
        name = head[i + 30:i + 30 + name_len].decode(
            "utf-8" if flags & 0x800 else "cp437", "replace")
        names.add(name)
        if name == "mimetype" and method == 0 and csize <= 256:
            start = i + 30 + name_len + extra_len
            mimetype = head[start:start + csize]
        pos = i + 4
    return names, mimetype


_HEADER_LINE = re.compile(r"([!-9;-~]{1,76}):[ \t]?")
_MARKUP_START = re.compile(r"<[a-z!?/]")
_MARKUP_ANYWHERE = re.compile(
    r"<(?:script|svg|html|iframe|object|embed|body|head|meta)\b|<!doctype\s+html|<\?xml")
_JS_START = re.compile(
    r"""(?:var|let|const)\s+[A-Za-z_$][\w$]*\s*=|function\s*[\w$]*\s*\("""
    r"""|import\s+[\w${}*,\s]{1,200}?\s+from\s+['"]|import\s+['"]"""
    r"""|export\s+(?:default|const|let|var|function|class|async)\b|['"]use strict['"]"""
    r"""|\(\s*(?:async\s+)?function\b|\(\s*\(\s*\)\s*=>"""
    r"""|(?:window|document|module\.exports|exports)\s*[.=\[]|require\s*\(\s*['"]""")


def _decode_head(head: bytes) -> tuple[str, str] | None:
    """Decode the start of a text file: (text, encoding), or None for binary data."""
    if head.startswith(codecs.BOM_UTF8):
        candidates = ["utf-8-sig"]
    elif head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        candidates = ["utf-16"]
    else:
        if b"\0" in head:
            return None
        candidates = ["utf-8-sig", "cp1252"]
    for encoding in candidates:
        decoder = codecs.getincrementaldecoder(encoding)()
        try:
            text = decoder.decode(head, final=len(head) < HEAD_BYTES)
        except UnicodeDecodeError:
            continue
        controls = sum(1 for ch in text if ord(ch) < 32 and ch not in "\t\n\r\f\v\x1b")
        if "\0" in text or controls > len(text) // 100:
            return None
        return text, encoding
    return None


def _looks_like_email(text: str) -> bool:
    lines = text.splitlines()[:300]
    if lines and lines[0].startswith("From ") and ":" not in lines[0].split(" ", 2)[1]:
        lines = lines[1:]  # an mbox "From " line
    names: set[str] = set()
    for line in lines:
        if not line.strip():
            break
        if line[0] in " \t":
            if not names:
                return False
            continue
        match = _HEADER_LINE.match(line)
        if not match:
            return False
        names.add(match.group(1).lower())
    return "from" in names and bool({"subject", "date"} & names)


def _text_kind(head: bytes, extension: str) -> str | None:
    decoded = _decode_head(head)
    if decoded is None:
        return None
    text = decoded[0]
    start = text.lstrip("\ufeff \t\r\n")
    lower = start[:4096].lower()
    if start.startswith("<") and _MARKUP_START.match(lower):
        if "<svg" in lower:
            raise _refuse("SVG images can't be uploaded because they can hold scripts. Save it "
                          "as PNG or JPEG instead.")
        raise _refuse("Web pages and markup files (HTML, XML) can't be uploaded. Save it as PDF "
                      "instead.")
    if _looks_like_email(start):
        return "eml"
    if extension in _REFUSED_EXTENSIONS or _MARKUP_ANYWHERE.search(lower):
        raise _refuse("Web pages, programs and scripts can't be uploaded. If it is a document, "
                      "save it as PDF instead.")
    if _JS_START.match(_first_code_line(start)):
        raise _refuse("Programs and scripts can't be uploaded.")
    if extension in (".csv", ".tsv") or _looks_delimited(start):
        return "csv"
    return "txt"


def _first_code_line(text: str) -> str:
    body = re.sub(r"/\*.*?\*/", "", text[:4096], flags=re.DOTALL)
    for line in body.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("//"):
            return stripped
    return ""


def _looks_delimited(text: str) -> bool:
    sample = text[:CSV_SNIFF_CHARS]
    if len(sample) == CSV_SNIFF_CHARS and "\n" in sample:
        sample = sample[:sample.rindex("\n")]
    lines = [line for line in sample.splitlines() if line.strip()][:20]
    if len(lines) < 2:
        return False
    try:
        dialect = csv.Sniffer().sniff("\n".join(lines), delimiters=",;\t|")
    except csv.Error:
        return False
    try:
        widths = {len(row) for row in csv.reader(lines, delimiter=dialect.delimiter)}
    except csv.Error:
        return False
    return len(widths) == 1 and widths.pop() >= 2


_RESERVED_NAMES = frozenset(
    {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)),
     *(f"LPT{i}" for i in range(1, 10))})


def safe_filename(name: str, extension: str) -> str:
    """Make an upload's name safe to store and offer for download, with the canonical extension."""
    extension = "." + re.sub(r"[^a-z0-9]", "", (extension or "").lower()) if extension else ""
    if extension == ".":
        extension = ""
    base = re.split(r"[/\\]", name or "")[-1]
    base = unicodedata.normalize("NFKC", base)
    base = "".join(ch for ch in base if not unicodedata.category(ch).startswith("C"))
    base = re.sub(r"\.[A-Za-z0-9]{1,5}\s*$", "", base)
    base = re.sub(r"['\u2019`]", "", base)
    base = "".join(ch if (ch.isalnum() or ch in " ._-()") else " " for ch in base)
    base = re.sub(r"\s+", " ", base).strip(" .")
    if base.split(".")[0].upper() in _RESERVED_NAMES:
        base = f"{base} file"
    base = base[:max(1, 120 - len(extension))].rstrip(" .") or "file"
    return base + extension


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

    def to_json(self) -> dict[str, Any]:
        """Return the preview as a JSON-ready dict."""
        data = asdict(self)
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
            note=data.get("note"))


# Nouns for notes, by media type: "This Word file could not be read ...".
def _noun(sniffed: Sniffed) -> str:
    return {
        "docx": "Word file", "xlsx": "Excel file", "csv": "CSV file", "eml": "email",
        "msg": "Outlook email", "txt": "text file",
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


def build_preview(path: Path, sniffed: Sniffed) -> Preview:
    """Build a safe preview of a stored evidence file; never raise."""
    key = _key_of(sniffed)
    builders = {"docx": _preview_docx, "xlsx": _preview_xlsx, "csv": _preview_csv,
                "eml": _preview_eml, "msg": _preview_msg, "txt": _preview_text,
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


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    # Dates the way every page shows them ("05 Mar 2024"), not as ISO text beside them.
    if isinstance(value, datetime):
        return value.strftime("%d %b %Y" if value.time() == time() else "%d %b %Y %H:%M")
    if isinstance(value, date):
        return value.strftime("%d %b %Y")
    if isinstance(value, time):
        return value.strftime("%H:%M")
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    return str(value)[:MAX_CELL_CHARS]


class _TableBuilder:
    """Collect the first rows and columns for the table, and text from further rows."""

    def __init__(self) -> None:
        self.rows: list[list[str]] = []
        self.truncated = False
        self.text_parts: list[str] = []
        self.text_chars = 0
        self.seen = 0

    def add(self, cells: list[str]) -> bool:
        """Add one row; return False once nothing more is wanted."""
        self.seen += 1
        if len(cells) > MAX_TABLE_COLUMNS:
            if any(c.strip() for c in cells[MAX_TABLE_COLUMNS:]):
                self.truncated = True
            cells = cells[:MAX_TABLE_COLUMNS]
        cells = [c[:MAX_CELL_CHARS] for c in cells]
        if len(self.rows) < MAX_TABLE_ROWS:
            self.rows.append(cells)
        elif any(c.strip() for c in cells):
            self.truncated = True
        if self.text_chars < MAX_TEXT_CHARS:
            line = "\t".join(c for c in cells if c)
            if line:
                self.text_parts.append(line)
                self.text_chars += len(line) + 1
        return self.seen < MAX_TEXT_ROWS and (
            len(self.rows) < MAX_TABLE_ROWS or self.text_chars < MAX_TEXT_CHARS)

    def table(self) -> list[list[str]]:
        rows = self.rows
        while rows and not any(c.strip() for c in rows[-1]):
            rows = rows[:-1]
        width = max((max((i + 1 for i, c in enumerate(r) if c.strip()), default=0)
                     for r in rows), default=0)
        return [(r + [""] * width)[:width] for r in rows]

    def text(self) -> str:
        return "\n".join(self.text_parts)[:MAX_TEXT_CHARS]


def _preview_xlsx(path: Path, sniffed: Sniffed) -> Preview:
    import openpyxl

    _check_zip(path, sniffed)
    # openpyxl judges a *path* by its suffix and refuses anything not named .xlsx; an upload's
    # temporary file has no suffix, so it is given an open handle instead (the zip itself was
    # sniffed and checked above).
    with open(path, "rb") as handle:
        return _xlsx_table(openpyxl.load_workbook(handle, read_only=True, data_only=True))


def _xlsx_table(workbook: Any) -> Preview:
    try:
        table: list[list[str]] | None = None
        truncated = False
        texts: list[str] = []
        for sheet in workbook.worksheets[:MAX_SHEETS]:
            builder = _TableBuilder()
            for row in sheet.iter_rows(max_row=MAX_TEXT_ROWS, max_col=MAX_TABLE_COLUMNS + 1,
                                       values_only=True):
                if not builder.add([_cell_text(v) for v in row]):
                    break
            rows = builder.table()
            if table is None and rows and getattr(sheet, "sheet_state", "visible") == "visible":
                table, truncated = rows, builder.truncated
            texts.append(builder.text())
            if sum(len(t) for t in texts) >= MAX_TEXT_CHARS:
                break
        truncated = truncated or len(workbook.worksheets) > MAX_SHEETS
    finally:
        workbook.close()
    if not table:
        return Preview(kind="none", note="This spreadsheet is empty, so there is no preview.")
    return Preview(kind="table", table=table, truncated=truncated,
                   text="\n".join(t for t in texts if t)[:MAX_TEXT_CHARS])


def _detect_encoding(sample: bytes) -> str:
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        codecs.getincrementaldecoder("utf-8-sig")().decode(sample, final=len(sample) < HEAD_BYTES)
    except UnicodeDecodeError:
        return "cp1252"
    return "utf-8-sig"


def _bounded_lines(handle: io.TextIOBase) -> Iterator[str]:
    while line := handle.readline(MAX_LINE_CHARS):
        yield line


def _preview_csv(path: Path, sniffed: Sniffed) -> Preview:
    with open(path, "rb") as raw:
        sample = raw.read(HEAD_BYTES)
    encoding = _detect_encoding(sample)
    text_sample = sample.decode(encoding, errors="replace")
    if len(sample) == HEAD_BYTES and "\n" in text_sample:
        text_sample = text_sample[:text_sample.rindex("\n")]
    try:
        delimiter = csv.Sniffer().sniff(text_sample[:CSV_SNIFF_CHARS], delimiters=",;\t|").delimiter
    except csv.Error:
        delimiter = ","
    builder = _TableBuilder()
    with open(path, encoding=encoding, errors="replace", newline="") as handle:
        reader = csv.reader(_bounded_lines(handle), delimiter=delimiter)
        try:
            for row in reader:
                if row and not builder.add(row):
                    break
        except csv.Error:
            builder.truncated = True  # e.g. a field over the csv module's size limit
    table = builder.table()
    if not table:
        return Preview(kind="none", note="This CSV file is empty, so there is no preview.")
    return Preview(kind="table", table=table, truncated=builder.truncated, text=builder.text())


class _TextExtractor(HTMLParser):
    _BLOCKS = frozenset({"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6",
                         "table", "ul", "ol", "blockquote", "pre", "hr", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "head"):
            self.skip += 1
        elif tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "head"):
            self.skip = max(0, self.skip - 1)
        elif tag in self._BLOCKS:
            self.parts.append("\n")
        elif tag in ("td", "th"):
            self.parts.append("\t")

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.parts.append(data)


def _html_to_text(html: str) -> str:
    """Return the readable text of an HTML fragment (never used to render it)."""
    parser = _TextExtractor()
    parser.feed(html[:MAX_HTML_TO_TEXT_CHARS])
    parser.close()
    text = "".join(parser.parts)
    text = re.sub(r"[ \t\r\f\v]*\n[ \t\r\f\v]*", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _clean_header(value: str) -> str:
    return re.sub(r"\s*\r?\n[ \t]+", " ", value).strip()[:MAX_HEADER_CHARS]


def _email_text(email: EmailPreview) -> str:
    parts = [email.subject, email.sender, *email.to, *email.cc, email.body_text,
             *(str(a.get("name", "")) for a in email.attachments)]
    return "\n".join(p for p in parts if p)[:MAX_TEXT_CHARS]


def _eml_addresses(msg: EmailMessage, name: str) -> list[str]:
    out: list[str] = []
    for header_name, raw in msg.raw_items():
        if header_name.lower() != name.lower():
            continue
        try:
            parsed = msg.policy.header_fetch_parse(header_name, raw)
            if getattr(parsed, "defects", None):
                raise ValueError("a header the parser had to repair")
            out.extend(str(address) for address in parsed.addresses)
        except Exception:
            out.extend(part.strip() for part in str(raw).split(",") if part.strip())
        if len(out) >= MAX_HEADERS:
            break
    return [_clean_header(a) for a in out[:MAX_HEADERS]]


def _part_text(part: EmailMessage) -> str:
    try:
        content = part.get_content()
        if isinstance(content, bytes):
            content = content.decode("utf-8", errors="replace")
    except Exception:  # unknown charset or broken transfer encoding
        payload = part.get_payload(decode=True)
        content = payload.decode("utf-8", errors="replace") if isinstance(payload, bytes) else ""
    if part.get_content_type() == "text/html":
        content = _html_to_text(content)
    return str(content)


def _preview_eml(path: Path, sniffed: Sniffed) -> Preview:
    with open(path, "rb") as handle:
        msg = cast(EmailMessage, BytesParser(policy=policy.default).parse(handle))
    headers: list[tuple[str, str]] = []
    for name, raw in list(msg.raw_items())[:MAX_HEADERS]:
        try:
            parsed = msg.policy.header_fetch_parse(name, raw)
            # A header the parser had to repair is shown as written, not as repaired.
            value = str(raw) if getattr(parsed, "defects", None) else str(parsed)
        except Exception:
            value = str(raw)
        headers.append((name, _clean_header(value)))

    def header(name: str) -> str:
        return next((v for n, v in headers if n.lower() == name.lower()), "")

    taken: str | None = None
    try:
        date_header = msg.get("Date")
        when = getattr(date_header, "datetime", None)
        taken = when.isoformat() if when else None
    except Exception:
        taken = None
    body = ""
    try:
        part = msg.get_body(preferencelist=("plain", "html"))
        if part is not None:
            body = _part_text(part)
    except Exception:
        logger.info("email body unreadable", exc_info=True)
    attachments: list[dict[str, Any]] = []
    try:
        for part in msg.iter_attachments():
            if len(attachments) >= MAX_ATTACHMENTS:
                break
            payload = part.get_payload(decode=True)
            size = len(payload) if isinstance(payload, bytes) else len(part.as_bytes())
            attachments.append({"name": _clean_header(part.get_filename() or "(no name)"),
                                "size": size, "media_type": part.get_content_type()})
    except Exception:
        logger.info("email attachments unreadable", exc_info=True)
    email = EmailPreview(
        sender=header("From"), to=_eml_addresses(msg, "To"), cc=_eml_addresses(msg, "Cc"),
        date=taken, subject=header("Subject"), body_text=body[:MAX_TEXT_CHARS],
        headers=headers, attachments=attachments)
    return Preview(kind="email", email=email, text=_email_text(email),
                   truncated=len(body) > MAX_TEXT_CHARS)


def _msg_str(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    return str(value).replace("\x00", "").strip()


def _preview_msg(path: Path, sniffed: Sniffed) -> Preview:
    import extract_msg

    msg = extract_msg.openMsg(str(path), strict=False)
    try:
        def attr(name: str) -> Any:
            try:
                return getattr(msg, name, None)
            except Exception:
                return None

        body = _msg_str(attr("body"))
        if not body:
            html = attr("htmlBody")
            body = _html_to_text(_msg_str(html)) if html else ""
        when = attr("date")
        if isinstance(when, datetime):
            date_text: str | None = when.isoformat()
        else:
            date_text = _msg_str(when) or None
        headers: list[tuple[str, str]] = []
        transport = attr("header")
        if transport is not None:
            try:
                for name, value in list(transport.items())[:MAX_HEADERS]:
                    headers.append((str(name), _clean_header(str(value))))
            except Exception:
                headers = []
        attachments: list[dict[str, Any]] = []
        for item in (attr("attachments") or [])[:MAX_ATTACHMENTS]:
            name = _msg_str(getattr(item, "longFilename", None)
                            or getattr(item, "shortFilename", None)
                            or getattr(item, "name", None)) or "(no name)"
            try:
                data = item.data
            except Exception:
                data = None
            media_type = (getattr(item, "mimetype", None) or mimetypes.guess_type(name)[0]
                          or "application/octet-stream")
            if data is not None and not isinstance(data, bytes):
                media_type = "application/vnd.ms-outlook"  # an email attached to an email
            attachments.append({"name": name, "size": len(data) if isinstance(data, bytes)
                                else None, "media_type": _msg_str(media_type)})

        def people(value: Any) -> list[str]:
            return [p.strip() for p in re.split(r"[;\n]", _msg_str(value)) if p.strip()]

        email = EmailPreview(
            sender=_msg_str(attr("sender")), to=people(attr("to")), cc=people(attr("cc")),
            date=date_text, subject=_msg_str(attr("subject")), body_text=body[:MAX_TEXT_CHARS],
            headers=headers, attachments=attachments)
    finally:
        msg.close()
    return Preview(kind="email", email=email, text=_email_text(email),
                   truncated=len(body) > MAX_TEXT_CHARS)


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


def _preview_text(path: Path, sniffed: Sniffed) -> Preview:
    with open(path, "rb") as raw:
        sample = raw.read(HEAD_BYTES)
    encoding = _detect_encoding(sample)
    with open(path, encoding=encoding, errors="replace") as handle:
        text = handle.read(MAX_TEXT_CHARS + 1)
    return Preview(kind="text", text=text[:MAX_TEXT_CHARS], truncated=len(text) > MAX_TEXT_CHARS)
