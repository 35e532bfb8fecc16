"""Content-bound signatures: canonical snapshots, hashes, seals, and verification.

A signature stores the exact content it covers (`content`), the SHA-256 of its canonical form
(`content_hash`), and a `seal` over its own fields. Verifying one recomputes, from the stored
records it names, the content as it is now:

- the seal or the content hash does not match what is stored -> **broken** (the signature row
  was edited outside the app);
- the records it names no longer give the same content -> **broken** (stored evidence or a
  decision was altered outside the app: versions are never changed by the app itself);
- the app recorded a change after signing (a newer evidence version, a decision that ended)
  -> **invalidated**, with the reason;
- otherwise **valid**.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session, selectinload

from portfolio.evidence.storage import damaged_objects
from portfolio.models import (
    AuditEvent,
    CriterionDecision,
    Enrolment,
    Evidence,
    EvidenceMapping,
    EvidenceVersion,
    Signature,
)
from portfolio.retention.hashes import removal_hashes
from portfolio.seals import Sealer, sealer_for


def canonical(value: Any) -> bytes:
    """Serialise to canonical JSON: sorted keys, no spaces, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str).encode()


def sha256_of(value: Any) -> str:
    """Return the SHA-256 hex digest of a value's canonical form."""
    return hashlib.sha256(canonical(value)).hexdigest()


SEALED_IDS = ("enrolment_id", "subject_id", "signer_id")


def seal_of(signature: Signature, sealer: Sealer, ids: dict[str, int] | None = None) -> str:
    """Return the keyed seal over a signature's own fields and its content hash.

    `ids` replaces the enrolment, subject and signer ids with those the signature was sealed
    with in another instance (a signature brought in by a bundle import; see
    `imported_seal_ids`).
    """
    fields = {name: getattr(signature, name) for name in SEALED_IDS} | (ids or {})
    return sealer.signature(canonical({
        "enrolment_id": fields["enrolment_id"], "purpose": signature.purpose,
        "subject_type": signature.subject_type, "subject_id": fields["subject_id"],
        "signer_id": fields["signer_id"], "signer_role": signature.signer_role,
        "typed_name": signature.typed_name, "statement": signature.statement,
        "signed_at": signature.signed_at.isoformat(timespec="microseconds"),
        "content_hash": signature.content_hash,
    }))


def imported_seal_ids(signature: Signature, recorded: AuditEvent | None
                      ) -> dict[str, int] | None | str:
    """Return the source ids an imported signature was sealed with (None if not imported).

    A bundle import records, in the hash-chained audit event of each signature it brings in,
    the ids the signature had where it was made and the ids it was given here
    (``detail["imported"]["seal_ids"] = {"signer_id": [source, here], ...}``). The seal is
    recomputed with the source ids only while the row still carries the ids the import gave
    it; otherwise a message saying the row was altered is returned.
    """
    imported = (recorded.detail or {}).get("imported") if recorded is not None else None
    if not isinstance(imported, dict) or "seal_ids" not in imported:
        return None
    ids: dict[str, int] = {}
    for name, pair in imported["seal_ids"].items():
        if name not in SEALED_IDS or getattr(signature, name) != pair[1]:
            return "the signature record (signer, statement, time or hash) was altered"
        ids[name] = pair[0]
    return ids


def evidence_snapshot(session: Session, evidence: Evidence, version: EvidenceVersion,
                      *, include_mappings: bool = True,
                      body_sha256: str | None = None) -> dict[str, Any]:
    """Return exactly what a signature over one evidence version covers."""
    mappings = session.execute(
        select(EvidenceMapping.criterion_id)
        .where(EvidenceMapping.evidence_id == evidence.id, EvidenceMapping.removed_at.is_(None))
    ).all() if include_mappings else []
    return {
        "evidence_id": evidence.id,
        "kind": evidence.kind,
        "version": version.version,
        "title": version.title,
        "activity_on": version.activity_on.isoformat() if version.activity_on else None,
        "activity_place": version.activity_place,
        "body_sha256": body_sha256 or hashlib.sha256(version.body_md.encode()).hexdigest(),
        "details": version.details,
        "is_simulated": version.is_simulated,
        "files": [{"sha256": f.sha256, "filename": f.filename, "size": f.size}
                  for f in version.files],
        "mapped_to": sorted({m.criterion_id for m in mappings}),
    }


class Prefetched:
    """What verifying a batch of signatures reads, loaded in a fixed number of statements:
    the signatures they rely on, the audit event each of them was recorded with, and the
    evidence and evidence versions (with their files) their content names. A signature outside
    the batch (one relied on at a second remove) is read the ordinary way."""

    def __init__(self, session: Session, signatures: list[Signature]) -> None:
        self.events: dict[tuple[str, str], AuditEvent] = {}
        self.versions: dict[tuple[int, int], EvidenceVersion | None] = {}
        self.covered: set[int] = set()
        # The text hash of each version removed under retention, from its removal's audit event.
        self.removed: dict[tuple[int, int], str] = {}
        self.held: list[Any] = []
        if not signatures:
            return
        batch = {sig.id: sig for sig in signatures}
        relied = {ref["signature_id"] for sig in signatures
                  for ref in sig.content.get("signatures", [])} - set(batch)
        if relied:  # loaded into the session too, where session.get finds them
            batch.update((sig.id, sig) for sig in session.scalars(
                select(Signature).where(Signature.id.in_(relied))))
        self.covered = set(batch)
        self.held.extend(batch.values())
        for event in session.scalars(select(AuditEvent).where(
                AuditEvent.subject_type == "signature",
                AuditEvent.subject_id.in_([str(i) for i in batch])).order_by(AuditEvent.seq)):
            self.events.setdefault((event.subject_id, event.action), event)
        pairs = {(item["evidence_id"], item["version"]) for sig in batch.values()
                 for item in _evidence_items(sig.content)}
        if pairs:
            self.versions = dict.fromkeys(pairs)
            # Held here: the session's identity map only keeps objects someone refers to.
            self.held.extend(session.scalars(select(Evidence).where(
                Evidence.id.in_({evidence_id for evidence_id, _ in pairs}))))
            for version in session.scalars(
                    select(EvidenceVersion)
                    .where(tuple_(EvidenceVersion.evidence_id, EvidenceVersion.version)
                           .in_(sorted(pairs)))
                    .options(selectinload(EvidenceVersion.files))):
                self.versions[(version.evidence_id, version.version)] = version
            if any(v is not None and v.removed_at is not None
                   for v in self.versions.values()):
                self.removed = removal_hashes(session, {eid for eid, _ in pairs})

    def covers(self, signature: Signature) -> bool:
        return signature.id in self.covered

    def event(self, signature: Signature) -> AuditEvent | None:
        return self.events.get((str(signature.id), f"signature.{signature.purpose}"))

    def version(self, evidence_id: int, number: int) -> EvidenceVersion | None:
        return self.versions.get((evidence_id, number))


def _version(session: Session, evidence_id: int, number: int) -> EvidenceVersion | None:
    return session.scalar(select(EvidenceVersion).where(
        EvidenceVersion.evidence_id == evidence_id, EvidenceVersion.version == number))


def recompute_evidence(session: Session, item: dict[str, Any],
                       prefetched: Prefetched | None = None) -> dict[str, Any] | None:
    """Rebuild an evidence snapshot from the stored version it names (None if gone)."""
    evidence = session.get(Evidence, item["evidence_id"])
    version = (prefetched.version(item["evidence_id"], item["version"]) if prefetched
               else _version(session, item["evidence_id"], item["version"]))
    if evidence is None or version is None:
        return None
    body_sha256 = None
    if version.removed_at is not None:
        # Its text is gone: only the removal's hash-chained audit event says what it hashed to
        # (a version marked removed without one was altered outside the app).
        body_sha256 = (prefetched.removed.get((evidence.id, version.version)) if prefetched
                       else removal_hashes(session, {evidence.id}).get(
                           (evidence.id, version.version)))
        if body_sha256 is None:
            return None
    rebuilt = evidence_snapshot(session, evidence, version, include_mappings=False,
                                body_sha256=body_sha256)
    # Mappings change legitimately after signing (they are not part of a version); what was
    # recorded at signing time is kept as signed.
    rebuilt["mapped_to"] = item.get("mapped_to", [])
    return rebuilt


@dataclass(frozen=True)
class Verdict:
    signature_id: int
    state: str  # "valid", "invalidated" or "broken"
    reason: str

    def __str__(self) -> str:
        return f"signature #{self.signature_id}: {self.state}" + (
            f" ({self.reason})" if self.reason else "")


def _stored_parts_intact(signature: Signature, recorded: AuditEvent | None,
                         sealer: Sealer) -> str | None:
    if sha256_of(signature.content) != signature.content_hash:
        return "the signed content stored with the signature was altered"
    ids = imported_seal_ids(signature, recorded)
    if isinstance(ids, str):
        return ids
    if not sealer.same(seal_of(signature, sealer, ids), signature.seal):
        # Without the seal key nobody can recompute a seal, so a row edited in the database
        # (even with its seal "recomputed") ends here.
        return ("the signature record (signer, statement, time or hash) was altered: its seal "
                "does not match the installation's seal key")
    return None


def recorded_event(session: Session, signature: Signature) -> AuditEvent | None:
    """Return the audit event written when the signature was made (or imported)."""
    return session.scalars(select(AuditEvent).where(
        AuditEvent.subject_type == "signature", AuditEvent.subject_id == str(signature.id),
        AuditEvent.action == f"signature.{signature.purpose}").order_by(AuditEvent.seq)).first()


def _evidence_items(content: dict[str, Any]) -> list[dict[str, Any]]:
    if "evidence" in content:
        return list(content["evidence"])
    if "evidence_id" in content:
        return [content]
    return []


def verify_signature(session: Session, signature: Signature, _depth: int = 0, *,
                     store: Any = None, prefetched: Prefetched | None = None) -> Verdict:
    """Recompute a signature's hashes from the stored content and judge it.

    Given the file store, the files the signature covers are re-hashed too (streaming, cached
    by inode and ctime), so bytes swapped in the store break it.
    """
    if prefetched is not None and not prefetched.covers(signature):
        prefetched = None
    recorded = (prefetched.event(signature) if prefetched is not None
                else recorded_event(session, signature))
    problem = _stored_parts_intact(signature, recorded, sealer_for(session))
    if problem:
        return Verdict(signature.id, "broken", problem)
    newer: list[str] = []
    removed = 0
    for item in _evidence_items(signature.content):
        rebuilt = recompute_evidence(session, item, prefetched)
        if rebuilt is None or sha256_of(rebuilt) != sha256_of(item):
            return Verdict(signature.id, "broken",
                           f"evidence #{item['evidence_id']} version {item['version']} was "
                           "altered outside the app after it was signed")
        if _was_removed(session, item, prefetched):
            removed += 1  # its files were deleted on purpose: nothing left to re-hash
        elif store is not None:
            bad = damaged_objects(store, [f["sha256"] for f in item.get("files", [])])
            if bad:
                return Verdict(signature.id, "broken",
                               f"a file of evidence #{item['evidence_id']} ({bad[0][:12]}…) no "
                               "longer matches what was signed: its bytes were changed or "
                               "removed in the file store")
        evidence = session.get(Evidence, item["evidence_id"])
        if evidence is not None and evidence.current_version != item["version"]:
            newer.append(f"evidence “{item['title']}” changed after signing "
                         f"(version {item['version']} → {evidence.current_version})")
    for ref in signature.content.get("signatures", []):
        other = session.get(Signature, ref["signature_id"])
        if other is None or other.content_hash != ref["content_hash"] or (
                _depth < 4 and verify_signature(session, other, _depth + 1,
                                                prefetched=prefetched).state == "broken"):
            return Verdict(signature.id, "broken",
                           f"signature #{ref['signature_id']} it relies on was altered")
    if recorded is None or (recorded.detail or {}).get("content_hash") != signature.content_hash:
        # The hash was also written into the hash-chained audit trail when it was signed.
        return Verdict(signature.id, "broken",
                       "its hash does not match the one recorded in the audit trail")
    if signature.invalidated_at is not None:
        return Verdict(signature.id, "invalidated",
                       signature.invalidated_reason or "content changed after signing")
    if newer:
        return Verdict(signature.id, "invalidated", "; ".join(newer))
    if removed:
        return Verdict(signature.id, "valid",
                       f"the text and files of {removed} evidence item(s) it covers were "
                       "removed under the centre's retention policy; checked against the "
                       "hashes recorded when they were removed")
    return Verdict(signature.id, "valid", "")


def _was_removed(session: Session, item: dict[str, Any], prefetched: Prefetched | None) -> bool:
    version = (prefetched.version(item["evidence_id"], item["version"]) if prefetched
               else _version(session, item["evidence_id"], item["version"]))
    return version is not None and version.removed_at is not None


def verify_all(session: Session, enrolment_ids: list[int] | None = None, *,
               store: Any = None) -> list[Verdict]:
    """Verify every signature, or those of some enrolments (re-hashing files, given the store)."""
    query = select(Signature).order_by(Signature.id)
    if enrolment_ids is not None:
        query = query.where(Signature.enrolment_id.in_(enrolment_ids))
    signatures = list(session.scalars(query))
    prefetched = Prefetched(session, signatures)
    return [verify_signature(session, s, store=store, prefetched=prefetched)
            for s in signatures]


def decision_signature_ref(signature: Signature) -> dict[str, Any]:
    """Return how another signature refers to this one."""
    return {"signature_id": signature.id, "content_hash": signature.content_hash,
            "purpose": signature.purpose}


def make_signature(session: Session, *, enrolment: Enrolment, purpose: str, subject_type: str,
                   subject_id: int, signer_id: int, signer_role: str, typed_name: str,
                   statement: str, content: dict[str, Any], signed_at: datetime) -> Signature:
    """Build a signature sealed with the installation's key (the caller adds it: decisions add
    it inside a savepoint together with the decision)."""
    signature = Signature(
        enrolment_id=enrolment.id, purpose=purpose, subject_type=subject_type,
        subject_id=subject_id, signer_id=signer_id, signer_role=signer_role,
        typed_name=typed_name, statement=statement, signed_at=signed_at, content=content,
        content_hash=sha256_of(content))
    signature.seal = seal_of(signature, sealer_for(session))
    return signature


def live_decisions(session: Session, enrolment_id: int) -> list[CriterionDecision]:
    """Return the enrolment's decisions that stand (met or awaiting countersignature)."""
    return list(session.scalars(select(CriterionDecision).where(
        CriterionDecision.enrolment_id == enrolment_id,
        CriterionDecision.status.in_(("met", "awaiting_countersignature")))))
