"""How every page inside an EQA pack is opened: `pack_page` checks the pack is the signed-in
EQA's own and open today, and writes each request, allowed or refused, to the pack's access log.
Used by the EQA's pages and by the comment thread an EQA reads inside a pack."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from functools import wraps
from typing import Any

from flask import abort, make_response, render_template, request
from flask_login import current_user
from werkzeug.exceptions import HTTPException

from portfolio import db
from portfolio.eqa import services
from portfolio.errors import DomainError
from portfolio.models import Role
from portfolio.security import login_manager


def today() -> date:
    return date.today()


def _status_of(exc: BaseException) -> int:
    if isinstance(exc, DomainError):
        return exc.status
    if isinstance(exc, HTTPException):
        return exc.code or 500
    return 500


def pack_page(view: Callable[..., Any]) -> Callable[..., Any]:
    """Open the EQA's own pack for the view, refuse what is outside it, and log the request."""

    @wraps(view)
    def wrapped(pack_id: int, **kwargs: Any) -> Any:
        if not current_user.is_authenticated:
            return login_manager.unauthorized()
        if not current_user.has_role(Role.EQA):
            abort(403)
        s = db.session()
        pack = services.own_pack(s, pack_id, current_user)  # another's pack: 404, not logged
        user = current_user._get_current_object()  # type: ignore[attr-defined]
        try:
            try:
                services.check_open(pack, today())
                response = make_response(view(pack, **kwargs))
            except services.PackNotOpenYet as exc:
                response = make_response(render_template(
                    "eqa/closed.html", pack=pack, title=exc.title, message=exc.message,
                    state="upcoming"), exc.status)
            except services.PackClosed as exc:
                response = make_response(render_template(
                    "eqa/closed.html", pack=pack, title=exc.title, message=exc.message,
                    state=exc.state), exc.status)
        except Exception as exc:
            s.rollback()
            services.log_access(s, pack, user, method=request.method, path=request.path,
                                status=_status_of(exc))
            s.commit()
            raise
        services.log_access(s, pack, user, method=request.method, path=request.path,
                            status=response.status_code)
        s.commit()
        response.headers["Cache-Control"] = "private, no-store"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    return wrapped
