"""Spreadsheets (.xlsx) and CSV files shown as bounded tables."""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from portfolio.evidence.parsing.limits import (
    CSV_SNIFF_CHARS,
    HEAD_BYTES,
    MAX_CELL_CHARS,
    MAX_LINE_CHARS,
    MAX_SHEETS,
    MAX_TABLE_COLUMNS,
    MAX_TABLE_ROWS,
    MAX_TEXT_CHARS,
    MAX_TEXT_ROWS,
)
from portfolio.evidence.parsing.model import Preview, _check_zip
from portfolio.evidence.parsing.sniffing import Sniffed


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
