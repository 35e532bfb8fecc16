"""The operator's view: liveness, readiness with its reasons, Prometheus metrics, request ids,
and request logs that never carry personal data (issue 14)."""

from __future__ import annotations

import io
import json
import logging
import re
import socket
from pathlib import Path

import pytest

from portfolio import create_app
from portfolio.db import get_database
from portfolio.ops import configure_logging
from tests.conftest import Browserless, _test_config
from tests.factories import PASSWORD, make_world


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_healthz_answers_without_the_database(make_app, tmp_path):
    # A database that is not even there: liveness is about the process only.
    app = make_app(DATABASE_URL=f"sqlite:///{tmp_path / 'missing' / 'nowhere.db'}")
    response = app.test_client().get("/healthz")
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}


def test_readyz_is_ready_on_a_migrated_database(app):
    response = app.test_client().get("/readyz")
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {"status": "ready", "checks": {
        "database": "ok", "migrations": "ok", "redis": "not configured", "storage": "ok"}}
    assert response.headers["Cache-Control"] == "no-store"


def test_readyz_names_an_unmigrated_database(tmp_path, database_url):
    app = create_app(_test_config(f"sqlite:///{tmp_path / 'empty.db'}"))
    try:
        response = app.test_client().get("/readyz")
        body = response.get_json()
        assert response.status_code == 503 and body["status"] == "not ready"
        assert "portfolio db upgrade" in body["checks"]["migrations"]
        assert body["checks"]["database"] == "ok"
        # Other pages still refuse with the same advice.
        assert app.test_client().get("/login").status_code == 503
    finally:
        get_database(app).engine.dispose()


def test_readyz_names_a_database_that_does_not_answer(make_app):
    app = make_app(DATABASE_URL=f"postgresql+psycopg://nobody@127.0.0.1:{_closed_port()}/none")
    body = app.test_client().get("/readyz").get_json()
    assert body["status"] == "not ready"
    assert body["checks"]["database"].startswith("the database does not answer")
    assert body["checks"]["migrations"].startswith("not checked")


def test_readyz_names_a_file_store_that_cannot_be_written(make_app, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    app = make_app(STORAGE_DIR=str(blocker / "storage"))
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["storage"].startswith("the file store cannot be written")


def test_readyz_checks_redis_when_it_is_configured(make_app, redis_server):
    assert make_app(REDIS_URL=redis_server).test_client().get("/readyz").status_code == 200
    down = make_app(REDIS_URL=f"redis://127.0.0.1:{_closed_port()}/0")
    response = down.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["redis"].startswith("Redis does not answer")


def test_metrics_count_requests_by_route_name(app):
    client = app.test_client()
    for _ in range(3):
        client.get("/healthz")
    client.get("/enrolments/99999/coverage")  # a redirect to sign in: counted by its name
    text = client.get("/metrics").get_data(as_text=True)
    line = re.search(r'portfolio_requests_total\{endpoint="ops.healthz",method="GET",'
                     r'status="200"\} (\d+)', text)
    assert line and int(float(line.group(1))) >= 3
    assert 'endpoint="evidence.coverage"' in text
    # Ids from addresses never become labels (numbers may appear in values, not in labels).
    assert not re.search(r"\{[^}]*99999[^}]*\}", text)
    assert "portfolio_request_seconds_bucket" in text
    assert 'portfolio_export_jobs{status="queued"}' in text


def test_metrics_only_for_the_machine_itself_or_with_the_token(make_app):
    open_app = make_app()
    remote = {"REMOTE_ADDR": "203.0.113.7"}
    assert open_app.test_client().get("/metrics", environ_base=remote).status_code == 404
    locked = make_app(METRICS_TOKEN="s3cret-scrape-token")
    client = locked.test_client()
    assert client.get("/metrics").status_code == 404  # loopback is not enough now
    assert client.get("/metrics", environ_base=remote,
                      headers={"Authorization": "Bearer wrong"}).status_code == 404
    assert client.get("/metrics", environ_base=remote, headers={
        "Authorization": "Bearer s3cret-scrape-token"}).status_code == 200


def test_every_response_carries_a_request_id(app):
    client = app.test_client()
    made = client.get("/healthz").headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{16}", made)
    assert client.get("/healthz").headers["X-Request-ID"] != made
    kept = client.get("/healthz", headers={"X-Request-ID": "proxy-abc-12345"})
    assert kept.headers["X-Request-ID"] == "proxy-abc-12345"
    odd = client.get("/healthz", headers={"X-Request-ID": "<script>alert(1)</script>"})
    assert re.fullmatch(r"[0-9a-f]{16}", odd.headers["X-Request-ID"])


@pytest.fixture
def json_logs(app):
    """The app's logs as JSON lines, as production writes them (here into a buffer)."""
    app.config["LOG_FORMAT"] = "json"
    buffer = io.StringIO()
    configure_logging(app, buffer)
    yield lambda: [json.loads(line) for line in buffer.getvalue().splitlines()]
    root = logging.getLogger("portfolio")
    for handler in [h for h in root.handlers if getattr(h, "portfolio_handler", False)]:
        root.removeHandler(handler)
    root.propagate = True
    logging.getLogger("portfolio.requests").disabled = False


def test_request_logs_have_the_request_id_and_no_personal_data(app, session, json_logs):
    world = make_world(session, app.config["STORAGE_DIR"])
    Browserless(app.test_client()).login(world.learner.email, "a wrong password")
    web = Browserless(app.test_client())
    web.login(world.learner.email, PASSWORD)
    seen = web.client.get(f"/enrolments/{world.enrolment.id}/coverage")
    admin = Browserless(app.test_client())
    admin.login(world.admin.email, PASSWORD)
    admin.client.get("/admin/people?q=Lee+Learner")
    records = json_logs()
    requests_logged = [r for r in records if r.get("logger") == "portfolio.requests"]
    assert len(requests_logged) >= 6
    ids = {r["request_id"] for r in requests_logged}
    assert seen.headers["X-Request-ID"] in ids
    coverage = next(r for r in requests_logged if r["endpoint"] == "evidence.coverage")
    assert coverage["route"] == "/enrolments/<int:enrolment_id>/coverage"
    assert coverage["status"] == 200 and coverage["duration_ms"] >= 0
    assert coverage["message"].startswith("GET /enrolments/<int:enrolment_id>/coverage 200 ")
    everything = json.dumps(records)
    for personal in (world.learner.email, world.learner.full_name, world.admin.email,
                     "Lee", "a wrong password", PASSWORD, "127.0.0.1"):
        assert personal not in everything, personal
    assert f"/enrolments/{world.enrolment.id}/" not in everything


def test_gunicorn_config_loads(tmp_path):
    import runpy

    settings = runpy.run_path(str(Path(__file__).resolve().parent.parent / "gunicorn.conf.py"))
    assert settings["worker_class"] == "sync" and settings["workers"] >= 1
    assert callable(settings["post_worker_init"]) and callable(settings["child_exit"])
