"""Browser fixtures: one headless Chromium per run, a fresh context (and page) per test.

Every test under tests/browser is marked `browser`, so `pytest -m "not browser"` skips them.

Two ways to get a running app:

* `live_server`: a fresh database and server per test, for journeys that change data (as in
  tests/conftest.py, overridden here only to stop quicker);
* `shared_site` (here): one database, one `make_world` and one server per test module, with a
  signed-in browser state per role, for the many read-only page checks (accessibility).
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import Browser, BrowserContext, Page, ViewportSize, sync_playwright
from sqlalchemy import text

from portfolio import create_app, db
from portfolio.db import get_database
from tests.conftest import _test_config, csrf_from
from tests.factories import PASSWORD, criterion, make_world
from tests.sampling_setup import make_sampling, make_unit_samples

BROWSER_DIR = Path(__file__).resolve().parent
DESKTOP: ViewportSize = {"width": 1280, "height": 900}
PHONE: ViewportSize = {"width": 390, "height": 844}
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Fail fast: every page here is served from loopback and renders in milliseconds.
DEFAULT_TIMEOUT_MS = 10_000


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # This hook sees the whole run's items, so mark only the ones in this folder.
    for item in items:
        if item.path.is_relative_to(BROWSER_DIR):
            item.add_marker(pytest.mark.browser)


def _chromium_executable() -> str | None:
    """Debian's Chromium (`make test` installs it); None lets Playwright use its own download."""
    for candidate in (os.environ.get("CHROMIUM_PATH"), "/usr/bin/chromium",
                      shutil.which("chromium")):
        if candidate and os.path.exists(candidate):
            return candidate
    return None


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    playwright = sync_playwright().start()
    try:
        instance = playwright.chromium.launch(
            executable_path=_chromium_executable(), args=CHROMIUM_ARGS, headless=True)
        try:
            yield instance
        finally:
            instance.close()
    finally:
        playwright.stop()


NewPage = Callable[..., Page]


@pytest.fixture
def new_page(browser: Browser) -> Iterator[NewPage]:
    """Open a page in a new browser context: new_page(viewport=PHONE, storage_state=...)."""
    contexts: list[BrowserContext] = []

    def factory(viewport: ViewportSize = DESKTOP, **context_args: Any) -> Page:
        context = browser.new_context(viewport=viewport, **context_args)
        context.set_default_timeout(DEFAULT_TIMEOUT_MS)
        contexts.append(context)
        return context.new_page()

    yield factory
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_page: NewPage) -> Page:
    """A page in a fresh context (no cookies), 1280x900."""
    return new_page()


def login(page: Page, base_url: str, email: str, password: str = PASSWORD) -> None:
    """Sign in through the form; afterwards the page shows wherever the app sent us."""
    page.goto(f"{base_url}/login")
    page.fill("#email", email)
    page.fill("#password", password)
    page.locator("main form").get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


@contextmanager
def serve(app: Flask) -> Iterator[str]:
    """Serve the app on a free loopback port in a thread; yield its base URL."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    # A short poll interval makes shutdown() return at once rather than in up to 0.5 s.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)


def _empty_postgres(url: str) -> None:
    """Empty every table of the migrated test database (as tests/conftest.py does per test)."""
    app = create_app(_test_config(url))
    engine = get_database(app).engine
    with engine.begin() as conn:
        tables = [r[0] for r in conn.execute(text(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
            "AND tablename <> 'alembic_version'"))]
        conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
        conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture
def live_server(app: Flask) -> Iterator[str]:
    """As in tests/conftest.py (the app on the test's own database), but quicker to stop."""
    with serve(app) as base_url:
        yield base_url


@dataclass
class SharedSite:
    """A running app with `make_world` data, shared by the read-only tests of one module."""

    app: Flask
    base_url: str
    emails: dict[str, str]
    ids: dict[str, int]
    _states: dict[str, Any] = field(default_factory=dict)

    def storage_state(self, role: str | None) -> Any:
        """Browser state (cookies) of a signed-in session for the role, made once per role.

        Signing in through Flask's test client takes milliseconds where the sign-in page takes
        a second; the journeys test the sign-in page itself. (The session was not made by
        Chromium, so Flask-Login's "basic" session protection marks it not fresh: harmless.)
        """
        if role is None:
            return None
        if role not in self._states:
            client = self.app.test_client()
            form = client.get("/login").get_data(as_text=True)
            response = client.post("/login", data={
                "email": self.emails[role], "password": PASSWORD, "csrf_token": csrf_from(form)})
            assert response.status_code == 302, f"{role} could not sign in"
            cookie = client.get_cookie(self.app.config["SESSION_COOKIE_NAME"])
            assert cookie is not None
            self._states[role] = {"origins": [], "cookies": [{
                "name": cookie.key, "value": cookie.value, "domain": "127.0.0.1", "path": "/",
                "expires": -1, "httpOnly": True, "secure": False, "sameSite": "Lax"}]}
        return self._states[role]


def _eqa_packs(session: Any, world: Any) -> dict[str, int]:
    """An open EQA pack over the learner's enrolment, and one that has expired."""
    from datetime import date, timedelta

    from tests.factories import make_eqa_pack

    pack = make_eqa_pack(session, world)
    expired = make_eqa_pack(session, world, title="Last year's sample")
    expired.valid_from = date.today() - timedelta(days=40)
    expired.valid_to = date.today() - timedelta(days=10)
    session.flush()
    from portfolio.db import utcnow
    from portfolio.job_states import JobStatus
    from portfolio.models import EqaPackJob

    # The pack's download page in its three looks: working, failed, ready. The running job's
    # heartbeat is set ahead so that it is not swept as dead while the shared site is up.
    jobs = {
        "running": EqaPackJob(status=JobStatus.RUNNING, progress=40,
                              message="Making portfolio 2 of 5", started_at=utcnow(),
                              heartbeat_at=utcnow() + timedelta(days=1)),
        "failed": EqaPackJob(status=JobStatus.FAILED, progress=20,
                             message="It stopped at the signed sampling record. Nothing was "
                                     "kept; try again in a moment, and tell the centre if it "
                                     "keeps happening."),
        "ready": EqaPackJob(status=JobStatus.DONE, progress=100,
                            message="Ready: 2 signed PDFs and a manifest",
                            filename="eqa-pack-ready.zip", sha256="0" * 64, size=3_400_000),
    }
    for job in jobs.values():
        job.pack_id, job.requested_by_id, job.content_key = pack.id, world.eqa.id, "0" * 64
        job.export_ids = []
        session.add(job)
    session.commit()
    return {"eqa_pack": pack.id, "eqa_pack_expired": expired.id,
            **{f"eqa_pack_job_{name}": job.id for name, job in jobs.items()}}


def _people_imports(session: Any, world: Any) -> dict[str, str]:
    """The admin's spreadsheet imports: one waiting to be confirmed, with good and bad rows,
    and one done."""
    from portfolio.people_import import services as imports

    rows = ("Name,Email,Employer,Workplace,Unit or qualification,Assessor email,IQA email,"
            "Start date,Planned end date\n"
            "Nia Newcomer,nia@example.org,Acme,Leeds,R/506/2151,assessor@example.org,"
            "iqa@example.org,2025-09-01,2026-08-31\n"
            "Lee Learner,learner@example.org,Acme,Leeds,R/506/2151,assessor@example.org,,"
            "01/09/2025,31/08/2024\n")
    from portfolio.job_states import MACHINE

    _pending, preview = imports.stash_upload(session, filename="september.csv", text=rows,
                                             row_count=2, actor=world.admin)
    done, finished = imports.stash_upload(session, filename="august.csv", text=rows,
                                          row_count=2, actor=world.admin)
    done.mode, done.total_rows = "good", 3
    MACHINE.move(done, "confirm")  # as the confirming request claims it
    imports.finish(done, imports.Outcome(people_created=2, people_reused=1,
                                         enrolments_created=2, skipped=[(4, "Changed.")]))
    session.commit()
    return {"people_import_preview": preview, "people_import_done": finished}


def _evidence_with_pictures(app: Flask, session: Any, world: Any) -> int:
    """A draft with a PDF (its first page shown as a picture) and a HEIC photo (shown from a
    JPEG copy), for the pages that show files."""
    from tests.factories import make_evidence, stage_bytes
    from tests.real_files import GREEN, RED, heic_bytes, pdf_bytes

    store = app.config["STORAGE_DIR"]
    evidence = make_evidence(
        session, world.enrolment, world.learner, "rpl", title="Level 2 certificate", body="",
        details={"certificate_title": "Level 2 Customer Service", "awarding_body": "NCFE"},
        files=[stage_bytes(store, pdf_bytes([RED, GREEN]), "Level 2 certificate.pdf"),
               stage_bytes(store, heic_bytes(), "IMG_0042.heic")])
    session.commit()
    return evidence.id


@pytest.fixture(scope="module")
def shared_site(db_kind: str, _database_template: str,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedSite]:
    """One database, world and server for a module. Its tests must not change data."""
    if db_kind == "sqlite":
        target = tmp_path_factory.mktemp("shared-site") / "site.sqlite3"
        shutil.copyfile(_database_template, target)
        url = f"sqlite:///{target}"
    else:
        url = _database_template
        _empty_postgres(url)
    app = create_app(_test_config(url))
    try:
        with app.app_context():
            session = db.session()
            world = make_world(session, app.config["STORAGE_DIR"])  # with evidence and files
            emails = {role: user.email for role, user in world.by_role().items()}
            ids = {"unit": world.unit.id, "enrolment": world.enrolment.id,
                   "learner": world.learner.id, "assessor": world.assessor.id,
                   "evidence": world.evidence.id, "file": world.file_id,
                   "criterion": criterion(session, "1.1").id,
                   "witness_token": world.witness_token}
            ids.update(_eqa_packs(session, world))
            sampling = make_sampling(session, world)  # IQA pages: a plan, samples, an action
            ids.update(plan=sampling.plan_id, sample_done=sampling.completed_sample_id,
                       sample_open=sampling.open_sample_id)
            ids["unit_sample"] = make_unit_samples(session, world)[0]
            ids.update(_people_imports(session, world))
            ids["evidence_pictures"] = _evidence_with_pictures(app, session, world)
        with serve(app) as base_url:
            yield SharedSite(app, base_url, emails, ids)
    finally:
        get_database(app).engine.dispose()
