"""The web layer's shared pieces: error pages and problem+json, template helpers, schema guard."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, jsonify, make_response, render_template, request
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException

from portfolio.display import FILTERS as DISPLAY_FILTERS
from portfolio.errors import DomainError
from portfolio.markdown import render_markdown
from portfolio.models.users import ROLE_LABELS, Role
from portfolio.permissions import can_assess
from portfolio.schema import SchemaOutOfDate, ensure_up_to_date

API_PREFIX = "/api/"

# What a person should do next, per status: every error page says it.
NEXT_STEP = {
    400: "Go back, check what you entered and try again.",
    403: "If you need this, ask your centre admin to give you access.",
    404: "Check the address, or go back to your dashboard.",
    405: "Go back and use the page's own buttons.",
    413: "Make the file smaller and try again.",
    422: "Check the highlighted fields and try again.",
    429: "Wait a few minutes and try again.",
    500: "Nothing was saved. Try again in a moment; if it keeps happening, tell your centre admin.",
    503: "The service is being updated. Try again shortly.",
}


def wants_problem_json() -> bool:
    """True for API requests, which get RFC 9457 problem details instead of pages."""
    return request.path.startswith(API_PREFIX)


def problem(status: int, title: str, detail: str, **extra: Any) -> Response:
    """Return an application/problem+json response."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    body.update(extra)
    response = jsonify(body)
    response.status_code = status
    response.mimetype = "application/problem+json"
    return response


def error_page(status: int, title: str, detail: str) -> tuple[str, int]:
    """Render the friendly error page."""
    return (
        render_template("errors/error.html", status=status, title=title, detail=detail,
                        next_step=NEXT_STEP.get(status, NEXT_STEP[400])),
        status,
    )


def _respond(status: int, title: str, detail: str) -> Any:
    if wants_problem_json():
        return problem(status, title, detail)
    return error_page(status, title, detail)


def _may_assess(enrolment: Any) -> bool:
    """For templates: the rule in `portfolio.permissions`, never re-derived in the page."""
    return bool(current_user.is_authenticated and can_assess(current_user, enrolment))


def init_app(app: Flask) -> None:
    """Register error handlers, template helpers and the migration guard."""

    @app.errorhandler(DomainError)
    def _domain_error(exc: DomainError) -> Any:
        return _respond(exc.status, exc.title, exc.message)

    @app.errorhandler(CSRFError)
    def _csrf_error(_exc: CSRFError) -> Any:
        return _respond(
            400,
            "This form has expired",
            "The page was open too long or was sent from somewhere else, so nothing was saved. "
            "Reload the page and send it again.",
        )

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Any:
        if exc.code in (301, 302, 303, 307, 308):
            return exc
        code = exc.code or 500
        titles = {401: "Sign in needed", 403: "Not allowed", 404: "Page not found",
                  405: "Not allowed here", 413: "Too large", 429: "Too many requests"}
        detail = {
            403: "You do not have access to this page.",
            404: "There is nothing at this address, or it is not something you can see.",
        }.get(code, exc.description or "")
        response = make_response(_respond(code, titles.get(code, exc.name), detail))
        # Keep what the exception says about itself: a 405 names the methods that are allowed.
        for name, value in exc.get_headers():
            if name.lower() != "content-type":
                response.headers[name] = value
        return response

    @app.errorhandler(PoolTimeout)
    def _pool_timeout(_exc: PoolTimeout) -> Any:
        response = make_response(_respond(
            503, "Busy", "Too many requests are being answered at once, so this one was not. "
            "Nothing was saved; try again in a moment."))
        response.headers["Retry-After"] = "5"
        return response

    if app.config.get("STORAGE_BACKEND") == "s3":
        # botocore is imported only when the S3 backend is configured.
        from botocore.exceptions import BotoCoreError, ClientError

        @app.errorhandler(BotoCoreError)
        @app.errorhandler(ClientError)
        def _store_unavailable(exc: Exception) -> Any:
            app.logger.error("the object store failed: %s", type(exc).__name__)
            response = make_response(_respond(
                503, "File store unavailable",
                "The file store is not answering, so this was not done. Nothing was lost or "
                "half-saved: try again in a few minutes."))
            response.headers["Retry-After"] = "60"
            return response

    @app.errorhandler(SchemaOutOfDate)
    def _schema_error(exc: SchemaOutOfDate) -> Any:
        return _respond(503, "Database needs an update", str(exc))

    checked = {"ok": False}

    @app.before_request
    def _guard_schema() -> None:
        # `portfolio serve` and the WSGI entry refuse to start un-migrated; this catches the rest.
        # The health checks answer for themselves (readiness reports the schema as its reason).
        if not checked["ok"] and request.blueprint != "ops":
            ensure_up_to_date(app)
            checked["ok"] = True

    @app.after_request
    def _redirect_for_upload_script(response: Response) -> Response:
        # static/js/uploads.js sends evidence forms with XMLHttpRequest (for per-file progress),
        # which would follow a redirect itself and use up the next page's message. It asks for
        # the redirect as JSON instead, and opens that address as a normal navigation.
        if request.headers.get("X-Upload") == "1" and response.status_code in (302, 303) \
                and response.location:
            answer = jsonify(redirect=response.location)
            answer.headers["Vary"] = "X-Upload"
            return answer
        return response

    app.jinja_env.filters["markdown"] = render_markdown
    app.jinja_env.filters.update(DISPLAY_FILTERS)
    app.jinja_env.globals.update(ROLE_LABELS=ROLE_LABELS, Role=Role, may_assess=_may_assess)
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True
