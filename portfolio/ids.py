"""Record ids read from URLs, forms and query strings.

Ids are INTEGER columns: 32-bit on PostgreSQL (SQLite's are 64-bit). A number above 2^31 - 1,
which no record can have, or text that only looks like digits to Python ("²", "٣"), must read
as "no such record", never as a server error.
"""

from __future__ import annotations

import re

from werkzeug.routing import IntegerConverter

MAX_ID = 2**31 - 1
_DIGITS = re.compile(r"[0-9]{1,10}")


def parse_id(raw: object) -> int | None:
    """The id an ASCII string of digits names, or None when it cannot be a record's id."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw if 0 < raw <= MAX_ID else None
    if not isinstance(raw, str):
        return None
    text = raw.strip()
    if not _DIGITS.fullmatch(text):
        return None
    value = int(text)
    return value if 0 < value <= MAX_ID else None


def parse_ids(values: list[str]) -> list[int]:
    """The valid ids among many, in order; anything else is left out."""
    return [n for n in (parse_id(v) for v in values) if n is not None]


class IdConverter(IntegerConverter):
    """`<int:...>` in routes: an id the database cannot hold reads as 0, which no record has,
    so the view answers 404 as for any unknown id. (Refusing it in the converter instead makes
    the router answer 405 for other methods on the same path, naming the wrong methods.)"""

    def to_python(self, value: str) -> int:
        number = int(value)
        return number if number <= MAX_ID else 0
