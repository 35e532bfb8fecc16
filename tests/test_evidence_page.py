"""The evidence page and the assessor's review: Excel previews through a real upload, referral
feedback at the top, a coverage matrix that agrees with its legend, one review form, and
observations the assessor records and signs in one step."""

from __future__ import annotations

import io
import re
from datetime import date
from html import unescape

import openpyxl
import pytest
from sqlalchemy import func, select

from portfolio.evidence.coverage import CELL_STATES, compute_coverage
from portfolio.evidence.parsing import Preview
from portfolio.evidence.personal_data import find_personal_data
from portfolio.models import EvidenceFile
from tests.factories import PASSWORD, accept, criterion, make_evidence, make_world

TODAY = date.today().isoformat()


@pytest.fixture
def world(app, session):
    return make_world(session)


def _as(web, user):
    web.login(user.email, PASSWORD)
    return web


def _xlsx_bytes() -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["Date", "Caller", "Contact", "Outcome"])
    sheet.append(["05/03/2025", "Caller 1", "jo.bloggs@customer.example", "Refund agreed"])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


# --- defect 1: an Excel log gets its preview through a real upload -----------------------------

def test_xlsx_upload_gets_a_table_preview_and_a_personal_data_scan(session, world, web):
    _as(web, world.learner)
    response = web.post(
        f"/enrolments/{world.enrolment.id}/evidence/new/work_product",
        {"title": "Call log", "activity_on": TODAY, "activity_place": "Contact centre",
         "personal_data_confirmed": "y",
         "files": [(io.BytesIO(_xlsx_bytes()), "call-log.xlsx")]},
        content_type="multipart/form-data")
    assert response.status_code == 302, response.get_data(True)
    stored = session.scalar(select(EvidenceFile))
    assert stored.preview["kind"] == "table", stored.preview
    assert stored.preview["table"][1][3] == "Refund agreed"
    page = web.client.get(response.headers["Location"].split("#")[0]).get_data(True)
    assert "could not be read" not in page
    assert "Refund agreed" in page
    # The personal-data scan reads the table's text: the customer's address is found.
    text = Preview.from_json(stored.preview).text
    findings = find_personal_data(text, allow=[world.learner.email])
    assert [f.excerpt for f in findings] == ["j***@customer.example"]


# --- defect 6: the coverage matrix agrees with its legend and its gap list ----------------------

def test_matrix_cells_follow_the_evidence_state(session, world, web):
    learner, assessor = world.learner, world.assessor
    draft = make_evidence(session, world.enrolment, learner, title="Draft", maps=("1.1",))
    submitted = make_evidence(session, world.enrolment, learner, title="Sent", maps=("1.2",),
                              submit=True)
    accepted = make_evidence(session, world.enrolment, learner, title="Good", maps=("1.3",),
                             submit=True)
    accept(session, accepted, assessor)
    session.commit()
    coverage = compute_coverage(session, world.enrolment, date.today())
    cell = {e.id: coverage.cells[(criterion(session, n).id, e.id)]
            for e, n in ((draft, "1.1"), (submitted, "1.2"), (accepted, "1.3"))}
    assert cell == {draft.id: "not_yet", submitted.id: "waiting", accepted.id: "counts"}
    gaps = {c.number: c for c in coverage.gaps}
    assert "1.1" in gaps and "1.3" not in gaps
    by_number = {c.number: c for c in coverage.criteria}
    assert "still to review “Sent”" in by_number["1.2"].reasons[0].message

    page = _as(web, learner).client.get(f"/enrolments/{world.enrolment.id}/coverage")
    html = page.get_data(True)
    html = unescape(html)
    rows = {n: row for n, row in re.findall(r'criteria/\d+">([\d.]+)</a></th>(.*?)</tr>', html,
                                            re.S)}
    assert "cell-counts" not in rows["1.1"] and "cell-not_yet" in rows["1.1"]
    assert "cell-waiting" in rows["1.2"] and "cell-counts" in rows["1.3"]
    for _state, _symbol, meaning in CELL_STATES:  # the legend names every state the cells use
        assert meaning.capitalize() in html


def test_referral_feedback_leads_the_page(app, session, web, world):
    """Defect: the assessor's referral feedback sat about 3,500 px down, under the criteria."""
    from portfolio.assessment.services import review_evidence

    item = make_evidence(session, world.enrolment, world.learner, title="Complaint log",
                         maps=("1.1", "1.2", "1.3"), submit=True)
    review_evidence(session, item, actor=world.assessor, outcome="referred",
                    feedback_md="Add the **date** each complaint came in.", varcs={},
                    expected_version=1)
    session.commit()
    _as(web, world.learner)
    html = web.client.get(f"/evidence/{item.id}").get_data(True)
    callout = html.index('id="referral"')
    assert "<strong>date</strong>" in html[callout:html.index("</section>", callout)]
    assert "What to do next" in html[callout:]
    assert callout < html.index('id="mapping"') and callout < html.index('id="body-title"')


def _review_fields(item_id: int, **extra) -> dict:
    return {"outcome": "accepted", "expected_version": "1", "valid": "y", "authentic": "y",
            **extra}


def test_one_review_form_keeps_the_ticks_it_was_sent_with(app, session, web, world):
    """Defect 7: the mapping form and the review form were separate, so a tick made before
    clicking "Record review" was silently lost."""
    from portfolio.models import Evidence

    item = make_evidence(session, world.enrolment, world.learner, title="Shift notes",
                         maps=("1.1",), submit=True)
    c11, c13 = criterion(session, "1.1"), criterion(session, "1.3")
    session.commit()
    _as(web, world.assessor)
    html = web.client.get(f"/evidence/{item.id}").get_data(True)
    # The review's controls belong to the mapping form, and so does the button.
    review = html[html.index('id="review"'):]
    assert re.search(r'<button[^>]*form="map-form"[^>]*>Record review', review)
    assert re.search(r'name="outcome"[^>]*form="map-form"|form="map-form"[^>]*name="outcome"',
                     review)
    done = web.post(f"/evidence/{item.id}/review", _review_fields(
        item.id, mapping="1", criteria=[str(c11.id), str(c13.id)],
        **{f"rationale-{c13.id}": "Paragraph on how I calmed the caller",
           f"location-{c13.id}": "para 2"}))
    assert done.status_code == 302
    session.expire_all()
    saved = session.get(Evidence, item.id)
    assert saved.status == "accepted" and saved.assessor_mapped_at is not None
    final = {m.criterion.number: m for m in saved.mappings
             if m.removed_at is None and m.source == "assessor"}
    assert set(final) == {"1.1", "1.3"} and final["1.3"].location == "para 2"
    coverage = {c.number: c for c in compute_coverage(session, world.enrolment,
                                                      date.today()).criteria}
    assert any(i.evidence_id == item.id for i in coverage["1.3"].items)


def test_a_refused_review_saves_neither_and_keeps_what_was_typed(app, session, web, world):
    from portfolio.models import Evidence

    item = make_evidence(session, world.enrolment, world.learner, title="Shift notes",
                         maps=("1.1",), submit=True)
    c13 = criterion(session, "1.3")
    session.commit()
    _as(web, world.assessor)
    refused = web.post(f"/evidence/{item.id}/review", {
        "outcome": "referred", "expected_version": "1", "feedback_md": "",
        "sufficient": "y", "mapping": "1", "criteria": [str(c13.id)],
        f"location-{c13.id}": "the second page"})
    assert refused.status_code == 422
    html = refused.get_data(True)
    assert "Say what the learner needs to change" in html
    assert re.search(rf'value="{c13.id}" id="map-{c13.id}" checked', html)
    assert 'value="the second page"' in html
    assert re.search(r'id="sufficient"[^>]*checked|checked[^>]*id="sufficient"', html)
    session.expire_all()
    saved = session.get(Evidence, item.id)
    assert saved.status == "submitted" and saved.assessor_mapped_at is None
    assert not [m for m in saved.mappings if m.source == "assessor"]


def test_accepted_evidence_shows_the_mapping_that_counts(app, session, web, world):
    """Defect 7: after acceptance the page said "Not mapped to any criterion" while the
    learner's mapping counted."""
    item = make_evidence(session, world.enrolment, world.learner, title="Shift notes",
                         maps=("1.1", "1.2"), submit=True)
    accept(session, item, world.assessor)
    session.commit()
    from tests.conftest import Browserless

    for user in (world.assessor, world.learner, world.iqa):
        html = _as(Browserless(app.test_client()), user).client.get(
            f"/evidence/{item.id}").get_data(True)
        mapping = html[html.index('id="mapping"'):html.index("</section>",
                                                             html.index('id="mapping"'))]
        assert "Not mapped to any criterion" not in mapping, user.email
        assert "what counts" in mapping and ">1.1<" in mapping and ">1.2<" in mapping


def _observation(session, enrolment, **extra) -> dict:
    numbers = extra.pop("numbers", ("2.1", "2.2"))
    return {"title": "Observed: a billing complaint at the counter", "activity_on": TODAY,
            "activity_place": "Shop floor", "observer": "Asha Assessor",
            "body_md": "Listened, apologised, checked the account and agreed a refund.",
            "personal_data_confirmed": "y",
            "criteria": [str(criterion(session, n).id) for n in numbers], **extra}


def _outbox(app) -> list:
    from pathlib import Path

    return sorted(Path(app.config["OUTBOX_DIR"]).glob("*.eml"))


def test_an_observation_is_recorded_and_signed_in_one_step(app, session, web, world):
    """Defect 12: an assessor's observation went through the learner's submit-and-review
    round trip. Now one form: tick, sign, and it counts."""
    from portfolio.assessment.signing import verify_signature
    from portfolio.models import AuditEvent, Evidence, Notification, Signature

    _as(web, world.assessor)
    url = f"/enrolments/{world.enrolment.id}/evidence/new/observation"
    page = web.client.get(url).get_data(True)
    assert "Record and sign" in page and "Criteria it shows" in page
    before = _outbox(app)
    done = web.post(url, _observation(session, world.enrolment, record="1",
                                      typed_name=world.assessor.full_name, password=PASSWORD))
    assert done.status_code == 302, done.get_data(True)
    item = session.scalar(select(Evidence).where(Evidence.kind == "observation"))
    assert item.status == "accepted" and item.assessor_mapped_at is not None
    mapped = sorted(m.criterion.number for m in item.mappings
                    if m.removed_at is None and m.source == "assessor")
    assert mapped == ["2.1", "2.2"]
    signature = session.scalar(select(Signature).where(Signature.purpose == "assessor_record"))
    assert signature.subject_id == item.id and signature.signer_id == world.assessor.id
    assert verify_signature(session, signature).state == "valid"
    coverage = {c.number: c for c in compute_coverage(session, world.enrolment,
                                                      date.today()).criteria}
    assert [i.state for i in coverage["2.1"].items] == ["counts"]
    # Nobody is asked to review it, and nobody is emailed to; the learner is told in the app.
    actions = set(session.scalars(select(AuditEvent.action)))
    assert "evidence.recorded" in actions and "evidence.submit" not in actions
    assert _outbox(app) == before
    told = session.scalars(select(Notification).where(
        Notification.kind == "assessor_recorded")).all()
    assert [n.recipient_id for n in told] == [world.learner.id]
    html = web.client.get(f"/evidence/{item.id}").get_data(True)
    assert "Assessor&#39;s signed record of evidence" in html or \
        "Assessor's signed record of evidence" in unescape(html)


def test_a_wrong_password_records_nothing_and_counts(app, session, web, world):
    from portfolio.models import AuthThrottle, Evidence, LoginAttempt

    _as(web, world.assessor)
    url = f"/enrolments/{world.enrolment.id}/evidence/new/observation"
    attempts = session.scalar(select(func.count()).select_from(LoginAttempt))
    refused = web.post(url, _observation(
        session, world.enrolment, record="1", typed_name=world.assessor.full_name,
        password="not it", files=[(io.BytesIO(b"RIFF....WAVEfmt "), "counter.wav")]),
        content_type="multipart/form-data")
    assert refused.status_code == 422
    html = refused.get_data(True)
    assert "not your password" in html
    # What was typed and ticked is still there; nothing was written but the failed attempt.
    assert "a billing complaint at the counter" in html
    assert re.search(rf'value="{criterion(session, "2.2").id}" id="crit-\d+" checked', html)
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Evidence)
                          .where(Evidence.kind == "observation")) == 0
    assert session.scalar(select(func.count()).select_from(LoginAttempt)) == attempts + 1
    assert session.scalar(select(func.count()).select_from(AuthThrottle)) >= 1
    untouched = web.post(url, _observation(session, world.enrolment, numbers=(), record="1",
                                           typed_name=world.assessor.full_name,
                                           password=PASSWORD))
    assert untouched.status_code == 422 and "Tick at least one criterion" in \
        untouched.get_data(True)


def test_a_trainee_is_not_emailed_about_their_own_observation(app, session, world):
    """Defect 12: a trainee submitting their own observation was emailed "Evidence to review"."""
    from tests.conftest import Browserless

    web = _as(Browserless(app.test_client()), world.trainee)
    item = make_evidence(session, world.other_enrolment, world.trainee, "observation",
                         title="Observed at the counter", maps=("2.1",))
    session.commit()
    html = web.client.get(f"/evidence/{item.id}").get_data(True)
    assert "Sign and record" in html and "Submit for assessment" not in html
    before = _outbox(app)
    done = web.post(f"/evidence/{item.id}/record", {"typed_name": world.trainee.full_name,
                                                    "password": PASSWORD})
    assert done.status_code == 302
    session.expire_all()
    assert session.get(type(item), item.id).status == "accepted"
    assert _outbox(app) == before
    # The old way (submit, then review your own record) no longer emails the submitter either.
    other = make_evidence(session, world.other_enrolment, world.trainee, "observation",
                          title="Second observation", maps=("2.2",))
    session.commit()
    assert web.post(f"/evidence/{other.id}/submit", {}).status_code == 302
    assert _outbox(app) == before


def test_only_the_assessor_who_made_it_signs_a_record(app, session, world):
    from tests.conftest import Browserless

    item = make_evidence(session, world.enrolment, world.assessor, "observation",
                         title="Observed", maps=("2.1",))
    learners_own = make_evidence(session, world.enrolment, world.learner, maps=("1.1",))
    session.commit()
    learner = _as(Browserless(app.test_client()), world.learner)
    assert learner.post(f"/evidence/{item.id}/record", {
        "typed_name": world.learner.full_name, "password": PASSWORD}).status_code == 403
    assessor = _as(Browserless(app.test_client()), world.assessor)
    assert assessor.post(f"/evidence/{learners_own.id}/record", {
        "typed_name": world.assessor.full_name, "password": PASSWORD}).status_code == 403
    other = _as(Browserless(app.test_client()), world.trainee)
    assert other.post(f"/evidence/{item.id}/record", {
        "typed_name": world.trainee.full_name, "password": PASSWORD}).status_code == 404


def test_referred_items_lead_the_evidence_list(app, session, web, world):
    """Defect 5: nothing listed referred-back items first."""
    from portfolio.assessment.services import review_evidence

    referred = make_evidence(session, world.enrolment, world.learner, title="Oldest, referred",
                             maps=("1.1",), submit=True, activity_on=date(2024, 1, 5))
    review_evidence(session, referred, actor=world.assessor, outcome="referred",
                    feedback_md="Say what you did next.", varcs={}, expected_version=1)
    make_evidence(session, world.enrolment, world.learner, title="Newest draft")
    session.commit()
    html = _as(web, world.learner).client.get(
        f"/enrolments/{world.enrolment.id}/evidence").get_data(True)
    assert html.index("Oldest, referred") < html.index("Newest draft")
