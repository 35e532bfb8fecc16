"""The export queue: with REDIS_URL, exports wait for `portfolio worker` (a real Redis server)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from portfolio.cli import cli
from portfolio.config import from_environment
from portfolio.export.jobs import QUEUE_NAME, horse_killed, queue_for
from portfolio.export.services import verify_export
from portfolio.export.signing import init_centre_key
from portfolio.models import Export, ExportJob
from tests.conftest import Browserless
from tests.factories import PASSWORD, make_world

PORTFOLIO = Path(sys.executable).with_name("portfolio")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def redis_server() -> Iterator[str]:
    """A private Redis server on a free loopback port, without persistence; yields its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed; `make test` installs it "
                    "(scripts/ensure-system-deps test).")
    from redis import Redis

    folder = Path(tempfile.mkdtemp(prefix="portfolio-redis-"))
    port = _free_port()
    log = (folder / "redis.log").open("wb")
    process = subprocess.Popen(
        [binary, "--save", "", "--appendonly", "no", "--port", str(port),
         "--bind", "127.0.0.1", "--dir", str(folder)],
        stdout=log, stderr=subprocess.STDOUT)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        deadline = time.monotonic() + 20
        while True:
            if process.poll() is not None:
                pytest.fail("redis-server stopped at start: "
                            + (folder / "redis.log").read_text(errors="replace"))
            try:
                with Redis.from_url(url, socket_timeout=1) as client:
                    if client.ping():
                        break
            except Exception:  # noqa: BLE001, S110 - not up yet
                pass
            if time.monotonic() > deadline:
                pytest.fail("redis-server did not answer PING within 20 seconds")
            time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def redis_url(redis_server: str) -> str:
    """The test Redis server, emptied for this test."""
    from redis import Redis

    with Redis.from_url(redis_server) as client:
        client.flushdb()
    return redis_server


@pytest.fixture
def keys(app):
    instance = Path(app.instance_path)
    with contextlib.suppress(FileExistsError):
        init_centre_key(instance, "Test Centre")
    return (instance / "signing" / "centre-cert.pem").read_bytes()


def _worker_env(app) -> dict[str, str]:
    """The environment a worker next to this app would have: the same config."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PORTFOLIO_") and k not in ("DATABASE_URL", "REDIS_URL")}
    env.update({
        "PORTFOLIO_INSTANCE_PATH": app.instance_path,
        "DATABASE_URL": app.config["DATABASE_URL"],
        "REDIS_URL": app.config["REDIS_URL"],
        "PORTFOLIO_STORAGE_DIR": app.config["STORAGE_DIR"],
        "PORTFOLIO_EXPORTS_DIR": app.config["EXPORTS_DIR"],
        "PORTFOLIO_SECRET_KEY": app.config["SECRET_KEY"],
        "PORTFOLIO_OUTBOX_DIR": app.config["OUTBOX_DIR"],
        # Production (the default ENV) makes up no seal key: the worker is given the app's.
        "PORTFOLIO_SEAL_KEY_FILE": str(Path(app.instance_path) / "seal_key"),
    })
    return env


def test_queued_export_waits_for_the_worker_which_makes_a_signed_pdf(make_app, keys,
                                                                      redis_url):
    app = make_app(REDIS_URL=redis_url)  # EXPORT_RUN_INLINE is on too: the queue wins
    maker = app.extensions["portfolio.db"].sessionmaker
    with maker() as s:
        world = make_world(s, app.config["STORAGE_DIR"])
        learner_email, enrolment_id = world.learner.email, world.enrolment.id
    web = Browserless(app.test_client())
    web.login(learner_email, PASSWORD)
    started = web.post(f"/enrolments/{enrolment_id}/exports")
    assert started.status_code == 302
    job_url = started.headers["Location"]
    assert "Exporting the portfolio" in web.client.get(job_url).get_data(True)

    queue = queue_for(redis_url)
    assert queue.name == QUEUE_NAME and queue.count == 1
    time.sleep(0.5)  # nothing runs it in the web process, inline or in a thread
    status = web.client.get(job_url + ".json").get_json()
    assert status == {"status": "queued", "progress": 0, "message": "Waiting to start",
                      "download": None}

    worker = subprocess.run([str(PORTFOLIO), "worker", "--burst"], env=_worker_env(app),
                            capture_output=True, text=True, timeout=300, check=False)
    assert worker.returncode == 0, worker.stdout + worker.stderr
    assert queue.count == 0

    status = web.client.get(job_url + ".json").get_json()
    assert status["status"] == "done" and status["progress"] == 100, (
        status, worker.stdout + worker.stderr)
    with maker() as s:
        job = s.get(ExportJob, int(job_url.rsplit("/", 1)[1]))
        export = s.get(Export, job.export_id)
        path = Path(app.config["EXPORTS_DIR"]) / export.filename
        assert path.is_file()
        trust = (Path(app.instance_path) / "signing" / "centre-cert.pem").read_bytes()
        verdict = verify_export(s, path.read_bytes(), trust_cert_pem=trust)
        assert verdict.state == "intact and current", verdict
    download = web.client.get(status["download"])
    assert download.status_code == 200 and download.data == path.read_bytes()


def test_an_unreachable_queue_fails_the_job_instead_of_leaving_it_waiting(make_app):
    app = make_app(REDIS_URL=f"redis://127.0.0.1:{_free_port()}/0")
    with app.extensions["portfolio.db"].sessionmaker() as s:
        world = make_world(s)
        learner_email, enrolment_id = world.learner.email, world.enrolment.id
    web = Browserless(app.test_client())
    web.login(learner_email, PASSWORD)
    started = web.post(f"/enrolments/{enrolment_id}/exports")
    assert started.status_code == 302
    status = web.client.get(started.headers["Location"] + ".json").get_json()
    assert status["status"] == "failed" and "could not be queued" in status["message"]


def test_a_killed_worker_process_fails_the_job(make_app, monkeypatch):
    app = make_app()
    with app.extensions["portfolio.db"].sessionmaker() as s:
        world = make_world(s)
        job = ExportJob(enrolment_id=world.enrolment.id, requested_by_id=world.learner.id,
                        status="running", progress=40, message="Rendering")
        s.add(job)
        s.commit()
        job_id = job.id
    for name, value in _worker_env(app).items():
        if name.startswith("PORTFOLIO_") or name == "DATABASE_URL":
            monkeypatch.setenv(name, value)
    rq_job = SimpleNamespace(func_name="portfolio.export.jobs.run_queued",
                             args=(job_id, "https://x/verify"))
    horse_killed(rq_job, 1234, 9, None)
    with app.extensions["portfolio.db"].sessionmaker() as s:
        job = s.get(ExportJob, job_id)
        assert job.status == "failed" and "stopped unexpectedly" in job.message


def test_worker_needs_redis_url(app):
    result = app.test_cli_runner().invoke(cli, ["worker", "--burst"])
    assert result.exit_code == 1 and "REDIS_URL is not set" in result.output


def test_redis_url_is_read_with_or_without_the_prefix():
    assert from_environment({"REDIS_URL": "redis://a/0"})["REDIS_URL"] == "redis://a/0"
    assert from_environment({"PORTFOLIO_REDIS_URL": "redis://b/1"})["REDIS_URL"] == "redis://b/1"
    both = {"REDIS_URL": "redis://a/0", "PORTFOLIO_REDIS_URL": "redis://b/1"}
    assert from_environment(both)["REDIS_URL"] == "redis://b/1"
