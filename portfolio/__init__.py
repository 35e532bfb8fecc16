"""NVQ e-portfolio evidence builder."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask

from portfolio.config import (
    DEFAULTS,
    PROJECT_ROOT,
    default_database_url,
    from_environment,
    is_production,
    load_or_create_secret_key,
    read_secret_file,
)


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app: config, database, security, web layer, blueprints."""
    app = Flask(
        __name__,
        instance_path=os.environ.get("PORTFOLIO_INSTANCE_PATH", str(PROJECT_ROOT / "instance")),
        template_folder=str(PROJECT_ROOT / "templates"),
        static_folder=str(PROJECT_ROOT / "static"),
    )
    _configure(app, test_config)
    from portfolio.ids import IdConverter

    # Every `<int:...>` in a route is an id the database can hold: larger numbers are a 404.
    app.url_map.converters["int"] = IdConverter

    from portfolio import db, notify, ops, security, web

    db.init_app(app)
    ops.init_app(app)  # first: every later hook and error already has the request id
    security.init_app(app)
    web.init_app(app)
    notify.init_app(app)
    _register_blueprints(app)
    return app


def _configure(app: Flask, test_config: Mapping[str, Any] | None) -> None:
    app.config.from_mapping(DEFAULTS)
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    app.config.from_pyfile(str(Path(app.instance_path) / "config.py"), silent=True)
    app.config.update(from_environment())
    if test_config:
        app.config.update(test_config)
    if not app.config["DATABASE_URL"] and app.config["DATABASE_URL_FILE"]:
        # The URL carries the database password: a secret file, like the keys.
        app.config["DATABASE_URL"] = read_secret_file(app.config["DATABASE_URL_FILE"])
    if not app.config["DATABASE_URL"]:
        app.config["DATABASE_URL"] = default_database_url(app.instance_path)
    if not app.config["SECRET_KEY"] and app.config["SECRET_KEY_FILE"]:
        app.config["SECRET_KEY"] = read_secret_file(app.config["SECRET_KEY_FILE"])
    if not app.config["SECRET_KEY"] and not is_production(app.config):
        # Production never makes its own: every machine must share one (see check_production).
        app.config["SECRET_KEY"] = load_or_create_secret_key(app.instance_path)
    if not app.config["STORAGE_DIR"]:
        app.config["STORAGE_DIR"] = str(Path(app.instance_path) / "storage")
    # The whole request may carry several files; each is also checked against MAX_FILE_MB.
    app.config["MAX_CONTENT_LENGTH"] = (
        int(app.config["MAX_FILE_MB"]) * int(app.config["MAX_FILES_PER_UPLOAD"]) + 1
    ) * 1024 * 1024
    development = app.config["ENV"] == "development"
    if development and "PORTFOLIO_SESSION_COOKIE_SECURE" not in os.environ and not (
        test_config and "SESSION_COOKIE_SECURE" in test_config
    ):
        # Plain http on 127.0.0.1 for `make run`; production keeps Secure cookies.
        app.config["SESSION_COOKIE_SECURE"] = False
    lifetime = timedelta(minutes=int(app.config["SESSION_LIFETIME_MINUTES"]))
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_NAME="portfolio_session",
        REMEMBER_COOKIE_SECURE=app.config["SESSION_COOKIE_SECURE"],
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=lifetime,
        WTF_CSRF_TIME_LIMIT=int(lifetime.total_seconds()),
        WTF_CSRF_SSL_STRICT=app.config["SESSION_COOKIE_SECURE"],
    )


def _register_blueprints(app: Flask) -> None:
    from portfolio.admin.views import bp as admin_bp
    from portfolio.api import assessment as _api_assessment  # noqa: F401 - registers API routes
    from portfolio.api import evidence as _api_evidence  # noqa: F401 - registers API routes
    from portfolio.api.views import bp as api_bp
    from portfolio.assessment import batch_views as _batch  # noqa: F401 - registers its routes
    from portfolio.assessment import countersign_views as _countersign  # noqa: F401 - the same
    from portfolio.assessment.views import bp as assessment_bp
    from portfolio.auth.views import bp as auth_bp
    from portfolio.bundle.views import bp as bundle_bp
    from portfolio.comments.views import bp as comments_bp
    from portfolio.criteria.views import bp as criteria_bp
    from portfolio.dashboard.views import bp as dashboard_bp
    from portfolio.enrolments.views import bp as enrolments_bp
    from portfolio.eqa.admin_views import bp as eqa_admin_bp
    from portfolio.eqa.views import bp as eqa_bp
    from portfolio.evidence.views import bp as evidence_bp
    from portfolio.export import prepare as _prepare  # noqa: F401 - lays out PDFs after changes
    from portfolio.export.views import bp as export_bp
    from portfolio.notifications.views import bp as notifications_bp
    from portfolio.ops import bp as ops_bp
    from portfolio.outbox.views import bp as outbox_bp
    from portfolio.people_import.views import bp as people_import_bp
    from portfolio.retention.views import bp as retention_bp
    from portfolio.sampling.views import bp as sampling_bp
    from portfolio.search.views import bp as search_bp  # also keeps the search index current
    from portfolio.witness.views import bp as witness_bp

    blueprints = (auth_bp, dashboard_bp, criteria_bp, enrolments_bp, evidence_bp,
                  assessment_bp, witness_bp, export_bp, outbox_bp, admin_bp, api_bp,
                  eqa_bp, eqa_admin_bp, sampling_bp, bundle_bp, notifications_bp, comments_bp,
                  ops_bp, search_bp, people_import_bp, retention_bp)
    from portfolio.api import limits

    limits.init_app(app, api_bp)
    for blueprint in blueprints:
        app.register_blueprint(blueprint)
