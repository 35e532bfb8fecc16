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
