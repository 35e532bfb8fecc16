"""Evidence file types by content, the allow-list, and previews that never raise.

Every file is built here, in tmp_path: no binary fixtures are committed.
"""

from __future__ import annotations

import csv
import io
import json
import os
import struct
import zipfile
import zlib
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path

import openpyxl
import pytest
from PIL import Image

from portfolio.evidence import parsing
from portfolio.evidence.parsing import (
    CATEGORIES,
    TYPES,
    EmailPreview,
    Preview,
    Sniffed,
    UnsupportedFile,
    build_preview,
    safe_filename,
    sniff,
)

W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
R = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
REL = "http://schemas.openxmlformats.org/package/2006/relationships"
CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" '
    'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Default Extension="png" ContentType="image/png"/>'
    '<Override PartName="/word/document.xml" ContentType="application/'
    'vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>'
    "</Types>")
PACKAGE_RELS = (
    f'<Relationships xmlns="{REL}"><Relationship Id="rId1" '
    f'Type="{R}/officeDocument" Target="word/document.xml"/></Relationships>')
DOCUMENT_RELS = (
    f'<Relationships xmlns="{REL}">'
    f'<Relationship Id="rId1" Type="{R}/styles" Target="styles.xml"/>'
    f'<Relationship Id="rId2" Type="{R}/image" Target="media/image1.png"/>'
    f'<Relationship Id="rId3" Type="{R}/hyperlink" Target="javascript:alert(1)" '
    'TargetMode="External"/>'
    f'<Relationship Id="rId4" Type="{R}/hyperlink" Target="https://example.com/" '
    'TargetMode="External"/>'
    "</Relationships>")
STYLES = (f'<w:styles xmlns:w="{W}"><w:style w:type="paragraph" w:styleId="Heading1">'
          '<w:name w:val="heading 1"/></w:style></w:styles>')
DOCUMENT = (
    f'<w:document xmlns:w="{W}" xmlns:r="{R}" '
    'xmlns:wp="http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing" '
    'xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" '
    'xmlns:pic="http://schemas.openxmlformats.org/drawingml/2006/picture"><w:body>'
    '<w:p><w:pPr><w:pStyle w:val="Heading1"/></w:pPr><w:r><w:t>Reflective account</w:t></w:r>'
    "</w:p>"
    "<w:p><w:r><w:t>I resolved the complaint &lt;script&gt;alert(1)&lt;/script&gt; and "
    "emailed jo@example.com.</w:t></w:r></w:p>"
    '<w:p><w:hyperlink r:id="rId3"><w:r><w:t>bad link</w:t></w:r></w:hyperlink>'
    '<w:hyperlink r:id="rId4"><w:r><w:t>good link</w:t></w:r></w:hyperlink></w:p>'
    '<w:p><w:r><w:drawing><wp:inline><wp:docPr id="1" name="Picture 1" descr="photo"/>'
    '<a:graphic><a:graphicData uri="http://schemas.openxmlformats.org/drawingml/2006/picture">'
    '<pic:pic><pic:blipFill><a:blip r:embed="rId2"/></pic:blipFill></pic:pic></a:graphicData>'
    "</a:graphic></wp:inline></w:drawing></w:r></w:p>"
    "</w:body></w:document>")


def png_bytes(size: tuple[int, int] = (8, 8)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, "blue").save(out, "PNG")
    return out.getvalue()


def make_docx(path: Path, document: str = DOCUMENT, *, image: bool = True,
              rels: str = DOCUMENT_RELS) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", CONTENT_TYPES)
        zf.writestr("_rels/.rels", PACKAGE_RELS)
        zf.writestr("word/_rels/document.xml.rels", rels)
        zf.writestr("word/styles.xml", STYLES)
        zf.writestr("word/document.xml", document)
        if image:
            zf.writestr("word/media/image1.png", png_bytes())
    return path


def make_zip_bomb(path: Path, megabytes: int, member: str = "word/document.xml") -> Path:
    """A small zip whose one big member is megabytes of zeros, written as a stream."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", CONTENT_TYPES)
        with zf.open(member, "w", force_zip64=True) as handle:
            chunk = bytes(1024 * 1024)
            for _ in range(megabytes):
                handle.write(chunk)
    return path


def head_of(path: Path) -> bytes:
    with open(path, "rb") as handle:
        return handle.read(parsing.HEAD_BYTES)


def sniff_file(path: Path, filename: str | None = None) -> Sniffed:
    return sniff(head_of(path), filename or path.name, path)


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# --- sniffing: allowed types ------------------------------------------------------------------

def ftyp(brand: bytes, compatible: bytes = b"") -> bytes:
    body = b"ftyp" + brand + b"\0\0\0\0" + compatible
    return struct.pack(">I", len(body) + 4) + body + b"\0\0\0\x08free"


MAGIC_CASES = [
    (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "a.pdf", "application/pdf", "document"),
    (png_bytes(), "a.png", "image/png", "image"),
    (b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", "a.gif", "image/gif", "image"),
    (b"RIFF\x24\x00\x00\x00WEBPVP8 ", "a.webp", "image/webp", "image"),
    (ftyp(b"heic", b"mif1heic"), "IMG_0001.HEIC", "image/heic", "image"),
    (ftyp(b"mif1", b"mif1"), "a.heif", "image/heif", "image"),
    (b"ID3\x04\x00\x00\x00\x00\x00\x00", "a.mp3", "audio/mpeg", "audio"),
    (b"\xff\xfb\x90\x64" + bytes(100), "a.mp3", "audio/mpeg", "audio"),
    (ftyp(b"M4A ", b"M4A mp42isom"), "memo.m4a", "audio/mp4", "audio"),
    (b"RIFF\x24\x00\x00\x00WAVEfmt ", "a.wav", "audio/wav", "audio"),
    (b"OggS\x00\x02" + bytes(22) + b"\x01vorbis", "a.ogg", "audio/ogg", "audio"),
    (b"fLaC\x00\x00\x00\x22", "a.flac", "audio/flac", "audio"),
    (b"#!AMR\n\x3c", "a.amr", "audio/amr", "audio"),
    (ftyp(b"isom", b"isomiso2avc1mp41"), "a.mp4", "video/mp4", "video"),
    (ftyp(b"qt  ", b"qt  "), "a.mov", "video/quicktime", "video"),
    (ftyp(b"3gp4", b"3gp4"), "a.3gp", "video/3gpp", "video"),
    (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm", "a.webm", "video/webm", "video"),
    (b"\x1a\x45\xdf\xa3\x9f\x42\x82\x88matroska", "a.mkv", "video/x-matroska", "video"),
    (b"RIFF\x24\x00\x00\x00AVI LIST", "a.avi", "video/x-msvideo", "video"),
    (b"{\\rtf1\\ansi Hello}", "a.rtf", "application/rtf", "document"),
    (b"Notes from my shift.\nThe customer was happy.\n", "notes.txt", "text/plain", "document"),
]


@pytest.mark.parametrize(("data", "name", "media_type", "category"), MAGIC_CASES)
def test_sniff_by_magic_bytes(tmp_path: Path, data: bytes, name: str, media_type: str,
                              category: str) -> None:
    path = write(tmp_path / name, data)
    sniffed = sniff_file(path)
    assert (sniffed.media_type, sniffed.category) == (media_type, category)
    assert sniffed.category in CATEGORIES
    assert sniffed.extension.startswith(".") and sniffed.label


def test_every_type_is_well_formed() -> None:
    for sniffed in TYPES.values():
        assert sniffed.category in CATEGORIES
        assert sniffed.extension == sniffed.extension.lower()
    inline = parsing.SAFE_INLINE_IMAGE_TYPES
    assert inline == frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})


def test_content_wins_over_the_extension(tmp_path: Path) -> None:
    path = write(tmp_path / "photo.jpg", png_bytes())
    sniffed = sniff_file(path)
    assert sniffed.media_type == "image/png" and sniffed.extension == ".png"
    assert safe_filename("photo.jpg", sniffed.extension) == "photo.png"


def test_sniff_reads_only_the_head_when_no_path_is_given(tmp_path: Path) -> None:
    path = make_docx(tmp_path / "a.docx")
    data = path.read_bytes()
    assert sniff(data[:200], "a.docx").extension == ".docx"  # too little to tell: by its name
    with pytest.raises(UnsupportedFile):
        sniff(data[:200], "a.bin")
    cut = data.index(b"word/document.xml") + 100
    assert sniff(data[:cut], "a.bin").extension == ".docx"  # from the local file headers
    assert sniff(path.read_bytes(), "whatever").extension == ".docx"  # whole zip in the head


def test_office_zip_containers(tmp_path: Path) -> None:
    docx = sniff_file(make_docx(tmp_path / "report.bin"))
    assert docx.media_type == TYPES["docx"].media_type and docx.label == "Word document"
    workbook = openpyxl.Workbook()
    workbook.save(tmp_path / "book.zip")
    assert sniff_file(tmp_path / "book.zip").extension == ".xlsx"
    with zipfile.ZipFile(tmp_path / "slides.pptx", "w") as zf:
        zf.writestr("[Content_Types].xml", CONTENT_TYPES)
        zf.writestr("ppt/presentation.xml", "<p/>")
    assert sniff_file(tmp_path / "slides.pptx").extension == ".pptx"
    for mimetype, extension in (("text", ".odt"), ("spreadsheet", ".ods"),
                                ("presentation", ".odp")):
        path = tmp_path / f"odf{extension}"
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("mimetype", f"application/vnd.oasis.opendocument.{mimetype}",
                        compress_type=zipfile.ZIP_STORED)
            zf.writestr("content.xml", "<office:document-content/>")
        assert sniff_file(path).extension == extension
        assert sniff(path.read_bytes()[:100], "x").extension == extension


def test_plain_zip_and_macro_files_are_refused(tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "photos.zip", "w") as zf:
        zf.writestr("a.txt", "hello")
    with pytest.raises(UnsupportedFile, match="Zip archives"):
        sniff_file(tmp_path / "photos.zip")
    with zipfile.ZipFile(tmp_path / "macro.docm", "w") as zf:
        zf.writestr("word/document.xml", DOCUMENT)
        zf.writestr("word/vbaProject.bin", b"\0" * 10)
    with pytest.raises(UnsupportedFile, match="macros"):
        sniff_file(tmp_path / "macro.docm")


REFUSED = [
    (b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', "a.svg", "SVG"),
    (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"></svg>', "a.svg", "SVG"),
    (b"<!DOCTYPE html><html><body>hi</body></html>", "a.html", "Web pages"),
    (b"  \n<html><script>alert(1)</script></html>", "page.txt", "Web pages"),
    (b'<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"/>', "a.xhtml",
     "Web pages"),
    (b"<!doctype html><p>not a photo</p>", "holiday.jpg", "Web pages"),
    (b"Dear diary\n<script>alert(1)</script>", "diary.txt", "Web pages"),
    (b"MZ\x90\x00\x03\x00\x00\x00", "setup.exe", "Programs"),
    (b"MZ\x90\x00\x03\x00\x00\x00", "invoice.pdf", "Programs"),
    (b"\x7fELF\x02\x01\x01", "a.bin", "Programs"),
    (b"#!/bin/sh\nrm -rf /\n", "notes.txt", "Programs"),
    (b"function steal() { return document.cookie; }\n", "notes.txt", "Programs"),
    (b"// helper\nconst x = require('fs');\n", "notes.txt", "Programs"),
    (b"'use strict';\nwindow.location = 'https://example.com';\n", "a.txt", "Programs"),
    (b"alert(document.cookie)", "a.js", "scripts"),
    (b"\x00\x01\x02\x03\x04binary junk\x00\x00", "a.docx", "can't be uploaded"),
    (b"PK\x05\x06" + bytes(18), "empty.zip", "Zip archives"),
]


@pytest.mark.parametrize(("data", "name", "reason"), REFUSED)
def test_refused_files(tmp_path: Path, data: bytes, name: str, reason: str) -> None:
    path = write(tmp_path / name, data)
    with pytest.raises(UnsupportedFile) as caught:
        sniff_file(path)
    assert reason in caught.value.message
    assert "Upload documents (PDF, Word" in caught.value.message
    assert "emails (.eml, .msg) or spreadsheets (.csv, .xlsx)" in caught.value.message


def test_an_empty_file_is_refused() -> None:
    with pytest.raises(UnsupportedFile, match="empty"):
        sniff(b"", "a.txt")


def test_text_that_only_mentions_code_is_kept() -> None:
    text = b"Let me explain: I used a function of the till to refund her.\n"
    assert sniff(text, "notes").media_type == "text/plain"
    assert sniff("I <3 this job — café £5".encode("cp1252"), "x.txt").media_type == "text/plain"


# --- safe file names --------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "extension", "expected"), [
    ("report.docx", ".docx", "report.docx"),
    ("../../etc/passwd", ".txt", "passwd.txt"),
    ("C:\\Users\\amy\\Desktop\\Witness statement.PDF", ".pdf", "Witness statement.pdf"),
    ("photo.jpeg", ".jpg", "photo.jpg"),
    ("evil.html", ".txt", "evil.txt"),
    (".htaccess", ".txt", "htaccess.txt"),
    ("...", ".pdf", "file.pdf"),
    ("", ".csv", "file.csv"),
    ("a\x00b\x1fc\u202ed.txt", ".txt", "abcd.txt"),
    ("Tom's   notes: day 1?.txt", ".txt", "Toms notes day 1.txt"),
    ("ﬁle①.txt", ".txt", "file1.txt"),
    ("Café résumé (final).docx", ".docx", "Café résumé (final).docx"),
    ("con.txt", ".txt", "con file.txt"),
    ("x" * 300 + ".pdf", ".pdf", "x" * 116 + ".pdf"),
    ("Mr. Smith complaint", ".eml", "Mr. Smith complaint.eml"),
])
def test_safe_filename(name: str, extension: str, expected: str) -> None:
    result = safe_filename(name, extension)
    assert result == expected
    assert len(result) <= 120 and not result.startswith(".")


# --- previews: Word ---------------------------------------------------------------------------

def test_docx_preview_is_sanitised_html(tmp_path: Path) -> None:
    path = make_docx(tmp_path / "account.docx")
    sniffed = sniff_file(path)
    preview = build_preview(path, sniffed)
    assert preview.kind == "html", preview.note
    html = preview.html or ""
    assert "<h2>Reflective account</h2>" in html and "<h1" not in html
    assert "<script" not in html and "&lt;script&gt;" in html
    assert "javascript:" not in html
    assert 'href="https://example.com/"' in html and "noopener" in html
    assert "<img" not in html and "data:" not in html
    assert "jo@example.com" in preview.text and "Reflective account" in preview.text
    assert "<script>alert(1)</script>" in preview.text  # the words the learner typed
    assert "<p>" not in preview.text and "<h2>" not in preview.text


def test_docx_linked_images_are_never_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret.png"
    secret.write_bytes(png_bytes())
    linked = DOCUMENT.replace('r:embed="rId2"', 'r:link="rId9"')
    rels = DOCUMENT_RELS.replace(
        "</Relationships>", f'<Relationship Id="rId9" Type="{R}/image" '
        f'Target="{secret.as_uri()}" TargetMode="External"/></Relationships>')
    path = make_docx(tmp_path / "linked.docx", linked, image=False, rels=rels)
    preview = build_preview(path, sniff_file(path))
    assert preview.kind == "html"
    assert "data:" not in (preview.html or "") and "<img" not in (preview.html or "")


def test_broken_docx_gets_a_note(tmp_path: Path) -> None:
    path = make_docx(tmp_path / "broken.docx", document="<w:document><w:body><w:p>")
    preview = build_preview(path, sniff_file(path))
    assert preview.kind == "none"
    assert preview.note == ("This Word file could not be read, so it is kept as it is without "
                            "a preview.")


def test_truncated_docx_is_still_a_word_file_without_preview(tmp_path: Path) -> None:
    good = make_docx(tmp_path / "good.docx").read_bytes()
    path = write(tmp_path / "cut.docx", good[: len(good) // 2])
    sniffed = sniff_file(path)
    assert sniffed.extension == ".docx"
    preview = build_preview(path, sniffed)
    assert preview.kind == "none" and "could not be read" in (preview.note or "")


def test_zip_bomb_is_never_extracted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mammoth

    path = make_zip_bomb(tmp_path / "bomb.docx", megabytes=200)
    assert path.stat().st_size < 2 * 1024 * 1024
    calls: list[object] = []
    monkeypatch.setattr(mammoth, "convert_to_html", lambda *a, **k: calls.append(a))
    sniffed = sniff_file(path)
    assert sniffed.extension == ".docx"
    preview = build_preview(path, sniffed)
    assert preview.kind == "none" and not calls
    assert "unpacks to more than 100 MB" in (preview.note or "")


def test_highly_compressed_member_is_refused_before_opening(tmp_path: Path) -> None:
    path = make_zip_bomb(tmp_path / "ratio.xlsx", megabytes=20, member="xl/workbook.xml")
    preview = build_preview(path, sniff_file(path))
    assert preview.kind == "none" and "unusual way" in (preview.note or "")


# --- previews: spreadsheets -------------------------------------------------------------------

def test_xlsx_preview(tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["Date", "Customer", "Amount", "Resolved"])
    sheet.append([datetime(2024, 3, 5), "Jo Bloggs", 12.5, True])
    sheet.append([datetime(2024, 3, 6, 14, 30), "Sam Smith", 3.0, False])
    other = workbook.create_sheet("Contacts")
    other.append(["Phone", "07700 900123"])
    workbook.save(tmp_path / "log.xlsx")
    path = tmp_path / "log.xlsx"
    preview = build_preview(path, sniff_file(path))
    assert preview.kind == "table" and not preview.truncated
    assert preview.table == [
        ["Date", "Customer", "Amount", "Resolved"],
        ["05 Mar 2024", "Jo Bloggs", "12.5", "TRUE"],
        ["06 Mar 2024 14:30", "Sam Smith", "3", "FALSE"],
    ]
    assert "Jo Bloggs" in preview.text and "07700 900123" in preview.text  # every sheet


def test_large_xlsx_is_capped(tmp_path: Path) -> None:
    workbook = openpyxl.Workbook(write_only=True)
    sheet = workbook.create_sheet()
    for r in range(600):
        sheet.append([f"r{r}c{c}" for c in range(60)])
    workbook.save(tmp_path / "big.xlsx")
    path = tmp_path / "big.xlsx"
    preview = build_preview(path, sniff_file(path))
    assert preview.kind == "table" and preview.truncated
    assert preview.table is not None
    assert len(preview.table) == parsing.MAX_TABLE_ROWS
    assert {len(row) for row in preview.table} == {parsing.MAX_TABLE_COLUMNS}
    assert len(preview.text) <= parsing.MAX_TEXT_CHARS


def test_broken_xlsx_gets_a_note(tmp_path: Path) -> None:
    path = tmp_path / "broken.xlsx"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("[Content_Types].xml", "not xml at all")
        zf.writestr("xl/workbook.xml", "<workbook")
    sniffed = sniff_file(path)
    assert sniffed.extension == ".xlsx"
    preview = build_preview(path, sniffed)
    assert preview.kind == "none"
    assert preview.note == ("This Excel file could not be read, so it is kept as it is without "
                            "a preview.")


def write_csv(path: Path, rows: list[list[str]], *, encoding: str = "utf-8",
              delimiter: str = ",") -> Path:
    with open(path, "w", encoding=encoding, newline="") as handle:
        csv.writer(handle, delimiter=delimiter).writerows(rows)
    return path


def test_csv_utf8(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "log.csv", [["Name", "Note"], ["Zoë", "Café, then \"tea\""]],
                     encoding="utf-8-sig")
    sniffed = sniff_file(path)
    assert sniffed.media_type == "text/csv" and sniffed.category == "spreadsheet"
    preview = build_preview(path, sniffed)
    assert preview.table == [["Name", "Note"], ["Zoë", 'Café, then "tea"']]


def test_csv_cp1252_and_semicolons(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "export.csv", [["Item", "Price"], ["Scone", "£2,50"],
                                                ["Café au lait", "£3,10"]],
                     encoding="cp1252", delimiter=";")
    preview = build_preview(path, sniff_file(path))
    assert preview.table == [["Item", "Price"], ["Scone", "£2,50"], ["Café au lait", "£3,10"]]


def test_csv_is_sniffed_without_its_extension(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "export.dat", [["a", "b", "c"], ["1", "2", "3"], ["4", "5", "6"]],
                     delimiter="\t")
    sniffed = sniff_file(path)
    assert sniffed.media_type == "text/csv" and sniffed.extension == ".csv"
    assert build_preview(path, sniffed).table == [["a", "b", "c"], ["1", "2", "3"],
                                                  ["4", "5", "6"]]


def test_csv_ragged_rows_are_padded(tmp_path: Path) -> None:
    path = write(tmp_path / "ragged.csv", b"a,b,c\n1\n1,2,3,4\n\n5,6\n")
    preview = build_preview(path, sniff_file(path))
    assert preview.table == [["a", "b", "c", ""], ["1", "", "", ""], ["1", "2", "3", "4"],
                             ["5", "6", "", ""]]


def test_large_csv_is_capped_but_searchable(tmp_path: Path) -> None:
    rows = [[f"c{c}" for c in range(60)]] + [[f"r{r}", "x"] for r in range(1000)]
    rows[900][1] = "jo@example.com"
    path = write_csv(tmp_path / "big.csv", rows)
    preview = build_preview(path, sniff_file(path))
    assert preview.truncated and preview.table is not None
    assert len(preview.table) == 500 and len(preview.table[0]) == 50
    assert "jo@example.com" in preview.text


def test_csv_with_a_huge_field_does_not_fail(tmp_path: Path) -> None:
    path = write(tmp_path / "huge.csv", b'a,b\n1,"' + b"x" * 300_000 + b'"\n2,3\n')
    preview = build_preview(path, sniff_file(path))
    assert preview.kind == "table" and preview.truncated
    assert preview.table is not None and preview.table[0] == ["a", "b"]


def test_empty_csv(tmp_path: Path) -> None:
    path = write(tmp_path / "empty.csv", b"\n\n")
    preview = build_preview(path, sniff_file(path))
    assert preview.kind == "none" and "empty" in (preview.note or "")


# --- previews: emails -------------------------------------------------------------------------

def make_eml(path: Path) -> Path:
    msg = EmailMessage()
    msg["From"] = "Jo Bloggs <jo@example.com>"
    msg["To"] = "Sam Smith <sam@example.com>, help@example.com"
    msg["Cc"] = "Team Lead <lead@example.com>"
    msg["Subject"] = "Complaint about my delivery — résolu"
    msg["Date"] = "Tue, 05 Mar 2024 10:15:00 +0000"
    msg.set_content("Dear Sam,\nThanks for sorting it. Call me on 07700 900123.\n")
    msg.add_alternative("<p>Dear Sam,</p><script>alert(1)</script>", subtype="html")
    msg.add_attachment(b"%PDF-1.4 receipt", maintype="application", subtype="pdf",
                       filename="receipt.pdf")
    path.write_bytes(bytes(msg))
    return path


def test_eml_preview(tmp_path: Path) -> None:
    path = make_eml(tmp_path / "complaint")
    sniffed = sniff_file(path)
    assert sniffed.media_type == "message/rfc822" and sniffed.label == "Email (.eml)"
    preview = build_preview(path, sniffed)
    assert preview.kind == "email" and preview.email is not None
    email = preview.email
    assert email.sender == "Jo Bloggs <jo@example.com>"
    assert email.to == ["Sam Smith <sam@example.com>", "help@example.com"]
    assert email.cc == ["Team Lead <lead@example.com>"]
    assert email.subject == "Complaint about my delivery — résolu"
    assert email.date == "2024-03-05T10:15:00+00:00"
    assert email.body_text.startswith("Dear Sam,") and "<script" not in email.body_text
    assert [a["name"] for a in email.attachments] == ["receipt.pdf"]
    assert email.attachments[0]["size"] == 16
    assert email.attachments[0]["media_type"] == "application/pdf"
    assert [n for n, _ in email.headers][:5] == ["From", "To", "Cc", "Subject", "Date"]
    assert "07700 900123" in preview.text


def test_html_only_eml_is_shown_as_text(tmp_path: Path) -> None:
    msg = EmailMessage()
    msg["From"] = "jo@example.com"
    msg["Subject"] = "Hi"
    msg.set_content("<html><head><style>p{}</style></head><body><p>Hello <b>there</b></p>"
                    "<script>alert(1)</script></body></html>", subtype="html")
    path = write(tmp_path / "a.eml", bytes(msg))
    preview = build_preview(path, sniff_file(path))
    assert preview.email is not None and preview.email.body_text == "Hello there"
    assert preview.email.date is None


def test_malformed_eml_never_raises(tmp_path: Path) -> None:
    data = (b"From: <<<broken@@\r\nTo: ,,,;;\r\nSubject: =?x-unknown?q?oops?=\r\n"
            b"Date: not a date\r\nContent-Type: text/plain; charset=x-no-such-charset\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n!!!not base64\xff\xfe\r\n")
    path = write(tmp_path / "broken.eml", data)
    sniffed = sniff_file(path)
    assert sniffed.media_type == "message/rfc822"
    preview = build_preview(path, sniffed)
    assert preview.kind in ("email", "none")
    if preview.email is not None:
        assert preview.email.date is None


# --- previews: Outlook .msg -------------------------------------------------------------------

def make_msg(path: Path) -> Path:
    """Write a small Outlook message with extract-msg's own OLE writer."""
    from extract_msg.ole_writer import OleWriter

    def entry(tag: int, value: bytes) -> bytes:
        return struct.pack("<II", tag, 6) + value

    writer = OleWriter()

    def strings(prefix: str, values: dict[int, str]) -> bytes:
        out = b""
        for tag, text in values.items():
            data = text.encode("utf-16-le")
            writer.addEntry(f"{prefix}__substg1.0_{tag:08X}", data)
            out += entry(tag, struct.pack("<II", len(data), 0))
        return out

    headers = ("From: Jo Bloggs <jo@example.com>\r\nTo: Sam Smith <sam@example.com>\r\n"
               "Cc: Lead <lead@example.com>\r\nSubject: Late delivery\r\n"
               "Date: Tue, 05 Mar 2024 10:15:00 +0000\r\n\r\n")
    props = struct.pack("<8xIIII8x", 0, 1, 0, 1)
    props += strings("", {0x001A001F: "IPM.Note", 0x0037001F: "Late delivery",
                          0x1000001F: "Dear Sam,\r\nMy parcel is late. Ring 07700 900123.",
                          0x0C1A001F: "Jo Bloggs", 0x007D001F: headers})
    when = int((datetime(2024, 3, 5, 10, 15) - datetime(1601, 1, 1)).total_seconds() * 10**7)
    props += entry(0x00390040, struct.pack("<Q", when))
    writer.addEntry("__properties_version1.0", props)
    writer.addEntry("__nameid_version1.0", storage=True)
    for stream in ("00020102", "00030102", "00040102"):
        writer.addEntry(f"__nameid_version1.0/__substg1.0_{stream}", b"")
    attach = "__attach_version1.0_#00000000/"
    writer.addEntry(attach[:-1], storage=True)
    attach_props = bytes(8) + strings(attach, {0x3707001F: "photo.png",
                                               0x370E001F: "image/png"})
    data = png_bytes()
    writer.addEntry(f"{attach}__substg1.0_37010102", data)
    attach_props += entry(0x37010102, struct.pack("<II", len(data), 0))
    attach_props += entry(0x37050003, struct.pack("<II", 1, 0))
    writer.addEntry(f"{attach}__properties_version1.0", attach_props)
    writer.write(str(path))
    return path


def test_msg_preview(tmp_path: Path) -> None:
    path = make_msg(tmp_path / "late.msg")
    sniffed = sniff_file(path, "late.bin")
    assert sniffed.media_type == "application/vnd.ms-outlook" and sniffed.category == "email"
    preview = build_preview(path, sniffed)
    assert preview.kind == "email", preview.note
    email = preview.email
    assert email is not None
    assert email.subject == "Late delivery"
    assert "jo@example.com" in email.sender
    assert email.to == ["Sam Smith <sam@example.com>"]
    assert email.cc == ["Lead <lead@example.com>"]
    assert email.date is not None and email.date.startswith("2024-03-05T10:15:00")
    assert "My parcel is late." in email.body_text and "\x00" not in email.body_text
    assert email.attachments == [{"name": "photo.png", "size": len(png_bytes()),
                                  "media_type": "image/png"}]
    assert ("Subject", "Late delivery") in email.headers
    assert "07700 900123" in preview.text


def test_truncated_or_garbage_msg_gets_a_note(tmp_path: Path) -> None:
    good = make_msg(tmp_path / "good.msg").read_bytes()
    for name, data in (("cut.msg", good[:1100]),
                       ("junk.msg", parsing._OLE_SIGNATURE + os.urandom(3000))):
        path = write(tmp_path / name, data)
        sniffed = sniff_file(path)
        assert sniffed.media_type == "application/vnd.ms-outlook"
        preview = build_preview(path, sniffed)
        assert preview.kind == "none"
        assert preview.note == ("This Outlook email could not be read, so it is kept as it is "
                                "without a preview.")


def test_other_ole_files(tmp_path: Path) -> None:
    from extract_msg.ole_writer import OleWriter

    writer = OleWriter()
    writer.addEntry("WordDocument", b"\0" * 600)
    writer.write(str(tmp_path / "old.doc"))
    sniffed = sniff_file(tmp_path / "old.doc", "old.bin")
    assert sniffed.media_type == "application/msword" and sniffed.category == "document"
    preview = build_preview(tmp_path / "old.doc", sniffed)
    assert preview.note == ("There is no preview for a Word document (old format) here. "
                            "Download the file to open it.")
    assert "an Excel spreadsheet" in (build_preview(tmp_path / "old.doc", TYPES["xls"]).note
                                      or "")

    writer = OleWriter()
    writer.addEntry("SummaryInformation", b"\0" * 100)
    writer.write(str(tmp_path / "installer.msg"))
    with pytest.raises(UnsupportedFile):
        sniff_file(tmp_path / "installer.msg")
    write(tmp_path / "junk.bin", parsing._OLE_SIGNATURE + bytes(100))
    with pytest.raises(UnsupportedFile):
        sniff_file(tmp_path / "junk.bin")


# --- previews: images, media, text ------------------------------------------------------------

def exif_with_date(value: str) -> Image.Exif:
    exif = Image.Exif()
    exif[0x8769] = {36867: value}
    return exif


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_photo_preview_reads_when_it_was_taken(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"photo.{fmt.lower()}"
    Image.new("RGB", (64, 48), "red").save(path, fmt, exif=exif_with_date("2024:03:05 10:15:00"))
    sniffed = sniff_file(path)
    assert sniffed.category == "image"
    preview = build_preview(path, sniffed)
    assert preview.kind == "image"
    assert (preview.width, preview.height) == (64, 48)
    assert preview.taken_at == "2024-03-05T10:15:00"


def test_screenshot_without_exif_gets_a_preview(tmp_path: Path) -> None:
    # Looking for EXIF in a PNG that has none reads on past the image data: the check of the
    # file must not depend on what that left behind.
    path = tmp_path / "screen.png"
    Image.new("RGB", (320, 200), "white").save(path, "PNG")
    preview = build_preview(path, sniff_file(path))
    assert preview.kind == "image" and (preview.width, preview.height) == (320, 200)
    assert preview.taken_at is None


def test_photo_without_a_usable_date(tmp_path: Path) -> None:
    path = tmp_path / "a.jpg"
    Image.new("RGB", (8, 8)).save(path, exif=exif_with_date("0000:00:00 00:00:00"))
    assert build_preview(path, sniff_file(path)).taken_at is None
    Image.new("RGB", (8, 8)).save(path)
    assert build_preview(path, sniff_file(path)).taken_at is None


def test_truncated_jpeg_gets_a_note(tmp_path: Path) -> None:
    noisy = Image.effect_noise((400, 300), 80).convert("RGB")
    buffer = io.BytesIO()
    noisy.save(buffer, "JPEG", quality=95)
    data = buffer.getvalue()
    path = write(tmp_path / "cut.jpg", data[: len(data) // 2])
    sniffed = sniff_file(path)
    assert sniffed.media_type == "image/jpeg"
    preview = build_preview(path, sniffed)
    assert preview.kind == "none"
    assert preview.note == ("This photo could not be read, so it is kept as it is without a "
                            "preview.")


def test_truncated_png_gets_a_note(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    Image.effect_noise((200, 200), 80).save(buffer, "PNG")
    path = write(tmp_path / "cut.png", buffer.getvalue()[:3000])
    assert build_preview(path, sniff_file(path)).kind == "none"


def test_image_decompression_bomb_is_not_decoded(tmp_path: Path) -> None:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))

    ihdr = struct.pack(">IIBBBBB", 30_000, 30_000, 8, 2, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")
    path = write(tmp_path / "huge.png", data)
    preview = build_preview(path, sniff_file(path))
    assert preview.kind == "none" and "too large" in (preview.note or "")
    assert Image.MAX_IMAGE_PIXELS == parsing.MAX_IMAGE_PIXELS


def test_a_heic_that_is_only_a_header_gets_a_note(tmp_path: Path) -> None:
    # Real HEIC photos are converted for preview (tests/test_screen_copies.py); this one has
    # nothing in it to convert.
    path = write(tmp_path / "IMG_1.heic", ftyp(b"heic", b"mif1heic"))
    preview = build_preview(path, sniff_file(path))
    assert preview.kind == "none" and "could not be read" in (preview.note or "")
    assert preview.screen is None


@pytest.mark.parametrize("data", [b"ID3\x04\x00" + bytes(50), ftyp(b"isom", b"isom"),
                                  b"RIFF\x24\x00\x00\x00WAVEfmt "])
def test_audio_and_video_are_media(tmp_path: Path, data: bytes) -> None:
    path = write(tmp_path / "clip", data)
    sniffed = sniff_file(path)
    assert sniffed.category in ("audio", "video")
    assert build_preview(path, sniffed).kind == "media"


def test_a_pdf_that_is_only_a_header_gets_a_note(tmp_path: Path) -> None:
    path = write(tmp_path / "a.pdf", b"%PDF-1.4\n")
    preview = build_preview(path, sniff_file(path))
    assert preview.kind == "none" and "damaged or not really a PDF" in (preview.note or "")


def test_text_preview_is_capped(tmp_path: Path) -> None:
    path = write(tmp_path / "long.txt", ("word " * 60_000).encode())
    preview = build_preview(path, sniff_file(path))
    assert preview.kind == "text" and preview.truncated
    assert len(preview.text) == parsing.MAX_TEXT_CHARS
    path = write(tmp_path / "old.txt", "Café notes £5\n".encode("cp1252"))
    assert build_preview(path, sniff_file(path)).text == "Café notes £5\n"
    path = write(tmp_path / "wide.txt", "Notes in UTF-16\n".encode("utf-16"))
    sniffed = sniff_file(path)
    assert sniffed.media_type == "text/plain"
    assert build_preview(path, sniffed).text == "Notes in UTF-16\n"


# --- never raises ------------------------------------------------------------------------------

@pytest.mark.parametrize("key", sorted(TYPES))
@pytest.mark.parametrize("data", [b"", b"\x00" * 10, os.urandom(5000), b"PK\x03\x04garbage",
                                  parsing._OLE_SIGNATURE + bytes(600)])
def test_build_preview_never_raises(tmp_path: Path, key: str, data: bytes) -> None:
    path = write(tmp_path / "file", data)
    preview = build_preview(path, TYPES[key])
    assert isinstance(preview, Preview)
    if preview.kind == "none":
        assert preview.note


def test_missing_file_gets_a_note(tmp_path: Path) -> None:
    preview = build_preview(tmp_path / "gone.docx", TYPES["docx"])
    assert preview.kind == "none" and preview.note


# --- JSON -----------------------------------------------------------------------------------------

def test_preview_json_round_trip(tmp_path: Path) -> None:
    preview = build_preview(make_eml(tmp_path / "a.eml"), TYPES["eml"])
    data = json.loads(json.dumps(preview.to_json()))
    assert Preview.from_json(data) == preview
    table = Preview(kind="table", table=[["a", "b"]], truncated=True, text="a\tb")
    assert Preview.from_json(json.loads(json.dumps(table.to_json()))) == table
    assert Preview.from_json({}) == Preview(kind="none")
    assert Preview.from_json({"kind": "email", "email": {"headers": [["A", "b"], "bad"]}}).email \
        == EmailPreview(headers=[("A", "b")])
