"""The storage backends: the local folder and an S3 bucket (a real SeaweedFS), the same tests
on both. Store and read back, ranges, failed-commit clean-up, damaged and missing objects,
downloads and uploads through the app, the export, readiness, and `portfolio storage migrate`.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from portfolio.cli import cli
from portfolio.errors import StoredFileDamaged
from portfolio.evidence.integrity import forget_checks
from portfolio.evidence.paths import object_key
from portfolio.evidence.print_copy import print_copy_key
from portfolio.evidence.storage import FileStore, file_store_for, scrub_store
from portfolio.models import EvidenceFile, StoredFile
from portfolio.storage import open_backend, settings_from_config
from tests.conftest import Browserless
from tests.factories import PASSWORD, make_world

RECORDING = bytes(range(256)) * 40 + b"the end of the recording"  # 10 KiB and a bit
OTHER = b"%PDF-1.4\n% other bytes with the same length as nothing in particular\n%%EOF\n"
STATIC = Path(__file__).resolve().parent.parent / "static"


def _photo() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (1600, 1200), (20, 120, 90)).save(out, "PNG")
    return out.getvalue()


@pytest.fixture(autouse=True)
def _fresh_checks():
    forget_checks()
    yield
    forget_checks()


@pytest.fixture(params=["local", "s3"])
def backend_config(request) -> dict[str, str]:
    """The app config of each backend: nothing extra for local; the test SeaweedFS for s3."""
    if request.param == "local":
        return {}
    return request.getfixturevalue("s3_config")


@pytest.fixture
def app_on(make_app, backend_config):
    return make_app(**backend_config)


@pytest.fixture
def store(app_on) -> FileStore:
    return file_store_for(app_on.config)


def _put(store: FileStore, data: bytes, name: str = "recording.mp3") -> str:
    staged = store.stage(io.BytesIO(data), name, 10**7)
    store.place(staged)
    return staged.sha256


def _local_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and "tmp" not in p.parts]


def _tamper(store: FileStore, sha: str, data: bytes) -> None:
    """Overwrite an object's bytes under its name, as someone with write access could."""
    if store.blobs.name == "local":
        path = store.path_for(sha)
        with open(path, "r+b") as handle:
            handle.write(data)
            handle.truncate()
    else:
        store.blobs.put_bytes(object_key(sha), data)


# ---------------------------------------------------------------- the backend itself


def test_store_and_read_back(store, backend_config):
    pdf = b"%PDF-1.4\n" + RECORDING
    sha = _put(store, pdf, "letter.pdf")
    assert store.exists(sha) and not store.exists("0" * 64)
    assert store.blobs.size(object_key(sha)) == len(pdf)
    with store.open_verified(sha, route="test") as handle:
        assert handle.read() == pdf
    assert store.read_verified(sha) == pdf
    assert store.verify(sha)
    assert list(store.blobs.iter_keys("objects/")) == [object_key(sha)]
    # Stored once: placing the same content again creates nothing new.
    again = store.stage(io.BytesIO(pdf), "copy.pdf", 10**7)
    assert store.place(again) is False
    assert not again.temp_path.exists()
    if backend_config:  # S3: nothing but staging left on the local disk
        assert _local_files(store.root) == []


def test_ranges_from_the_first_and_later_reads(store):
    sha = _put(store, b"%PDF-1.4\n" + RECORDING, "letter.pdf")
    data = b"%PDF-1.4\n" + RECORDING
    assert store.blobs.open_range(object_key(sha), 9, 5) == RECORDING[:5]
    assert store.blobs.open_range(object_key(sha), len(data) - 7, 100) == data[-7:]
    assert store.blobs.open_range(object_key(sha), len(data) + 5, 10) == b""
    for _ in range(2):  # the first read checks the whole object; the second reuses the check
        with store.open_verified(sha) as handle:
            assert handle.seek(0, 2) == len(data)
            handle.seek(len(data) - 24)
            assert handle.read() == b"the end of the recording"
            handle.seek(9 + 256)
            assert handle.read(3) == bytes([0, 1, 2])


def test_failed_commit_removes_the_new_objects_and_print_copies(app_on, store):
    from portfolio.db import get_database

    session = get_database(app_on).sessionmaker()
    try:
        with store.batch() as batch:
            pdf = batch.add(io.BytesIO(b"%PDF-1.4\n" + RECORDING), "a.pdf", 10**7)
            photo = batch.add(io.BytesIO(_photo()), "screen.png", 10**7)

            class Boom(Exception):
                pass

            def failing_commit():
                raise Boom()

            session.commit = failing_commit  # type: ignore[method-assign]
            with pytest.raises(Boom):
                batch.commit(session)
    finally:
        session.close()
    for sha in (pdf.sha256, photo.sha256):
        assert not store.exists(sha)
        assert not store.blobs.exists(print_copy_key(sha))
    assert list(store.blobs.iter_keys("objects/")) == []
    assert _local_files(store.root) == []


def test_a_committed_photo_gets_its_print_copy_in_the_same_store(app_on, store):
    from portfolio.db import get_database

    session = get_database(app_on).sessionmaker()
    try:
        with store.batch() as batch:
            photo = batch.add(io.BytesIO(_photo()), "screen.png", 10**7)
            session.add(StoredFile(sha256=photo.sha256, size=photo.size,
                                   media_type="image/png"))
            batch.commit(session)
    finally:
        session.close()
    copy = store.blobs.read(print_copy_key(photo.sha256))
    assert copy[:3] == b"\xff\xd8\xff"  # a JPEG


def test_damaged_and_missing_objects_are_detected(store, backend_config):
    data = b"%PDF-1.4\n" + RECORDING
    sha = _put(store, data, "letter.pdf")
    assert store.verify(sha)  # a good check is remembered ...
    _tamper(store, sha, data.replace(b"the end", b"THE END"))  # same size
    assert not store.verify(sha)  # ... but never outlives a change to the bytes
    with pytest.raises(StoredFileDamaged):
        store.open_verified(sha, route="test")
    with pytest.raises(StoredFileDamaged):
        store.read_verified(sha)
    store.blobs.delete(object_key(sha))
    assert not store.verify(sha) and not store.exists(sha)
    with pytest.raises(FileNotFoundError):
        store.open_verified(sha)


def test_scrub_names_damaged_missing_and_unreferenced_objects(app_on, store):
    from portfolio.db import get_database

    good, bad = _put(store, b"%PDF-1.4\n" + RECORDING), _put(store, OTHER)
    _tamper(store, bad, b"%PDF-1.4\n% swapped\n")
    session = get_database(app_on).sessionmaker()
    try:
        session.add_all([StoredFile(sha256=good, size=1, media_type="application/pdf"),
                         StoredFile(sha256="a" * 64, size=1, media_type="application/pdf")])
        session.flush()
        report = scrub_store(session, store)
    finally:
        session.rollback()
        session.close()
    assert report.checked == 2
    assert report.damaged == [bad] and report.missing == ["a" * 64]
    assert report.unreferenced == [bad]


def test_s3_reads_pinned_to_the_checked_version(s3_config, make_app):
    """A reader handed out after a remembered check refuses bytes replaced since."""
    store = file_store_for(make_app(**s3_config).config)
    data = b"%PDF-1.4\n" + RECORDING
    sha = _put(store, data, "letter.pdf")
    assert store.verify(sha)
    with store.open_verified(sha) as handle:  # remembered: a ranged reader, no local copy
        assert not hasattr(handle, "name")
        store.blobs.put_bytes(object_key(sha), data.replace(b"the end", b"THE END"))
        handle.seek(len(data) - 24)
        with pytest.raises(StoredFileDamaged):
            handle.read()
    # The next reader checks the whole object again, and refuses it.
    with pytest.raises(StoredFileDamaged):
        store.open_verified(sha)


# ---------------------------------------------------------------- through the app


def _learner(app) -> Browserless:
    web = Browserless(app.test_client())
    assert web.login("learner@example.org", PASSWORD).status_code == 302
    return web


def _upload(app, world, files) -> None:
    from datetime import date

    web = _learner(app)
    response = web.post(
        f"/enrolments/{world.enrolment.id}/evidence/new/work_product",
        {"title": "Call recording and photo", "activity_on": date.today().isoformat(),
         "activity_place": "Leeds office", "body_md": "The call I handled.",
         "personal_data_confirmed": "y", "files": files},
        content_type="multipart/form-data")
    assert response.status_code == 302, response.get_data(True)[:2000]


def test_upload_then_download_with_ranges_through_the_app(app_on, backend_config):
    from portfolio.db import get_database

    session = get_database(app_on).sessionmaker()
    try:
        world = make_world(session)
        session.commit()
        recording = b"ID3" + RECORDING
        _upload(app_on, world, [(io.BytesIO(recording), "call.mp3"),
                                (io.BytesIO(_photo()), "desk.png")])
        rows = {f.filename: f for f in session.scalars(select(EvidenceFile))}
    finally:
        session.close()
    store = file_store_for(app_on.config)
    call, desk = rows["call.mp3"], rows["desk.png"]
    assert store.read_verified(call.sha256) == recording
    assert store.blobs.exists(print_copy_key(desk.sha256))  # made after the commit
    if backend_config:  # S3: the bytes are in the bucket, none on the local disk
        assert _local_files(Path(app_on.config["STORAGE_DIR"])) == []
        assert settings_from_config(app_on.config).backend == "s3"
    web = _learner(app_on)
    for attempt in range(2):  # the second answer comes from a remembered check
        whole = web.client.get(f"/files/{call.id}")
        assert whole.status_code == 200 and whole.data == recording, attempt
        assert whole.headers["Accept-Ranges"] == "bytes"
        assert whole.headers["X-Content-Type-Options"] == "nosniff"
        assert "sandbox" in whole.headers["Content-Security-Policy"]
        assert whole.headers["Content-Disposition"].startswith("attachment")
        part = web.client.get(f"/files/{call.id}", headers={"Range": "bytes=3-258"})
        assert part.status_code == 206
        assert part.data == RECORDING[:256]
        assert part.headers["Content-Range"] == f"bytes 3-258/{len(recording)}"
        tail = web.client.get(f"/files/{call.id}", headers={"Range": "bytes=-10"})
        assert tail.status_code == 206 and tail.data == recording[-10:]
    # Not the learner's? Then not served, whatever the backend.
    stranger = Browserless(app_on.test_client())
    stranger.login("far-learner@example.org", PASSWORD)
    assert stranger.client.get(f"/files/{call.id}").status_code in (403, 404)


def test_a_damaged_object_is_refused_through_the_app(app_on):
    from portfolio.db import get_database

    session = get_database(app_on).sessionmaker()
    try:
        world = make_world(session)
        session.commit()
        _upload(app_on, world, [(io.BytesIO(b"ID3" + RECORDING), "call.mp3")])
        call = session.scalar(select(EvidenceFile))
    finally:
        session.close()
    store = file_store_for(app_on.config)
    web = _learner(app_on)
    assert web.client.get(f"/files/{call.id}").status_code == 200
    _tamper(store, call.sha256, b"ID3" + RECORDING.replace(b"the end", b"THE END"))
    refused = web.client.get(f"/files/{call.id}", headers={"Range": "bytes=0-99"})
    assert refused.status_code == 409
    assert b"THE END" not in refused.data and "Content-Range" not in refused.headers


def test_readyz_checks_the_configured_bucket(make_app, s3_config):
    ready = make_app(**s3_config).test_client().get("/readyz")
    assert ready.status_code == 200 and ready.get_json()["checks"]["storage"] == "ok"
    missing = make_app(**{**s3_config, "S3_BUCKET": "no-such-bucket-here"})
    response = missing.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["storage"].startswith("the S3 bucket does not answer")


def test_export_with_a_photo_reads_the_bucket(make_app, s3_config, tmp_path):
    from portfolio.db import get_database
    from portfolio.export.services import export_portfolio
    from portfolio.export.signing import init_centre_key
    from tests.factories import accept, make_evidence, stage_bytes

    app = make_app(**s3_config)
    with contextlib.suppress(FileExistsError):
        init_centre_key(Path(app.instance_path), "Test Centre")
    store = file_store_for(app.config)
    session = get_database(app).sessionmaker()
    try:
        world = make_world(session, store)
        photo = stage_bytes(store, _photo(), "whiteboard.png")
        item = make_evidence(session, world.enrolment, world.learner, "work_product",
                             title="Whiteboard after the call", body="", files=[photo],
                             maps=("2.8",), submit=True)
        accept(session, item, world.assessor)
        session.commit()
        # Not made yet: the export makes the print copy from the bucket's original.
        store.blobs.delete(print_copy_key(photo.sha256))
        out = tmp_path / "portfolio.pdf"
        with app.test_request_context():
            export_portfolio(session, world.enrolment, actor=world.assessor,
                             config=app.config, instance_path=Path(app.instance_path),
                             static_dir=STATIC, store=store,
                             verify_base="https://portfolio.example/verify", out=out)
        session.commit()
    finally:
        session.close()
    from pypdf import PdfReader

    reader = PdfReader(out)
    attached = reader.attachments
    name = next(n for n in attached if n.endswith("whiteboard.png"))
    assert attached[name][0] == store.read_verified(photo.sha256)
    assert any("/XObject" in (page.get("/Resources") or {}) for page in reader.pages)
    assert store.blobs.exists(print_copy_key(photo.sha256))
    assert _local_files(Path(app.config["STORAGE_DIR"])) == []


# ---------------------------------------------------------------- migrate


def test_migrate_copies_checks_skips_and_reports_damage(make_app, s3_config):
    app = make_app(**s3_config)
    local = FileStore(Path(app.config["STORAGE_DIR"]))  # the store before the move
    letter, other = _put(local, b"%PDF-1.4\n" + RECORDING), _put(local, OTHER)
    photo = local.stage(io.BytesIO(_photo()), "desk.png", 10**7)
    local.place(photo)  # with its print copy
    broken = _put(local, b"%PDF-1.4\n% soon to be damaged on this disk\n")
    path = local.path_for(broken)
    path.write_bytes(b"%PDF-1.4\n% damaged on this disk\n")
    (local.root / "objects" / "stray.txt").write_text("not an object")
    exports = Path(app.config["EXPORTS_DIR"])
    (exports / "eqa").mkdir(parents=True)
    (exports / ".gitkeep").write_text("")
    (exports / "portfolio-lee-20260101-090000.pdf").write_bytes(b"%PDF-1.7 signed export")
    (exports / "eqa" / "eqa-pack-1-20260101-090000.zip").write_bytes(b"PK a pack")
    bucket = open_backend(settings_from_config(app.config))
    assert bucket.name == "s3"

    runner = app.test_cli_runner()
    first = runner.invoke(cli, ["storage", "migrate", "--to", "s3"])
    assert first.exit_code == 1, first.output
    assert f"DAMAGED locally (its bytes no longer match; not copied): {broken}" in first.output
    assert "files copied and checked: 3" in first.output
    assert "print copies copied: 1" in first.output
    assert "finished exports copied: 2" in first.output
    assert bucket.read("exports/portfolio-lee-20260101-090000.pdf") == b"%PDF-1.7 signed export"
    assert bucket.read("exports/eqa/eqa-pack-1-20260101-090000.zip") == b"PK a pack"
    assert not bucket.exists("exports/.gitkeep")
    assert "objects/stray.txt" in first.output
    for sha in (letter, other, photo.sha256):
        assert bucket.verify(object_key(sha), sha, use_cache=False)
    assert not bucket.exists(object_key(broken))
    assert bucket.read(print_copy_key(photo.sha256)) == \
        local.blobs.read(print_copy_key(photo.sha256))

    # Once the damaged file is dealt with, a second run copies nothing and succeeds.
    path.unlink()
    second = runner.invoke(cli, ["storage", "migrate", "--to", "s3", "--json"])
    assert second.exit_code == 0, second.output
    counts = json.loads(second.output)
    assert counts["copied"] == 0 and counts["already_there"] == 3
    assert counts["print_already_there"] == 1 and counts["ok"] is True
    assert counts["exports_copied"] == 0 and counts["exports_already_there"] == 2

    # A file that arrived wrong (or was changed in the bucket) is copied again and checked.
    bucket.put_bytes(object_key(other), b"not the original")
    third = runner.invoke(cli, ["storage", "migrate", "--to", "s3", "--json"])
    assert third.exit_code == 0, third.output
    assert json.loads(third.output)["copied"] == 1
    assert bucket.verify(object_key(other), other, use_cache=False)


def test_migrate_exits_non_zero_when_the_bucket_does_not_match_after_upload(make_app,
                                                                            s3_config,
                                                                            monkeypatch):
    from portfolio.storage.s3 import S3Backend

    app = make_app(**s3_config)
    local = FileStore(Path(app.config["STORAGE_DIR"]))
    sha = _put(local, b"%PDF-1.4\n" + RECORDING)
    real_put = S3Backend.put_copy

    def corrupting_put(self, key, path):
        real_put(self, key, path)
        self.put_bytes(key, b"bytes changed on the way")

    monkeypatch.setattr(S3Backend, "put_copy", corrupting_put)
    result = app.test_cli_runner().invoke(cli, ["storage", "migrate", "--to", "s3"])
    assert result.exit_code == 1
    assert f"MISMATCH in the bucket after upload: {sha}" in result.output


def test_migrate_needs_a_bucket(make_app):
    result = make_app().test_cli_runner().invoke(cli, ["storage", "migrate", "--to", "s3"])
    assert result.exit_code != 0 and "S3_BUCKET" in result.output


# ---------------------------------------------------------------- finished exports


def _keys(app) -> None:
    from portfolio.export.signing import init_centre_key

    with contextlib.suppress(FileExistsError):
        init_centre_key(Path(app.instance_path), "Test Centre")


def test_a_finished_export_is_kept_and_downloaded_with_ranges(app_on, backend_config):
    from portfolio.db import get_database
    from portfolio.export.files import export_files
    from portfolio.export.services import export_portfolio

    _keys(app_on)
    store = file_store_for(app_on.config)
    session = get_database(app_on).sessionmaker()
    try:
        world = make_world(session, store)
        session.commit()
        with app_on.test_request_context():
            export = export_portfolio(session, world.enrolment, actor=world.assessor,
                                      config=app_on.config,
                                      instance_path=Path(app_on.instance_path),
                                      static_dir=STATIC, store=store,
                                      verify_base="https://portfolio.example/verify")
        session.commit()
        export_id, filename, sha = export.id, export.filename, export.sha256
    finally:
        session.close()
    files = export_files(app_on.config)
    pdf = files.read(filename)
    import hashlib

    assert hashlib.sha256(pdf).hexdigest() == sha
    in_folder = list(Path(app_on.config["EXPORTS_DIR"]).iterdir())
    if backend_config:  # in the bucket, next to the evidence; nothing on this disk
        assert files.local_path(filename) is None and in_folder == []
        assert store.blobs.exists(f"exports/{filename}")
    else:
        assert [p.name for p in in_folder] == [filename]
    web = Browserless(app_on.test_client())
    web.login("assessor@example.org", PASSWORD)
    whole = web.client.get(f"/exports/{export_id}/download")
    assert whole.status_code == 200 and whole.data == pdf
    assert whole.headers["Cache-Control"] == "private, no-store"
    part = web.client.get(f"/exports/{export_id}/download", headers={"Range": "bytes=0-7"})
    assert part.status_code == 206 and part.data == pdf[:8]
    stranger = Browserless(app_on.test_client())
    stranger.login("far-learner@example.org", PASSWORD)
    assert stranger.client.get(f"/exports/{export_id}/download").status_code == 404
    if backend_config:  # changed in the bucket: refused, not served
        files.write(filename, pdf.replace(b"%%EOF", b"%%EOX"))
        assert web.client.get(f"/exports/{export_id}/download").status_code == 409


def test_an_eqa_pack_is_kept_in_the_bucket(make_app, s3_config):
    """Issue 14: the pack's job streams the ZIP to a temporary file, stores it in the bucket,
    and the download streams it back from there once its SHA-256 checks; nothing is left on
    this machine's disk, and a second ask reuses the stored pack."""
    import zipfile

    from portfolio.db import get_database
    from portfolio.export.files import export_files
    from portfolio.models import AuditEvent, EqaPackJob
    from tests.eqa_packs import fetch_pack
    from tests.factories import make_eqa_pack

    app = make_app(**s3_config)
    _keys(app)
    store = file_store_for(app.config)
    session = get_database(app).sessionmaker()
    try:
        world = make_world(session, store)
        pack = make_eqa_pack(session, world)
        session.commit()
        web = Browserless(app.test_client())
        web.login("eqa@example.org", PASSWORD)
        fetched = fetch_pack(web, pack.id)
        response = fetched.zip
        assert response.status_code == 200, fetched.status
        event = session.scalar(select(AuditEvent).where(
            AuditEvent.action == "eqa.pack_download"))
        stored_name = event.detail["file"]
        assert fetch_pack(web, pack.id).job_url == fetched.job_url  # reused, not remade
        assert len(list(session.scalars(select(EqaPackJob)))) == 1
    finally:
        session.close()
    archive = zipfile.ZipFile(io.BytesIO(response.data))
    assert "manifest.json" in archive.namelist()
    files = export_files(app.config)
    assert files.read(f"eqa/{stored_name}") == response.data
    assert list(Path(app.config["EXPORTS_DIR"]).rglob("*")) == []
    assert not list((Path(app.config["STORAGE_DIR"]) / "tmp").glob("eqa-pack-*"))


def test_s3_reads_a_whole_object_in_few_requests(s3_config, make_app, monkeypatch):
    """An unchecked whole read (redaction, scrubbing) is one ranged GET, not one per 8 KiB."""
    from portfolio.storage.s3 import S3Backend

    store = file_store_for(make_app(**s3_config).config)
    data = b"%PDF-1.4\n" + bytes(range(256)) * 12_000  # about 3 MiB
    sha = _put(store, data, "big.pdf")
    calls: list[tuple[int, int]] = []
    real = S3Backend.get_range

    def counted(self, key, start, length, *, etag=""):
        calls.append((start, length))
        return real(self, key, start, length, etag=etag)

    monkeypatch.setattr(S3Backend, "get_range", counted)
    with store.open(sha) as handle:
        assert handle.read() == data
    assert len(calls) == 1
    calls.clear()
    with store.open(sha) as handle:  # streamed in chunks: a GET per MiB at most
        while handle.read(8192):
            pass
    assert 1 <= len(calls) <= 4


def test_production_refuses_an_s3_backend_without_a_bucket(make_app):
    from portfolio.startup import production_problems

    app = make_app(STORAGE_BACKEND="s3")
    app.config["TESTING"] = False  # judged as production would be
    problems = production_problems(app)
    assert any("S3_BUCKET" in p for p in problems), problems
    bad = make_app(STORAGE_BACKEND="ftp")
    bad.config["TESTING"] = False
    assert any("STORAGE_BACKEND must be one of local, s3" in p
               for p in production_problems(bad))


def test_a_bundle_export_reads_checked_files_from_the_bucket(make_app, s3_config, tmp_path):
    import zipfile

    from portfolio.db import get_database
    from tests.factories import TINY_PDF

    app = make_app(**s3_config)
    store = file_store_for(app.config)
    session = get_database(app).sessionmaker()
    try:
        world = make_world(session, store)
        session.commit()
        sha = world.evidence.versions[0].files[0].sha256
    finally:
        session.close()
    out = tmp_path / "lee.zip"
    runner = app.test_cli_runner()
    result = runner.invoke(cli, ["bundle", "export", "learner@example.org", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert zipfile.ZipFile(out).read(f"files/{sha}") == TINY_PDF
    store.blobs.put_bytes(object_key(sha), TINY_PDF.replace(b"Catalog", b"Katalog"))
    refused = runner.invoke(cli, ["bundle", "export", "learner@example.org",
                                  "--out", str(tmp_path / "again.zip")])
    assert refused.exit_code != 0 and "damaged" in refused.output
    assert not (tmp_path / "again.zip").exists()


def test_a_render_process_reads_photos_from_the_bucket(make_app, s3_config, tmp_path):
    """The PDF render processes (spawned, without the app) open the bucket from the store's
    picklable settings and print photos from it."""
    from portfolio.export.pipeline import RenderPool
    from portfolio.export.worker import SECTION_DIR, render_part

    store = file_store_for(make_app(**s3_config).config)
    photo = store.stage(io.BytesIO(_photo()), "whiteboard.png", 10**7)
    store.place(photo, print_copy=False)  # the render process has to make the copy
    settings = store.blobs.settings
    assert settings.backend == "s3"
    html = (f'<h1>Photos</h1><img src="evidence-print:{photo.sha256}" alt="">'
            f'<img src="evidence-print:{"0" * 64}" alt="">')
    pool = RenderPool(1)
    try:
        future = pool.start().submit(render_part, html, "photo-part", str(STATIC), settings,
                                     str(tmp_path))
        pages, _anchors = future.result(timeout=240)
    finally:
        pool.close()
    assert pages == 1
    pdf = (tmp_path / SECTION_DIR / "photo-part.pdf").read_bytes()
    assert b"/Image" in pdf  # the photo is in it; the unknown hash was refused
    assert store.blobs.exists(print_copy_key(photo.sha256))


def test_readyz_answers_quickly_when_the_store_is_unreachable(make_app, s3_config):
    import socket
    import time

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    app = make_app(**{**s3_config, "S3_ENDPOINT_URL": f"http://127.0.0.1:{port}"})
    started = time.monotonic()
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert time.monotonic() - started < 5
    reason = response.get_json()["checks"]["storage"]
    assert reason.startswith("the S3 bucket does not answer") and "127.0.0.1" not in reason
    assert s3_config["S3_SECRET_ACCESS_KEY"] not in reason


def test_s3_refuses_an_upload_that_arrived_different(make_app, s3_config):
    """Uploads carry Content-MD5: a body changed on the way is refused, nothing is stored."""
    import base64
    import hashlib

    from botocore.exceptions import ClientError

    store = file_store_for(make_app(**s3_config).config)
    sent = b"%PDF-1.4\n% what the learner uploaded\n"
    md5_of_other = base64.b64encode(
        hashlib.md5(b"something else", usedforsecurity=False).digest()).decode()
    key = object_key(hashlib.sha256(sent).hexdigest())
    with pytest.raises(ClientError):
        store.blobs._put(key, sent, len(sent), md5_of_other)  # type: ignore[attr-defined]
    assert not store.blobs.exists(key)


def test_a_pdfs_picture_lives_in_the_same_store(app_on, backend_config):
    """A PDF's first-page picture is kept where its original is (in the bucket with S3, never
    on one machine's disk), served from there, and made again there when lost."""
    from portfolio.db import get_database
    from portfolio.evidence.screen_copy import screen_copy_key
    from tests.real_files import RED, pdf_bytes

    session = get_database(app_on).sessionmaker()
    try:
        world = make_world(session)
        session.commit()
        _upload(app_on, world, [(io.BytesIO(pdf_bytes([RED])), "certificate.pdf")])
        row = session.scalar(select(EvidenceFile))
    finally:
        session.close()
    store = file_store_for(app_on.config)
    key = screen_copy_key(row.sha256, "application/pdf")
    assert store.blobs.exists(key)
    if backend_config:
        assert _local_files(Path(app_on.config["STORAGE_DIR"])) == []
    web = _learner(app_on)
    picture = web.client.get(f"/files/{row.id}/preview")
    assert picture.status_code == 200 and picture.mimetype == "image/png"
    store.blobs.delete(key)
    again = web.client.get(f"/files/{row.id}/preview")
    assert again.status_code == 200 and again.data == picture.data
    assert store.blobs.exists(key)


def test_when_the_store_is_down_an_upload_gets_503_and_nothing_is_half_saved(make_app,
                                                                             s3_config):
    """The bucket does not answer: the upload is refused with a 503 page that says so (the
    API with problem+json), no evidence row is written, and pages that need no file work."""
    import socket

    from portfolio.db import get_database
    from portfolio.models import Evidence

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    app = make_app(**{**s3_config, "S3_ENDPOINT_URL": f"http://127.0.0.1:{port}"})
    session = get_database(app).sessionmaker()
    try:
        world = make_world(session)
        session.commit()
    finally:
        session.close()
    web = _learner(app)
    from datetime import date

    response = web.post(
        f"/enrolments/{world.enrolment.id}/evidence/new/work_product",
        {"title": "Rota", "activity_on": date.today().isoformat(),
         "personal_data_confirmed": "y", "files": [(io.BytesIO(b"%PDF-1.4 rota"), "r.pdf")]},
        content_type="multipart/form-data")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "60"
    assert "file store is not answering" in response.get_data(True)
    session = get_database(app).sessionmaker()
    try:
        assert session.scalar(select(func.count()).select_from(Evidence)) == 0
    finally:
        session.close()
    assert list((Path(app.config["STORAGE_DIR"]) / "tmp").glob("*")) == []
    assert web.client.get(f"/enrolments/{world.enrolment.id}").status_code == 200
