"""Paged HTML lists: one page of a query in SQL (LIMIT/OFFSET plus one COUNT), and what the
pager under a table needs to link to the other pages with the same filters."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import request, url_for
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

PAGE_SIZE = 50


@dataclass(frozen=True)
class Page:
    items: list[Any]
    number: int
    size: int
    total: int
    param: str = "page"

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))

    @property
    def first_shown(self) -> int:
        return (self.number - 1) * self.size + 1 if self.total else 0

    @property
    def last_shown(self) -> int:
        return min(self.number * self.size, self.total)

    def url(self, number: int) -> str:
        """This list's address at another page, keeping its filters."""
        values: dict[str, Any] = dict(request.view_args or {})
        values.update((k, v) for k, v in request.args.items() if k != self.param)
        if number > 1:
            values[self.param] = str(number)
        return url_for(str(request.endpoint), **values)


def contains(search: str) -> str | None:
    """A LIKE pattern (escaped with a backslash) for text containing the search words, compared
    in lower case; None when there is nothing to search for."""
    # NUL cannot be stored in a PostgreSQL text value, so it cannot be in one either.
    words = " ".join((search or "").replace("\x00", " ").split()).lower()
    if not words:
        return None
    return "%" + words.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def requested_page(param: str = "page") -> int:
    """The page number asked for in `?page=`: anything that is not a positive whole number is
    the first page, and a number past the end (however long) is the last."""
    raw = request.args.get(param) or ""
    if not (raw.isascii() and raw.isdigit()):
        return 1
    return max(1, int(raw) if len(raw) <= 12 else 10**12)


def paginate(session: Session, query: Select, *, size: int = PAGE_SIZE, unique: bool = False,
             param: str = "page", load: Callable[[list[Any]], list[Any]] | None = None) -> Page:
    """One page of an ordered query, the page named by `?<param>=` (two lists on one page
    each have their own). A page past the end shows the last page.

    With `load`, the query selects ids only (cheap to sort and cut, whatever the joins a row
    needs) and `load` reads the rows of the one page."""
    total = session.scalar(select(func.count()).select_from(
        query.order_by(None).options().subquery())) or 0
    pages = max(1, -(-total // size))
    number = min(requested_page(param), pages)
    result = session.scalars(query.limit(size).offset((number - 1) * size))
    items = list(result.unique() if unique else result)
    if load is not None:
        items = load(items)
    return Page(items, number, size, total, param)
