"""Stored files are checked: bytes swapped in the store are never served, embedded or bundled,
and `portfolio files verify` names every damaged, missing and unreferenced object."""

from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path

import pytest
from sqlalchemy import func, select

from portfolio.cli import cli
from portfolio.errors import DomainError, StoredFileDamaged
from portfolio.evidence.integrity import forget_checks
from portfolio.evidence.print_copy import ensure_print_copy, print_copy_path
from portfolio.evidence.storage import FileStore, damaged_objects
from portfolio.export.fetcher import RefusedURL, make_fetcher
from portfolio.models import AuditEvent, Export
from tests.conftest import csrf_from
from tests.factories import (
    PASSWORD,
    accept,
    make_eqa_pack,
    make_evidence,
    make_world,
    stage_bytes,
)

STATIC = Path(__file__).resolve().parent.parent / "static"
LETTER = (b"%PDF-1.4\n% the learner's genuine reply letter to the customer\n"
          b"1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj 2 0 obj<</Type/Pages/Kids[]/Count 0>>"
          b"endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n")
FORGED_SAME_SIZE = LETTER.replace(b"genuine", b"FORGED!")
FORGED_LONGER = LETTER + b"% and a paragraph the learner never wrote\n"
DAMAGED_WORDS = "damaged in the centre's file store"


@pytest.fixture(autouse=True)
def _fresh_checks():
    forget_checks()
    yield
    forget_checks()


@pytest.fixture
def world(app, session):
    w = make_world(session, app.config["STORAGE_DIR"])
    staged = stage_bytes(app.config["STORAGE_DIR"], LETTER, "reply-letter.pdf")
    # Submitted by the learner: the declaration signature covers this file.
    signed = make_evidence(session, w.enrolment, w.learner, "work_product",
                           title="Signed reply letter", body="", files=[staged],
                           maps=("2.8",), submit=True)
    accept(session, signed, w.assessor)
    pack = make_eqa_pack(session, w)
    session.commit()
    w.signed = signed
    w.signed_file_id = signed.versions[0].files[0].id
    w.sha = staged.sha256
    w.pack_id = pack.id
    return w


def store_of(app) -> FileStore:
    return FileStore(Path(app.config["STORAGE_DIR"]))


def swap(path: Path, data: bytes) -> None:
    """Replace a stored object's bytes in place, as an attacker would, and set its mtime back
    (os.utime) so a cache keyed on size and mtime alone would be fooled."""
    before = os.stat(path)
    with open(path, "r+b") as handle:
        handle.write(data)
        handle.truncate()
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert os.stat(path).st_mtime_ns == before.st_mtime_ns


def signed_in(app, user):
    client = app.test_client()
    page = client.get("/login")
    response = client.post("/login", data={"email": user.email, "password": PASSWORD,
                                           "csrf_token": csrf_from(page.get_data(True))})
    assert response.status_code == 302
    return client


def api_client(app, session, user):
    from portfolio.auth.services import create_api_token

    _token, raw = create_api_token(session, user, "integrity test")
    session.commit()
    return app.test_client(), {"Authorization": f"Bearer {raw}"}


def damage_events(session, sha: str) -> list[AuditEvent]:
    session.expire_all()
    return list(session.scalars(select(AuditEvent).where(
        AuditEvent.action == "file.damaged", AuditEvent.subject_id == sha)))


def refused(response, forged: bytes) -> None:
    body = response.get_data()
    assert response.status_code == 409, response.status_code
    assert forged not in body and b"FORGED" not in body and b"never wrote" not in body
    assert "Content-Range" not in response.headers
    text = response.get_data(True)
    assert "damaged" in text and "The centre has been told" in text, text[:600]
    assert "Nothing else in the portfolio is affected" in text


# ---------------------------------------------------------------- serving


@pytest.mark.parametrize("forged", [FORGED_SAME_SIZE, FORGED_LONGER],
                         ids=["same-size", "different-size"])
def test_swapped_file_is_never_served_on_any_route(app, session, world, forged):
    learner = signed_in(app, world.learner)
    assessor = signed_in(app, world.assessor)
    eqa = signed_in(app, world.eqa)
    api, headers = api_client(app, session, world.learner)
    routes = [
        (learner, f"/files/{world.signed_file_id}", {}),
        (learner, f"/files/{world.signed_file_id}?download=1", {}),
        (assessor, f"/files/{world.signed_file_id}", {}),
        (eqa, f"/eqa/packs/{world.pack_id}/files/{world.signed_file_id}", {}),
        (api, f"/api/v1/files/{world.signed_file_id}", headers),
    ]
    # Served intact first: a good check is remembered, and must not outlive the swap.
    for client, url, extra in routes:
        response = client.get(url, headers=extra)
        assert response.status_code == 200 and response.data == LETTER, url
    swap(store_of(app).path_for(world.sha), forged)
    for client, url, extra in routes:
        refused(client.get(url, headers=extra), forged)
        # A byte range (a player seeking) is refused too, before any byte is sent.
        refused(client.get(url, headers={**extra, "Range": "bytes=0-15"}), forged)
        # So is a conditional request naming the genuine file's ETag.
        refused(client.get(url, headers={**extra, "If-None-Match": f'"{world.sha}"'}), forged)
    problem = api.get(f"/api/v1/files/{world.signed_file_id}", headers=headers)
    assert problem.mimetype == "application/problem+json"
    assert problem.get_json()["status"] == 409 and "damaged" in problem.get_json()["detail"]
    # Recorded once in the audit trail, with the hash and route and nothing personal.
    events = damage_events(session, world.sha)
    assert len(events) == 1
    assert events[0].subject_type == "file" and events[0].detail["sha256"] == world.sha
    assert set(events[0].detail) == {"sha256", "route"}
    assert events[0].actor_id is None and events[0].learner_id is None
    # Other files are unaffected.
    assert learner.get(f"/files/{world.file_id}").status_code == 200


def test_a_range_of_an_intact_file_is_still_served(app, session, world):
    learner = signed_in(app, world.learner)
    part = learner.get(f"/files/{world.signed_file_id}", headers={"Range": "bytes=0-15"})
    assert part.status_code == 206 and part.data == LETTER[:16]
    assert part.headers["Content-Range"] == f"bytes 0-15/{len(LETTER)}"
    whole = learner.get(f"/files/{world.signed_file_id}")
    assert whole.headers["Content-Length"] == str(len(LETTER))
    assert whole.headers["Content-Security-Policy"] == "default-src 'none'; sandbox"


def test_a_file_replaced_by_rename_is_refused_too(app, session, world):
    learner = signed_in(app, world.learner)
    assert learner.get(f"/files/{world.signed_file_id}").data == LETTER
    path = store_of(app).path_for(world.sha)
    before = os.stat(path)
    temp = path.with_name("swap.tmp")
    temp.write_bytes(FORGED_SAME_SIZE)
    os.utime(temp, ns=(before.st_atime_ns, before.st_mtime_ns))
    os.replace(temp, path)
    refused(learner.get(f"/files/{world.signed_file_id}"), FORGED_SAME_SIZE)


def test_damage_is_a_domain_error_not_a_crash():
    assert issubclass(StoredFileDamaged, DomainError) and StoredFileDamaged.status == 409
    assert "The centre has been told" in StoredFileDamaged("0" * 64).message


def test_a_missing_file_is_a_clear_404(app, session, world):
    learner = signed_in(app, world.learner)
    store_of(app).path_for(world.sha).unlink()
    response = learner.get(f"/files/{world.signed_file_id}")
    assert response.status_code == 404 and "missing" in response.get_data(True)


# ---------------------------------------------------------------- signatures, exports, bundles


def test_damaged_objects_names_missing_and_swapped_files(app, world):
    store = store_of(app)
    other = stage_bytes(app.config["STORAGE_DIR"], b"%PDF-1.4 intact", "intact.pdf").sha256
    gone = stage_bytes(app.config["STORAGE_DIR"], b"%PDF-1.4 soon gone", "gone.pdf").sha256
    assert damaged_objects(store, [world.sha, other, gone]) == []
    swap(store.path_for(world.sha), FORGED_SAME_SIZE)
    store.path_for(gone).unlink()
    assert damaged_objects(store, [world.sha, other, gone, world.sha, "not-a-hash"]) == [
        world.sha, gone, "not-a-hash"]


@pytest.fixture
def keys(app):
    from portfolio.export.signing import init_centre_key

    with contextlib.suppress(FileExistsError):
        init_centre_key(Path(app.instance_path), "Test Centre")


def test_export_refuses_to_embed_a_swapped_file(app, session, world, keys, tmp_path):
    from portfolio.export.services import export_portfolio

    swap(store_of(app).path_for(world.sha), FORGED_SAME_SIZE)
    out = tmp_path / "portfolio.pdf"
    with app.test_request_context(), pytest.raises(StoredFileDamaged) as caught:
        export_portfolio(session, world.enrolment, actor=world.assessor, config=app.config,
                         instance_path=Path(app.instance_path), static_dir=STATIC,
                         store=store_of(app), verify_base="https://portfolio.example/verify",
                         out=out)
    session.rollback()
    message = caught.value.message
    assert f"E{world.signed.id}" in message and "Signed reply letter" in message
    assert "reply-letter.pdf" in message and "not exported" in message
    assert "FORGED" not in message
    assert not out.exists()
    assert session.scalar(select(func.count()).select_from(Export)) == 0


def test_export_command_refuses_and_exits_non_zero(app, session, world, keys, tmp_path):
    swap(store_of(app).path_for(world.sha), FORGED_SAME_SIZE)
    out = tmp_path / "portfolio.pdf"
    result = app.test_cli_runner().invoke(cli, [
        "export", world.learner.email, "--unit", world.unit.reference, "--out", str(out)])
    assert result.exit_code == 1, result.output
    assert f"E{world.signed.id}" in result.output and "damaged" in result.output
    assert not out.exists()
    assert len(damage_events(session, world.sha)) == 1


def test_export_job_fails_with_the_evidence_named(app, session, world, keys):
    """The queued export (the page's own route) fails and says which item is damaged."""
    from portfolio.export.jobs import _render_job
    from portfolio.models import ExportJob

    swap(store_of(app).path_for(world.sha), FORGED_LONGER)
    # Running, as `run_job` leaves it once it has claimed the job (a job that is not running
    # when it reports progress was given up on, and stops).
    job = ExportJob(enrolment_id=world.enrolment.id, requested_by_id=world.assessor.id,
                    status="running", progress=0, message="")
    session.add(job)
    session.commit()
    with app.test_request_context():
        _render_job(app, job.id, "https://portfolio.example/verify", store_of(app))
    session.expire_all()
    job = session.get(ExportJob, job.id)
    assert job.status == "failed" and job.export_id is None
    assert f"E{world.signed.id}" in job.message and "damaged" in job.message
    from sqlalchemy import select

    from portfolio.models import AuditEvent

    recorded = session.scalars(select(AuditEvent).where(
        AuditEvent.action == "file.damaged", AuditEvent.subject_id == world.sha)).all()
    assert len(recorded) == 1 and recorded[0].detail.get("route") == "export job"


def test_pdf_fetcher_refuses_swapped_evidence(app, world):
    store = store_of(app)
    fetcher = make_fetcher(STATIC, store)
    assert fetcher.fetch(f"evidence:{world.sha}").read() == LETTER
    swap(store.path_for(world.sha), FORGED_SAME_SIZE)
    with pytest.raises(RefusedURL):
        fetcher.fetch(f"evidence:{world.sha}")


def _jpeg(colour: tuple[int, int, int]) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (64, 48), colour).save(out, "JPEG")
    return out.getvalue()


def test_print_copy_is_never_used_or_made_from_a_swapped_photo(app, world):
    store = store_of(app)
    root = Path(app.config["STORAGE_DIR"])
    photo = stage_bytes(root, _jpeg((200, 30, 30)), "till.jpg").sha256
    assert ensure_print_copy(root, photo) is not None  # made when stored, and usable
    swap(store.path_for(photo), _jpeg((30, 30, 200)))
    assert ensure_print_copy(root, photo) is None  # the existing copy is not used
    print_copy_path(root, photo).unlink()
    assert ensure_print_copy(root, photo) is None  # nor is a new one made from the swap
    assert not print_copy_path(root, photo).exists()


def test_bundle_export_refuses_swapped_bytes(app, session, world, tmp_path):
    swap(store_of(app).path_for(world.sha), FORGED_SAME_SIZE)
    out = tmp_path / "bundle.zip"
    result = app.test_cli_runner().invoke(cli, ["bundle", "export", world.learner.email,
                                                "--out", str(out)])
    assert result.exit_code == 1
    assert world.sha in result.output and "damaged" in result.output
    assert not out.exists() and not list(tmp_path.glob(".partial-*"))


def test_eqa_pack_download_refuses_and_keeps_nothing(app, session, world, keys):
    from portfolio.eqa.services import PackInput, create_pack

    today = world.signed.created_at.date()
    pack = create_pack(session, PackInput(
        eqa_id=world.eqa.id, enrolment_ids=[world.other_enrolment.id, world.enrolment.id],
        title="Two learners", note="", valid_from=today, valid_to=today), actor=world.admin,
        today=today)
    session.commit()
    swap(store_of(app).path_for(world.sha), FORGED_SAME_SIZE)
    eqa = signed_in(app, world.eqa)
    page = eqa.get(f"/eqa/packs/{pack.id}")
    response = eqa.post(f"/eqa/packs/{pack.id}/download",
                        data={"csrf_token": csrf_from(page.get_data(True))})
    assert response.status_code == 303  # to the job's page, which says what failed
    text = eqa.get(response.headers["Location"]).get_data(True)
    assert f"E{world.signed.id}" in text and "damaged" in text
    assert "The pack was not made" in text
    session.expire_all()
    # The first learner's PDF was made (and committed) before the damage was found: gone too.
    assert session.scalar(select(func.count()).select_from(Export)) == 0
    assert not list(Path(app.config["EXPORTS_DIR"]).rglob("*.pdf"))
    assert not list(Path(app.config["EXPORTS_DIR"]).rglob("*.zip"))
    assert len(damage_events(session, world.sha)) == 1


# ---------------------------------------------------------------- the scrub


def run_verify(app, *args: str):
    return app.test_cli_runner().invoke(cli, ["files", "verify", *args])


def test_intact_store_passes(app, world):
    result = run_verify(app)
    assert result.exit_code == 0, result.output
    assert "0 damaged, 0 missing" in result.output
    assert "Every stored file is intact" in result.output
    data = json.loads(run_verify(app, "--json").output)
    assert data["ok"] is True and data["checked"] >= 2 and data["damaged"] == []


def test_scrub_names_swapped_truncated_and_missing_files(app, session, world):
    store = store_of(app)
    root = app.config["STORAGE_DIR"]
    truncated = stage_bytes(root, b"%PDF-1.4 " + b"x" * 5000, "long.pdf")
    gone = stage_bytes(root, b"%PDF-1.4 about to go", "gone.pdf")
    for staged in (truncated, gone):
        make_evidence(session, world.enrolment, world.learner, "work_product", title="More",
                      body="", files=[staged])
    session.commit()
    loose = stage_bytes(root, b"%PDF-1.4 no record uses me", "loose.pdf").sha256
    # Already checked (and remembered) before the swap: the scrub never trusts that.
    assert store.verify(world.sha)
    swap(store.path_for(world.sha), FORGED_SAME_SIZE)
    with open(store.path_for(truncated.sha256), "r+b") as handle:
        handle.truncate(100)
    store.path_for(gone.sha256).unlink()
    result = run_verify(app)
    assert result.exit_code == 1
    out = result.output
    assert f"DAMAGED  {world.sha}" in out and f"E{world.signed.id} v1 reply-letter.pdf" in out
    assert f"DAMAGED  {truncated.sha256}" in out
    assert f"MISSING  {gone.sha256}" in out
    assert f"note: {loose} is in the store but no file record uses it" in out
    assert "2 damaged, 1 missing, 1 unreferenced" in out
    data = json.loads(run_verify(app, "--json").output)
    assert data["ok"] is False
    assert sorted(data["damaged"]) == sorted([world.sha, truncated.sha256])
    assert data["missing"] == [gone.sha256] and data["unreferenced"] == [loose]
    assert data["used_by"][world.sha] == [
        {"evidence_id": world.signed.id, "version": 1, "filename": "reply-letter.pdf"}]
    # Each bad object is recorded once, however often the scrub runs.
    for sha in (world.sha, truncated.sha256, gone.sha256):
        assert len(damage_events(session, sha)) == 1
    # Restored from a backup: the store passes again.
    swap(store.path_for(world.sha), LETTER)
    with open(store.path_for(truncated.sha256), "wb") as handle:
        handle.write(b"%PDF-1.4 " + b"x" * 5000)
    store.path_for(gone.sha256).write_bytes(b"%PDF-1.4 about to go")
    assert run_verify(app).exit_code == 0
