"""Rate limits on the JSON API, per token: each personal access token (or, without one, each
client address) may make API_RATE_LIMIT calls, e.g. "600 per minute".

The counts live in Redis when REDIS_URL is set, so every machine shares them; otherwise in the
process (one machine). A call over the limit answers 429 problem+json with Retry-After. The
limit is checked before the token is (Flask-Limiter runs first), so the key is a hash of the
token as sent: a wrong token is limited too, and the token itself is never stored.
"""

from __future__ import annotations

import hashlib

from flask import Blueprint, Flask, current_app, request
from flask_limiter import Limiter

from portfolio.security import client_address


def _caller() -> str:
    scheme, _, raw = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and raw.strip():
        return "token:" + hashlib.sha256(raw.strip().encode()).hexdigest()[:32]
    return "address:" + hashlib.sha256(client_address().encode()).hexdigest()[:32]


def init_app(app: Flask, api: Blueprint) -> Limiter:
    """Limit every route of the API blueprint (one limiter per app, with the app's storage)."""
    limiter = Limiter(key_func=_caller, default_limits=[], headers_enabled=True,
                      strategy="moving-window", key_prefix="portfolio-api",
                      storage_uri=app.config.get("REDIS_URL") or "memory://",
                      storage_options={"socket_connect_timeout": 2, "socket_timeout": 2}
                      if app.config.get("REDIS_URL") else {},
                      # Redis down: answer without limits rather than refuse every API call.
                      swallow_errors=True)
    limiter.init_app(app)
    limiter.limit(lambda: current_app.config["API_RATE_LIMIT"])(api)
    return limiter
