"""Tampering straight in the database, the way someone with SQL access but not the seal key would.

Every case recomputes what it can (unkeyed hashes, a whole chain, a seal under a key of its own)
and must still be caught, by the services and by `portfolio audit verify` /
`portfolio signatures verify`, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from sqlalchemy import select, text

from portfolio.assessment.signing import canonical, seal_of, sha256_of, verify_signature
from portfolio.audit import (
    _canonical,
    current_checkpoint,
    load_checkpoints,
    record_event,
    verify_chain,
    write_checkpoint,
)
from portfolio.cli import cli
from portfolio.db import get_database
from portfolio.models import AuditEvent, Signature
from portfolio.seals import Sealer
from tests.factories import accept, bypass_audit_guard, decide, make_evidence, make_world

ATTACKER = Sealer.from_secret("an attacker's own key, long enough to be accepted")


@pytest.fixture(autouse=True)
def _restore_guard(app, db_kind):
    yield
    if db_kind == "postgresql":
        with get_database(app).engine.begin() as conn:
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
            conn.execute(text("ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only"))


@pytest.fixture
def signed(session):
    """A world with one signed criterion decision."""
    world = make_world(session)
    evidence = make_evidence(session, world.enrolment, world.learner, maps=("1.1",),
                             submit=True)
    accept(session, evidence, world.assessor)
    decision = decide(session, world.enrolment, world.assessor, "1.1", [evidence])
    session.commit()
    signature = session.get(Signature, decision.signature_id)
    assert verify_signature(session, signature).state == "valid"
    return signature


def _unkeyed_seal(signature: Signature) -> str:
    """The seal as the app computed it before seals were keyed (plain SHA-256)."""
    return sha256_of({
        "enrolment_id": signature.enrolment_id, "purpose": signature.purpose,
        "subject_type": signature.subject_type, "subject_id": signature.subject_id,
        "signer_id": signature.signer_id, "signer_role": signature.signer_role,
        "typed_name": signature.typed_name, "statement": signature.statement,
        "signed_at": signature.signed_at.isoformat(timespec="microseconds"),
        "content_hash": signature.content_hash})


@pytest.mark.parametrize("reseal", ["unkeyed", "attacker key"])
def test_statement_edited_and_seal_recomputed_is_caught(app, session, signed, reseal):
    signed.statement = "I confirm nothing at all."
    forged = _unkeyed_seal(signed) if reseal == "unkeyed" else seal_of(signed, ATTACKER)
    session.execute(text("UPDATE signatures SET statement = :s, seal = :seal WHERE id = :id"),
                    {"s": signed.statement, "seal": forged, "id": signed.id})
    session.commit()
    session.expire_all()
    verdict = verify_signature(session, session.get(Signature, signed.id))
    assert verdict.state == "broken" and "seal" in verdict.reason
    result = app.test_cli_runner().invoke(cli, ["signatures", "verify"])
    assert result.exit_code == 1
    assert f"signature #{signed.id}: broken" in result.output


def test_signed_content_and_its_hash_rewritten_together_are_caught(session, signed):
    content = dict(signed.content) | {"note_sha256": hashlib.sha256(b"other").hexdigest()}
    session.execute(text("UPDATE signatures SET content = :c, content_hash = :h WHERE id = :id"),
                    {"c": json.dumps(content), "h": sha256_of(content), "id": signed.id})
    session.commit()
    session.expire_all()
    assert verify_signature(session, session.get(Signature, signed.id)).state == "broken"


def _reseal_chain_from(session, sealer_fn, start_seq: int) -> None:
    """Recompute every hash from start_seq on, as an attacker rewriting history would."""
    events = list(session.scalars(select(AuditEvent).order_by(AuditEvent.seq)))
    previous = next((e.hash for e in events if e.seq == start_seq - 1), "0" * 64)
    for event in events:
        if event.seq < start_seq:
            continue
        event.prev_hash = previous
        event.hash = sealer_fn(_canonical(event))
        session.execute(text("UPDATE audit_events SET prev_hash = :p, hash = :h WHERE id = :id"),
                        {"p": event.prev_hash, "h": "x" + event.hash[1:], "id": event.id})
        previous = event.hash
    # Two passes: hashes are unique, so park them first, then write the final values.
    for event in events:
        if event.seq >= start_seq:
            session.execute(text("UPDATE audit_events SET hash = :h WHERE id = :id"),
                            {"h": event.hash, "id": event.id})
    session.commit()


@pytest.mark.parametrize("rehash", ["unkeyed sha-256", "attacker key"])
def test_edited_event_with_the_whole_chain_recomputed_is_caught(app, session, signed, db_kind,
                                                                 rehash):
    bypass_audit_guard(session, db_kind)
    session.execute(text("UPDATE audit_events SET detail = :d WHERE seq = 3"),
                    {"d": json.dumps({"rewritten": True})})
    session.commit()
    session.expire_all()
    fn = (lambda m: hashlib.sha256(m).hexdigest()) if rehash.startswith("unkeyed") \
        else ATTACKER.audit
    _reseal_chain_from(session, fn, 3)
    session.expire_all()
    _count, problems = verify_chain(session)
    # Links are consistent now, but no seal from #3 on matches the key.
    assert problems and problems[0].seq == 3 and "seal does not match" in problems[0].message
    result = app.test_cli_runner().invoke(cli, ["audit", "verify"])
    assert result.exit_code == 1 and "event #3: content was edited" in result.output


def test_chain_rewritten_with_the_key_itself_is_caught_by_a_checkpoint(app, session, signed,
                                                                         db_kind):
    # The worst case short of holding the checkpoints too: the attacker has the seal key.
    sealer = get_database(app).sealer
    checkpoints, _ = load_checkpoints(sealer.checkpoint_dir)
    assert checkpoints, "commits that add events must leave a checkpoint"
    bypass_audit_guard(session, db_kind)
    session.execute(text("UPDATE audit_events SET actor_role = 'admin' WHERE seq = 2"))
    session.commit()
    session.expire_all()
    _reseal_chain_from(session, sealer.audit, 2)
    session.expire_all()
    _count, without = verify_chain(session)
    assert without == []  # with the key, the chain alone cannot tell
    result = app.test_cli_runner().invoke(cli, ["audit", "verify"])
    assert result.exit_code == 1
    assert "the chain was rewritten" in result.output


def test_deleted_tail_is_caught_by_the_latest_checkpoint(app, session, signed, db_kind):
    head = session.scalar(select(AuditEvent.seq).order_by(AuditEvent.seq.desc()).limit(1))
    bypass_audit_guard(session, db_kind)
    session.execute(text("DELETE FROM audit_events WHERE seq > :keep"), {"keep": head - 2})
    session.commit()
    _count, alone = verify_chain(session)
    assert alone == []  # a shorter chain is still a consistent chain
    result = app.test_cli_runner().invoke(cli, ["audit", "verify"])
    assert result.exit_code == 1
    assert f"event #{head}: is missing" in result.output
    assert f"now ends at #{head - 2}" in result.output


def test_forged_checkpoint_is_named(app, session, signed):
    folder: Path = get_database(app).sealer.checkpoint_dir
    data = json.loads((folder / "latest.json").read_text())
    data["seq"] += 5
    data["mac"] = ATTACKER.checkpoint(canonical({k: v for k, v in data.items() if k != "mac"}))
    (folder / "latest.json").write_text(json.dumps(data))
    result = app.test_cli_runner().invoke(cli, ["audit", "verify"])
    assert result.exit_code == 1 and "latest.json is forged" in result.output


def test_intact_trail_passes_against_its_checkpoints(app, session, signed):
    write_checkpoint(get_database(app).sealer.checkpoint_dir, current_checkpoint(session),
                     keep=True)
    result = app.test_cli_runner().invoke(cli, ["audit", "verify"])
    assert result.exit_code == 0, result.output
    assert "consistent with 2 checkpoint(s)" in result.output
    assert app.test_cli_runner().invoke(cli, ["audit", "checkpoint"]).exit_code == 0


def test_rolled_back_events_leave_no_checkpoint(app, session, signed):
    folder: Path = get_database(app).sealer.checkpoint_dir
    before = (folder / "latest.json").read_text()
    record_event(session, action="never.committed", subject_type="thing", subject_id=1)
    session.rollback()
    session.commit()  # a later commit with nothing new must not write the rolled-back head
    assert (folder / "latest.json").read_text() == before
    assert verify_chain(session, load_checkpoints(folder)[0])[1] == []


def test_a_pdf_out_in_the_world_still_catches_a_cut_tail(app, make_app, session, signed,
                                                          db_kind, tmp_path, monkeypatch):
    """Checkpoints on the machine deleted too: the one sealed into an exported PDF remains."""
    # Keys are made in a private instance folder (the suite's shared one holds other tests'
    # signing key); the seal key stays the one the data was sealed with.
    seal_key = (Path(app.instance_path) / "seal_key").read_text()
    monkeypatch.setenv("PORTFOLIO_INSTANCE_PATH", str(tmp_path / "instance"))
    other = make_app(SEAL_KEY=seal_key)
    runner = other.test_cli_runner()
    assert runner.invoke(cli, ["keys", "init", "--if-missing"]).exit_code == 0
    pdf = tmp_path / "portfolio.pdf"
    made = runner.invoke(cli, ["export", "learner@example.org", "--unit", "R/506/2151",
                               "--out", str(pdf)])
    assert made.exit_code == 0, made.output
    session.expire_all()
    exported_at = session.scalar(select(AuditEvent.seq).order_by(AuditEvent.seq.desc()))
    for each in (app, other):
        for name in get_database(each).sealer.checkpoint_dir.iterdir():
            name.unlink()
    bypass_audit_guard(session, db_kind)
    session.execute(text("DELETE FROM audit_events WHERE seq >= :seq"),
                    {"seq": exported_at - 3})
    session.commit()
    blind = runner.invoke(cli, ["audit", "verify"])
    assert blind.exit_code == 0 and "No checkpoints were found" in blind.output
    caught = runner.invoke(cli, ["audit", "verify", "--pdf", str(pdf)])
    assert caught.exit_code == 1
    assert "the newest events were deleted" in caught.output


def test_signature_over_a_file_whose_bytes_were_swapped_is_broken(app, session):
    from portfolio.evidence.storage import FileStore
    from tests.factories import TINY_PDF, stage_bytes

    world = make_world(session)
    evidence = make_evidence(session, world.enrolment, world.learner, "work_product",
                             title="Reply letter", body="", maps=("2.8",), submit=True,
                             files=[stage_bytes(app.config["STORAGE_DIR"], TINY_PDF, "r.pdf")])
    accept(session, evidence, world.assessor)
    decision = decide(session, world.enrolment, world.assessor, "2.8", [evidence])
    session.commit()
    store = FileStore(Path(app.config["STORAGE_DIR"]))
    signature = session.get(Signature, decision.signature_id)
    assert verify_signature(session, signature, store=store).state == "valid"
    sha = evidence.versions[0].files[0].sha256
    path = store.path_for(sha)
    path.chmod(0o640)
    path.write_bytes(b"%PDF-1.4 swapped bytes")
    verdict = verify_signature(session, signature, store=store)
    assert verdict.state == "broken" and "file store" in verdict.reason
    result = app.test_cli_runner().invoke(cli, ["signatures", "verify"])
    assert result.exit_code == 1 and f"signature #{signature.id}: broken" in result.output
