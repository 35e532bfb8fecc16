"""Domain exceptions raised by services and turned into responses by the web layer."""

from __future__ import annotations


class DomainError(Exception):
    """Base class: a message meant for the person who made the request."""

    status = 400
    title = "Request failed"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class PermissionDenied(DomainError):
    status = 403
    title = "Not allowed"


class NotFound(DomainError):
    status = 404
    title = "Not found"


class ValidationFailed(DomainError):
    status = 422
    title = "Check what you entered"


class InvalidTransition(DomainError):
    status = 409
    title = "Not possible in the current state"


class Throttled(DomainError):
    status = 429
    title = "Too many attempts"
