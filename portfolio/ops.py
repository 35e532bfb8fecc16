"""The operator's view: liveness and readiness checks, Prometheus metrics, and a request id in
every log line.

- `GET /healthz`: the process answers (no database, no disk): for a load balancer's liveness.
- `GET /readyz`: the database answers, it is fully migrated, Redis answers (when configured)
  and the file store can be written; 503 with the failing check's reason otherwise.
- `GET /metrics`: Prometheus' text format: requests and their latency by endpoint (the route's
  name, never its address, so no ids or search words), exports and their durations, the export
  queue. Only from the machine itself, or with `Authorization: Bearer <METRICS_TOKEN>`.

Neither check nor metric says anything about a person. With PROMETHEUS_MULTIPROC_DIR set (see
gunicorn.conf.py) the figures of every gunicorn worker are added up.
"""

from __future__ import annotations

import hmac
import logging
import os
import re
import secrets
import time
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, has_request_context, jsonify, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from pythonjsonlogger.json import JsonFormatter
from sqlalchemy import func, select, text

from portfolio.config import is_production
from portfolio.db import get_database
from portfolio.job_states import ACTIVE
from portfolio.models import ExportJob
from portfolio.schema import current_revision, head_revision
from portfolio.storage import open_backend, settings_from_config
from portfolio.storage.local import LocalBackend

bp = Blueprint("ops", __name__)
log = logging.getLogger("portfolio.requests")

REQUESTS = Counter("portfolio_requests_total", "HTTP requests answered",
                   ["method", "endpoint", "status"])
LATENCY = Histogram("portfolio_request_seconds", "Time to answer a request", ["endpoint"],
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 10))
EXPORTS = Counter("portfolio_exports_total", "PDF export jobs finished", ["outcome"])
EXPORT_SECONDS = Histogram("portfolio_export_seconds", "Time to make a signed PDF export",
                           buckets=(1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600))
QUEUE = Gauge("portfolio_export_jobs", "Export jobs waiting or running", ["status"],
              multiprocess_mode="livemax")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
LOOPBACK = {"127.0.0.1", "::1"}


# --- request ids and the request log ---------------------------------------------------------

class RequestIdFilter(logging.Filter):
    """Give every log record the id of the request it was written in ("-" outside one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = g.get("request_id", "-") if has_request_context() else "-"
        return True


def _begin() -> None:
    offered = request.headers.get("X-Request-ID", "")
    # A proxy's id is kept when it looks like one; anything else is replaced, never logged.
    g.request_id = offered if _REQUEST_ID.match(offered) else secrets.token_hex(8)
    g.request_started = time.perf_counter()


def _finish(response: Response) -> Response:
    endpoint = request.endpoint or "unknown"
    seconds = time.perf_counter() - g.get("request_started", time.perf_counter())
    if endpoint != "static":
        REQUESTS.labels(request.method, endpoint, str(response.status_code)).inc()
        LATENCY.labels(endpoint).observe(seconds)
    response.headers["X-Request-ID"] = g.get("request_id", "")
    # The route's pattern, not the address: no ids, no query (search words), no person.
    rule = request.url_rule.rule if request.url_rule is not None else "-"
    duration_ms = round(seconds * 1000, 1)
    log.info("%s %s %s %.1f ms", request.method, rule, response.status_code, duration_ms,
             extra={"method": request.method, "route": rule, "endpoint": endpoint,
                    "status": response.status_code, "duration_ms": duration_ms})
    return response


def configure_logging(app: Flask, stream: Any = None) -> None:
    """One JSON object per line (LOG_FORMAT=json, the default in production) or plain text,
    each with the request id; at LOG_LEVEL; on standard error unless another stream is given."""
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestIdFilter())
    chosen = app.config["LOG_FORMAT"] or ("json" if is_production(app.config) else "text")
    if chosen == "json":
        handler.setFormatter(JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"}))
    else:
        handler.setFormatter(logging.Formatter(
            "%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"))
    # "portfolio" is also Flask's app.logger: its default handler is replaced by this one.
    root = logging.getLogger("portfolio")
    root.handlers.clear()
    handler.portfolio_handler = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(app.config["LOG_LEVEL"])
    root.propagate = False
    log.disabled = not app.config["LOG_REQUESTS"]


def init_app(app: Flask) -> None:
    """Request ids, the request log and request metrics for every request."""
    if not app.config.get("TESTING"):  # the suite keeps pytest's own log capture
        configure_logging(app)
    app.before_request(_begin)
    app.after_request(_finish)


# --- liveness and readiness ------------------------------------------------------------------

@bp.get("/healthz")
def healthz() -> Any:
    return jsonify({"status": "ok"})


def _check_database() -> str | None:
    try:
        with get_database(current_app).engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure is the reason to report
        return f"the database does not answer ({type(exc).__name__})"
    return None


def _check_migrations() -> str | None:
    try:
        current, head = current_revision(current_app), head_revision(current_app)
    except Exception as exc:  # noqa: BLE001
        return f"the schema version cannot be read ({type(exc).__name__})"
    if current != head:
        return (f"the database is at revision {current or 'none'}, this version needs {head}: "
                "run `portfolio db upgrade`")
    return None


def _check_redis() -> str | None:
    url = current_app.config.get("REDIS_URL")
    if not url:
        return None
    from redis import Redis
    from redis.exceptions import RedisError

    try:
        Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2).ping()
    except (RedisError, OSError) as exc:
        return f"Redis does not answer ({type(exc).__name__})"
    return None


def _check_storage() -> str | None:
    """The configured backend answers (the bucket, with S3); uploads are still staged in
    the local STORAGE_DIR, so that must be writable too."""
    try:
        settings = settings_from_config(current_app.config)
    except (ValueError, RuntimeError) as exc:
        return f"the file store is not configured: {exc}"
    staging = LocalBackend(Path(settings.root)).check()
    if staging is not None or settings.backend == "local":
        return staging
    try:
        return open_backend(settings).check()
    except Exception as exc:  # noqa: BLE001 - e.g. a malformed endpoint: not ready, say why
        return f"the S3 store cannot be reached ({type(exc).__name__})"


CHECKS = {"database": _check_database, "migrations": _check_migrations,
          "redis": _check_redis, "storage": _check_storage}


@bp.get("/readyz")
def readyz() -> Any:
    results: dict[str, str] = {}
    for name, check in CHECKS.items():
        if name == "migrations" and results.get("database") != "ok":
            results[name] = "not checked: the database does not answer"
            continue
        if name == "redis" and not current_app.config.get("REDIS_URL"):
            results[name] = "not configured"
            continue
        problem = check()
        results[name] = problem or "ok"
    ready = all(v in ("ok", "not configured") for v in results.values())
    response = jsonify({"status": "ready" if ready else "not ready", "checks": results})
    response.status_code = 200 if ready else 503
    response.headers["Cache-Control"] = "no-store"
    return response


# --- metrics ---------------------------------------------------------------------------------

def _may_read_metrics() -> bool:
    token = current_app.config.get("METRICS_TOKEN") or ""
    if token:
        offered = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        return hmac.compare_digest(offered.encode(), token.encode())
    return request.remote_addr in LOOPBACK


def _refresh_queue() -> None:
    try:
        with get_database(current_app).sessionmaker() as s:
            counts = dict(s.execute(
                select(ExportJob.status, func.count()).where(
                    ExportJob.status.in_(ACTIVE)).group_by(ExportJob.status)
            ).all())
    except Exception:  # noqa: BLE001 - metrics must answer even when the database does not
        current_app.logger.warning("export queue depth not read", exc_info=True)
        return
    for status in ACTIVE:
        QUEUE.labels(str(status)).set(counts.get(status, 0))


@bp.get("/metrics")
def metrics() -> Any:
    if not _may_read_metrics():
        return Response("Not found\n", status=404, mimetype="text/plain")
    _refresh_queue()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        body = generate_latest(registry)
    else:
        body = generate_latest()
    return Response(body, mimetype=CONTENT_TYPE_LATEST.split(";")[0],
                    headers={"Cache-Control": "no-store"})


def record_export(seconds: float, ok: bool) -> None:
    """Count a finished export job, and how long it took when it succeeded."""
    EXPORTS.labels("done" if ok else "failed").inc()
    if ok:
        EXPORT_SECONDS.observe(seconds)
