"""The export queue: with REDIS_URL, exports wait for `portfolio worker` (a real Redis server)."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import timedelta
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


# `portfolio keys init` makes keys in the instance folder: each test gets its own.
pytestmark = pytest.mark.usefixtures("own_instance")

def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]





@pytest.fixture
def keys(app):
    instance = Path(app.instance_path)
    with contextlib.suppress(FileExistsError):
        init_centre_key(instance, "Test Centre")
    return (instance / "signing" / "centre-cert.pem").read_bytes()


def _centre_keys(app) -> None:
    """Every centre its own key (the first adopts the instance's): a worker refuses without."""
    result = app.test_cli_runner().invoke(cli, ["keys", "init", "--if-missing"])
    assert result.exit_code == 0, result.output


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
    _centre_keys(app)
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
                      "download": None, "active": True, "failed": False}

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
        verdict = verify_export(s, path.read_bytes(), config=app.config,
                                instance_path=Path(app.instance_path))
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


# --- jobs never hang: heartbeats, dead workers, try again, a cap per person ---------------

def _job_id(location: str) -> int:
    return int(location.rstrip("/").rsplit("/", 1)[1])


def _status_of(app, job_id: int) -> str:
    with app.extensions["portfolio.db"].sessionmaker() as s:
        return s.get(ExportJob, job_id).status


def _descendants(pid: int) -> list[int]:
    """Every process below pid, read from /proc (RQ's work horse starts a session of its own,
    so a process group does not reach it)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text()
                parent = int(stat.rsplit(")", 1)[1].split()[1])
                children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _kill_tree(pid: int) -> list[int]:
    """SIGKILL a process and everything below it at once, as a crash or an OOM kill would."""
    tree = [pid, *_descendants(pid)]
    for member in tree:
        with contextlib.suppress(ProcessLookupError):
            os.kill(member, signal.SIGKILL)
    return tree


def test_a_worker_killed_mid_export_fails_the_job_and_try_again_succeeds(make_app, redis_url):
    app = make_app(REDIS_URL=redis_url, EXPORT_HEARTBEAT_TIMEOUT=2)
    with app.extensions["portfolio.db"].sessionmaker() as s:
        world = make_world(s, app.config["STORAGE_DIR"])
        learner_email, enrolment_id = world.learner.email, world.enrolment.id
    _centre_keys(app)
    web = Browserless(app.test_client())
    web.login(learner_email, PASSWORD)
    started = web.post(f"/enrolments/{enrolment_id}/exports")
    job_url, job_id = started.headers["Location"], _job_id(started.headers["Location"])

    env = {**_worker_env(app), "PORTFOLIO_EXPORT_HEARTBEAT_TIMEOUT": "2"}
    worker = subprocess.Popen([str(PORTFOLIO), "worker"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    killed: list[int] = []
    try:
        deadline = time.monotonic() + 120
        while _status_of(app, job_id) != "running":
            assert worker.poll() is None, worker.stdout.read().decode(errors="replace")
            assert time.monotonic() < deadline, "the worker never started the job"
            time.sleep(0.02)
        killed = _kill_tree(worker.pid)
    finally:
        _kill_tree(worker.pid)
        worker.wait(timeout=30)
        worker.stdout.close()
    assert len(killed) >= 2  # the worker and its work horse, at least
    assert web.client.get(job_url + ".json").get_json()["status"] == "running"  # fresh beat
    time.sleep(2.5)  # past the heartbeat timeout
    status = web.client.get(job_url + ".json").get_json()
    assert status["status"] == "failed", status
    assert "no longer running" in status["message"] and status["download"] is None
    page = web.client.get(job_url).get_data(True)
    assert "no longer running" in page and "http-equiv=\"refresh\"" not in page
    retry = re.search(r'<form id="export-retry" method="post" action="([^"]+)" >', page)
    assert retry, page  # shown (not hidden), and a POST with the CSRF token
    assert 'data-active="no"' in page  # the script does not poll a failed job
    again = web.post(retry.group(1))
    assert again.status_code == 302 and _job_id(again.headers["Location"]) != job_id
    done = subprocess.run([str(PORTFOLIO), "worker", "--burst"], env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    fresh = web.client.get(again.headers["Location"] + ".json").get_json()
    assert fresh["status"] == "done" and fresh["download"], (fresh, done.stderr)
    assert web.client.get(fresh["download"]).status_code == 200
    assert _status_of(app, job_id) == "failed"  # the dead one stays failed


def _old_jobs(app, world, **ages: int) -> dict[str, int]:
    """A running job with an old heartbeat, a queued one never picked up, and fresh ones."""
    from portfolio.db import utcnow

    now = utcnow()
    ids = {}
    with app.extensions["portfolio.db"].sessionmaker() as s:
        rows = {
            "dead": ExportJob(enrolment_id=world.enrolment.id, requested_by_id=world.learner.id,
                              status="running", progress=20, message="Laying out",
                              started_at=now - timedelta(minutes=10),
                              heartbeat_at=now - timedelta(seconds=ages.get("dead", 600))),
            "alive": ExportJob(enrolment_id=world.enrolment.id,
                               requested_by_id=world.assessor.id, status="running",
                               progress=20, message="Laying out", started_at=now,
                               heartbeat_at=now),
            "lost": ExportJob(enrolment_id=world.enrolment.id, requested_by_id=world.admin.id,
                              created_at=now - timedelta(seconds=ages.get("lost", 7200))),
            "waiting": ExportJob(enrolment_id=world.enrolment.id,
                                 requested_by_id=world.admin.id),
        }
        s.add_all(rows.values())
        s.commit()
        ids = {name: row.id for name, row in rows.items()}
    return ids


def test_reading_a_dead_job_marks_it_failed_with_try_again(make_app):
    app = make_app()
    with app.extensions["portfolio.db"].sessionmaker() as s:
        world = make_world(s)
    ids = _old_jobs(app, world)
    web = Browserless(app.test_client())
    web.login(world.learner.email, PASSWORD)
    page = web.client.get(f"/export-jobs/{ids['dead']}")
    html = page.get_data(True)
    assert page.status_code == 200 and "no longer running" in html
    assert '<form id="export-retry" method="post"' in html and "Try again" in html
    assert 'name="csrf_token"' in html
    assert web.client.get(f"/export-jobs/{ids['dead']}.json").get_json()["status"] == "failed"
    assistant = Browserless(app.test_client())
    assistant.login(world.assessor.email, PASSWORD)
    alive = assistant.client.get(f"/export-jobs/{ids['alive']}.json").get_json()
    assert alive["status"] == "running"
    alive_page = assistant.client.get(f"/export-jobs/{ids['alive']}").get_data(True)
    assert '<form id="export-retry" method="post" action="/enrolments/' in alive_page
    assert re.search(r'id="export-retry"[^>]* hidden>', alive_page)
    admin = Browserless(app.test_client())
    admin.login(world.admin.email, PASSWORD)
    lost = admin.client.get(f"/export-jobs/{ids['lost']}.json").get_json()
    assert lost["status"] == "failed" and "never started" in lost["message"]
    assert admin.client.get(f"/export-jobs/{ids['waiting']}.json").get_json()["status"] == \
        "queued"


def test_the_worker_marks_dead_jobs_failed_when_it_starts(make_app, redis_url):
    app = make_app(REDIS_URL=redis_url)
    with app.extensions["portfolio.db"].sessionmaker() as s:
        world = make_world(s)
    _centre_keys(app)
    ids = _old_jobs(app, world)
    result = app.test_cli_runner().invoke(cli, ["worker", "--burst"])
    assert result.exit_code == 0, result.output
    assert "Marked 2 export job(s) failed" in result.output
    assert {name: _status_of(app, i) for name, i in ids.items()} == {
        "dead": "failed", "alive": "running", "lost": "failed", "waiting": "queued"}


def test_the_web_app_marks_dead_jobs_failed_when_it_starts(make_app):
    app = make_app()
    with app.extensions["portfolio.db"].sessionmaker() as s:
        world = make_world(s)
    _centre_keys(app)
    ids = _old_jobs(app, world)
    # A real start-up, as gunicorn does it: import the WSGI entry in a fresh process.
    started = subprocess.run([sys.executable, "-c", "import portfolio.wsgi"],
                             env=_worker_env(app), capture_output=True, text=True, timeout=120,
                             check=False)
    assert started.returncode == 0, started.stdout + started.stderr
    assert {name: _status_of(app, i) for name, i in ids.items()} == {
        "dead": "failed", "alive": "running", "lost": "failed", "waiting": "queued"}


def test_each_person_has_at_most_n_exports_at_once(make_app, redis_url):
    app = make_app(REDIS_URL=redis_url)  # queued jobs wait: nothing runs them
    with app.extensions["portfolio.db"].sessionmaker() as s:
        world = make_world(s)
    web = Browserless(app.test_client())
    web.login(world.learner.email, PASSWORD)
    first = web.post(f"/enrolments/{world.enrolment.id}/exports")
    second = web.post(f"/enrolments/{world.enrolment.id}/exports")
    assert first.status_code == second.status_code == 302
    third = web.post(f"/enrolments/{world.enrolment.id}/exports")
    assert third.status_code == 303
    assert third.headers["Location"] == second.headers["Location"]  # points to the job
    shown = web.client.get(third.headers["Location"]).get_data(True)
    assert "You already have 2 exports queued or running (at most 2 at once)" in shown
    assert queue_for(redis_url).count == 2
    with app.extensions["portfolio.db"].sessionmaker() as s:
        assert s.query(ExportJob).count() == 2
    # Someone else is not held up by it.
    other = Browserless(app.test_client())
    other.login(world.assessor.email, PASSWORD)
    assert other.post(f"/enrolments/{world.enrolment.id}/exports").status_code == 302
    # Once one ends (here: its worker died), the person may ask again.
    from portfolio.db import utcnow

    with app.extensions["portfolio.db"].sessionmaker() as s:
        dead = s.get(ExportJob, _job_id(first.headers["Location"]))
        dead.created_at = utcnow() - timedelta(hours=2)
        s.commit()
    assert web.post(f"/enrolments/{world.enrolment.id}/exports").status_code == 302
    assert _status_of(app, _job_id(first.headers["Location"])) == "failed"


def test_a_burst_of_concurrent_posts_stays_within_the_cap(make_app, redis_url):
    app = make_app(REDIS_URL=redis_url, EXPORT_MAX_QUEUED_PER_PERSON=2)
    with app.extensions["portfolio.db"].sessionmaker() as s:
        world = make_world(s)
    browsers = []
    for _ in range(8):
        browser = Browserless(app.test_client())
        browser.login(world.learner.email, PASSWORD)
        browsers.append((browser, browser.token()))
    gate = threading.Barrier(len(browsers))
    codes: list[int] = []

    def click(browser: Browserless, token: str) -> None:
        gate.wait()
        response = browser.client.post(f"/enrolments/{world.enrolment.id}/exports",
                                       data={"csrf_token": token})
        codes.append(response.status_code)

    threads = [threading.Thread(target=click, args=pair) for pair in browsers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(codes) == [302, 302] + [303] * 6, codes
    with app.extensions["portfolio.db"].sessionmaker() as s:
        assert s.query(ExportJob).filter(ExportJob.requested_by_id == world.learner.id
                                         ).count() == 2
