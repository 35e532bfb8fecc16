"""Issue 7, EQA: an admin shares a sample, the EQA visits and downloads it, the admin revokes."""

from __future__ import annotations

import io
import os
import re
import zipfile
from datetime import date
from pathlib import Path

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from portfolio.db import get_database
from portfolio.demo import seed_demo
from portfolio.evidence.storage import FileStore
from portfolio.export.signing import check_pdf_signature, init_centre_key
from portfolio.models import Enrolment, EqaPack, User
from tests.browser.conftest import login
from tests.factories import PASSWORD, load_unit40

SHOTS = os.environ.get("EQA_SCREENSHOTS")  # a folder, to look at the pages by eye


@pytest.fixture
def demo(app):
    s = get_database(app).sessionmaker()
    load_unit40(s)
    s.commit()
    with FileStore(Path(app.config["STORAGE_DIR"])).batch() as batch:
        seed_demo(s, PASSWORD, today=date.today(), batch=batch)
        batch.commit(s)
    s.commit()
    aisha = s.scalar(select(User).where(User.email == "learner@demo.example"))
    ids = {"aisha_enrolment": s.scalar(select(Enrolment.id).where(
        Enrolment.learner_id == aisha.id)),
        "pack": s.scalar(select(EqaPack.id))}
    s.close()
    instance = Path(app.instance_path)
    if not (instance / "signing" / "centre-key.pem").exists():
        init_centre_key(instance, "Northgate Skills Centre (demo)")
    return ids


def _shot(page, name: str) -> None:
    if SHOTS:
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


def test_eqa_visit_from_sharing_to_revocation(browser, live_server: str, demo, app) -> None:
    base = live_server
    admin = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    eqa = browser.new_context(viewport={"width": 1280, "height": 900},
                              accept_downloads=True).new_page()
    login(admin, base, "admin@demo.example")
    login(eqa, base, "eqa@demo.example")

    # The admin shares Aisha's unit with the EQA for a second visit.
    admin.get_by_role("link", name="EQA packs").click()
    expect(admin.locator("main")).to_contain_text("Unit 40 external sample")
    admin.get_by_role("link", name="Share a sample with an EQA").click()
    admin.get_by_label("Name of the pack").fill("Brightwater follow-up")
    admin.get_by_label("External quality assurer").select_option(
        label="Tomasz Wójcik (eqa@demo.example)")
    admin.get_by_label(re.compile("^Aisha Khan")).check()
    _shot(admin, "admin-new-pack")
    admin.get_by_role("button", name="Create the pack").click()
    expect(admin.locator(".flash").last).to_contain_text("The pack is ready")
    expect(admin.get_by_role("heading", name="Brightwater follow-up")).to_be_visible()

    # The EQA finds both packs from the dashboard, and opens the demo one.
    expect(eqa.locator("#eqa-title")).to_be_visible()
    eqa.get_by_role("link", name="EQA packs").click()
    expect(eqa.locator("main")).to_contain_text("Brightwater follow-up")
    eqa.get_by_role("link", name="Unit 40 external sample").click()
    expect(eqa.get_by_role("heading", name="Unit 40 external sample")).to_be_visible()
    _shot(eqa, "eqa-pack")
    eqa.get_by_role("link", name="Staff").click()
    staff = eqa.locator("table")
    expect(staff).to_contain_text("Daniel Okafor")
    expect(staff).to_contain_text("Qualified")
    expect(staff).to_contain_text("Margaret Lewis")
    _shot(eqa, "eqa-staff")
    eqa.get_by_role("link", name="Sampling records").click()
    expect(eqa.get_by_role("heading", name="Sampling strategy")).to_be_visible()
    _shot(eqa, "eqa-sampling")

    # Sofia's signed-off portfolio, read-only: every signature checks out.
    eqa.get_by_role("link", name="Sample", exact=True).click()
    eqa.get_by_role("link", name="Sofia Marín").click()
    expect(eqa.locator("#signatures-title")).to_be_visible()
    verdicts = eqa.locator(".eqa-signatures .tag")
    assert verdicts.count() > 3
    assert set(verdicts.all_inner_texts()) == {"Valid"}
    expect(eqa.locator("main form")).to_have_count(0)  # nothing to change here
    _shot(eqa, "eqa-enrolment")
    eqa.locator("#evidence-title ~ .table-scroll a").first.click()
    expect(eqa.locator("#mapping-title")).to_be_visible()
    _shot(eqa, "eqa-evidence")

    # The signed ZIP.
    eqa.get_by_role("link", name="Sample", exact=True).click()
    eqa.get_by_role("button", name="Prepare the signed PDFs (ZIP)").click()
    # The job's page polls its progress, then offers the download (issue 14).
    expect(eqa.locator("#pack-job-title")).to_have_text("Your pack is ready", timeout=120_000)
    _shot(eqa, "eqa-pack-ready")
    with eqa.expect_download(timeout=30_000) as info:
        eqa.get_by_role("link", name=re.compile("Download the ZIP")).click()
    data = Path(info.value.path()).read_bytes()
    archive = zipfile.ZipFile(io.BytesIO(data))
    names = archive.namelist()
    if SHOTS:
        archive.extractall(SHOTS)
    assert "sampling-record.pdf" in names and "manifest.json" in names
    portfolio = next(n for n in names if n.startswith("portfolio-sof"))
    trust = (Path(app.instance_path) / "signing" / "centre-cert.pem").read_bytes()
    for name in (portfolio, "sampling-record.pdf"):
        check = check_pdf_signature(archive.read(name), trust_cert_pem=trust)
        assert check.intact and check.valid and check.trusted, (name, check.problem)

    # Guessing another learner's id inside the pack shows nothing of theirs.
    response = eqa.goto(f"{base}/eqa/packs/{demo['pack']}/enrolments/{demo['aisha_enrolment']}")
    assert response is not None and response.status == 404
    expect(eqa.locator("main")).not_to_contain_text("Aisha")

    # The admin reads the access log, then revokes the pack.
    admin.goto(f"{base}/admin/eqa-packs/{demo['pack']}")
    log = admin.locator("#log-title ~ .table-scroll table")
    expect(log).to_contain_text(f"/eqa/packs/{demo['pack']}/staff")
    expect(log).to_contain_text(f"/eqa/packs/{demo['pack']}/download")
    expect(log).to_contain_text("404")
    _shot(admin, "admin-pack")
    admin.get_by_label("Reason (optional)").fill("Visit complete")
    admin.get_by_role("button", name="Revoke this pack").click()
    expect(admin.locator(".flash").last).to_contain_text("can no longer open it")

    # The EQA's next click finds the pack gone.
    response = eqa.goto(f"{base}/eqa/packs/{demo['pack']}/staff")
    assert response is not None and response.status == 410
    expect(eqa.get_by_role("heading", name="This pack was withdrawn")).to_be_visible()
    _shot(eqa, "eqa-withdrawn")
    eqa.get_by_role("link", name="Go to your packs").click()
    expect(eqa.locator("main")).to_contain_text("withdrawn by the centre")
