"""Tamper detection: rows edited directly in the database make the signatures over them broken.

Every case edits one thing with plain SQL, commits, and verifies every signature from a fresh
session: the signatures over what was edited are broken, with a reason naming it; the ones that
rely on those (a countersignature, the sign-off) may follow; every other one stays valid. The
`portfolio signatures verify` command reports the same and exits 1 only when something is broken.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import JSON, bindparam, func, select, text
from sqlalchemy.orm import Session

from portfolio.assessment.services import (
    cosign_unit,
    countersign_decision,
    sign_off_unit,
    unit_declaration,
    unit_signoff,
)
from portfolio.assessment.signing import Verdict, verify_all
from portfolio.db import UTCDateTime
from portfolio.models import CriterionDecision, Enrolment, Evidence, Signature, StoredFile
from tests.factories import (
    LIMITS,
    TINY_PDF,
    accept,
    decide,
    make_evidence,
    sign_as,
    stage_bytes,
)
from tests.test_assessment import (
    Cast,
    declare_unit,
    make_cast,
    observed,
    refer,
    revise,
    unit_numbers,
)


@dataclass
class Signed:
    """A learner's unit fully signed off and co-signed, and a trainee's countersigned decision."""

    cast: Cast
    account: Evidence  # reflective account mapped to all 17 criteria, cited by every decision
    letter: Evidence  # work product with a PDF, cited by the 2.8 decision too
    decisions: dict[str, CriterionDecision]
    declaration: Signature
    signoff: Signature
    cosign: Signature
    trainee_decision: CriterionDecision
    countersignature: Signature
    spare_sha256: str  # a different stored file, to swap in

    def declaration_of(self, session: Session, evidence: Evidence) -> Signature:
        return session.scalar(select(Signature).where(
            Signature.purpose == "evidence_declaration", Signature.subject_id == evidence.id))


def make_signed(app, session: Session) -> Signed:
    cast = make_cast(session)
    w = cast.w
    store = app.config["STORAGE_DIR"]
    letter = make_evidence(session, w.enrolment, w.learner, "work_product", title="Reply letter",
                           body="", files=[stage_bytes(store, TINY_PDF, "reply-letter.pdf")],
                           maps=("2.8",), submit=True)
    accept(session, letter, w.assessor)
    numbers = unit_numbers(session, w.enrolment)
    account = make_evidence(session, w.enrolment, w.learner, title="How I resolve complaints",
                            maps=tuple(numbers), submit=True)
    accept(session, account, w.assessor)
    # LO1 rests on the account; LO2 (performance) on an observation, plus the letter for 2.8.
    observation = observed(session, w.enrolment, w.assessor)
    decisions = {n: decide(session, w.enrolment, w.assessor, n,
                           [account] if n.startswith("1.")
                           else [observation, letter] if n == "2.8" else [observation])
                 for n in numbers}
    declaration = declare_unit(session, w.enrolment, w.learner)
    signoff = sign_off_unit(session, w.enrolment, actor=w.assessor,
                            confirmation=sign_as(w.assessor), **LIMITS)
    cosign = cosign_unit(session, w.enrolment, actor=w.learner, confirmation=sign_as(w.learner),
                         **LIMITS)

    item = make_evidence(session, w.other_enrolment, w.other_learner, maps=("1.2",),
                         submit=True)
    accept(session, item, w.trainee)
    trainee_decision = decide(session, w.other_enrolment, w.trainee, "1.2", [item])
    countersignature = countersign_decision(session, trainee_decision, actor=w.assessor,
                                            confirmation=sign_as(w.assessor), **LIMITS)

    spare = stage_bytes(store, TINY_PDF + b"%a different letter\n", "other-letter.pdf")
    session.add(StoredFile(sha256=spare.sha256, size=spare.size, media_type="application/pdf"))
    session.commit()
    signed = Signed(cast, account, letter, decisions, declaration, signoff, cosign,
                    trainee_decision, countersignature, spare.sha256)
    assert all(v.state == "valid" for v in verify_all(session)), "a clean start"
    return signed


def fresh_verdicts(session: Session) -> dict[int, Verdict]:
    """Verify every signature as stored now, from a new session (nothing cached)."""
    with Session(bind=session.get_bind()) as fresh:
        return {v.signature_id: v for v in verify_all(fresh)}


def relying_on(session: Session, ids: set[int]) -> set[int]:
    """The signatures that refer, directly or through others, to any of `ids`."""
    found: set[int] = set()
    frontier = set(ids)
    rows = list(session.scalars(select(Signature)))
    while frontier:
        nxt = {s.id for s in rows
               if {r["signature_id"] for r in s.content.get("signatures", [])} & frontier}
        frontier = nxt - found - ids
        found |= frontier
    return found


def _sql(session: Session, statement: str, **params) -> None:
    clause = text(statement)
    typed = {"content": JSON(), "at": UTCDateTime()}
    clause = clause.bindparams(*[bindparam(k, type_=t) for k, t in typed.items() if k in params])
    session.execute(clause, params)


def _decision_signature(s: Signed, number: str) -> int:
    return s.decisions[number].signature_id


def _covering(session: Session, s: Signed, evidence: Evidence) -> set[int]:
    """Signatures whose signed content includes the evidence's first version."""
    ids = {s.declaration_of(session, evidence).id, s.declaration.id}
    ids |= {d.signature_id for d in s.decisions.values()
            if any(i["evidence_id"] == evidence.id for i in d.evidence)}
    return ids


# Each case edits the database and returns (signatures expected broken, words of the reason).
Tamper = Callable[[Session, Signed], tuple[set[int], dict[int, str]]]


def edit_statement(session: Session, s: Signed):
    target = _decision_signature(s, "1.1")
    _sql(session, "UPDATE signatures SET statement = statement || ' Except 1.1(b).' "
                  "WHERE id = :id", id=target)
    return {target}, {target: "signer, statement, time or hash"}


def edit_typed_name(session: Session, s: Signed):
    _sql(session, "UPDATE signatures SET typed_name = 'Ivy Iqa' WHERE id = :id", id=s.signoff.id)
    return {s.signoff.id}, {s.signoff.id: "signer, statement, time or hash"}


def edit_signed_at(session: Session, s: Signed):
    target = s.declaration.id
    _sql(session, "UPDATE signatures SET signed_at = :at WHERE id = :id", id=target,
         at=s.declaration.signed_at - timedelta(days=30))
    return {target}, {target: "signer, statement, time or hash"}


def edit_signer(session: Session, s: Signed):
    target = s.countersignature.id
    _sql(session, "UPDATE signatures SET signer_id = :other WHERE id = :id", id=target,
         other=s.cast.other_assessor.id)
    return {target}, {target: "signer, statement, time or hash"}


def edit_content(session: Session, s: Signed):
    target = _decision_signature(s, "2.8")
    content = dict(s.decisions["2.8"].signature.content)
    content["note_md"] = "Both letters were excellent."
    _sql(session, "UPDATE signatures SET content = :content WHERE id = :id", id=target,
         content=content)
    return {target}, {target: "signed content"}


def edit_body(session: Session, s: Signed):
    _sql(session, "UPDATE evidence_versions SET body_md = body_md || ' And I refunded them.' "
                  "WHERE evidence_id = :e AND version = 1", e=s.account.id)
    broken = _covering(session, s, s.account)
    return broken, {i: f"evidence #{s.account.id} version 1" for i in broken}


def edit_title(session: Session, s: Signed):
    _sql(session, "UPDATE evidence_versions SET title = 'Reply letter (final)' "
                  "WHERE evidence_id = :e AND version = 1", e=s.letter.id)
    broken = _covering(session, s, s.letter)
    return broken, {i: f"evidence #{s.letter.id} version 1" for i in broken}


def edit_file_hash(session: Session, s: Signed):
    file_id = s.letter.versions[0].files[0].id
    _sql(session, "UPDATE evidence_files SET sha256 = :sha WHERE id = :id", id=file_id,
         sha=s.spare_sha256)
    broken = _covering(session, s, s.letter)
    return broken, {i: f"evidence #{s.letter.id} version 1" for i in broken}


def edit_trainee_decision_hash(session: Session, s: Signed):
    target = s.trainee_decision.signature_id
    _sql(session, "UPDATE signatures SET content_hash = :h WHERE id = :id", id=target,
         h="0" * 64)
    return {target, s.countersignature.id}, {
        target: "signed content", s.countersignature.id: f"signature #{target} it relies on"}


def edit_decision_hash_under_signoff(session: Session, s: Signed):
    target = _decision_signature(s, "1.1")
    _sql(session, "UPDATE signatures SET content_hash = :h WHERE id = :id", id=target,
         h="f" * 64)
    return {target, s.signoff.id}, {
        target: "signed content", s.signoff.id: f"signature #{target} it relies on"}


def edit_signoff_hash(session: Session, s: Signed):
    target = s.signoff.id
    _sql(session, "UPDATE signatures SET content_hash = :h WHERE id = :id", id=target,
         h="e" * 64)
    return {target, s.cosign.id}, {
        target: "signed content", s.cosign.id: f"signature #{target} it relies on"}


def delete_declaration(session: Session, s: Signed):
    _sql(session, "DELETE FROM signatures WHERE id = :id", id=s.declaration.id)
    return {s.signoff.id}, {s.signoff.id: f"signature #{s.declaration.id} it relies on"}


TAMPERS: dict[str, Tamper] = {
    "statement": edit_statement,
    "typed_name": edit_typed_name,
    "signed_at": edit_signed_at,
    "signer_id": edit_signer,
    "content JSON": edit_content,
    "evidence body_md": edit_body,
    "evidence title": edit_title,
    "evidence file sha256": edit_file_hash,
    "content_hash of a countersigned decision": edit_trainee_decision_hash,
    "content_hash of a decision the sign-off cites": edit_decision_hash_under_signoff,
    "content_hash of the sign-off the co-sign cites": edit_signoff_hash,
    "deleted declaration the sign-off cites": delete_declaration,
}


@pytest.mark.parametrize("case", list(TAMPERS))
def test_tampering_breaks_exactly_what_it_touches(app, session, case):
    signed = make_signed(app, session)
    all_ids = set(session.scalars(select(Signature.id)))
    broken, reasons = TAMPERS[case](session, signed)
    session.commit()

    verdicts = fresh_verdicts(session)
    assert {i for i, v in verdicts.items() if v.state == "broken"} >= broken
    for signature_id, words in reasons.items():
        assert words in verdicts[signature_id].reason, str(verdicts[signature_id])
        assert str(verdicts[signature_id]).startswith(f"signature #{signature_id}: broken (")
    # Those relying on a broken one may be reported broken too; nothing else is touched.
    followers = relying_on(session, broken)
    for signature_id in set(verdicts) - broken - followers:
        assert verdicts[signature_id].state == "valid", str(verdicts[signature_id])
    assert set(verdicts) <= all_ids
    assert len(verdicts) >= len(all_ids) - 1  # only the deleted one is gone


def test_a_broken_signature_no_longer_counts(app, session):
    signed = make_signed(app, session)
    enrolment = signed.cast.w.enrolment
    assert unit_signoff(session, enrolment) is not None
    edit_typed_name(session, signed)
    edit_body(session, signed)
    session.commit()
    with Session(bind=session.get_bind()) as fresh:
        current = fresh.get(Enrolment, enrolment.id)
        assert unit_signoff(fresh, current) is None
        assert unit_declaration(fresh, current) is None


def test_app_changes_invalidate_and_edits_break(app, session):
    """Side by side: a revision through the app invalidates; an edit in the database breaks."""
    signed = make_signed(app, session)
    w = signed.cast.w
    item = session.get(Evidence, signed.trainee_decision.evidence[0]["evidence_id"])
    refer(session, item, w.trainee)
    revise(session, item, w.other_learner)
    session.commit()
    verdicts = fresh_verdicts(session)
    assert verdicts[signed.trainee_decision.signature_id].state == "invalidated"
    assert verdicts[signed.countersignature.id].state == "invalidated"

    edit_statement(session, signed)
    session.commit()
    verdicts = fresh_verdicts(session)
    assert verdicts[_decision_signature(signed, "1.1")].state == "broken"
    assert verdicts[signed.countersignature.id].state == "invalidated"
    # The sign-off relies on the altered decision, and the co-sign on the sign-off: a break
    # anywhere below breaks what was signed on top of it.
    assert verdicts[signed.signoff.id].state == "broken"
    assert verdicts[signed.cosign.id].state == "broken"
    assert "relies on was altered" in verdicts[signed.cosign.id].reason


# --- the command ----------------------------------------------------------------------------

def verify_command(app, *args: str):
    from portfolio.cli import cli

    return app.test_cli_runner().invoke(cli, ["signatures", "verify", *args])


def signature_lines(output: str) -> dict[int, str]:
    lines = {}
    for line in output.splitlines():
        line = line.strip()
        if line.startswith("signature #"):
            lines[int(line.removeprefix("signature #").split(":", 1)[0])] = line
    return lines


def test_cli_all_valid_exits_0(app, session):
    make_signed(app, session)
    ids = set(session.scalars(select(Signature.id)))
    result = verify_command(app)
    assert result.exit_code == 0, result.output
    lines = signature_lines(result.output)
    assert set(lines) == ids
    assert all(line == f"signature #{i}: valid" for i, line in lines.items())


def test_cli_only_invalidated_exits_0(app, session):
    signed = make_signed(app, session)
    w = signed.cast.w
    refer(session, signed.letter, w.assessor)
    revise(session, signed.letter, w.learner)
    session.commit()
    result = verify_command(app)
    assert result.exit_code == 0, result.output
    lines = signature_lines(result.output)
    signoff = lines[signed.signoff.id]
    assert signoff.startswith(f"signature #{signed.signoff.id}: invalidated (")
    assert "Reply letter" in signoff
    assert lines[_decision_signature(signed, "1.1")].endswith(": valid")
    assert not any(": broken" in line for line in lines.values())


@pytest.mark.parametrize("case", ["statement", "evidence body_md",
                                  "content_hash of a countersigned decision"])
def test_cli_anything_broken_exits_1(app, session, case):
    signed = make_signed(app, session)
    broken, reasons = TAMPERS[case](session, signed)
    session.commit()
    result = verify_command(app)
    assert result.exit_code == 1, result.output
    lines = signature_lines(result.output)
    for signature_id in broken:
        assert lines[signature_id].startswith(f"signature #{signature_id}: broken (")
        assert reasons[signature_id] in lines[signature_id]


def test_cli_learner_option_limits_the_check(app, session):
    signed = make_signed(app, session)
    w = signed.cast.w
    edit_trainee_decision_hash(session, signed)  # the other learner's portfolio
    session.commit()
    mine = set(session.scalars(select(Signature.id).where(
        Signature.enrolment_id == w.enrolment.id)))
    theirs = set(session.scalars(select(Signature.id).where(
        Signature.enrolment_id == w.other_enrolment.id)))

    clean = verify_command(app, "--learner", w.learner.email)
    assert clean.exit_code == 0, clean.output
    assert set(signature_lines(clean.output)) == mine

    dirty = verify_command(app, "--learner", w.other_learner.email)
    assert dirty.exit_code == 1, dirty.output
    assert set(signature_lines(dirty.output)) == theirs

    everyone = verify_command(app)
    assert everyone.exit_code == 1
    assert session.scalar(select(func.count(Signature.id))) == len(mine | theirs)


def test_a_wrong_password_never_submits_evidence_without_its_declaration(app, session):
    """The submission and its declaration are one act: a refused signature (wrong password or
    name) leaves the evidence a draft, with no submission recorded."""
    from portfolio.models import AuditEvent, Evidence
    from tests.conftest import Browserless
    from tests.factories import PASSWORD, make_evidence, make_world

    world = make_world(session)
    item = make_evidence(session, world.enrolment, world.learner, maps=("1.1",))
    session.commit()
    web = Browserless(app.test_client())
    web.login(world.learner.email, PASSWORD)
    for form in ({"typed_name": world.learner.full_name, "password": "wrong"},
                 {"typed_name": "Someone Else", "password": PASSWORD}):
        refused = web.post(f"/evidence/{item.id}/submit", form)
        assert refused.status_code == 422
        session.expire_all()
        assert session.get(Evidence, item.id).status == "draft"
        assert not session.query(AuditEvent).filter_by(action="evidence.submit").count()
