"""Staff search (issue 17): learners by name or email, evidence by its words and the words in
its files, feedback and comments; only within what the person may see, enforced in the SQL;
matched words highlighted; the index kept in the same transaction as the change.

Runs on both databases: PostgreSQL's tsvector/GIN index and SQLite's FTS5 table."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import func, select

from portfolio.assessment.services import review_evidence
from portfolio.comments.services import add_comment
from portfolio.evidence.services import EvidenceInput, revise_evidence
from portfolio.models import SearchEntry
from portfolio.search.index import rebuild
from portfolio.search.queries import fts5_query, search
from tests.conftest import Browserless
from tests.factories import (
    PASSWORD,
    make_centre,
    make_enrolment,
    make_evidence,
    make_user,
    make_world,
    stage_bytes,
)
from tests.test_evidence_parsing import DOCUMENT, W, make_docx, make_eml

VARCS = {k: True for k in ("valid", "authentic", "reliable", "current", "sufficient")}


def _page(app, email: str, query: str, page: int | None = None):
    web = Browserless(app.test_client())
    web.login(email, PASSWORD)
    url = f"/search?q={query}" + (f"&page={page}" if page else "")
    return web.client.get(url)


def _found(session, user, query: str) -> set[int]:
    return {h.evidence_id for h in search(session, user, query).hits}


@pytest.fixture
def world(app, session):
    return make_world(session)


def test_evidence_is_found_by_a_word_in_its_account_with_the_word_marked(app, session, world):
    item = make_evidence(session, world.enrolment, world.learner, title="Billing complaint",
                         body="The customer asked for a refund in March after a double charge.")
    make_evidence(session, world.enrolment, world.learner, title="Team meeting",
                  body="We talked about rotas.")
    session.commit()
    assert _found(session, world.assessor, "refund") == {item.id}
    # Stemming: "refunds" and "refunded" find "refund" on both databases.
    assert _found(session, world.assessor, "refunds") == {item.id}
    response = _page(app, world.assessor.email, "refund")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<mark>refund</mark>" in html
    assert f'href="/evidence/{item.id}"' in html
    assert "Team meeting" not in html


def test_words_inside_word_documents_and_emails_are_found(app, session, world, tmp_path):
    store = app.config["STORAGE_DIR"]
    document = DOCUMENT.replace("I resolved the complaint", "I arranged a goodwill voucher")
    docx = make_docx(tmp_path / "account.docx", document).read_bytes()
    eml = make_eml(tmp_path / "thread.eml").read_bytes()
    with_doc = make_evidence(session, world.enrolment, world.learner, "work_product",
                             title="Letter", body="", files=[stage_bytes(store, docx, "a.docx")])
    with_mail = make_evidence(session, world.enrolment, world.learner, "email", title="Thread",
                              body="", files=[stage_bytes(store, eml, "thread.eml")])
    session.commit()
    assert W  # the Word namespace the document is built with
    assert _found(session, world.assessor, "goodwill voucher") == {with_doc.id}
    assert _found(session, world.assessor, "sorting") == {with_mail.id}  # the email's body
    assert _found(session, world.assessor, "delivery") == {with_mail.id}  # its subject


def test_feedback_and_comments_are_found(app, session, world):
    item = make_evidence(session, world.enrolment, world.learner, title="Handover notes",
                         maps=("1.3",), submit=True)
    review_evidence(session, item, actor=world.assessor, outcome="referred",
                    feedback_md="Please add the escalation procedure you followed.",
                    varcs=VARCS, expected_version=item.current_version)
    add_comment(session, item, actor=world.learner, body="I have asked my supervisor for it.",
                nonce="n-1", now=datetime.now(UTC))
    session.commit()
    kinds = {h.kind: h for h in search(session, world.assessor, "escalation").hits}
    assert set(kinds) == {"feedback"} and kinds["feedback"].evidence_id == item.id
    assert "Handover notes" in kinds["feedback"].title
    assert {h.kind for h in search(session, world.iqa, "supervisor").hits} == {"comment"}
    html = _page(app, world.assessor.email, "supervisor").get_data(as_text=True)
    assert "Comment" in html and "<mark>supervisor</mark>" in html


def test_each_person_finds_only_what_they_may_open(app, session, world):
    """The learner's assessor and IQA and the centre's admin find the item; the other assessor,
    the other centre's admin and staff, and learners do not; learners and EQAs may not search."""
    mine = make_evidence(session, world.enrolment, world.learner, title="Refund log",
                         body="Zebra crossing refund.")
    theirs = make_evidence(session, world.other_enrolment, world.other_learner,
                           title="Other refund", body="Zebra crossing refund too.")
    far_item = make_evidence(session, world.foreign_enrolment, world.foreign_learner,
                             title="Far refund", body="Zebra crossing refund far away.")
    session.commit()
    assert _found(session, world.assessor, "zebra") == {mine.id}
    assert _found(session, world.trainee, "zebra") == {theirs.id}
    assert _found(session, world.iqa, "zebra") == {mine.id}  # the other enrolment has no IQA
    assert _found(session, world.admin, "zebra") == {mine.id, theirs.id}
    assert _found(session, world.other_admin, "zebra") == {far_item.id}
    for person in (world.learner, world.eqa):
        assert _page(app, person.email, "zebra").status_code == 403
    # The page says nothing of what the person cannot see.
    html = _page(app, world.assessor.email, "zebra").get_data(as_text=True)
    assert "Other refund" not in html and "Far refund" not in html and "Olu Other" not in html


def test_learners_are_found_by_name_or_email_within_the_caseload(app, session, world):
    html = _page(app, world.assessor.email, "lee lear").get_data(as_text=True)
    assert "<mark>Lee Lear</mark>ner" in html
    assert f'href="/enrolments/{world.enrolment.id}"' in html
    by_email = search(session, world.assessor, "learner@example")
    assert [h.enrolment_id for h in by_email.learners] == [world.enrolment.id]
    # Olu is the trainee's learner, and the far learner is another centre's.
    assert search(session, world.assessor, "olu").learners == []
    assert search(session, world.assessor, "far-learner").learners == []
    assert [h.enrolment_id for h in search(session, world.admin, "olu").learners] \
        == [world.other_enrolment.id]


def test_only_the_current_version_is_found(app, session, world):
    item = make_evidence(session, world.enrolment, world.learner, title="Till check",
                         body="I counted the float with my manager.")
    session.commit()
    assert _found(session, world.assessor, "float") == {item.id}
    revise_evidence(session, item, actor=world.learner, data=EvidenceInput(
        title="Till check", activity_on=date.today(), body_md="I balanced the drawer.",
        details={}, is_simulated=False, personal_data_confirmed=True),
        keep_file_ids=[], files=[], expected_version=item.current_version, today=date.today())
    session.commit()
    assert _found(session, world.assessor, "float") == set()
    assert _found(session, world.assessor, "drawer") == {item.id}


def test_the_index_is_written_in_the_same_transaction(app, session, world):
    before = session.scalar(select(func.count()).select_from(SearchEntry))
    make_evidence(session, world.enrolment, world.learner, title="Abandoned",
                  body="Kingfisher sighting.")
    assert _found(session, world.assessor, "kingfisher")  # seen inside the transaction
    session.rollback()
    assert session.scalar(select(func.count()).select_from(SearchEntry)) == before
    assert _found(session, world.assessor, "kingfisher") == set()


def test_text_is_escaped_and_cannot_forge_a_highlight(app, session, world):
    make_evidence(session, world.enrolment, world.learner, title="<script>alert(1)</script>",
                  body="Pelican \ue000fake\ue001 <img src=x onerror=alert(1)> pelican.")
    session.commit()
    html = _page(app, world.assessor.email, "pelican").get_data(as_text=True)
    assert "<script>alert(1)" not in html and "<img src=x" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<mark>fake</mark>" not in html


@pytest.mark.parametrize("query", ['"', '""', "refund AND", "NEAR(a b)", "-refund", "re*",
                                   "title:x", "(((", "a OR", "'; DROP TABLE users; --", "x" * 500,
                                   "\x00", "ü", "the and of"])
def test_any_query_is_answered_without_an_error(app, session, world, query):
    make_evidence(session, world.enrolment, world.learner, body="A refund was made.")
    session.commit()
    response = _page(app, world.assessor.email, query.replace("\x00", "%00"))
    assert response.status_code == 200


def test_the_fts5_expression_quotes_every_word():
    # "and" is a stop word; the rest are quoted, so none is read as an operator.
    assert fts5_query('refund AND "march" NEAR(x)') == '"refund" "march" "near" "x"'
    assert fts5_query("the of in") is None


def test_results_are_paged(app, session, world):
    for n in range(23):
        make_evidence(session, world.enrolment, world.learner, title=f"Stock take {n}",
                      body="Counted the warehouse stock.")
    session.commit()
    first = _page(app, world.assessor.email, "warehouse").get_data(as_text=True)
    assert first.count('class="search-hit"') == 20 and "More results" in first
    second = _page(app, world.assessor.email, "warehouse", page=2).get_data(as_text=True)
    assert second.count('class="search-hit"') == 3 and "Previous results" in second


def test_rebuild_gives_back_the_same_entries(app, session, world):
    make_evidence(session, world.enrolment, world.learner, body="Osprey nest.")
    session.commit()
    entries = session.execute(select(SearchEntry.kind, SearchEntry.source_id, SearchEntry.body)
                              .order_by(SearchEntry.kind, SearchEntry.source_id)).all()
    counts = rebuild(session.connection())
    session.commit()
    assert sum(counts.values()) == len(entries)
    assert session.execute(select(SearchEntry.kind, SearchEntry.source_id, SearchEntry.body)
                           .order_by(SearchEntry.kind, SearchEntry.source_id)).all() == entries
    assert _found(session, world.assessor, "osprey")


def test_a_centre_of_its_own_is_searched_alone(app, session):
    """Two centres with the same words: each admin finds only their own centre's item."""
    world = make_world(session)
    centre = make_centre(session, "Third Centre")
    admin = make_user(session, centre, "admin", email="third-admin@example.org")
    assessor = make_user(session, centre, "assessor", email="third-assessor@example.org")
    learner = make_user(session, centre, "learner", email="third-learner@example.org")
    enrolment = make_enrolment(session, learner, assessor, None, world.unit)
    theirs = make_evidence(session, enrolment, learner, body="Heron lake.")
    ours = make_evidence(session, world.enrolment, world.learner, body="Heron lake.")
    session.commit()
    assert _found(session, admin, "heron") == {theirs.id}
    assert _found(session, world.admin, "heron") == {ours.id}


def test_a_nul_in_the_admins_people_search_is_no_error(app, session, world):
    web = Browserless(app.test_client())
    web.login(world.admin.email, PASSWORD)
    assert web.client.get("/admin/people?q=%00").status_code == 200
    assert web.client.get("/admin/enrolments?q=a%00").status_code == 200


def test_the_rebuild_command_refills_an_emptied_index(app, session, world):
    from sqlalchemy import delete

    from portfolio.cli import cli

    make_evidence(session, world.enrolment, world.learner, body="Cormorant rock.")
    session.execute(delete(SearchEntry))  # as after a bulk load that went round the app
    session.commit()
    assert _found(session, world.assessor, "cormorant") == set()
    result = app.test_cli_runner().invoke(cli, ["search", "rebuild"])
    assert result.exit_code == 0, result.output
    assert "Search index rebuilt: 1 evidence" in result.output
    session.expire_all()
    assert len(_found(session, world.assessor, "cormorant")) == 1


def test_words_inside_a_pdf_are_found(app, session, world):
    """An RPL certificate as a PDF: its text is read (in the sandboxed child that draws its
    first page) and indexed."""
    from tests.real_files import text_pdf_bytes

    store = app.config["STORAGE_DIR"]
    pdf = text_pdf_bytes(["Certificate of achievement", "Customer service with Distinction"])
    item = make_evidence(session, world.enrolment, world.learner, "work_product",
                         title="Certificate", body="", files=[stage_bytes(store, pdf, "c.pdf")])
    session.commit()
    assert _found(session, world.assessor, "distinction") == {item.id}
    html = _page(app, world.assessor.email, "distinction").get_data(as_text=True)
    assert "<mark>Distinction</mark>" in html


def test_snippets_show_words_not_markdown(app, session, world):
    make_evidence(session, world.enrolment, world.learner, title="Discussion",
                  body="## Liability\n- **Liability and compensation:** `admitting` fault.")
    session.commit()
    [hit] = search(session, world.assessor, "compensation").hits
    assert "*" not in hit.snippet and "`" not in hit.snippet and "#" not in hit.snippet
    assert "<mark>compensation</mark>" in hit.snippet
