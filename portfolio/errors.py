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


class Removed(DomainError):
    """Removed on purpose (under the centre's retention policy): gone for good, not missing."""

    status = 410
    title = "Removed under the retention policy"


class Throttled(DomainError):
    status = 429
    title = "Too many attempts"


STORED_FILE_DAMAGED_DETAIL = (
    "This file is damaged in the centre's file store: its bytes no longer match the "
    "fingerprint (SHA-256) taken when it was uploaded, so it is not shown. The centre has been "
    "told. Nothing else in the portfolio is affected.")


class StoredFileDamaged(DomainError):
    """A stored object's bytes no longer match its SHA-256 (or the object is gone).

    Not a crash and not the requester's fault: a 409 that says the file is damaged in the
    store, that the centre has been told, and that nothing else is affected.
    """

    status = 409
    title = "This file is damaged in the store"

    def __init__(self, sha256: str, message: str = STORED_FILE_DAMAGED_DETAIL, *,
                 missing: bool = False) -> None:
        super().__init__(message)
        self.sha256 = sha256
        self.missing = missing
