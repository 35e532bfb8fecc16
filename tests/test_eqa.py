"""EQA access packs: created by an admin, read by one EQA, scoped, time-limited, logged, signed."""

from __future__ import annotations

import contextlib
import io
import json
import zipfile
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from portfolio.export.services import verify_export
from portfolio.export.signing import check_pdf_signature, init_centre_key
from portfolio.models import AuditEvent, EqaAccessLog, EqaPack, Export
from tests.conftest import Browserless
from tests.eqa_packs import fetch_pack
from tests.factories import (
    PASSWORD,
    TINY_PDF,
    accept,
    decide,
    make_centre,
    make_enrolment,
    make_eqa_pack,
    make_evidence,
    make_user,
    make_world,
    stage_bytes,
)

TODAY = date.today()


@pytest.fixture
def world(app, session):
    w = make_world(session, app.config["STORAGE_DIR"])
    pack = make_eqa_pack(session, w)
    # Evidence elsewhere: the other learner's (same centre), with a file of its own.
    other_file = stage_bytes(app.config["STORAGE_DIR"], b"%PDF-1.4 other learner", "other.pdf")
    other = make_evidence(session, w.other_enrolment, w.other_learner, "work_product",
                          title="Other learner's letter", body="", files=[other_file])
    session.commit()
    w.pack_id = pack.id
    w.other_evidence_id = other.id
    w.other_file_id = other.versions[0].files[0].id
    return w


def signed_in(web, user):
    response = web.login(user.email, PASSWORD)
    assert response.status_code == 302
    return web


def log_rows(session, pack_id):
    session.expire_all()
    return list(session.scalars(select(EqaAccessLog).where(EqaAccessLog.pack_id == pack_id)
                                .order_by(EqaAccessLog.id)))


# ---------------------------------------------------------------- the admin creates a pack


def _pack_form(world, **overrides):
    data = {"title": "Spring visit 2026", "eqa_id": str(world.eqa.id),
            "enrolment_ids": [str(world.enrolment.id)], "note": "Learners chosen by the EQA.",
            "valid_from": TODAY.isoformat(),
            "valid_to": (TODAY + timedelta(days=14)).isoformat()}
    data.update(overrides)
    return data


def test_admin_creates_a_pack_and_it_is_audited(web, world, session):
    signed_in(web, world.admin)
    page = web.client.get("/admin/eqa-packs/new")
    assert page.status_code == 200
    assert world.eqa.full_name in page.get_data(True)
    assert world.other_learner.full_name in page.get_data(True)  # every centre enrolment
    response = web.post("/admin/eqa-packs/new", _pack_form(world))
    assert response.status_code == 302
    pack = session.scalar(select(EqaPack).where(EqaPack.title == "Spring visit 2026"))
    assert pack is not None and pack.eqa_id == world.eqa.id
    assert [i.enrolment_id for i in pack.items] == [world.enrolment.id]
    assert response.headers["Location"].endswith(f"/admin/eqa-packs/{pack.id}")
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "eqa.pack_create",
                                                    AuditEvent.subject_id == str(pack.id)))
    assert event.actor_id == world.admin.id
    assert event.detail["enrolment_ids"] == [world.enrolment.id]
    listing = web.client.get("/admin/eqa-packs").get_data(True)
    assert "Spring visit 2026" in listing


@pytest.mark.parametrize(("change", "message"), [
    ({"eqa_id": "0"}, "Choose an external quality assurer"),
    ({"enrolment_ids": []}, "Choose at least one"),
    ({"valid_to": (TODAY - timedelta(days=1)).isoformat(),
      "valid_from": (TODAY - timedelta(days=5)).isoformat()}, "already passed"),
    ({"valid_to": TODAY.isoformat(), "valid_from": (TODAY + timedelta(days=3)).isoformat()},
     "on or after the first day"),
    ({"title": ""}, "Give the pack a name"),
    ({"valid_from": ""}, "first day"),
])
def test_bad_pack_forms_are_refused_with_a_reason_and_nothing_saved(web, world, session, change,
                                                                    message):
    signed_in(web, world.admin)
    before = session.scalar(select(func.count(EqaPack.id)))
    response = web.post("/admin/eqa-packs/new", _pack_form(world, **change))
    assert response.status_code == 422
    assert message in response.get_data(True)
    session.expire_all()
    assert session.scalar(select(func.count(EqaPack.id))) == before


def test_a_pack_cannot_name_people_or_enrolments_of_another_centre(web, world, session):
    far = make_centre(session, "Faraway")
    far_eqa = make_user(session, far, "eqa", email="far-eqa@example.org")
    session.commit()
    signed_in(web, world.admin)
    for change in ({"eqa_id": str(far_eqa.id)}, {"eqa_id": str(world.assessor.id)},
                   {"enrolment_ids": [str(world.foreign_enrolment.id)]},
                   {"enrolment_ids": ["999999"]}):
        response = web.post("/admin/eqa-packs/new", _pack_form(world, **change))
        assert response.status_code == 422, change
    session.expire_all()
    assert session.scalar(select(func.count(EqaPack.id))) == 1  # only the fixture's


# ---------------------------------------------------------------- the EQA reads the pack


def test_eqa_reads_everything_in_the_pack(web, world, session, app):
    signed_in(web, world.eqa)
    home = web.client.get("/").get_data(True)
    assert f"/eqa/packs/{world.pack_id}" in home  # linked from the dashboard
    assert "EQA visit sample" in web.client.get("/eqa").get_data(True)
    overview = web.client.get(f"/eqa/packs/{world.pack_id}")
    assert overview.status_code == 200
    text = overview.get_data(True)
    assert world.learner.full_name in text and world.other_learner.full_name not in text
    assert "<strong>complaint</strong>" in text  # the note, as Markdown
    staff = web.client.get(f"/eqa/packs/{world.pack_id}/staff").get_data(True)
    assert world.assessor.full_name in staff and "Qualified" in staff
    assert world.iqa.full_name in staff and "Internal quality assurer" in staff
    assert world.trainee.full_name not in staff  # assesses nobody in the pack
    portfolio = web.client.get(f"/eqa/packs/{world.pack_id}/enrolments/{world.enrolment.id}")
    assert portfolio.status_code == 200
    body = portfolio.get_data(True)
    assert "Reply letter" in body and "Rachel Osei" not in body  # unsigned witness not listed
    assert f"/eqa/packs/{world.pack_id}/evidence/{world.evidence.id}" in body
    evidence = web.client.get(f"/eqa/packs/{world.pack_id}/evidence/{world.evidence.id}")
    assert evidence.status_code == 200
    assert f"/eqa/packs/{world.pack_id}/files/{world.file_id}" in evidence.get_data(True)
    assert "/files/" + str(world.file_id) + '"' not in evidence.get_data(True).replace(
        f"/eqa/packs/{world.pack_id}/files/{world.file_id}", "")  # no portfolio file links
    file = web.client.get(f"/eqa/packs/{world.pack_id}/files/{world.file_id}?download=1")
    assert file.status_code == 200 and file.data == TINY_PDF
    assert file.headers["Content-Security-Policy"] == "default-src 'none'; sandbox"
    sampling = web.client.get(f"/eqa/packs/{world.pack_id}/sampling")
    assert sampling.status_code == 200
    assert "Sampling strategy" in sampling.get_data(True)


def test_eqa_plays_recordings_and_reads_emails_through_the_pack(web, world, session, app):
    """The EQA sees a file as the portfolio page shows it (players, email headers), with every
    link going through the pack's own file route."""
    store = app.config["STORAGE_DIR"]
    wav = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(4000)
    # Addresses as a learner leaves them once customers' details are out (.invalid).
    eml = (b"From: Customer C-1010 <c1010@redacted.invalid>\r\nTo: complaints@team.invalid\r\n"
           b"Cc: manager@team.invalid\r\nSubject: Complaint C-1010\r\n"
           b"Date: Mon, 14 Sep 2026 10:42:00 +0100\r\n\r\nThe engineer did not come.\r\n")
    files = [stage_bytes(store, wav, "discussion.wav"), stage_bytes(store, eml, "complaint.eml")]
    discussion = make_evidence(session, world.enrolment, world.assessor,
                               "professional_discussion", title="Discussion with my assessor",
                               body="We went through the complaint log.", files=files,
                               maps=("1.1",), submit=True)
    session.commit()
    audio, email = discussion.versions[0].files
    signed_in(web, world.eqa)
    page = web.client.get(f"/eqa/packs/{world.pack_id}/evidence/{discussion.id}")
    assert page.status_code == 200
    html = page.get_data(True)
    player = f'class="media" src="/eqa/packs/{world.pack_id}/files/{audio.id}"'
    assert "<audio controls" in html and player in html
    assert "manager@team.invalid" in html and "All headers" in html  # Cc and headers
    assert f'href="/files/{audio.id}' not in html and f'src="/files/{audio.id}' not in html
    # Seeking in a recording asks for a byte range.
    part = web.client.get(f"/eqa/packs/{world.pack_id}/files/{audio.id}",
                          headers={"Range": "bytes=0-99"})
    assert part.status_code == 206 and part.data == wav[:100]
    assert part.headers["Cache-Control"] == "private, no-store"


def test_signatures_in_the_pack_show_their_verification_state(web, world, session):
    accepted = make_evidence(session, world.enrolment, world.learner, maps=("1.1",),
                             submit=True)
    accept(session, accepted, world.assessor)
    decide(session, world.enrolment, world.assessor, "1.1", [accepted])
    session.commit()
    signed_in(web, world.eqa)
    body = web.client.get(
        f"/eqa/packs/{world.pack_id}/enrolments/{world.enrolment.id}").get_data(True)
    assert "verdict-valid" in body
    assert "Met" in body and world.assessor.full_name in body
    item = web.client.get(f"/eqa/packs/{world.pack_id}/evidence/{accepted.id}").get_data(True)
    assert "verdict-valid" in item and "Accepted" in item


def test_eqa_reaches_nothing_outside_the_pack_by_guessing_ids(web, world, session, app):
    far = make_centre(session, "Faraway")
    far_admin = make_user(session, far, "admin", email="far-admin2@example.org")
    far_eqa = make_user(session, far, "eqa", email="far-eqa2@example.org")
    far_learner = make_user(session, far, "learner")
    far_assessor = make_user(session, far, "assessor", assessor_status="qualified")
    far_enrolment = make_enrolment(session, far_learner, far_assessor)
    second_eqa = make_user(session, world.admin.centre, "eqa", email="eqa2@example.org")
    from portfolio.eqa.services import PackInput, create_pack

    others_pack = create_pack(session, PackInput(
        eqa_id=second_eqa.id, enrolment_ids=[world.other_enrolment.id], title="Another EQA's",
        note="", valid_from=TODAY, valid_to=TODAY), actor=world.admin, today=TODAY)
    far_pack = create_pack(session, PackInput(
        eqa_id=far_eqa.id, enrolment_ids=[far_enrolment.id], title="Far", note="",
        valid_from=TODAY, valid_to=TODAY), actor=far_admin, today=TODAY)
    withdrawn = make_evidence(session, world.enrolment, world.learner, title="Withdrawn one")
    from portfolio.evidence.services import withdraw_evidence

    withdraw_evidence(session, withdrawn, actor=world.learner, reason="Duplicate")
    session.commit()
    signed_in(web, world.eqa)
    p = world.pack_id
    refused = [
        f"/eqa/packs/{others_pack.id}", f"/eqa/packs/{far_pack.id}",
        f"/eqa/packs/{others_pack.id}/enrolments/{world.other_enrolment.id}",
        f"/eqa/packs/{far_pack.id}/staff", "/eqa/packs/999999",
        f"/eqa/packs/{p}/enrolments/{world.other_enrolment.id}",
        f"/eqa/packs/{p}/enrolments/{world.foreign_enrolment.id}",
        f"/eqa/packs/{p}/enrolments/{far_enrolment.id}",
        f"/eqa/packs/{p}/enrolments/999999",
        f"/eqa/packs/{p}/evidence/{world.other_evidence_id}",
        f"/eqa/packs/{p}/evidence/{withdrawn.id}",
        f"/eqa/packs/{p}/evidence/999999",
        f"/eqa/packs/{p}/files/{world.other_file_id}",
        f"/eqa/packs/{p}/files/999999",
        # The portfolio's own routes never let an EQA in, pack or no pack.
        f"/enrolments/{world.enrolment.id}", f"/enrolments/{world.enrolment.id}/evidence",
        f"/enrolments/{world.enrolment.id}/coverage", f"/evidence/{world.evidence.id}",
        f"/files/{world.file_id}", f"/enrolments/{world.enrolment.id}/sign-off",
        f"/enrolments/{world.enrolment.id}/exports",
    ]
    for path in refused:
        response = web.client.get(path)
        assert response.status_code == 404, path
        assert b"Reply letter" not in response.data and TINY_PDF not in response.data
    assert web.client.get(f"/admin/eqa-packs/{p}").status_code == 403
    assert web.post(f"/eqa/packs/{others_pack.id}/download").status_code == 404
    # An API token of the EQA gets nothing either.
    from portfolio.auth.services import create_api_token

    _token, raw = create_api_token(session, world.eqa, "eqa")
    session.commit()
    api = app.test_client()
    assert api.get("/api/v1/enrolments", headers={"Authorization": f"Bearer {raw}"}
                   ).get_json()["items"] == []
    assert api.get(f"/api/v1/enrolments/{world.enrolment.id}",
                   headers={"Authorization": f"Bearer {raw}"}).status_code == 404
    assert api.get(f"/api/v1/files/{world.file_id}",
                   headers={"Authorization": f"Bearer {raw}"}).status_code == 404
    # Probing other people's packs leaves nothing in their logs.
    assert log_rows(session, others_pack.id) == [] and log_rows(session, far_pack.id) == []


def test_other_roles_cannot_use_the_eqa_pages(app, world):
    for user in (world.admin, world.learner, world.assessor, world.iqa):
        web = signed_in(Browserless(app.test_client()), user)
        assert web.client.get(f"/eqa/packs/{world.pack_id}").status_code == 403
        assert web.client.get(f"/eqa/packs/{world.pack_id}/files/{world.file_id}"
                              ).status_code == 403


def test_an_eqa_who_loses_the_role_or_account_loses_the_pack(web, world, session):
    from portfolio.auth.services import update_user

    signed_in(web, world.eqa)
    assert web.client.get(f"/eqa/packs/{world.pack_id}").status_code == 200
    update_user(session, world.eqa, actor=world.admin, full_name=world.eqa.full_name,
                roles=["learner"], assessor_status=None, is_active=True)
    session.commit()
    assert web.client.get(f"/eqa/packs/{world.pack_id}").status_code in (302, 403)


# ---------------------------------------------------------------- dates and revocation


def _set_dates(session, pack_id, start, end):
    pack = session.get(EqaPack, pack_id)
    pack.valid_from, pack.valid_to = start, end
    session.commit()


@pytest.mark.parametrize("path", ["", "/staff", "/sampling", "/enrolments/{e}",
                                  "/evidence/{ev}", "/files/{f}"])
def test_before_the_first_day_every_page_is_refused_with_403(web, world, session, path):
    _set_dates(session, world.pack_id, TODAY + timedelta(days=2), TODAY + timedelta(days=9))
    signed_in(web, world.eqa)
    url = f"/eqa/packs/{world.pack_id}" + path.format(e=world.enrolment.id,
                                                        ev=world.evidence.id, f=world.file_id)
    response = web.client.get(url)
    assert response.status_code == 403
    text = response.get_data(True)
    assert "not open yet" in text and "Reply letter" not in text
    assert (TODAY + timedelta(days=2)).strftime("%d %B %Y") in text
    assert "Opening later" in web.client.get("/eqa").get_data(True)


@pytest.mark.parametrize("path", ["", "/staff", "/sampling", "/enrolments/{e}",
                                  "/evidence/{ev}", "/files/{f}"])
def test_after_the_last_day_every_page_is_gone_with_410(web, world, session, path):
    _set_dates(session, world.pack_id, TODAY - timedelta(days=9), TODAY - timedelta(days=1))
    signed_in(web, world.eqa)
    url = f"/eqa/packs/{world.pack_id}" + path.format(e=world.enrolment.id,
                                                        ev=world.evidence.id, f=world.file_id)
    response = web.client.get(url)
    assert response.status_code == 410
    text = response.get_data(True)
    assert "This pack has expired" in text and "Reply letter" not in text
    assert web.post(f"/eqa/packs/{world.pack_id}/download").status_code == 410
    assert f"/eqa/packs/{world.pack_id}" not in web.client.get("/").get_data(True)


def test_the_last_day_is_still_open(web, world, session):
    _set_dates(session, world.pack_id, TODAY - timedelta(days=3), TODAY)
    signed_in(web, world.eqa)
    assert web.client.get(f"/eqa/packs/{world.pack_id}").status_code == 200


def test_admin_revokes_a_pack_and_the_eqa_is_refused_at_once(web, world, session, app):
    eqa = app.test_client()
    eqa_web = signed_in(Browserless(eqa), world.eqa)
    assert eqa.get(f"/eqa/packs/{world.pack_id}").status_code == 200
    signed_in(web, world.admin)
    response = web.post(f"/admin/eqa-packs/{world.pack_id}/revoke",
                        {"reason": "Visit moved to next term"})
    assert response.status_code == 302
    for path in ("", f"/evidence/{world.evidence.id}", f"/files/{world.file_id}"):
        gone = eqa.get(f"/eqa/packs/{world.pack_id}{path}")
        assert gone.status_code == 410
        assert "This pack was withdrawn" in gone.get_data(True)
    assert eqa_web.post(f"/eqa/packs/{world.pack_id}/download").status_code == 410
    again = web.post(f"/admin/eqa-packs/{world.pack_id}/revoke", {"reason": ""})
    assert again.status_code == 409
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "eqa.pack_revoke"))
    assert event.detail == {"reason": "Visit moved to next term"}
    detail = web.client.get(f"/admin/eqa-packs/{world.pack_id}").get_data(True)
    assert "Visit moved to next term" in detail and "Revoked" in detail
    assert "withdrawn by the centre" in eqa.get("/eqa").get_data(True)


def test_another_centres_admin_cannot_see_or_revoke_the_pack(web, world, session):
    signed_in(web, world.other_admin)
    assert web.client.get(f"/admin/eqa-packs/{world.pack_id}").status_code == 404
    assert web.post(f"/admin/eqa-packs/{world.pack_id}/revoke").status_code == 404
    assert "EQA visit sample" not in web.client.get("/admin/eqa-packs").get_data(True)
    session.expire_all()
    assert session.get(EqaPack, world.pack_id).revoked_at is None


# ---------------------------------------------------------------- the access log


def test_every_page_the_eqa_opens_is_logged_and_the_admin_sees_the_log(web, world, session,
                                                                       app):
    signed_in(web, world.eqa)
    p = world.pack_id
    visits = [(f"/eqa/packs/{p}", 200), (f"/eqa/packs/{p}/staff", 200),
              (f"/eqa/packs/{p}/enrolments/{world.enrolment.id}", 200),
              (f"/eqa/packs/{p}/evidence/{world.evidence.id}", 200),
              (f"/eqa/packs/{p}/files/{world.file_id}", 200),
              (f"/eqa/packs/{p}/sampling", 200),
              (f"/eqa/packs/{p}/enrolments/{world.other_enrolment.id}", 404),
              (f"/eqa/packs/{p}/files/{world.other_file_id}", 404)]
    for path, status in visits:
        assert web.client.get(path).status_code == status
    rows = log_rows(session, p)
    assert [(r.path, r.status) for r in rows] == visits
    assert {r.user_id for r in rows} == {world.eqa.id} and {r.method for r in rows} == {"GET"}
    _set_dates(session, p, TODAY - timedelta(days=5), TODAY - timedelta(days=1))
    assert web.client.get(f"/eqa/packs/{p}").status_code == 410
    assert [(r.path, r.status) for r in log_rows(session, p)][-1] == (f"/eqa/packs/{p}", 410)
    web = signed_in(Browserless(app.test_client()), world.admin)
    page = web.client.get(f"/admin/eqa-packs/{p}").get_data(True)
    assert f"GET /eqa/packs/{p}/files/{world.other_file_id}" in page
    assert "410" in page and world.eqa.full_name in page
    assert ">9<" in page.replace(" ", "")  # the count of rows
    assert "9" in web.client.get("/admin/eqa-packs").get_data(True)


# ---------------------------------------------------------------- the download


@pytest.fixture
def keys(app):
    instance = Path(app.instance_path)
    with contextlib.suppress(FileExistsError):
        init_centre_key(instance, "Test Centre")
    return (instance / "signing" / "centre-cert.pem").read_bytes()


def test_download_is_a_zip_of_signed_pdfs_that_verify(web, world, session, app, keys):
    accepted = make_evidence(session, world.other_enrolment, world.other_learner,
                             maps=("1.1",), submit=True)
    accept(session, accepted, world.trainee)
    # Two learners in one pack.
    from portfolio.eqa.services import PackInput, create_pack

    pack = create_pack(session, PackInput(
        eqa_id=world.eqa.id, enrolment_ids=[world.enrolment.id, world.other_enrolment.id],
        title="Two learners", note="", valid_from=TODAY, valid_to=TODAY), actor=world.admin,
        today=TODAY)
    session.commit()
    signed_in(web, world.eqa)
    fetched = fetch_pack(web, pack.id)
    assert fetched.status["message"].startswith("Ready: 3 signed PDFs")
    assert "Your pack is ready" in fetched.page.get_data(True)
    response = fetched.zip
    assert response.status_code == 200, response.get_data(True)[:500]
    assert response.mimetype == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(response.data))
    names = archive.namelist()
    manifest = json.loads(archive.read("manifest.json"))
    assert "sampling-record.pdf" in names
    portfolios = [n for n in names if n.startswith("portfolio-")]
    assert len(portfolios) == 2
    assert {f["enrolment_id"] for f in manifest["files"] if "enrolment_id" in f} == {
        world.enrolment.id, world.other_enrolment.id}
    import hashlib

    for entry in manifest["files"]:
        data = archive.read(entry["name"])
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]
        check = check_pdf_signature(data, trust_cert_pem=keys)
        assert check.intact and check.valid and check.covers_whole_file, entry["name"]
        assert check.trusted, check.problem
    for name in portfolios:
        verdict = verify_export(session, archive.read(name), trust_cert_pem=keys)
        assert verdict.state == "intact and current", verdict
    from pypdf import PdfReader

    record = PdfReader(io.BytesIO(archive.read("sampling-record.pdf")))
    text = "\n".join(page.extract_text() for page in record.pages)
    assert "Two learners" in text and world.assessor.full_name in text
    assert "Sampling strategy" in text
    # Written whole to the exports folder, recorded, and logged.
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "eqa.pack_download"))
    assert event.actor_id == world.eqa.id and event.actor_role == "eqa"
    stored = Path(app.config["EXPORTS_DIR"]) / "eqa" / event.detail["file"]
    assert stored.read_bytes() == response.data
    assert hashlib.sha256(response.data).hexdigest() == event.detail["sha256"]
    assert not list(stored.parent.glob(".partial-*"))
    assert session.scalar(select(func.count(Export.id))) == 2
    assert [row.path for row in log_rows(session, pack.id)][-4:] == [
        f"/eqa/packs/{pack.id}/download", fetched.job_url, fetched.job_url + ".json",
        fetched.status["download"]]
    asked = session.scalar(select(AuditEvent).where(AuditEvent.action == "eqa.pack_request"))
    assert asked.actor_id == world.eqa.id and asked.subject_id == str(pack.id)
    # The learner's Exports page says what made these PDFs (not "Command line").
    from tests.conftest import Browserless

    staff = signed_in(Browserless(app.test_client()), world.assessor)
    listing = staff.client.get(f"/enrolments/{world.enrolment.id}/exports").get_data(True)
    assert "EQA pack “Two learners”, downloaded by Eli Eqa" in listing
    assert "Command line" not in listing


def test_download_without_a_signing_key_says_what_to_do_and_keeps_nothing(web, world, session,
                                                                          make_app, tmp_path):
    app = make_app(SIGNING_PKCS12=str(tmp_path / "missing.p12"))
    eqa = signed_in(Browserless(app.test_client()), world.eqa)
    fetched = fetch_pack(eqa, world.pack_id)
    assert fetched.zip is None and fetched.status["failed"]
    assert "signing key" in fetched.status["message"]
    page = fetched.page.get_data(True)
    assert "The pack was not made" in page and "signing key" in page and "Try again" in page
    session.expire_all()
    assert session.scalar(select(func.count(Export.id))) == 0
    assert not list(Path(app.config["EXPORTS_DIR"]).rglob("*.zip"))


# ---------------------------------------------------------------- sampling records


def test_sampling_records_show_the_packs_learners_only(web, world, session, app, keys):
    from portfolio.eqa.services import PackInput, create_pack
    from tests.sampling_setup import make_sampling

    make_sampling(session, world)  # four decisions on world.enrolment, planned, two sampled
    elsewhere = create_pack(session, PackInput(
        eqa_id=world.eqa.id, enrolment_ids=[world.other_enrolment.id], title="Other learner",
        note="", valid_from=TODAY, valid_to=TODAY), actor=world.admin, today=TODAY)
    session.commit()
    signed_in(web, world.eqa)
    page = web.client.get(f"/eqa/packs/{world.pack_id}/sampling").get_data(True)
    assert "Agree with actions" in page and "Sound judgement" in page
    assert "Snapshot intact" in page
    assert "Say in the decision note" in page  # the action, with its owner and due date
    assert page.count("<tr>") >= 4 + 6  # four plan entries and six strategy rates
    assert world.iqa.full_name in page
    other = web.client.get(f"/eqa/packs/{elsewhere.id}/sampling").get_data(True)
    assert "Sound judgement" not in other and "Agree with actions" not in other
    assert "No decision of these learners has been sampled yet." in other
    assert world.learner.full_name not in other
    archive = zipfile.ZipFile(io.BytesIO(fetch_pack(web, world.pack_id).zip.data))
    from pypdf import PdfReader

    record = PdfReader(io.BytesIO(archive.read("sampling-record.pdf")))
    text = " ".join(" ".join(p.extract_text() for p in record.pages).split())
    assert "Agree with actions" in text and "Sound judgement" in text
    assert check_pdf_signature(archive.read("sampling-record.pdf"), trust_cert_pem=keys).trusted


def test_demo_shares_sofias_portfolio_with_the_demo_eqa_once(session):
    from portfolio.demo import seed_demo
    from portfolio.models import Enrolment, User
    from tests.factories import load_unit40

    load_unit40(session)
    for _ in range(2):
        seed_demo(session, PASSWORD, today=TODAY)
        session.commit()
    packs = list(session.scalars(select(EqaPack)))
    assert len(packs) == 1
    pack = packs[0]
    sofia = session.scalar(select(User).where(User.email == "sofia@demo.example"))
    enrolment = session.scalar(select(Enrolment).where(Enrolment.learner_id == sofia.id))
    assert pack.eqa.email == "eqa@demo.example"
    assert [i.enrolment_id for i in pack.items] == [enrolment.id]
    assert (pack.valid_from, pack.valid_to) == (TODAY, TODAY + timedelta(days=30))
    assert pack.state(TODAY) == "open"
