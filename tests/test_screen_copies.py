"""Screen copies (issue 17): the first page of a PDF and HEIC/HEIF photos, shown on the evidence
page from a picture made in a limited child process, from real files made in the test."""

from __future__ import annotations

import hashlib
import io
import os
from datetime import date
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import select

from portfolio.evidence.parsing import build_preview, sniff
from portfolio.evidence.parsing.rendering import MAX_PDF_PAGES, MAX_SIDE, render
from portfolio.evidence.print_copy import print_copy_path
from portfolio.evidence.screen_copy import screen_copy_path
from portfolio.evidence.storage import FileStore
from portfolio.models import Evidence, EvidenceFile
from tests.factories import PASSWORD, TINY_PDF, make_world
from tests.real_files import GREEN, RED, blank_pdf_bytes, heic_bytes, pdf_bytes

HEIC = "image/heic"


@pytest.fixture
def world(app, session):
    return make_world(session)


@pytest.fixture
def learner_web(web, world):
    web.login(world.learner.email, PASSWORD)
    return web


def _preview_of(tmp_path: Path, data: bytes, name: str):
    path = tmp_path / name
    path.write_bytes(data)
    return build_preview(path, sniff(data[:65536], name, path))


def _upload(web, world, kind: str, data: bytes, name: str, *, activity_on: str | None = None):
    details = {"certificate_title": "Level 2 Customer Service",
               "awarding_body": "City & Guilds"} if kind == "rpl" else {}
    response = web.post(
        f"/enrolments/{world.enrolment.id}/evidence/new/{kind}",
        {"title": "Certificate and photo", "activity_on": activity_on or date.today().isoformat(),
         "activity_place": "Leeds office", "body_md": "What this shows.",
         "personal_data_confirmed": "y", "files": [(io.BytesIO(data), name)], **details},
        content_type="multipart/form-data")
    assert response.status_code == 302, response.get_data(True)
    return response


def _image(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def _close(pixel, colour, slack=30) -> bool:
    return all(abs(a - b) <= slack for a, b in zip(pixel[:3], colour, strict=True))


# --- sniffing ------------------------------------------------------------------------------


def test_a_real_heic_is_told_by_its_content_not_its_name(tmp_path):
    data = heic_bytes()
    assert data[4:12] == b"ftypheic"  # what pillow-heif's encoder (libheif + x265) writes
    for name in ("IMG_0001.HEIC", "IMG_0001.jpg", "photo", "notes.txt"):
        assert sniff(data[:65536], name).media_type == HEIC
    # A text file called .heic is still text.
    assert sniff(b"Just some notes about the day.\n", "IMG_0002.heic").media_type == "text/plain"


@pytest.mark.parametrize(("brand", "media_type"), [
    (b"heic", "image/heic"), (b"heix", "image/heic"), (b"hevc", "image/heic"),
    (b"heim", "image/heic"), (b"heis", "image/heic"), (b"mif1", "image/heif"),
    (b"msf1", "image/heif")])
def test_heif_brands_are_sniffed(brand, media_type):
    head = (24).to_bytes(4, "big") + b"ftyp" + brand + bytes(4) + brand + b"miaf" + bytes(64)
    assert sniff(head, "upload.bin").media_type == media_type


# --- PDFs ----------------------------------------------------------------------------------


def test_a_pdfs_first_page_is_drawn_bounded_in_size(tmp_path):
    preview = _preview_of(tmp_path, pdf_bytes([RED, GREEN, GREEN]), "certificate.pdf")
    assert preview.kind == "page" and preview.pages == 3
    image = _image(preview.screen)
    assert image.format == "PNG" and max(image.size) == MAX_SIDE
    assert (image.width, image.height) == (preview.width, preview.height) == (848, 1200)
    # Page 1 is red (pages 2 and 3 are green); the picture is not kept in the JSON.
    assert _close(image.getpixel((image.width // 2, image.height // 2)), RED)
    assert "screen" not in preview.to_json() and preview.to_json()["pages"] == 3


@pytest.mark.parametrize(("data", "words"), [
    (pdf_bytes([RED], password="letmein"), "protected with a password"),
    (b"%PDF-1.7\n" + os.urandom(4000), "damaged or not really a PDF"),
    (pdf_bytes([RED, GREEN])[:300], "damaged or not really a PDF"),
    (blank_pdf_bytes(0), "has no pages"),
    (TINY_PDF, "damaged or not really a PDF"),  # no cross-reference table at all
    (pdf_bytes([RED], size=(30_000, 30_000)), "larger than a PDF page can be"),
    (blank_pdf_bytes(MAX_PDF_PAGES + 1), "more than 2,000 pages"),
], ids=["encrypted", "corrupt", "truncated", "no pages", "no xref", "huge page",
        "too many pages"])
def test_pdfs_that_cannot_be_previewed_say_why(tmp_path, data, words):
    preview = _preview_of(tmp_path, data, "certificate.pdf")
    assert preview.kind == "none" and preview.screen is None
    assert words in (preview.note or "")


def test_a_render_that_takes_too_long_is_stopped(tmp_path):
    path = tmp_path / "slow.pdf"
    path.write_bytes(pdf_bytes([RED]))
    with open(path, "rb") as handle:
        made = render(handle, "application/pdf", pixel_limit=10**8, seconds=0.01)
    assert made.image is None and "took too long" in (made.note or "")


def test_pdf_upload_end_to_end(app, session, world, learner_web):
    data = pdf_bytes([RED, GREEN])
    _upload(learner_web, world, "rpl", data, "NVQ certificate.pdf")
    item = session.scalar(select(EvidenceFile))
    store = FileStore(Path(app.config["STORAGE_DIR"]))
    assert item.sha256 == hashlib.sha256(data).hexdigest()
    assert store.path_for(item.sha256).read_bytes() == data  # the original, byte for byte
    assert item.preview["kind"] == "page" and item.preview["pages"] == 2
    # The screen copy was written after the commit, beside the original.
    stored = screen_copy_path(store.root, item.sha256, "application/pdf")
    assert stored.is_file()
    evidence = session.scalar(select(Evidence))
    page = learner_web.client.get(f"/evidence/{evidence.id}").get_data(True)
    assert f'src="/files/{item.id}/preview"' in page
    assert 'alt="First page of NVQ certificate.pdf"' in page and "Page 1 of 2." in page
    response = learner_web.client.get(f"/files/{item.id}/preview")
    assert response.status_code == 200 and response.mimetype == "image/png"
    assert response.headers["Cache-Control"] == "private, no-store"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response.headers["Content-Security-Policy"]
    image = _image(response.data)
    assert image.size == (848, 1200) and _close(image.getpixel((400, 600)), RED)
    # A lost screen copy is made again, from the checked original, when next asked for.
    stored.unlink()
    again = learner_web.client.get(f"/files/{item.id}/preview")
    assert again.status_code == 200 and again.data == response.data and stored.is_file()
    # The original is still what the file route gives.
    assert learner_web.client.get(f"/files/{item.id}").data == data


def test_an_encrypted_pdf_is_kept_with_a_note_and_no_picture(app, session, world, learner_web):
    data = pdf_bytes([RED], password="letmein")
    _upload(learner_web, world, "rpl", data, "locked.pdf")
    item = session.scalar(select(EvidenceFile))
    assert item.sha256 == hashlib.sha256(data).hexdigest() and item.preview["kind"] == "none"
    evidence = session.scalar(select(Evidence))
    page = learner_web.client.get(f"/evidence/{evidence.id}").get_data(True)
    assert "This PDF is protected with a password, so there is no preview." in page
    assert "/preview" not in page.split('id="files-title"')[1]
    assert learner_web.client.get(f"/files/{item.id}/preview").status_code == 404
    assert not (Path(app.config["STORAGE_DIR"]) / "screen").exists()


def test_a_swapped_original_has_its_picture_refused(app, session, world, learner_web):
    data = pdf_bytes([RED])
    _upload(learner_web, world, "rpl", data, "certificate.pdf")
    item = session.scalar(select(EvidenceFile))
    store = FileStore(Path(app.config["STORAGE_DIR"]))
    target = store.path_for(item.sha256)
    os.chmod(target, 0o640)
    target.write_bytes(pdf_bytes([GREEN]))
    response = learner_web.client.get(f"/files/{item.id}/preview")
    assert response.status_code == 409


def test_a_failed_commit_leaves_no_screen_or_print_copy(app, session, world, monkeypatch):
    store = FileStore(Path(app.config["STORAGE_DIR"]))

    class Boom(Exception):
        pass

    def failing_commit():
        raise Boom()

    with store.batch() as batch:
        batch.add(io.BytesIO(pdf_bytes([RED])), "a.pdf", 10**7)
        batch.add(io.BytesIO(heic_bytes()), "b.heic", 10**7)
        assert all(staged.preview.screen for staged in batch.files)
        monkeypatch.setattr(session, "commit", failing_commit)
        with pytest.raises(Boom):
            batch.commit(session)
    assert [p for p in store.root.rglob("*") if p.is_file()] == []


# --- HEIC and HEIF photos ------------------------------------------------------------------


def test_a_heic_photo_is_converted_upright_with_its_exif_date(tmp_path):
    preview = _preview_of(tmp_path, heic_bytes(size=(1600, 1200)), "IMG_0001.HEIC")
    assert preview.kind == "image" and (preview.width, preview.height) == (1600, 1200)
    assert preview.taken_at == "2026-01-10T09:30:00"
    image = _image(preview.screen)
    assert image.format == "JPEG" and image.size == (MAX_SIDE, 900)
    # Blue block top left, the rest red: neither turned nor flipped.
    assert _close(image.getpixel((20, 20)), (30, 60, 200), slack=40)
    assert _close(image.getpixel((image.width - 20, image.height - 20)), RED, slack=40)


def test_a_truncated_heic_is_kept_with_a_note(tmp_path):
    data = heic_bytes()
    preview = _preview_of(tmp_path, data[:len(data) * 3 // 4], "IMG_0002.HEIC")
    assert preview.kind == "none" and preview.screen is None
    assert "could not be read" in (preview.note or "")


def test_heic_upload_end_to_end(app, session, world, learner_web):
    data = heic_bytes(size=(2000, 1500))
    _upload(learner_web, world, "photo", data, "IMG_0042.HEIC")
    item = session.scalar(select(EvidenceFile))
    store = FileStore(Path(app.config["STORAGE_DIR"]))
    # The original is the evidence, byte for byte.
    assert item.media_type == HEIC and item.filename == "IMG_0042.heic"
    assert item.sha256 == hashlib.sha256(data).hexdigest()
    assert store.path_for(item.sha256).read_bytes() == data
    assert learner_web.client.get(f"/files/{item.id}?download=1").data == data
    assert item.preview["kind"] == "image" and item.preview["taken_at"] == "2026-01-10T09:30:00"
    # Shown from its JPEG screen copy, never the HEIC itself.
    evidence = session.scalar(select(Evidence))
    page = learner_web.client.get(f"/evidence/{evidence.id}").get_data(True)
    assert f'src="/files/{item.id}/preview"' in page and f'src="/files/{item.id}"' not in page
    assert "Taken 10 Jan 2026" in page
    response = learner_web.client.get(f"/files/{item.id}/preview")
    assert response.status_code == 200 and response.mimetype == "image/jpeg"
    image = _image(response.data)
    assert image.format == "JPEG" and image.size == (MAX_SIDE, 900)
    assert _close(image.getpixel((image.width - 20, image.height - 20)), RED, slack=40)
    # And a print copy for the PDF export, made after the commit.
    with Image.open(print_copy_path(store.root, item.sha256)) as printed:
        assert printed.format == "JPEG" and printed.size == (1100, 825)


def test_a_heic_photos_exif_date_feeds_worth_a_second_look(app, session, world, learner_web):
    _upload(learner_web, world, "photo", heic_bytes(taken="2025:06:01 12:00:00"), "IMG_9.heic",
            activity_on="2026-01-20")
    evidence = session.scalar(select(Evidence))
    page = learner_web.client.get(f"/evidence/{evidence.id}").get_data(True)
    assert "The photo was taken on 01 Jun 2025, 233 days from the activity date" in page


def test_staff_see_the_picture_too_and_strangers_do_not(app, session, world, learner_web):
    _upload(learner_web, world, "rpl", pdf_bytes([RED]), "certificate.pdf")
    item = session.scalar(select(EvidenceFile))
    evidence = session.scalar(select(Evidence))
    for person, allowed in ((world.assessor, True), (world.iqa, True),
                            (world.other_learner, False)):
        client = _signed_in(app, person)
        page = client.get(f"/evidence/{evidence.id}")
        preview = client.get(f"/files/{item.id}/preview")
        if allowed:
            assert f'src="/files/{item.id}/preview"' in page.get_data(True)
            assert preview.status_code == 200 and preview.mimetype == "image/png"
        else:
            assert page.status_code == 404 and preview.status_code == 404


def _signed_in(app, person):
    from tests.conftest import Browserless

    client = app.test_client()
    Browserless(client).login(person.email, PASSWORD)
    return client


def test_the_eqa_sees_the_picture_through_their_pack(app, session, world):
    from tests.factories import make_eqa_pack, make_evidence, stage_bytes

    evidence = make_evidence(
        session, world.enrolment, world.learner, "rpl", title="Earlier certificate", body="",
        details={"certificate_title": "Level 2", "awarding_body": "NCFE"},
        files=[stage_bytes(app.config["STORAGE_DIR"], pdf_bytes([RED]), "certificate.pdf")])
    pack = make_eqa_pack(session, world)
    session.commit()
    item = evidence.versions[0].files[0]
    client = _signed_in(app, world.eqa)
    page = client.get(f"/eqa/packs/{pack.id}/evidence/{evidence.id}").get_data(True)
    url = f"/eqa/packs/{pack.id}/files/{item.id}/preview"
    assert f'src="{url}"' in page
    response = client.get(url)
    assert response.status_code == 200 and response.mimetype == "image/png"
    assert _close(_image(response.data).getpixel((400, 600)), RED)


def test_the_countersigner_sees_a_heic_photo_the_decision_cites(app, session, world):
    from tests.factories import accept, decide, make_evidence, stage_bytes

    photo = make_evidence(
        session, world.other_enrolment, world.other_learner, "photo", title="Desk notice",
        body="", files=[stage_bytes(app.config["STORAGE_DIR"], heic_bytes(), "IMG_7.heic")],
        maps=("2.9",), submit=True)
    accept(session, photo, world.trainee)
    decision = decide(session, world.other_enrolment, world.trainee, "2.9", [photo])
    session.commit()
    item = photo.versions[0].files[0]
    client = _signed_in(app, world.assessor)
    page = client.get(f"/decisions/{decision.id}/review").get_data(True)
    url = f"/decisions/{decision.id}/files/{item.id}/preview"
    assert f'src="{url}"' in page
    response = client.get(url)
    assert response.status_code == 200 and response.mimetype == "image/jpeg"
    assert _image(response.data).size == (MAX_SIDE, 900)


def test_files_stored_before_pictures_get_them_from_the_cli(app, session, world):
    import shutil

    from portfolio.cli import cli
    from tests.factories import make_evidence, stage_bytes

    store = FileStore(Path(app.config["STORAGE_DIR"]))
    files = [stage_bytes(store.root, data, name) for data, name in (
        (pdf_bytes([RED, GREEN, GREEN]), "certificate.pdf"), (heic_bytes(), "IMG_1.heic"),
        (pdf_bytes([RED], password="secret"), "locked.pdf"), (pdf_bytes([GREEN]), "gone.pdf"))]
    evidence = make_evidence(session, world.enrolment, world.learner, "work_product",
                             title="Old uploads", body="", files=files)
    # As uploads were stored before this release: a note and no picture or print copy.
    for f in evidence.versions[0].files:
        f.preview = {"kind": "none", "note": "There is no preview for a PDF document here."}
    session.commit()
    shutil.rmtree(store.root / "screen")
    shutil.rmtree(store.root / "print")
    certificate, photo, locked, gone = evidence.versions[0].files
    store.path_for(gone.sha256).unlink()

    result = app.test_cli_runner().invoke(cli, ["files", "pictures"])
    assert result.exit_code == 1, result.output  # one original was missing
    assert f"SKIPPED  {gone.sha256}" in result.output
    assert ("4 stored PDF(s) or HEIC/HEIF photo(s) had no picture; 2 have one now (3 file "
            "record(s) updated)") in result.output
    session.expire_all()
    assert certificate.preview["kind"] == "page" and certificate.preview["pages"] == 3
    assert photo.preview["kind"] == "image" and photo.preview["taken_at"]
    assert locked.preview["kind"] == "none" and "password" in locked.preview["note"]
    assert screen_copy_path(store.root, certificate.sha256, "application/pdf").is_file()
    assert screen_copy_path(store.root, photo.sha256, HEIC).is_file()
    assert print_copy_path(store.root, photo.sha256).is_file()
    client = _signed_in(app, world.learner)
    page = client.get(f"/evidence/{evidence.id}").get_data(True)
    assert f'src="/files/{certificate.id}/preview"' in page
    assert f'src="/files/{photo.id}/preview"' in page
