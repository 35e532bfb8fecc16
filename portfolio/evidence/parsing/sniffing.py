"""Telling a file's type by its content, against the allow-list, and a safe file name."""

from __future__ import annotations

import codecs
import csv
import io
import re
import struct
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path

import olefile

from portfolio.evidence.parsing.limits import ALLOWED_SUMMARY, CSV_SNIFF_CHARS, HEAD_BYTES


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
