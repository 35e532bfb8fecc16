"""Customers' personal data before submission (issue 13, defect 9): flagged evidence cannot be
submitted until it is masked in a new version or replaced by a descriptor; the original is then
the assessor's alone; the learner's own work address is not a customer's."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from portfolio.evidence.redaction import findings_for
from portfolio.evidence.services import current_version
from portfolio.models import AuditEvent, Evidence
from tests.conftest import Browserless
from tests.factories import PASSWORD, TINY_PDF, make_evidence, make_world, stage_bytes

LOG = (b"Date,Caller,Contact,Outcome\r\n"
       b"05/03/2025,M. Patel,m.patel@customer.example,Refund agreed\r\n"
       b"06/03/2025,Mrs Jones,07700 900123,Escalated to team leader\r\n")


@pytest.fixture
def world(app, session):
    return make_world(session, app.config["STORAGE_DIR"])


def _client(app, user) -> Browserless:
    web = Browserless(app.test_client())
    web.login(user.email, PASSWORD)
    return web


def _flagged_log(app, session, world) -> Evidence:
    item = make_evidence(session, world.enrolment, world.learner, "log",
                         title="Complaints log, March", body="Calls I took, e.g. Mrs Jones.",
                         files=[stage_bytes(app.config["STORAGE_DIR"], LOG, "march.csv")],
                         maps=("2.8",))
    session.commit()
    return item


def test_flagged_evidence_cannot_be_submitted_until_masked(app, session, world):
    item = _flagged_log(app, session, world)
    learner = _client(app, world.learner)
    page = learner.client.get(f"/evidence/{item.id}").get_data(True)
    assert "Possible customer personal data" in page and "Mask them in a new version" in page
    assert "M. P****" in page and "Patel" not in page.split('id="personal-data"')[1][:3000]
    refused = learner.post(f"/evidence/{item.id}/submit", {
        "typed_name": world.learner.full_name, "password": PASSWORD})
    assert refused.status_code == 409
    assert "customers' personal data" in refused.get_data(True).replace("&#39;", "'")
    session.expire_all()
    assert session.get(Evidence, item.id).status == "draft"

    masked = learner.post(f"/evidence/{item.id}/redact", {"expected_version": "1"})
    assert masked.status_code == 302
    session.expire_all()
    item = session.get(Evidence, item.id)
    new, old = current_version(item), item.versions[0]
    assert new.version == 2 and new.redacted_from == 1 and old.assessor_only
    assert new.body_md == "Calls I took, e.g. [name removed]."
    stored = Path(app.config["STORAGE_DIR"])
    csv = next(stored.rglob(new.files[0].sha256)).read_bytes().decode()
    assert "[name removed]" in csv and "Patel" not in csv and "07700" not in csv
    assert "Refund agreed" in csv  # the rest of the log is untouched
    assert findings_for(new, item.enrolment) == []
    # The audit trail records that it was masked, never what was masked.
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "evidence.redacted"))
    assert event.detail["from"] == 1 and "Jones" not in str(event.detail)
    submitted = learner.post(f"/evidence/{item.id}/submit", {
        "typed_name": world.learner.full_name, "password": PASSWORD})
    assert submitted.status_code == 302
    session.expire_all()
    assert session.get(Evidence, item.id).status == "submitted"


def test_the_original_opens_for_the_assessor_alone(app, session, world):
    item = _flagged_log(app, session, world)
    learner = _client(app, world.learner)
    learner.post(f"/evidence/{item.id}/redact", {"expected_version": "1"})
    session.expire_all()
    item = session.get(Evidence, item.id)
    old_file = item.versions[0].files[0].id
    new_file = current_version(item).files[0].id
    for user, status in ((world.learner, 404), (world.iqa, 404), (world.admin, 404),
                         (world.assessor, 200)):
        web = learner if user is world.learner else _client(app, user)
        assert web.client.get(f"/evidence/{item.id}/versions/1").status_code == status, user
        assert web.client.get(f"/files/{old_file}").status_code == status, user
        assert web.client.get(f"/files/{new_file}").status_code == 200, user
    page = learner.client.get(f"/evidence/{item.id}").get_data(True)
    assert "Assessor only" in page and f"/evidence/{item.id}/versions/1" not in page


def test_a_descriptor_stands_in_for_the_original(app, session, world):
    item = make_evidence(session, world.enrolment, world.learner, "work_product",
                         title="Reply to a complaint", body="My letter to Mrs Jones.",
                         files=[stage_bytes(app.config["STORAGE_DIR"], TINY_PDF, "reply.pdf")],
                         maps=("2.8",))
    session.commit()
    learner = _client(app, world.learner)
    incomplete = learner.post(f"/evidence/{item.id}/descriptor", {
        "expected_version": "1", "description": "A letter I wrote.", "held_at": ""})
    assert incomplete.status_code == 422 and "where the original is kept" in \
        incomplete.get_data(True)
    session.expire_all()
    assert session.get(Evidence, item.id).current_version == 1  # nothing was saved
    done = learner.post(f"/evidence/{item.id}/descriptor", {
        "expected_version": "1",
        "description": "A reply I wrote to a customer, apologising and offering a refund.",
        "held_at": "Complaints file, Leeds office; ask the team leader"})
    assert done.status_code == 302
    session.expire_all()
    item = session.get(Evidence, item.id)
    new = current_version(item)
    assert new.files == [] and new.original_held_at.startswith("Complaints file")
    assert item.versions[0].assessor_only
    page = learner.client.get(f"/evidence/{item.id}").get_data(True)
    assert "Evidence descriptor" in page and "Leeds office" in page
    assert learner.post(f"/evidence/{item.id}/submit", {
        "typed_name": world.learner.full_name, "password": PASSWORD}).status_code == 302


def test_a_stale_or_foreign_request_changes_nothing(app, session, world):
    item = _flagged_log(app, session, world)
    learner = _client(app, world.learner)
    stale = learner.post(f"/evidence/{item.id}/redact", {"expected_version": "7"})
    assert stale.status_code == 409 and "changed since you opened it" in stale.get_data(True)
    assessor = _client(app, world.assessor)
    assert assessor.post(f"/evidence/{item.id}/redact",
                         {"expected_version": "1"}).status_code == 403
    session.expire_all()
    item = session.get(Evidence, item.id)
    assert item.current_version == 1 and not item.versions[0].assessor_only


def test_the_learners_own_work_address_is_not_flagged(app, session, world):
    """Defect 9: the learner's own work address was flagged as a customer's."""
    world.enrolment.workplace = "Acme Utilities, 4 Park Row, Leeds LS1 5HD"
    item = make_evidence(session, world.enrolment, world.learner,
                         body="At our office (4 Park Row, LS1 5HD) I handled the queue.",
                         maps=("1.1",))
    session.commit()
    assert findings_for(current_version(item), world.enrolment) == []
    learner = _client(app, world.learner)
    assert learner.post(f"/evidence/{item.id}/submit", {
        "typed_name": world.learner.full_name, "password": PASSWORD}).status_code == 302


def test_an_excel_log_is_masked_cell_by_cell(app, session, world):
    import io

    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["Date", "Caller", "Outcome"])
    sheet.append(["05/03/2025", "Mrs Jones (07700 900123)", "Refund agreed"])
    raw = io.BytesIO()
    book.save(raw)
    item = make_evidence(session, world.enrolment, world.learner, "log", title="Log",
                         body="My calls.", maps=("2.8",),
                         files=[stage_bytes(app.config["STORAGE_DIR"], raw.getvalue(),
                                            "calls.xlsx")])
    session.commit()
    learner = _client(app, world.learner)
    assert learner.post(f"/evidence/{item.id}/redact",
                        {"expected_version": "1"}).status_code == 302
    session.expire_all()
    new = current_version(session.get(Evidence, item.id))
    stored = Path(app.config["STORAGE_DIR"])
    data = next(stored.rglob(new.files[0].sha256)).read_bytes()
    masked = openpyxl.load_workbook(io.BytesIO(data))
    rows = [[c.value for c in r] for r in masked.active.iter_rows()]
    assert rows[1] == ["05/03/2025", "[name removed] ([phone number removed])", "Refund agreed"]
    assert findings_for(new, world.enrolment) == []
