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
from sqlalchemy import select

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
