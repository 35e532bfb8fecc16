"""What views share: loading and authorising a route's object before the view runs, running
a form's service call (a refusal shown on the form), signing
forms (throttle limits, the signer's confirmation, running a signing service and re-showing a
refused page), the file store and serving a stored file, and the criteria ticked on a mapping
form. Views import these from here, never from each other."""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import current_app, flash, make_response, request, send_file
from flask_login import current_user

from portfolio import db
from portfolio.assessment.services import SignerConfirmation
from portfolio.errors import DomainError, NotFound, Removed, ValidationFailed
from portfolio.evidence.parsing import SAFE_INLINE_IMAGE_TYPES, Preview
from portfolio.evidence.screen_copy import ensure_screen_copy, has_screen_copy, screen_mimetype
from portfolio.evidence.services import MappingInput
from portfolio.evidence.storage import FileStore, file_store_for
from portfolio.ids import parse_id
from portfolio.security import client_address

# A loader: (session, the URL's id or token, the person asking) -> the object, or it raises
# NotFound (or PermissionDenied) so the view never starts with an object the person may not have.
Loader = Callable[[Any, Any, Any], Any]


def loads(*, by: str | None = None, user: Callable[[], Any] | None = None,
          **loader: Loader) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Load and authorise a route's object before the view body runs.

    `@loads(job=get_export_job)` calls `get_export_job(session, job_id, current_user)` with the
    URL's `job_id` and gives the view `job=` (the object) in place of the id; the loader's
    NotFound or PermissionDenied answers 404 or 403 before the body runs (flaskr's
    `get_post(id, check_author=True)`, Indico's `_process_args` and `_check_access`). `by`
    names the URL argument when it is not `<name>_id`; `user` gives the person asking when it
    is not the signed-in one (the API's token holder). One object a decorator; stack them for
    more, outermost first.
    """
    if len(loader) != 1:
        raise TypeError("loads() takes one name=loader")
    ((name, load),) = loader.items()
    arg = by or f"{name}_id"

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            who = user() if user is not None else current_user
            kwargs[name] = load(db.session(), kwargs.pop(arg), who)
            return view(*args, **kwargs)

        return wrapped

    return decorator


def limits() -> dict[str, int]:
    """Return the password-throttling limits shared by sign-in and signing."""
    return {"max_failures": int(current_app.config["LOGIN_MAX_FAILURES"]),
            "lockout_minutes": int(current_app.config["LOGIN_LOCKOUT_MINUTES"])}


def confirmation_from(form: Any) -> SignerConfirmation:
    """Read the typed name and password a signing form carries."""
    return SignerConfirmation(password=form.get("password", ""),
                                       typed_name=form.get("typed_name", ""),
                                       client=client_address())


def refuse(exc: DomainError, render: Any) -> Any:
    """Show a refused action's message on the page it came from, with the right status."""
    flash(exc.message, "error")
    response = make_response(render())
    response.status_code = exc.status
    return response


def run_action(action: Any, render: Any, *, keep_attempt: bool = False) -> tuple[Any, Any]:
    """Run one service call and commit; on a refusal (409, 422, 429) re-show the page with the
    message and status instead. What the refused call began is rolled back, except with
    `keep_attempt`, for signing: a wrong password is recorded, and counts towards the throttle.
    Returns (the refusal's response or None, the service's result or None)."""
    s = db.session()
    try:
        result = action()
    except DomainError as exc:
        if exc.status not in (409, 422, 429):
            raise
        if keep_attempt:
            s.commit()  # signing services confirm the signer before they write anything else
        else:
            s.rollback()
        return refuse(exc, render), None
    s.commit()
    return None, result


def form_action(form: Any, action: Any, *,
                statuses: tuple[int, ...] | None = (409, 422, 429)) -> tuple[int | None, Any]:
    """Run a validated form's service call and commit. A refusal (a domain error with one of
    `statuses`, or any with None) rolls back what the call began, puts its message on the
    form field it names or above the form, and gives its status, with which the view shows
    the form again. Returns (that status or None, the service's result or None)."""
    s = db.session()
    try:
        result = action()
    except DomainError as exc:
        if statuses is not None and exc.status not in statuses:
            raise
        s.rollback()
        show_error(form, exc)
        return exc.status, None
    s.commit()
    return None, result


def run_signed(action: Any, render: Any) -> Any:
    """Run a signing service: `run_action`, keeping a wrong-password attempt."""
    return run_action(action, render, keep_attempt=True)


def file_store() -> FileStore:
    """Return the app's content-addressed store."""
    return file_store_for(current_app.config)


def send_checked(handle: Any, *, mimetype: str, filename: str, etag: str,
                 attachment: bool) -> Any:
    """Answer with an open, already checked handle (closed when the response is), with byte
    ranges and conditional requests, never cached by the browser.

    Locally a file; with S3, a local copy made while checking it, or a reader that fetches only
    the ranges asked for. Either way seekable, so its length is known: send_file cannot know a
    handle's length, and byte ranges (recordings are sought) need it.
    """
    try:
        size = handle.seek(0, os.SEEK_END)
        handle.seek(0)
        response: Any = send_file(handle, mimetype=mimetype, as_attachment=attachment,
                                  download_name=filename, conditional=False, etag=etag,
                                  max_age=0)
        response.content_length = size
        response = response.make_conditional(request.environ, accept_ranges=True,
                                             complete_length=size)
    except BaseException:
        handle.close()
        raise
    response.headers["Cache-Control"] = "private, no-store"
    return response


def refuse_removed(item: Any) -> None:
    """A file of a version whose work was removed under retention is gone on purpose (410).

    :raises Removed: with the day it was removed.
    """
    removed_at = item.version.removed_at
    if removed_at is not None:
        raise Removed(f"This file was removed on {removed_at:%d %B %Y} under the centre's "
                   "retention policy. The record of its assessment is kept.")


def send_evidence_file(item: Any, *, download: bool, missing: str) -> Any:
    """Answer with a stored evidence file whose access was already checked.

    The bytes are re-hashed (streamed; a good check is remembered while the object's inode is
    unchanged) before anything is sent, and sent from the very handle that was checked, so a
    file swapped in the store is refused, never served; byte ranges and 304s come only after
    the check too. Only safe image types are shown inline; everything else is an attachment,
    and the response can never run script in our origin.

    :raises StoredFileDamaged: the stored bytes no longer match (a 409 page or problem+json).
    """
    refuse_removed(item)
    store = file_store()
    try:
        handle = store.open_verified(item.sha256, route=request.endpoint or "file")
    except FileNotFoundError:
        raise NotFound(missing) from None
    inline = item.media_type in SAFE_INLINE_IMAGE_TYPES and not download
    response = send_checked(handle, mimetype=item.media_type, filename=item.filename,
                            etag=item.sha256, attachment=not inline)
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


def send_screen_copy(item: Any, *, missing: str) -> Any:
    """Answer with the screen copy of an evidence file whose access was already checked: page 1
    of a PDF, or a HEIC/HEIF photo as JPEG (see `portfolio.evidence.screen_copy`).

    The original is checked against its SHA-256 first, and a copy missing from the store is
    made again from the checked bytes. A file with no screen copy (another type, or one whose
    preview note says why there is none) is a 404.

    :raises StoredFileDamaged: the original's bytes no longer match (a 409 page).
    """
    refuse_removed(item)
    none = "There is no preview image for this file. Download it to see it."
    if not has_screen_copy(item.media_type) \
            or Preview.from_json(item.preview).kind not in ("page", "image"):
        raise NotFound(none)
    store = file_store()
    try:
        handle = store.open_verified(item.sha256, route=request.endpoint or "preview")
    except FileNotFoundError:
        raise NotFound(missing) from None
    with handle:
        data = ensure_screen_copy(store, item.sha256, item.media_type, handle)
    if data is None:
        raise NotFound(none)
    response = make_response(data)
    response.mimetype = screen_mimetype(item.media_type)
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response.headers["Cache-Control"] = "private, no-store"
    return response


def mapping_inputs(form: Any) -> list[MappingInput]:
    wanted = []
    for raw in form.getlist("criteria"):
        cid = parse_id(raw)
        if cid is None:
            raise ValidationFailed("Tick criteria from the list.", field="criteria")
        wanted.append(MappingInput(cid, form.get(f"rationale-{cid}", "")[:500],
                                            form.get(f"location-{cid}", "")[:120]))
    return wanted


def show_error(form: Any, exc: DomainError) -> None:
    """Put a refused action's message on the form field it names, or above the form."""
    name = getattr(exc, "field", None)
    field = getattr(form, name, None) if name else None
    if field is not None:
        field.errors = [*field.errors, exc.message]
    else:
        form.form_errors.append(exc.message)
