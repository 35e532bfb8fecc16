"""Source lines: where each key and value sits in the TOML text, for messages that point at it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_HEADER_RE = re.compile(r"^\s*(\[\[|\[)\s*([A-Za-z0-9_.\-\s]+?)\s*(\]\]|\])\s*(?:#.*)?$")
_KEY_RE = re.compile(r"""^\s*("[^"]*"|'[^']*'|[A-Za-z0-9_-]+)\s*[=.]""")
_TRIPLE_QUOTE_RE = re.compile(r"\"\"\"|'''")


@dataclass
class _Table:
    """Where a table starts in the source and where each of its keys is set."""

    name: str
    line: int | None
    keys: dict[str, int] = field(default_factory=dict)

    def line_of(self, key: str | None = None) -> int | None:
        """Return the line setting ``key`` in this table, else the table's header line."""
        if key is not None and key in self.keys:
            return self.keys[key]
        return self.line


class _SourceIndex:
    """Line numbers of the table headers and keys of a TOML text, found by scanning it."""

    def __init__(self, text: str) -> None:
        self.root = _Table("", None)
        self.tables: list[_Table] = []
        self._scan(text)

    def nth(self, name: str, index: int) -> _Table:
        """Return the ``index``-th table headed ``[name]`` or ``[[name]]`` (0-based)."""
        matches = [t for t in self.tables if t.name == name]
        return matches[index] if index < len(matches) else _Table(name, None)

    def _scan(self, text: str) -> None:
        """Record headers and keys line by line, skipping multi-line strings."""
        current, open_quote = self.root, None
        for number, line in enumerate(text.split("\n"), start=1):
            if open_quote is None:
                current = self._scan_line(line, number, current)
            open_quote = _open_quote_after(line, open_quote)
        for table in self.tables:
            self.root.keys.setdefault(table.name.split(".")[0], table.line or 0)

    def _scan_line(self, line: str, number: int, current: _Table) -> _Table:
        """Record a header or key on this line; return the table now being filled."""
        header = _HEADER_RE.match(line)
        if header and (header.group(1) == "[") == (header.group(3) == "]"):
            table = _Table(re.sub(r"\s*\.\s*", ".", header.group(2)), number)
            self.tables.append(table)
            return table
        key = _KEY_RE.match(line)
        if key:
            current.keys.setdefault(key.group(1).strip("\"'"), number)
        return current


def _open_quote_after(line: str, open_quote: str | None) -> str | None:
    """Return the multi-line string delimiter still open at the end of ``line``."""
    position = 0
    while True:
        if open_quote is None:
            start = _TRIPLE_QUOTE_RE.search(line, position)
            if start is None:
                return None
            open_quote, position = start.group(), start.end()
        else:
            end = line.find(open_quote, position)
            if end < 0:
                return open_quote
            open_quote, position = None, end + 3
