"""EQA pack downloads as jobs (issue 14): ask, poll, download; one job per pack however often
it is asked for; reuse while nothing changed; failures keep nothing; dead and old jobs swept.

The ZIP's content (signed PDFs that verify) is checked in test_eqa.py with the real builder;
most tests here swap in a quick builder so they test the job around it, cheaply.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from portfolio.audit import record_event
from portfolio.cli import cli
from portfolio.db import utcnow
from portfolio.eqa import download, pack_jobs
from portfolio.export.files import export_files
from portfolio.export.signing import init_centre_key
from portfolio.job_states import JobStatus
from portfolio.models import AuditEvent, EqaPackJob, Export
from tests.conftest import Browserless
from tests.eqa_packs import fetch_pack
from tests.factories import PASSWORD, make_eqa_pack, make_user, make_world


@pytest.fixture
def world(app, session):
    w = make_world(session, app.config["STORAGE_DIR"])
    w.pack_id = make_eqa_pack(session, w).id
    session.commit()
    return w


@pytest.fixture
def quick_build(monkeypatch):
    """A builder that stores a small ZIP through the same export files, and counts its runs."""
    runs: list[int] = []

    def build(session, pack, *, config, store, progress=None, **_):
        runs.append(pack.id)
        progress(40, "Making portfolio 1 of 1")
        data = b"PK\x05\x06" + bytes(18) + str(len(runs)).encode()
        name = f"quick-{pack.id}-{len(runs)}.zip"
        export_files(config, store).write(f"eqa/{name}", data)
        return download.PackZip(filename=name, sha256=hashlib.sha256(data).hexdigest(),
                                size=len(data), members=[{"name": "manifest.json"}],
                                export_ids=[])

    monkeypatch.setattr(download, "build_pack_zip", build)
    return runs


def eqa_web(app, user):
    web = Browserless(app.test_client())
    assert web.login(user.email, PASSWORD).status_code == 302
    return web


def jobs(session):
    session.expire_all()
    return list(session.scalars(select(EqaPackJob).order_by(EqaPackJob.id)))


def test_asked_again_the_same_pack_is_reused_until_something_changes(app, session, world,
                                                                       quick_build):
    web = eqa_web(app, world.eqa)
    first = fetch_pack(web, world.pack_id)
    assert first.status["message"] == "Ready: 1 signed PDF and a manifest"
    assert first.zip.status_code == 200 and first.zip.mimetype == "application/zip"
    again = fetch_pack(web, world.pack_id)
    assert again.job_url == first.job_url and again.zip.data == first.zip.data
    assert len(quick_build) == 1 and len(jobs(session)) == 1
    # Each ask and each download is audited, the reused one too.
    actions = list(session.scalars(select(AuditEvent.action).where(
        AuditEvent.action.startswith("eqa.pack_"), AuditEvent.action != "eqa.pack_create")))
    assert actions == ["eqa.pack_request", "eqa.pack_download", "eqa.pack_download"]
    # Something changes in the centre (here: any recorded event outside the pack's making).
    record_event(session, action="evidence.submit", subject_type="evidence",
                 subject_id=world.evidence.id, actor=world.learner, actor_role="learner",
                 centre_id=world.learner.centre_id)
    session.commit()
    changed = fetch_pack(web, world.pack_id)
    assert changed.job_url != first.job_url and changed.zip.data != first.zip.data
    assert len(quick_build) == 2
    # An expired pack is not reused, and its page offers to ask again.
    assert app.test_cli_runner().invoke(cli, ["maintenance"]).exit_code == 0  # nothing old yet
    assert [j.status for j in jobs(session)] == [JobStatus.DONE, JobStatus.DONE]
    app.config["EQA_PACK_KEEP_HOURS"] = 0
    result = app.test_cli_runner().invoke(cli, ["maintenance"])
    assert "removed 2 EQA pack ZIP(s)" in result.output, result.output
    assert [j.status for j in jobs(session)] == [JobStatus.EXPIRED, JobStatus.EXPIRED]
    assert not list(Path(app.config["EXPORTS_DIR"]).rglob("*.zip"))
    page = web.client.get(changed.job_url).get_data(True)
    assert "This pack was removed" in page and "Try again" in page
    assert web.client.get(changed.status["download"]).status_code == 404
    assert fetch_pack(web, world.pack_id).zip.status_code == 200
    assert len(quick_build) == 3


def test_only_the_packs_eqa_sees_its_jobs(app, session, world, quick_build):
    other_eqa = make_user(session, world.learner.centre, "eqa", email="eqa2@example.org")
    session.commit()
    fetched = fetch_pack(eqa_web(app, world.eqa), world.pack_id)
    urls = (fetched.job_url, fetched.job_url + ".json", fetched.status["download"])
    for user, status in ((other_eqa, 404), (world.learner, 403), (world.admin, 403),
                         (world.other_admin, 403)):
        web = eqa_web(app, user)
        for url in urls:
            assert web.client.get(url).status_code == status, (user.email, url)
        assert web.post(f"/eqa/packs/{world.pack_id}/download").status_code == status
    assert len(quick_build) == 1 and len(jobs(session)) == 1
    # A job is reachable under its own pack only.
    other_pack = make_eqa_pack(session, world, title="Another visit")
    session.commit()
    job_id = fetched.job_url.rsplit("/", 1)[1]
    web = eqa_web(app, world.eqa)
    assert web.client.get(f"/eqa/packs/{other_pack.id}/downloads/{job_id}").status_code == 404


def test_a_double_click_starts_one_job(app, session, world, monkeypatch):
    started: list[int] = []
    monkeypatch.setattr(pack_jobs, "dispatch", lambda _app, job_id, _base: started.append(job_id))
    webs = [eqa_web(app, world.eqa) for _ in range(2)]
    tokens = [w.token() for w in webs]
    barrier = threading.Barrier(2)
    answers: list = [None, None]

    def ask(i: int) -> None:
        barrier.wait()
        answers[i] = webs[i].client.post(f"/eqa/packs/{world.pack_id}/download",
                                         data={"csrf_token": tokens[i]})

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert [a.status_code for a in answers] == [303, 303]
    assert answers[0].headers["Location"] == answers[1].headers["Location"]
    assert len(jobs(session)) == 1 and len(started) == 1
    # Still queued (no worker here): the page shows progress and polls.
    page = webs[0].client.get(answers[0].headers["Location"]).get_data(True)
    assert 'data-active="yes"' in page and "<progress" in page and "Preparing your pack" in page
    status = webs[0].client.get(answers[0].headers["Location"] + ".json").get_json()
    assert status["active"] and status["download"] is None
    assert webs[0].client.get(answers[0].headers["Location"] + "/zip").status_code == 404


def test_a_pack_that_cannot_be_stored_keeps_nothing_and_says_where_it_stopped(
        app, session, world, monkeypatch):
    with contextlib.suppress(FileExistsError):
        init_centre_key(Path(app.instance_path), "Main Centre")
    from portfolio.storage.local import LocalBackend

    real = LocalBackend.put_copy

    def half_then_fail(self, key, path):
        if key.endswith(".zip"):
            self.put_bytes(key, Path(path).read_bytes()[:100])  # a half object...
            raise OSError("disk full")  # ...and then the store fails
        return real(self, key, path)

    monkeypatch.setattr(LocalBackend, "put_copy", half_then_fail)
    fetched = fetch_pack(eqa_web(app, world.eqa), world.pack_id)
    assert fetched.zip is None and fetched.status["failed"]
    assert "storing the ZIP" in fetched.status["message"]
    assert "Nothing was kept" in fetched.page.get_data(True)
    session.expire_all()
    assert session.scalar(select(func.count(Export.id))) == 0
    exports = Path(app.config["EXPORTS_DIR"])
    assert not list(exports.rglob("*.zip")) and not list(exports.rglob("*.pdf"))
    assert not list((Path(app.config["STORAGE_DIR"]) / "tmp").glob("eqa-pack-*"))
    assert jobs(session)[0].status == JobStatus.FAILED


def test_maintenance_fails_a_job_whose_worker_died(app, session, world, quick_build):
    long_ago = utcnow() - timedelta(hours=3)
    dead = EqaPackJob(pack_id=world.pack_id, requested_by_id=world.eqa.id,
                      content_key="0" * 64, status=JobStatus.RUNNING, progress=30,
                      message="Making portfolio 1 of 1", export_ids=[],
                      created_at=long_ago, started_at=long_ago, heartbeat_at=long_ago)
    session.add(dead)
    session.commit()
    result = app.test_cli_runner().invoke(cli, ["maintenance"])
    assert "marked 0 export job(s) and 1 EQA pack job(s) failed" in result.output, \
        result.output
    job = jobs(session)[0]
    assert job.status == JobStatus.FAILED and "no longer running" in job.message
    # The dead job no longer holds the pack: asking again starts a new one.
    fetched = fetch_pack(eqa_web(app, world.eqa), world.pack_id)
    assert fetched.zip.status_code == 200 and len(jobs(session)) == 2


def test_a_dead_job_found_on_asking_is_failed_and_replaced(app, session, world, quick_build):
    long_ago = utcnow() - timedelta(hours=3)
    session.add(EqaPackJob(pack_id=world.pack_id, requested_by_id=world.eqa.id,
                           content_key="0" * 64, status=JobStatus.QUEUED, export_ids=[],
                           created_at=long_ago))
    session.commit()
    fetched = fetch_pack(eqa_web(app, world.eqa), world.pack_id)
    assert fetched.zip.status_code == 200
    assert [j.status for j in jobs(session)] == [JobStatus.FAILED, JobStatus.DONE]
    assert "never started" in jobs(session)[0].message


def test_with_redis_a_pack_waits_for_a_real_worker_which_builds_it(own_instance, make_app,
                                                                   redis_url):
    """The whole way on RQ: asked in the web app, queued, built by `portfolio worker` in a
    process of its own (the real builder: signed PDFs in a ZIP), downloaded from the web."""
    import subprocess
    import sys
    import zipfile
    from io import BytesIO

    from portfolio.export.jobs import queue_for
    from tests.test_export_jobs import _centre_keys, _worker_env

    app = make_app(REDIS_URL=redis_url)
    with app.extensions["portfolio.db"].sessionmaker() as s:
        w = make_world(s, app.config["STORAGE_DIR"])
        pack_id, eqa_email = make_eqa_pack(s, w).id, w.eqa.email
        s.commit()
    _centre_keys(app)
    web = Browserless(app.test_client())
    assert web.login(eqa_email, PASSWORD).status_code == 302
    asked = fetch_pack(web, pack_id)
    assert asked.status["active"] and asked.zip is None  # queued: the web app does not build
    assert queue_for(redis_url).count == 1
    root = Path(__file__).resolve().parent.parent
    worker = subprocess.run(
        [sys.executable, "-c", "from portfolio.cli import cli; cli()", "worker", "--burst"],
        env=_worker_env(app) | {"PYTHONPATH": str(root)}, cwd=root, capture_output=True,
        text=True, timeout=300, check=False)
    assert worker.returncode == 0, worker.stdout + worker.stderr
    status = web.client.get(asked.job_url + ".json").get_json()
    assert status["download"], (status, worker.stderr[-2000:])
    archive = zipfile.ZipFile(BytesIO(web.client.get(status["download"]).data))
    assert "manifest.json" in archive.namelist()
    assert any(name.startswith("portfolio-") and name.endswith(".pdf")
               for name in archive.namelist())
