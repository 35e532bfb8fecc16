"""Paged lists, by keyset: a page is the rows after (or before) the sort key of the row that
ended (or began) the page before, in the list's visible order with the id as tie-breaker. The
database seeks to the key in the list's index and reads one page plus one row, so page 200 of
10,000 learners costs what page 1 costs: no OFFSET and no COUNT past the first page. Rows added
or removed between two clicks never shift a row onto two pages or off both.

The HTML lists carry the cursor as `?<param>=a<token>` (after) or `b<token>` (before), the
token the key values as URL-safe base64 of JSON; the API carries `?after=<id>` (its lists are
in id order) and shares `seek` with them."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from flask import request, url_for
from sqlalchemy import Select, func, select, tuple_
from sqlalchemy.orm import Session

from portfolio.errors import DomainError

PAGE_SIZE = 50
# A key value longer than any name or date the lists sort by is not one this app wrote.
_MAX_TOKEN = 2000


class BadCursor(DomainError):
    status = 400
    title = "Page link not valid"


def seek(query: Select, key: Sequence[Any], values: Sequence[Any] | None, *,
         backwards: bool = False, limit: int) -> Select:
    """`query` in `key` order (descending when `backwards`), from just past `values` (None:
    from the start), `limit` rows. The key must end in a unique column (the id)."""
    columns = list(key)
    if values is not None:
        here = tuple_(*columns) if len(columns) > 1 else columns[0]
        there = tuple_(*values) if len(columns) > 1 else values[0]
        query = query.where(here < there if backwards else here > there)
    order = [c.desc() for c in columns] if backwards else columns
    return query.order_by(None).order_by(*order).limit(limit)


def encode_cursor(values: Sequence[Any]) -> str:
    raw = json.dumps(list(values), separators=(",", ":"), ensure_ascii=False)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(token: str, types: Sequence[type]) -> list[Any]:
    """The key values in a token, one of each of `types`; BadCursor (400) for anything this
    app did not write (a value of another type would fail in PostgreSQL's comparison)."""
    if len(token) > _MAX_TOKEN:
        raise BadCursor("This page link is not valid. Go back to the first page of the list.")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        values = json.loads(raw.decode())
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise BadCursor(
            "This page link is not valid. Go back to the first page of the list.") from None
    if (not isinstance(values, list) or len(values) != len(types)
            or not all(type(v) is t for v, t in zip(values, types, strict=True))
            or not all(-2**63 <= v < 2**63 for v in values if isinstance(v, int))
            or not all("\x00" not in v for v in values if isinstance(v, str))):
        raise BadCursor("This page link is not valid. Go back to the first page of the list.")
    return values


@dataclass(frozen=True)
class Page:
    items: list[Any]
    size: int
    next_key: list[Any] | None
    previous_key: list[Any] | None
    # Counted on the first page only (one cheap COUNT when a list is opened, none on the pages
    # after it); None on later pages.
    total: int | None
    param: str = "page"

    @property
    def is_first(self) -> bool:
        return self.total is not None

    @property
    def has_next(self) -> bool:
        return self.next_key is not None

    @property
    def has_previous(self) -> bool:
        return self.previous_key is not None

    @property
    def several(self) -> bool:
        """Whether there is more than this page (so the pager is worth showing)."""
        return self.has_next or self.has_previous

    def _url(self, cursor: str | None) -> str:
        values: dict[str, Any] = dict(request.view_args or {})
        values.update((k, v) for k, v in request.args.items() if k != self.param)
        if cursor:
            values[self.param] = cursor
        return url_for(str(request.endpoint), **values)

    @property
    def first_url(self) -> str:
        """This list's first page, keeping its filters."""
        return self._url(None)

    @property
    def next_url(self) -> str | None:
        return self._url("a" + encode_cursor(self.next_key)) if self.next_key else None

    @property
    def previous_url(self) -> str | None:
        if self.previous_key is None:
            return None
        return self._url("b" + encode_cursor(self.previous_key))


def contains(search: str) -> str | None:
    """A LIKE pattern (escaped with a backslash) for text containing the search words, compared
    in lower case; None when there is nothing to search for."""
    # NUL cannot be stored in a PostgreSQL text value, so it cannot be in one either.
    words = " ".join((search or "").replace("\x00", " ").split()).lower()
    if not words:
        return None
    return "%" + words.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def requested_page(param: str = "page") -> int:
    """A page number asked for in `?page=` (the search results, whose order is by relevance and
    which stop at a few pages): anything that is not a positive whole number is the first
    page."""
    raw = request.args.get(param) or ""
    if not (raw.isascii() and raw.isdigit()):
        return 1
    return max(1, int(raw) if len(raw) <= 12 else 10**12)


def _python_type(column: Any) -> type:
    kind = column.type.python_type
    if kind not in (str, int):
        raise TypeError(f"A list's sort key is text or whole numbers, not {kind}.")
    return kind


def paginate(session: Session, query: Select, key: Sequence[Any], *, size: int = PAGE_SIZE,
             param: str = "page", descending: bool = False,
             load: Callable[[list[Any]], list[Any]] | None = None) -> Page:
    """One page of `query` in `key` order (the list's visible order, ending in the id), the
    page named by the cursor in `?<param>=` (two lists on one page each have their own).
    With `descending`, the list shows the largest key first (the newest, by id).

    With `load`, the query selects ids only (cheap to seek and cut, whatever the joins a row
    needs) and `load` reads the rows of the one page.

    :raises BadCursor: the cursor is not one this list wrote (a 400 page).
    """
    raw = request.args.get(param) or ""
    width = len(key)
    direction, values = "", None
    previous_key: list[Any] | None
    next_key: list[Any] | None
    if raw:
        direction, token = raw[0], raw[1:]
        if direction not in "ab" or not token:
            raise BadCursor("This page link is not valid. Go back to the first page of the list.")
        values = decode_cursor(token, [_python_type(column) for column in key])
    backwards = direction == "b"

    def fetch(after: list[Any] | None, back: bool) -> tuple[list[Any], bool]:
        # A descending list is walked like an ascending one read from its end.
        rows = list(session.execute(seek(query.add_columns(*key), key, after,
                                         backwards=back != descending, limit=size + 1)))
        return rows[:size][::-1] if back else rows[:size], len(rows) > size

    rows, more = fetch(values, backwards)
    if backwards and not more:
        # Walked back to the start: show the first page as itself (its count, no "previous").
        values, backwards = None, False
        rows, more = fetch(None, False)
    keys = [list(row[-width:]) for row in rows]
    items = [row[0] for row in rows]
    if backwards:
        # There are rows after these (the cursor came from one of them).
        previous_key, next_key = keys[0], (keys[-1] if keys else values)
    else:
        previous_key = keys[0] if (values is not None and keys) else None
        next_key = keys[-1] if more else None
    total = None
    if values is None:
        total = len(rows) if not more else session.scalar(select(func.count()).select_from(
            query.order_by(None).subquery())) or 0
    if load is not None:
        items = load(items)
    return Page(items, size, next_key, previous_key, total, param)
