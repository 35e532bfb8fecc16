"""Reading API request bodies: anything that is not what the document promises is a 422 with
the field named, never a server error."""

from __future__ import annotations

from typing import Any

from flask import request

from portfolio.errors import ValidationFailed
from portfolio.ids import MAX_ID


def json_object(*, optional: bool = False) -> dict[str, Any]:
    """The JSON object sent; with `optional`, no body at all reads as an empty object. A list,
    a string, a number or `true` is refused."""
    body = request.get_json(silent=True)
    if body is None and optional and not request.get_data(cache=True).strip():
        return {}
    if not isinstance(body, dict):
        raise ValidationFailed("Send a JSON object.")
    return body


def whole_number(value: Any, field: str, message: str) -> int:
    """A non-negative whole number sent as a JSON integer or as digits."""
    if isinstance(value, bool):
        raise ValidationFailed(message, field=field)
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        number = int(value.strip())
    else:
        raise ValidationFailed(message, field=field)
    if not 0 <= number <= MAX_ID:
        raise ValidationFailed(message, field=field)
    return number


DEFAULT_PAGE = 100
MAX_PAGE = 500


def keyset_page(items: list[Any], *, key: Any = None) -> tuple[list[Any], str | None]:
    """One page of a collection in id order, from `?after=<id>` (exclusive), `?limit=` items
    (100 by default, at most 500), and the address of the next page or None.

    Keyset paging: a page is defined by the last id seen, so items added or removed meanwhile
    never shift later pages, and no item is skipped or shown twice."""
    from flask import url_for

    from portfolio.ids import parse_id

    key = key or (lambda item: item.id)
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
    ordered = sorted((item for item in items if key(item) > after), key=key)
    page = ordered[:limit]
    if len(ordered) <= limit:
        return page, None
    args = {k: v for k, v in request.args.items() if k not in ("after", "limit")}
    return page, url_for(request.endpoint or "", **(request.view_args or {}), **args,
                         after=key(page[-1]), limit=limit)
