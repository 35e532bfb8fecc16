"""The cached, parallel PDF pipeline: page numbers, page references, cache reuse, photos."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest
from PIL import Image
from pypdf import PdfReader

from portfolio.evidence.print_copy import ORIENTATION, print_copy_path, printed_size
from portfolio.evidence.storage import FileStore
from portfolio.export.fetcher import PrintFetcher
from portfolio.export.pipeline import prune_cache
from portfolio.export.services import export_portfolio
from portfolio.export.signing import init_centre_key
from tests.factories import accept, make_evidence, make_world, stage_bytes

STATIC = Path(__file__).resolve().parent.parent / "static"
LONG = "\n\n".join(["I listened to the customer, checked the account and agreed a fix. " * 12]
                   * 6)


def _png(colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", (2400, 1600), (*colour, 255)).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def portfolio(app, session):
    with contextlib.suppress(FileExistsError):
        init_centre_key(Path(app.instance_path), "Test Centre")
    world = make_world(session, app.config["STORAGE_DIR"])
    store = app.config["STORAGE_DIR"]
    items = []
    for n in range(6):
        files = [stage_bytes(store, _png((40 * n, 90, 120)), f"screen-{n}.png")] if n % 2 else []
        kind = "photo" if files else "reflective_account"
        evidence = make_evidence(session, world.enrolment, world.learner, kind,
                                 title=f"Item number {n}", body=LONG if n % 3 == 0 else "Short.",
                                 files=files, maps=("1.1", "2.2"), submit=True)
        accept(session, evidence, world.assessor)
        items.append(evidence)
    session.commit()
    return world, items


def _export(app, session, world, **config):
    with app.test_request_context():
        export = export_portfolio(session, world.enrolment, actor=world.assessor,
                                  config={**app.config, **config},
                                  instance_path=Path(app.instance_path), static_dir=STATIC,
                                  store=FileStore(Path(app.config["STORAGE_DIR"])),
                                  verify_base="https://portfolio.example/verify")
    session.commit()
    path = Path(app.config["EXPORTS_DIR"]) / export.filename
    return export, PdfReader(path)


def test_every_page_is_numbered_and_the_location_sheet_points_at_the_right_pages(
        app, session, portfolio):
    world, items = portfolio
    export, reader = _export(app, session, world, EXPORT_PROCESSES=2)
    pages = [page.extract_text() for page in reader.pages]
    total = len(pages)
    assert export.pages == total
    for number, text in enumerate(pages, start=1):
        assert f"Page {number} of {total}" in text, number
        assert world.learner.full_name in text  # footer on every page
    starts = {}
    for number, text in enumerate(pages, start=1):
        found = re.search(r"E(\d+) · ", text)
        if found and int(found.group(1)) in {e.id for e in items} and found.start() < 40:
            starts.setdefault(int(found.group(1)), number)
    location = next(t for t in pages if "Evidence location sheet" in t)
    for evidence in items:
        title = f"Item number {items.index(evidence)}"
        refs = re.findall(re.escape(title) + r"\s*p\. (\d+)", location)
        assert refs, title
        assert {int(r) for r in refs} == {starts[evidence.id]}, title
    outline = [item.title for item in reader.outline if not isinstance(item, list)]
    assert "Front sheet" in outline and "Signature certificate" in outline


def test_a_re_export_lays_out_only_what_changed(app, session, portfolio):
    world, items = portfolio
    first, _ = _export(app, session, world, EXPORT_PROCESSES=2)
    assert first.render_report["parts_reused"] == 0
    again, _ = _export(app, session, world)
    # The front sheet (export time, to the minute: new when the clock has moved on) and the
    # certificate (its own link) are new; the audit trail's last chunk has the first export's
    # event. Everything else (every item and the other sections) is reused.
    assert again.render_report["parts_rendered"] <= 3
    assert again.render_report["parts_reused"] >= len(items) + 3
    assert (again.render_report["parts_rendered"] + again.render_report["parts_reused"]
            == first.render_report["parts_rendered"])
    from portfolio.evidence.services import EvidenceInput, current_version, revise_evidence

    item = items[1]
    version = current_version(item)
    from portfolio.assessment.services import review_evidence

    review_evidence(session, item, actor=world.assessor, outcome="referred", feedback_md="More.",
                    varcs={k: True for k in ("valid", "authentic", "reliable", "current",
                                             "sufficient")},
                    expected_version=item.current_version)
    from datetime import date

    revise_evidence(session, item, actor=world.learner, data=EvidenceInput(
        title="Item number 1, revised", activity_on=version.activity_on, body_md="Longer now.",
        details=version.details, is_simulated=False, personal_data_confirmed=True),
        keep_file_ids=[f.id for f in version.files], files=[], today=date.today(),
        expected_version=item.current_version)
    session.commit()
    changed, reader = _export(app, session, world)
    rendered = changed.render_report["rendered"]
    laid_out = [r for r in rendered if r.startswith("evidence")]
    # One part of evidence (the changed item and the few grouped with it), not the others.
    assert len(laid_out) == 1 and f"ev-{item.id}" in laid_out[0].split()
    assert set(rendered) <= {laid_out[0], "front", "summary", "declarations",
                             "matrix", "locations", "audit", "certificate", "hashes"}
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert "Item number 1, revised" in text


def test_photos_print_from_a_prepared_jpeg_and_the_original_is_attached(app, session, portfolio):
    world, items = portfolio
    _export_row, reader = _export(app, session, world)
    photo = items[1]
    original = FileStore(Path(app.config["STORAGE_DIR"])).path_for(
        photo.versions[-1].files[0].sha256).read_bytes()
    attached = [data[0] for name, data in reader.attachments.items() if name.endswith(".png")]
    assert original in attached
    # Each photo's print copy was made when it was stored, beside the original.
    prepared = list((Path(app.config["STORAGE_DIR"]) / "print").rglob("*.jpg"))
    assert len(prepared) == 3
    with Image.open(prepared[0]) as image:
        assert image.format == "JPEG" and max(image.size) <= 1100


@pytest.mark.parametrize(("orientation", "upright"), [(1, (1100, 825)), (6, (750, 1000))])
def test_a_camera_photo_prints_upright_and_fitted_from_a_reduced_decode(tmp_path, orientation,
                                                                       upright):
    # A 4000 x 3000 camera JPEG, stored sideways when the EXIF orientation says 6 (turn 90°).
    photo = Image.new("RGB", (4000, 3000), (200, 40, 40))
    photo.paste((40, 40, 200), (0, 0, 2000, 3000))  # left half blue: shows the turn
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    out = io.BytesIO()
    photo.save(out, "JPEG", quality=90, exif=exif)
    store = FileStore(tmp_path / "store")
    staged = store.stage(io.BytesIO(out.getvalue()), "IMG_0001.jpg", 50 * 1024 * 1024)
    store.place(staged)
    digest = staged.sha256
    assert printed_size((4000, 3000), orientation) == (
        (1100, 825) if orientation == 1 else (1000, 750))
    # Made when the photo was stored; the export's fetcher serves it (and would make it).
    made_on_upload = print_copy_path(store.root, digest).read_bytes()
    print_copy_path(store.root, digest).unlink()
    response = PrintFetcher(STATIC, store).fetch(f"evidence-print:{digest}")
    assert response.read() == made_on_upload
    assert print_copy_path(store.root, digest).is_file()
    with Image.open(io.BytesIO(made_on_upload)) as image:
        assert image.format == "JPEG" and image.size == upright
        middle = (image.width // 2, image.height // 2)
        if orientation == 1:  # as taken: blue on the left, red on the right
            first, second = image.getpixel((5, middle[1])), image.getpixel(
                (image.width - 5, middle[1]))
        else:  # turned a quarter clockwise: the blue half is now at the top
            first, second = image.getpixel((middle[0], 5)), image.getpixel(
                (middle[0], image.height - 5))
    assert first[2] > 150 > first[0] and second[0] > 150 > second[2]


def test_the_cache_is_pruned_oldest_first(tmp_path):
    folder = tmp_path / "sections"
    folder.mkdir()
    import os

    for n in range(5):
        path = folder / f"{n}.pdf"
        path.write_bytes(b"x" * 1000)
        os.utime(path, (1000 + n, 1000 + n))
    assert prune_cache(tmp_path, 2500) == 3
    assert sorted(p.name for p in folder.iterdir()) == ["3.pdf", "4.pdf"]


def test_the_audit_extract_holds_only_this_enrolments_events(app, session, portfolio):
    from portfolio.audit import record_event
    from portfolio.export.content import enrolment_events

    world, items = portfolio
    # Events about the learner that are not about this portfolio: their account, and an
    # evidence item of another enrolment (ids that are not this enrolment's).
    record_event(session, action="user.password_changed", subject_type="user",
                 subject_id=world.learner.id, actor=world.learner, learner_id=world.learner.id)
    record_event(session, action="evidence.created", subject_type="evidence", subject_id=99999,
                 actor=world.learner, learner_id=world.learner.id)
    session.commit()
    events = enrolment_events(session, world.enrolment)
    subjects = {(e.subject_type, e.subject_id) for e in events}
    assert ("user", str(world.learner.id)) not in subjects
    assert ("evidence", "99999") not in subjects
    assert {("evidence", str(e.id)) for e in items} <= subjects
    assert ("enrolment", str(world.enrolment.id)) in subjects


def test_a_heic_photo_prints_from_its_jpeg_copy_and_the_heic_is_attached(app, session):
    from tests.real_files import RED, heic_bytes

    with contextlib.suppress(FileExistsError):
        init_centre_key(Path(app.instance_path), "Test Centre")
    world = make_world(session, app.config["STORAGE_DIR"])
    data = heic_bytes(RED, size=(2000, 1500), mark=False)
    photo = make_evidence(
        session, world.enrolment, world.learner, "photo", title="Notice on the service desk",
        body="", files=[stage_bytes(app.config["STORAGE_DIR"], data, "IMG_0042.HEIC")],
        maps=("1.1",), submit=True)
    accept(session, photo, world.assessor)
    session.commit()
    _row, reader = _export(app, session, world)
    # The original HEIC is attached byte for byte.
    attached = {name: files[0] for name, files in reader.attachments.items()}
    assert attached[f"E{photo.id}-IMG_0042.heic"] == data
    # Its page shows the photo, printed from the JPEG print copy (WeasyPrint cannot read HEIC).
    page = next(p for p in reader.pages if "IMG_0042.heic" in (p.extract_text() or "")
                and "embedded in this PDF" in p.extract_text())
    images = [image.image for image in page.images]
    assert [image.size for image in images] == [(1100, 825)]
    red = images[0].convert("RGB").getpixel((550, 412))
    assert red[0] > 180 and red[1] < 80 and red[2] < 80


def _refer(session, world, item) -> None:
    from portfolio.assessment.services import review_evidence

    review_evidence(session, item, actor=world.assessor, outcome="referred", feedback_md="More.",
                    varcs={k: True for k in ("valid", "authentic", "reliable", "current",
                                             "sufficient")},
                    expected_version=item.current_version)


def test_a_review_lays_out_the_pdf_before_the_export_is_asked_for(app, session, portfolio):
    """Issue 16: once a review is committed, a background thread lays out the learner's PDF
    parts; the export then lays out only the parts carrying its own id and time."""
    from portfolio.export import prepare

    world, items = portfolio
    app.config.update(EXPORT_PREPARE=True, EXPORT_RUN_INLINE=False)
    with app.test_request_context():
        _refer(session, world, items[2])
        session.commit()  # the thread starts after the commit
    thread = prepare.BACKLOG.thread
    assert thread is not None
    thread.join(timeout=120)
    assert not thread.is_alive() and not prepare.BACKLOG.waiting
    app.config["EXPORT_RUN_INLINE"] = True
    export, reader = _export(app, session, world)
    report = export.render_report
    assert report["parts_reused"] >= len(items) + 3, report
    # Only what carries the export's own link (the certificate) or its time (the front sheet,
    # when the clock has moved on to the next minute) is laid out at the click.
    assert set(report["rendered"]) <= {"front", "certificate"}, report
    assert "referred" in "\n".join(page.extract_text() for page in reader.pages).lower()


def test_a_rolled_back_review_prepares_nothing(app, session, portfolio):
    from portfolio.export import prepare

    world, items = portfolio
    app.config.update(EXPORT_PREPARE=True)
    with app.test_request_context():
        _refer(session, world, items[2])
        session.flush()
        assert session.info.get(prepare._PENDING_KEY) == {world.enrolment.id}
        session.rollback()
        assert prepare._PENDING_KEY not in session.info
        session.commit()  # nothing left to prepare
    assert not prepare.BACKLOG.waiting and prepare.BACKLOG.thread is None
    cache = Path(app.config["RENDER_CACHE_DIR"]) / "sections"
    assert not cache.exists() or not any(cache.iterdir())


def test_with_redis_the_preparation_is_queued_for_a_worker(app, session, portfolio, redis_url):
    from portfolio.export import prepare

    world, items = portfolio
    app.config.update(EXPORT_PREPARE=True, REDIS_URL=redis_url)
    with app.test_request_context():
        _refer(session, world, items[2])
        session.commit()
    queue = prepare.queue_for(redis_url)
    jobs = queue.get_jobs()
    assert [(job.func_name, job.args) for job in jobs] == [
        ("portfolio.export.prepare.run_queued", (world.enrolment.id,))]
    assert prepare.BACKLOG.thread is None  # not laid out in this process as well
