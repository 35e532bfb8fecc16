"""Sessions, CSRF, security headers and the role guard for views."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Flask, Response, abort, current_app, g, request, session
from flask_login import LoginManager, current_user
from flask_wtf.csrf import CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix

from portfolio import db
from portfolio.auth.sessions import load_session
from portfolio.models import Role

csrf = CSRFProtect()
login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message = "Sign in to see that page."
login_manager.login_message_category = "info"
login_manager.session_protection = "basic"

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])


SESSION_KEY = "sid"  # the raw server-side session id, inside the signed cookie


@login_manager.user_loader
def _load_user(login_id: str) -> Any:
    # A cookie is only good while its server-side session is open: signed out, ended from
    # another device, idle too long, or the person deactivated all read as signed out.
    current = load_session(db.session(), session.get(SESSION_KEY), login_id=login_id,
                           idle_minutes=int(current_app.config["SESSION_LIFETIME_MINUTES"]))
    if current is None:
        return None
    g.login_session_id = current.session_id
    return current.user


def current_session_id() -> int | None:
    """Return the id of the server-side session this request is signed in with."""
    return g.get("login_session_id") if current_user.is_authenticated else None


def _set_security_headers(response: Response) -> Response:
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
    if request.is_secure:
        headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
    if current_user and getattr(current_user, "is_authenticated", False):
        # Pages with personal data are never kept by shared caches or the back button.
        headers.setdefault("Cache-Control", "no-store")
    return response


def init_app(app: Flask) -> None:
    """Switch on CSRF protection, the login manager and the security headers."""
    proxies = int(app.config["TRUSTED_PROXIES"])
    if proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies,  # type: ignore
                                x_host=proxies)
    csrf.init_app(app)
    login_manager.init_app(app)
    app.after_request(_set_security_headers)


def roles_required(*roles: Role) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Let a view through only for a signed-in person holding one of the roles."""

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if not any(current_user.has_role(role) for role in roles):
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorator


def client_address() -> str:
    """Return the client's address as seen after trusted proxies."""
    return request.remote_addr or "unknown"
