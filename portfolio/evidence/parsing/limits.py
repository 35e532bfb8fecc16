"""The limits every previewer keeps to, and the types an upload may have."""

from __future__ import annotations

from PIL import Image

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
# PDFs and HEIC/HEIF photos are read in a child process (see `rendering`), which keeps the same
# pixel limit and its own: at most 2,000 pages and 200 inches a page side, a picture of at most
# 1200 px a side, 30 seconds, 1.5 GB of memory.

ALLOWED_SUMMARY = (
    "Upload documents (PDF, Word, PowerPoint, OpenDocument, RTF or plain text), images "
    "(JPEG, PNG, GIF, WebP or HEIC), audio, video, emails (.eml, .msg) or spreadsheets "
    "(.csv, .xlsx)."
)
