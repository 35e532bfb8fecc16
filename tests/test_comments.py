"""The conversation on an evidence item: who reads, who posts, Markdown, limits, "seen by"."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from portfolio.assessment.signing import verify_signature
from portfolio.comments import services
from portfolio.db import utcnow
from portfolio.models import AuditEvent, CommentRead, EvidenceComment, Signature
from tests.conftest import Browserless
from tests.factories import PASSWORD, accept, decide, make_eqa_pack, make_evidence, make_world


@pytest.fixture
def world(app, session):
    world = make_world(session)
    world.item = make_evidence(session, world.enrolment, world.learner, maps=("1.1",),
                               submit=True)
    world.pack = make_eqa_pack(session, world)
    session.commit()
    return world


def _as(app, person) -> Browserless:
    web = Browserless(app.test_client())
    web.login(person.email, PASSWORD)
    return web


def _nonce(html: str) -> str:
    match = re.search(r'<input[^>]*name="comment-nonce"[^>]*>', html)
    assert match, "no comment form on the page"
    return re.search(r'value="([^"]+)"', match.group(0)).group(1)


def _post(web: Browserless, evidence_id: int, body: str, nonce: str | None = None):
    if nonce is None:
        nonce = _nonce(web.client.get(f"/evidence/{evidence_id}").get_data(True))
    return web.post(f"/evidence/{evidence_id}/comments",
                    {"comment-body": body, "comment-nonce": nonce})


def _count(session, model=EvidenceComment) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(model))


@pytest.mark.parametrize(("role", "reads", "posts"), [
    ("learner", 200, 303),
    ("assessor", 200, 303),
    ("iqa", 200, 303),
    ("admin", 200, 403),  # the centre's admin may read the portfolio, but is not in the talk
    ("other_learner", 404, 404),
    ("trainee", 404, 404),  # assesses another learner only
    ("other_admin", 404, 404),
    ("eqa", 404, 404),  # never the evidence page; reads inside an open pack (below)
])
def test_who_reads_and_who_posts(app, session, world, role, reads, posts):
    services.add_comment(session, world.item, actor=world.assessor, body="First **note**",
                         nonce="seed-nonce", now=utcnow())
    session.commit()
    web = _as(app, getattr(world, role))
    page = web.client.get(f"/evidence/{world.item.id}")
    assert page.status_code == reads
    html = page.get_data(True)
    if reads == 200:
        assert "First <strong>note</strong>" in html
        assert ('name="comment-nonce"' in html) == (posts == 303)
        assert ("only the people it is between" in html) == (posts != 303)
    else:
        assert "First" not in html
    sent = web.post(f"/evidence/{world.item.id}/comments",
                    {"comment-body": f"From {role}", "comment-nonce": f"n-{role}"})
    assert sent.status_code == posts
    assert _count(session) == (2 if posts == 303 else 1)


def test_eqa_reads_inside_an_open_pack_only(app, session, world):
    services.add_comment(session, world.item, actor=world.learner, body="Is this enough?",
                         nonce="eqa-seed", now=utcnow())
    session.commit()
    path = f"/eqa/packs/{world.pack.id}/evidence/{world.item.id}/comments"
    eqa = _as(app, world.eqa)
    page = eqa.client.get(path)
    html = page.get_data(True)
    assert page.status_code == 200 and "Is this enough?" in html
    assert 'name="comment-nonce"' not in html and "only the people it is between" in html
    # The pack's evidence page links to the thread, with its count.
    item_page = eqa.client.get(f"/eqa/packs/{world.pack.id}/evidence/{world.item.id}")
    assert item_page.status_code == 200
    assert f'href="{path}"' in item_page.get_data(True)
    assert "Read the 1 comment " in item_page.get_data(True)
    # Evidence outside the pack stays unseen, and the EQA's view is not "seen by".
    other = make_evidence(session, world.other_enrolment, world.other_learner)
    session.commit()
    assert eqa.client.get(f"/eqa/packs/{world.pack.id}/evidence/{other.id}/comments"
                          ).status_code == 404
    assert session.get(CommentRead, (world.eqa.id, world.item.id)) is None
    assert _as(app, world.learner).client.get(path).status_code == 403


def test_post_renders_sanitised_markdown_and_writes_the_audit_event(app, session, world):
    assessor = _as(app, world.assessor)
    sent = _post(assessor, world.item.id,
                 "**Good start.** Add the date.\n\n<script>alert('x')</script>\n\n"
                 "[link](javascript:alert(1))")
    comment = session.scalar(select(EvidenceComment))
    assert sent.status_code == 303
    assert sent.headers["Location"].endswith(f"/evidence/{world.item.id}#comment-{comment.id}")
    html = assessor.client.get(f"/evidence/{world.item.id}").get_data(True)
    thread = html[html.index('id="comments"'):]
    assert "<strong>Good start.</strong>" in thread
    assert "<script>" not in thread and "javascript:" not in thread
    assert comment.author_id == world.assessor.id
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "comment.added"))
    assert (event.subject_type, event.subject_id) == ("evidence", str(world.item.id))
    assert event.detail == {"comment_id": comment.id}
    assert event.learner_id == world.learner.id and event.actor_id == world.assessor.id


def test_seen_by_is_recorded_per_person(app, session, world):
    assessor = _as(app, world.assessor)
    _post(assessor, world.item.id, "Please add the customer's reply.")
    html = assessor.client.get(f"/evidence/{world.item.id}").get_data(True)
    assert "Not seen yet by Lee Learner and Ivy Iqa" in html
    learner = _as(app, world.learner)
    mine = learner.client.get(f"/evidence/{world.item.id}").get_data(True)
    assert "Please add the customer" in mine and ">New</span>" in mine
    assert "Seen by Lee Learner" in mine  # the reader is seeing it now
    session.expire_all()
    assert session.get(CommentRead, (world.learner.id, world.item.id)) is not None
    html = assessor.client.get(f"/evidence/{world.item.id}").get_data(True)
    assert "Seen by Lee Learner" in html and "Not seen yet by Ivy Iqa" in html
    # Seen once is no longer new.
    assert ">New</span>" not in learner.client.get(f"/evidence/{world.item.id}").get_data(True)


@pytest.mark.parametrize(("body", "message"), [
    ("   ", "Write a comment before sending it."),
    ("x" * (services.MAX_CHARS + 1), "A comment can be up to 5,000 characters"),
])
def test_empty_or_oversized_comment_is_refused(app, session, world, body, message):
    learner = _as(app, world.learner)
    sent = _post(learner, world.item.id, body)
    html = sent.get_data(True)
    assert sent.status_code == 422 and message in html
    assert 'id="comment-body-error"' in html
    assert _count(session) == 0
    assert session.scalar(select(func.count()).select_from(AuditEvent)
                          .where(AuditEvent.action == "comment.added")) == 0


def test_a_double_send_adds_one_comment(app, session, world):
    learner = _as(app, world.learner)
    nonce = _nonce(learner.client.get(f"/evidence/{world.item.id}").get_data(True))
    first = _post(learner, world.item.id, "I have added the letter.", nonce)
    second = _post(learner, world.item.id, "I have added the letter.", nonce)
    assert first.status_code == second.status_code == 303
    # Without the session's CSRF token nothing is posted (as for every form).
    forged = learner.client.post(f"/evidence/{world.item.id}/comments",
                                 data={"comment-body": "Forged", "comment-nonce": "forged"})
    assert forged.status_code == 400
    assert first.headers["Location"] == second.headers["Location"]
    # A stale page resent with a fresh form, same words, seconds later: still one.
    assert _post(learner, world.item.id, "I have added the letter.").status_code == 303
    assert _count(session) == 1
    assert session.scalar(select(func.count()).select_from(AuditEvent)
                          .where(AuditEvent.action == "comment.added")) == 1
    # Someone else cannot reuse a nonce that is spent.
    taken = _post(_as(app, world.assessor), world.item.id, "Thanks", nonce)
    assert taken.status_code == 422 and _count(session) == 1
    assert _post(learner, world.item.id, "And the reply email.").status_code == 303
    assert _count(session) == 2


def test_comments_never_change_signed_content(app, session, world):
    accept(session, world.item, world.assessor)
    decide(session, world.enrolment, world.assessor, "1.1", [world.item])
    session.commit()
    signatures = list(session.scalars(select(Signature)))
    assert {s.subject_type for s in signatures} >= {"evidence", "criterion"}
    version = world.item.current_version
    for who in (world.learner, world.assessor, world.iqa):
        assert _post(_as(app, who), world.item.id, f"Note from {who.full_name}"
                     ).status_code == 303
    session.expire_all()
    assert _count(session) == 3 and world.item.current_version == version
    assert [verify_signature(session, s).state for s in signatures] == ["valid"] * len(
        signatures)
