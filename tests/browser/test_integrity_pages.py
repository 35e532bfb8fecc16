"""Issue 12 pages in a real browser, at desktop and phone widths: an export job whose worker
died (the page stops polling, says so and offers "Try again"), and the witness's page naming
the centre. Each is checked with axe-core and for sideways scrolling; screenshots go to
$SCREENSHOT_DIR when set."""

from __future__ import annotations

import os
import re
import time
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Page, ViewportSize, expect

from portfolio.db import get_database, utcnow
from portfolio.models import ExportJob
from tests.browser.conftest import DESKTOP, PHONE, login, serve
from tests.browser.test_accessibility import axe_report, check_reflow, run_axe
from tests.factories import ask_witness, make_evidence, make_world

WIDTHS = [pytest.param(DESKTOP, id="desktop"), pytest.param(PHONE, id="phone")]


def _shot(page: Page, name: str, viewport: ViewportSize) -> None:
    folder = os.environ.get("SCREENSHOT_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}-{viewport['width']}.png"),
                        full_page=True)


def _checked(page: Page, viewport: ViewportSize) -> None:
    result = run_axe(page)
    assert not result["violations"], axe_report(result["violations"])
    check_reflow(page, viewport["width"])


@pytest.mark.parametrize("viewport", WIDTHS)
def test_a_job_whose_worker_dies_stops_polling_and_offers_try_again(make_app, new_page,
                                                                    viewport) -> None:
    # An unreachable queue: "Try again" really queues a fresh job, which is then refused by
    # the queue and shown failed at once (nothing here renders a PDF).
    app = make_app(REDIS_URL="redis://127.0.0.1:9/0", EXPORT_HEARTBEAT_TIMEOUT=3)
    maker = get_database(app).sessionmaker
    with maker() as s:
        world = make_world(s)
        job = ExportJob(enrolment_id=world.enrolment.id, requested_by_id=world.learner.id,
                        status="running", progress=20, message="Laying out the evidence",
                        started_at=utcnow(),
                        # Alive until the test stops it, however slowly a loaded machine signs in.
                        heartbeat_at=utcnow() + timedelta(minutes=10))
        s.add(job)
        s.commit()
        email, job_id = world.learner.email, job.id
    with serve(app) as base:
        page = new_page(viewport=viewport)
        login(page, base, email)
        polls: list[str] = []
        page.on("request", lambda r: polls.append(r.url) if r.url.endswith(".json") else None)
        page.goto(f"{base}/export-jobs/{job_id}")
        expect(page.locator("#export-progress")).to_be_visible()
        expect(page.get_by_role("button", name="Try again")).to_be_hidden()
        # The worker dies: its heartbeat stops. The polling page notices on its own.
        with maker() as s:
            s.get(ExportJob, job_id).heartbeat_at = utcnow() - timedelta(minutes=5)
            s.commit()
        expect(page.locator("#export-message")).to_contain_text("no longer running",
                                                                timeout=10_000)
        expect(page.get_by_role("button", name="Try again")).to_be_visible()
        expect(page.locator("#export-progress")).to_be_hidden()
        seen = len(polls)
        time.sleep(2)
        assert len(polls) == seen, "the page kept polling a failed job"
        _checked(page, viewport)
        _shot(page, "export-job-failed", viewport)
        # Loaded afresh, a failed job's page does not poll at all.
        polls.clear()
        page.reload()
        expect(page.get_by_role("button", name="Try again")).to_be_visible()
        time.sleep(1)
        assert polls == []
        page.get_by_role("button", name="Try again").click()
        page.wait_for_load_state()
        assert re.search(r"/export-jobs/(\d+)$", page.url)
        assert int(page.url.rsplit("/", 1)[1]) != job_id
        expect(page.locator("#export-message")).to_contain_text("could not be queued")


@pytest.mark.parametrize("viewport", WIDTHS)
def test_the_witness_page_names_the_centre(make_app, new_page, viewport) -> None:
    app = make_app()
    with get_database(app).sessionmaker() as s:
        world = make_world(s)
        _request, token = ask_witness(s, world.enrolment, world.learner)
        s.commit()
        centre = world.learner.centre.name
    with serve(app) as base:
        page = new_page(viewport=viewport)
        page.goto(f"{base}/w/{token}")
        expect(page.locator("main .callout").first).to_contain_text(
            f"This request comes from {centre}")
        _checked(page, viewport)
        _shot(page, "witness-page", viewport)


@pytest.mark.parametrize("viewport", WIDTHS)
def test_the_assessor_sees_testimonies_that_are_not_independent(make_app, new_page,
                                                                viewport) -> None:
    app = make_app()
    with get_database(app).sessionmaker() as s:
        world = make_world(s)
        request, _token = ask_witness(s, world.enrolment, world.learner)
        s.commit()
        request.witness_email = world.learner.email  # made before the rule existed
        make_evidence(s, world.enrolment, world.learner, "witness_testimony",
                      title="Signed form from my manager", maps=("2.9",), submit=True,
                      details={"witness_name": "Rachel Osei", "witness_role": "Team leader",
                               "relationship": "Line manager",
                               "witness_contact": world.iqa.email})
        s.commit()
        email, enrolment_id = world.assessor.email, world.enrolment.id
    with serve(app) as base:
        page = new_page(viewport=viewport)
        login(page, base, email)
        page.goto(f"{base}/enrolments/{enrolment_id}/witnesses")
        expect(page.get_by_role("heading", name="Testimonies to check")).to_be_visible()
        expect(page.locator(".callout-warn")).to_have_count(2)
        _checked(page, viewport)
        _shot(page, "witness-list-warnings", viewport)
