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

from portfolio.evidence.parsing.dispatch import (  # noqa: F401
    build_preview,
)
from portfolio.evidence.parsing.documents import (  # noqa: F401
    _DOCX_STYLE_MAP,
    _drop_image,
    _preview_docx,
    _sanitise,
)
from portfolio.evidence.parsing.emails import (  # noqa: F401
    _clean_header,
    _email_text,
    _eml_addresses,
    _html_to_text,
    _msg_str,
    _part_text,
    _preview_eml,
    _preview_msg,
    _TextExtractor,
)
from portfolio.evidence.parsing.images import (  # noqa: F401
    _EXIF_DATE,
    _PIL_FORMATS,
    _jpeg_complete,
    _preview_image,
    _taken_at,
)
from portfolio.evidence.parsing.limits import (  # noqa: F401
    ALLOWED_SUMMARY,
    CATEGORIES,
    CSV_SNIFF_CHARS,
    HEAD_BYTES,
    MAX_ATTACHMENTS,
    MAX_CELL_CHARS,
    MAX_COMPRESSION_RATIO,
    MAX_DECODE_PIXELS,
    MAX_HEADER_CHARS,
    MAX_HEADERS,
    MAX_HTML_CHARS,
    MAX_HTML_TO_TEXT_CHARS,
    MAX_IMAGE_PIXELS,
    MAX_LINE_CHARS,
    MAX_SHEETS,
    MAX_TABLE_COLUMNS,
    MAX_TABLE_ROWS,
    MAX_TEXT_CHARS,
    MAX_TEXT_ROWS,
    MAX_UNZIPPED_BYTES,
    MAX_ZIP_MEMBERS,
    RATIO_CHECK_FROM_BYTES,
    SAFE_INLINE_IMAGE_TYPES,
)
from portfolio.evidence.parsing.model import (  # noqa: F401
    EmailPreview,
    Preview,
    _check_zip,
    _key_of,
    _noun,
    _PreviewRefused,
)
from portfolio.evidence.parsing.sniffing import (  # noqa: F401
    _FTYP_BRANDS,
    _HEADER_LINE,
    _JS_START,
    _MACRO_MEMBERS,
    _MARKUP_ANYWHERE,
    _MARKUP_START,
    _ODF,
    _OLE_FALLBACK,
    _OLE_SIGNATURE,
    _OOXML,
    _REFUSED_EXTENSIONS,
    _RESERVED_NAMES,
    _ZIP_FALLBACK,
    TYPES,
    Sniffed,
    UnsupportedFile,
    _binary_kind,
    _decode_head,
    _extension_of,
    _first_code_line,
    _ftyp_kind,
    _is_mpeg_audio_frame,
    _local_zip_names,
    _looks_delimited,
    _looks_like_email,
    _ole_kind,
    _refuse,
    _text_kind,
    _zip_kind,
    safe_filename,
    sniff,
)
from portfolio.evidence.parsing.tables import (  # noqa: F401
    _bounded_lines,
    _cell_text,
    _detect_encoding,
    _preview_csv,
    _preview_xlsx,
    _TableBuilder,
    _xlsx_table,
)
from portfolio.evidence.parsing.text import (  # noqa: F401
    _preview_text,
)
