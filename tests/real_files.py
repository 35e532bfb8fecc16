"""Real PDF and HEIC files, made by the same libraries that read them elsewhere (pikepdf writes
the PDFs; pillow-heif's own encoder, libheif with x265, writes the HEIC photos)."""

from __future__ import annotations

import io

import pikepdf
import pillow_heif
from PIL import Image

RED = (220, 30, 30)
GREEN = (30, 160, 60)
BLUE = (30, 60, 200)
A4 = (595, 842)  # points


def pdf_bytes(colours: list[tuple[int, int, int]], *, size: tuple[float, float] = A4,
              password: str | None = None) -> bytes:
    """A PDF with one page per colour, each page filled with it."""
    pdf = pikepdf.new()
    for colour in colours:
        pdf.add_blank_page(page_size=(min(size[0], 14_400), min(size[1], 14_400)))
        page = pdf.pages[-1]
        if size[0] > 14_400 or size[1] > 14_400:  # beyond what pikepdf will make on its own
            page.obj.MediaBox = pikepdf.Array([0, 0, size[0], size[1]])
        r, g, b = (c / 255 for c in colour)
        page.obj.Contents = pikepdf.Stream(
            pdf, f"{r:.3f} {g:.3f} {b:.3f} rg 0 0 {size[0]} {size[1]} re f".encode())
    out = io.BytesIO()
    if password is None:
        pdf.save(out)
    else:
        pdf.save(out, encryption=pikepdf.Encryption(owner=password + "-owner", user=password))
    return out.getvalue()


def blank_pdf_bytes(pages: int) -> bytes:
    """A PDF with this many blank A4 pages."""
    pdf = pikepdf.new()
    for _ in range(pages):
        pdf.add_blank_page(page_size=A4)
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


def heic_bytes(colour: tuple[int, int, int] = RED, *, size: tuple[int, int] = (1600, 1200),
               taken: str | None = "2026:01:10 09:30:00", mark: bool = True) -> bytes:
    """A HEIC photo as an iPhone writes it (brand heic, mif1), with an EXIF date; `mark` puts
    a blue block in its top-left corner, so a turn or a flip would show."""
    pillow_heif.register_heif_opener()
    image = Image.new("RGB", size, colour)
    if mark:
        image.paste(BLUE, (0, 0, size[0] // 4, size[1] // 4))
    exif = Image.Exif()
    if taken:
        exif.get_ifd(0x8769)[36867] = taken
    out = io.BytesIO()
    image.save(out, "HEIF", quality=80, exif=exif.tobytes())
    return out.getvalue()


def text_pdf_bytes(lines: list[str]) -> bytes:
    """A one-page PDF that says these lines in Helvetica (text PDFium can read back)."""
    pdf = pikepdf.new()
    pdf.add_blank_page(page_size=A4)
    page = pdf.pages[-1]
    page.obj.Resources = pikepdf.Dictionary(Font=pikepdf.Dictionary(F1=pikepdf.Dictionary(
        Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type1, BaseFont=pikepdf.Name.Helvetica)))
    shown = " ".join(f"({line}) Tj 0 -30 Td" for line in lines)
    page.obj.Contents = pikepdf.Stream(pdf, f"BT /F1 20 Tf 72 760 Td {shown} ET".encode())
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()
