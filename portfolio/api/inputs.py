"""Paging API collections by keyset: reading `?after=` and `?limit=` (a 422 naming the field
when either is wrong, never a server error), cutting the page, and the `next` link."""

from __future__ import annotations

from typing import Any

from flask import jsonify, request, url_for

from portfolio.errors import ValidationFailed
from portfolio.ids import parse_id
from portfolio.paging import seek

DEFAULT_PAGE = 100
MAX_PAGE = 500


def page_params() -> tuple[int, int]:
    """`?after=<id>` (exclusive; 0 when absent) and `?limit=` (100 by default, at most 500).

    :raises ValidationFailed: either is not a whole number in range.
    """
    raw_limit = request.args.get("limit")
    limit = DEFAULT_PAGE
    if raw_limit is not None:
        limit = parse_id(raw_limit) or 0
        if not 1 <= limit <= MAX_PAGE:
            raise ValidationFailed(f"limit is a whole number from 1 to {MAX_PAGE}.",
                                   field="limit")
    raw_after = request.args.get("after")
    after = 0
    if raw_after is not None:
        parsed = parse_id(raw_after)
        if parsed is None:
            raise ValidationFailed("after is the id of the last item of the previous page.",
                                   field="after")
        after = parsed
    return after, limit


def next_page_url(last_id: int, limit: int) -> str:
    """This collection's address after `last_id`, keeping its other query parameters."""
    args = {k: v for k, v in request.args.items() if k not in ("after", "limit")}
    return url_for(request.endpoint or "", **(request.view_args or {}), **args,
                   after=last_id, limit=limit)


def keyset_page(items: list[Any], *, key: Any = None) -> tuple[list[Any], str | None]:
    """One page of a collection already in memory (a bounded one: an enrolment's decisions or
    signatures, the units), in id order, and the address of the next page or None.

    Keyset paging: a page is defined by the last id seen, so items added or removed meanwhile
    never shift later pages, and no item is skipped or shown twice."""
    key = key or (lambda item: item.id)
    after, limit = page_params()
    ordered = sorted((item for item in items if key(item) > after), key=key)
    page = ordered[:limit]
    if len(ordered) <= limit:
        return page, None
    return page, next_page_url(key(page[-1]), limit)


def keyset_query(session: Any, query: Any, id_column: Any, *,
                 unique: bool = False) -> tuple[list[Any], str | None]:
    """One page of a query in SQL: the rows after `?after=` in id order, one more than the page
    to know whether another follows (LIMIT, no OFFSET and no COUNT, so every page costs the
    same however far along it is)."""
    after, limit = page_params()
    result = session.scalars(seek(query, (id_column,), (after,), limit=limit + 1))
    rows = list(result.unique() if unique else result)
    if len(rows) <= limit:
        return rows, None
    page = rows[:limit]
    return page, next_page_url(page[-1].id, limit)


def paged(items: list[Any], following: str | None, **extra: Any) -> Any:
    """The JSON body of one page, `{"items", "next", ...}`, with an RFC 8288 `Link` header to
    the next page when there is one."""
    response = jsonify({"items": items, "next": following, **extra})
    if following:
        response.headers["Link"] = f'<{following}>; rel="next"'
    return response
