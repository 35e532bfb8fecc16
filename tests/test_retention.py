"""Retention of learner work (issue 14): the centre's period, legal holds, removal that keeps
the assessment record and its signatures checkable, and the attacks on it (a version marked
removed by hand, a file shared with a live portfolio)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from portfolio.assessment.signing import verify_all
from portfolio.cli import cli
from portfolio.db import utcnow
from portfolio.evidence.storage import FileStore
from portfolio.export.content import gather
from portfolio.models import (
    AuditEvent,
    Enrolment,
    EvidenceVersion,
    SearchEntry,
    StoredFile,
)
from portfolio.models.enrolments import EnrolmentStatus
from portfolio.retention import services as retention
from tests.conftest import Browserless, csrf_from
from tests.factories import (
    PASSWORD,
    TINY_PDF,
    accept,
    decide,
    make_eqa_pack,
    make_evidence,
    make_world,
    stage_bytes,
)


def _end(session, enrolment, *, months_ago: int) -> None:
    enrolment.status = EnrolmentStatus.COMPLETED
    session.flush()
    enrolment.finished_at = retention.months_before(utcnow(), months_ago) - timedelta(days=1)
    session.flush()


@pytest.fixture
def world(app, session):
    """A decided, signed piece of evidence with a file, on an enrolment that ended 13 months
    ago, in a centre that keeps learner work 12 months (not waiting for an EQA)."""
    w = make_world(session, app.config["STORAGE_DIR"])
    pdf = stage_bytes(app.config["STORAGE_DIR"], TINY_PDF, "complaint-letter.pdf")
    w.evidence = make_evidence(session, w.enrolment, w.learner, "work_product",
                               title="Reply letter",
                               body="I wrote the reply about the quokka with my manager.",
                               files=[pdf], maps=("2.8",), submit=True)
    w.file_id = w.evidence.versions[0].files[0].id
    accept(session, w.evidence, w.assessor)
    decide(session, w.enrolment, w.assessor, "2.8", [w.evidence])
    centre = w.learner.centre
    centre.work_keep_months, centre.work_until_eqa = 12, False
    _end(session, w.enrolment, months_ago=13)
    session.commit()
    return w


def admin_web(app, world):
    web = Browserless(app.test_client())
    assert web.login(world.admin.email, PASSWORD).status_code == 302
    return web


def store(app) -> FileStore:
    return FileStore(app.config["STORAGE_DIR"])


def test_finished_at_follows_the_status():
    enrolment = Enrolment(status=EnrolmentStatus.ACTIVE)
    assert enrolment.finished_at is None
    enrolment.status = EnrolmentStatus.COMPLETED
    first = enrolment.finished_at
    assert first is not None
    enrolment.status = EnrolmentStatus.COMPLETED  # saved again: the clock does not restart
    assert enrolment.finished_at == first
    enrolment.status = EnrolmentStatus.ACTIVE  # reopened: nothing counts
    assert enrolment.finished_at is None


def test_months_before_keeps_the_day_or_takes_the_months_last():
    now = utcnow().replace(year=2026, month=3, day=31)
    assert retention.months_before(now, 1).date().isoformat() == "2026-02-28"
    assert retention.months_before(now, 14).date().isoformat() == "2025-01-31"


def test_what_is_due_respects_the_period_holds_activity_and_the_eqa(app, session, world):
    centre = world.learner.centre
    assert [e.id for e in retention.work_due(session, centre)] == [world.enrolment.id]
    # Not yet 12 months: kept.
    world.enrolment.finished_at = retention.months_before(utcnow(), 11)
    assert retention.work_due(session, centre) == []
    world.enrolment.finished_at = retention.months_before(utcnow(), 13)
    # No period chosen: nothing is ever due.
    centre.work_keep_months = None
    assert retention.work_due(session, centre) == []
    centre.work_keep_months = 12
    # Waiting for an EQA: due only once a pack that included it has closed.
    centre.work_until_eqa = True
    assert retention.work_due(session, centre) == []
    assert [e.id for e in retention.overview(session, centre).waiting_for_eqa] == \
        [world.enrolment.id]
    pack = make_eqa_pack(session, world, days=10)
    pack.valid_from, pack.valid_to = (utcnow() - timedelta(days=20)).date(), \
        (utcnow() - timedelta(days=10)).date()  # the visit's pack closed ten days ago
    assert [e.id for e in retention.work_due(session, centre)] == [world.enrolment.id]
    pack.revoked_at, pack.revoked_by_id = utcnow(), world.admin.id  # revoked: no review
    assert retention.work_due(session, centre) == []
    centre.work_until_eqa = False
    # An active enrolment, and one on hold, are never due.
    world.enrolment.hold_reason = "Appeal"
    assert retention.work_due(session, centre) == []
    world.enrolment.hold_reason = None
    # The other centre's period does not reach this one's enrolments.
    assert retention.work_due(session, world.foreign_learner.centre) == []
    session.rollback()


def test_removal_keeps_the_record_and_signatures_verify_against_the_recorded_hashes(
        app, session, world):
    version = world.evidence.versions[0]
    sha = version.files[0].sha256
    file_id = world.file_id
    assert store(app).exists(sha)
    before = {v.signature_id: v.state for v in verify_all(session, [world.enrolment.id])}
    assert set(before.values()) == {"valid"} and before

    report = retention.run(_sessionmaker(app), store(app), _exports(app))
    assert [r.enrolment_id for r in report.removed] == [world.enrolment.id]
    session.expire_all()

    # The text and the file's bytes are gone; the record stays.
    removed = session.get(EvidenceVersion, version.id)
    assert removed.removed_at is not None and removed.body_md == ""
    assert removed.title == "Reply letter" and removed.files[0].filename == \
        "complaint-letter.pdf"
    assert not store(app).exists(sha)
    assert session.get(StoredFile, sha).removed_at is not None
    # Every signature still verifies, saying why there is nothing left to re-hash.
    verdicts = verify_all(session, [world.enrolment.id], store=store(app))
    assert {v.state for v in verdicts} == {"valid"}
    assert any("removed under the centre's retention policy" in v.reason for v in verdicts)
    # Audited: one event per item and one for the enrolment.
    actions = list(session.scalars(select(AuditEvent.action).where(
        AuditEvent.action.like("retention.%"))))
    assert actions.count("retention.work_removed") == 1
    assert actions.count("retention.evidence_removed") >= 1
    # The learner and the assessor see why the file is gone (410), not an error.
    for who in (world.learner, world.assessor):
        web = Browserless(app.test_client())
        web.login(who.email, PASSWORD)
        answer = web.client.get(f"/files/{file_id}")
        assert answer.status_code == 410, who.email
        assert "retention policy" in answer.get_data(as_text=True)
    page = web.client.get(f"/evidence/{world.evidence.id}")
    assert page.status_code == 200
    assert "Removed under the retention policy" in page.get_data(as_text=True)
    # The PDF shows the record with a note, and no file.
    content = gather(session, session.get(Enrolment, world.enrolment.id), now=utcnow(),
                     verify_url="https://example.org/v", public_id="x")
    item = next(e for e in content.evidence if e.id == world.evidence.id)
    assert "removed on" in item.body_md and item.files == []
    # Running again removes nothing more.
    assert retention.run(_sessionmaker(app), store(app), _exports(app)).removed == []


def test_a_version_marked_removed_by_hand_breaks_its_signatures(app, session, world):
    """An attacker who blanks a signed text and marks it removed, without the hash-chained
    removal event, does not get a valid signature."""
    version = world.evidence.versions[0]
    session.execute(update(EvidenceVersion).where(EvidenceVersion.id == version.id)
                    .values(body_md="", removed_at=utcnow()))
    session.commit()
    session.expire_all()
    states = {v.state for v in verify_all(session, [world.enrolment.id])}
    assert "broken" in states


def test_a_file_shared_with_a_live_portfolio_keeps_its_bytes(app, session, world):
    same = stage_bytes(app.config["STORAGE_DIR"], TINY_PDF, "same-letter.pdf")
    make_evidence(session, world.other_enrolment, world.other_learner, "work_product",
                  title="My letter", body="", files=[same])
    session.commit()
    sha = world.evidence.versions[0].files[0].sha256
    assert same.sha256 == sha
    retention.run(_sessionmaker(app), store(app), _exports(app))
    session.expire_all()
    assert store(app).exists(sha) and session.get(StoredFile, sha).removed_at is None


def test_uploading_removed_bytes_again_brings_them_back(app, session, world):
    sha = world.evidence.versions[0].files[0].sha256
    retention.run(_sessionmaker(app), store(app), _exports(app))
    session.expire_all()
    assert not store(app).exists(sha)
    again = stage_bytes(app.config["STORAGE_DIR"], TINY_PDF, "again.pdf")
    make_evidence(session, world.other_enrolment, world.other_learner, "work_product",
                  title="Again", body="", files=[again])
    session.commit()
    assert store(app).exists(sha) and session.get(StoredFile, sha).removed_at is None


def test_removed_text_is_no_longer_found_by_search(app, session, world):
    def hits():
        session.expire_all()
        return [e.evidence_id for e in session.scalars(select(SearchEntry).where(
            SearchEntry.body.contains("quokka")))]

    assert hits() == [world.evidence.id]
    retention.run(_sessionmaker(app), store(app), _exports(app))
    assert hits() == []


def test_a_legal_hold_keeps_everything_until_lifted(app, session, world):
    web = admin_web(app, world)
    url = f"/admin/enrolments/{world.enrolment.id}/hold"
    page = web.client.get(url)
    assert page.status_code == 200
    # A hold needs a reason.
    refused = web.post(url, data={"reason": "  ", "csrf_token": csrf_from(page.get_data(True))})
    assert refused.status_code == 422 and "Say why" in refused.get_data(as_text=True)
    placed = web.post(url, data={"reason": "Appeal lodged by the learner",
                                 "csrf_token": csrf_from(page.get_data(True))})
    assert placed.status_code == 302
    assert retention.run(_sessionmaker(app), store(app), _exports(app)).removed == []
    session.expire_all()
    assert world.evidence.versions[0].removed_at is None
    # Another centre's admin cannot see or lift it.
    far = Browserless(app.test_client())
    far.login(world.other_admin.email, PASSWORD)
    assert far.client.get(url).status_code == 404
    # Lifting it makes the work due again; both moves are audited.
    shown = web.client.get(url)
    assert "Appeal lodged by the learner" in shown.get_data(as_text=True)
    lifted = web.post(url + "/lift", data={"csrf_token": csrf_from(shown.get_data(True))})
    assert lifted.status_code == 302
    session.expire_all()
    assert [e.id for e in retention.work_due(session, world.learner.centre)] == \
        [world.enrolment.id]
    actions = set(session.scalars(select(AuditEvent.action).where(
        AuditEvent.subject_type == "enrolment", AuditEvent.subject_id == str(
            world.enrolment.id))))
    assert {"retention.hold", "retention.hold_lifted"} <= actions


def test_the_admin_sets_the_period_and_removes_what_is_due(app, session, world):
    web = admin_web(app, world)
    page = web.client.get("/admin/retention")
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "Due for removal (1)" in text
    bad = web.post("/admin/retention", data={"work_keep_months": "0",
                                             "csrf_token": csrf_from(page.get_data(True))})
    assert bad.status_code == 422
    saved = web.post("/admin/retention", data={"work_keep_months": "72",
                                               "csrf_token": csrf_from(page.get_data(True))})
    assert saved.status_code == 302
    session.expire_all()
    centre = world.learner.centre
    assert (centre.work_keep_months, centre.work_until_eqa) == (72, False)
    assert "Due for removal (1)" not in web.client.get("/admin/retention").get_data(True)
    web.post("/admin/retention", data={"work_keep_months": "12"})
    page = web.client.get("/admin/retention")
    removed = web.post("/admin/retention/remove")
    assert removed.status_code == 302
    session.expire_all()
    assert session.get(Enrolment, world.enrolment.id).work_removed_at is not None
    assert "Removed the learner work of 1 enrolment" in web.client.get(
        "/admin/retention").get_data(as_text=True)


def test_the_cli_lists_then_removes(app, session, world):
    runner = app.test_cli_runner()
    listed = runner.invoke(cli, ["retention", "--dry-run"])
    assert listed.exit_code == 0 and f"#{world.enrolment.id}" in listed.output
    session.expire_all()
    assert session.get(Enrolment, world.enrolment.id).work_removed_at is None
    done = runner.invoke(cli, ["maintenance"])
    assert "retention: removed the learner work of 1 enrolment(s)" in done.output
    session.expire_all()
    assert session.get(Enrolment, world.enrolment.id).work_removed_at is not None


def test_a_bundle_is_refused_once_work_is_removed(app, session, world):
    retention.run(_sessionmaker(app), store(app), _exports(app))
    web = admin_web(app, world)
    page = web.client.get(f"/admin/enrolments/{world.enrolment.id}")
    answer = web.post(f"/admin/enrolments/{world.enrolment.id}/bundle",
                      data={"csrf_token": csrf_from(page.get_data(True))})
    assert answer.status_code == 302 and answer.mimetype != "application/zip"
    shown = web.client.get(answer.headers["Location"]).get_data(as_text=True)
    assert "removed under the centre" in shown and "no complete bundle" in shown


def _sessionmaker(app):
    from portfolio.db import get_database

    return get_database(app).sessionmaker


def _exports(app):
    from portfolio.export.files import export_files

    return export_files(app.config)


def test_reopened_after_removal_its_new_work_is_removed_when_it_ends_again(app, session, world):
    retention.run(_sessionmaker(app), store(app), _exports(app))
    session.expire_all()
    enrolment = session.get(Enrolment, world.enrolment.id)
    # The first removal was long ago; then an IQA disagreed and the unit opened again.
    enrolment.work_removed_at = first_removal = retention.months_before(utcnow(), 14)
    enrolment.status = EnrolmentStatus.ACTIVE
    session.flush()
    assert retention.work_due(session, world.learner.centre) == []
    late = make_evidence(session, enrolment, world.learner, body="Added after reopening.")
    _end(session, enrolment, months_ago=13)
    session.commit()
    assert [e.id for e in retention.work_due(session, world.learner.centre)] == [enrolment.id]
    retention.run(_sessionmaker(app), store(app), _exports(app))
    session.expire_all()
    assert session.get(EvidenceVersion, late.versions[0].id).removed_at is not None
    assert session.get(Enrolment, enrolment.id).work_removed_at > first_removal
    assert {v.state for v in verify_all(session, [enrolment.id])} == {"valid"}


def test_the_laid_out_pages_of_its_last_export_are_deleted_too(app, session, world):
    from portfolio.export.pipeline import LAST_PARTS_DIR, SECTION_DIR

    cache = Path(app.config["RENDER_CACHE_DIR"])
    (cache / SECTION_DIR).mkdir(parents=True, exist_ok=True)
    (cache / LAST_PARTS_DIR).mkdir(parents=True, exist_ok=True)
    part = cache / SECTION_DIR / "abc123.pdf"
    kept = cache / SECTION_DIR / "def456.pdf"
    part.write_bytes(b"%PDF-1.7 laid out")
    kept.write_bytes(b"%PDF-1.7 someone else's")
    note = cache / LAST_PARTS_DIR / f"enrolment-{world.enrolment.id}.json"
    note.write_text('["abc123"]')
    retention.run(_sessionmaker(app), store(app), _exports(app), cache_dir=cache)
    assert not part.exists() and not note.exists() and kept.exists()
