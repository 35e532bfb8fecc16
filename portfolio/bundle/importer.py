"""Import a portfolio bundle: check everything first, then write it all in one transaction.

Order of work (see docs/bundle.md):

1. the ZIP is opened and its entries listed (only manifest.json and files/<sha256>);
2. manifest.json is parsed and checked against the JSON Schema;
3. the bundle is checked against itself: every file's bytes hash to its name, every
   signature's content hash and seal recompute from its recorded fields, every audit event's
   hash recomputes from its content, and every reference (people, criteria, evidence,
   signatures) points to something in the bundle;
4. it is checked against this instance: the units (reference and version) and their criteria
   are loaded, people match by email within the target centre (or are new), and no enrolment,
   evidence, decision, signature or witness-record id is already taken;
5. only then are rows added (ids kept), the learner's audit events re-appended to this chain,
   and every signature verified again here: one that was valid where it came from must be valid
   here, or the whole import is refused.

Any problem refuses the bundle with the full list and nothing is written. Files are staged in
the storage's temp folder and renamed into place only just before the commit, and removed again
if the commit fails (`UploadBatch.commit`).
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from portfolio.assessment.signing import (
    SEALED_IDS,
    imported_seal_ids,
    seal_of,
    sha256_of,
    verify_all,
)
from portfolio.audit import compute_hash, record_event
from portfolio.auth.services import get_or_create_centre
from portfolio.bundle.export import MANIFEST_NAME
from portfolio.bundle.schema import schema_problems
from portfolio.errors import DomainError
from portfolio.evidence.parsing import UnsupportedFile, build_preview, sniff
from portfolio.evidence.storage import HEAD, FileStore, StagedFile, UploadBatch
from portfolio.ids import parse_id
from portfolio.models import (
    AuditEvent,
    Centre,
    Criterion,
    CriterionDecision,
    Enrolment,
    Evidence,
    EvidenceFile,
    EvidenceMapping,
    EvidenceReview,
    EvidenceVersion,
    Role,
    Signature,
    StoredFile,
    Unit,
    User,
    UserRole,
    WitnessRequest,
)
from portfolio.seals import Sealer, sealer_for

FILE_ENTRY = re.compile(r"^files/([0-9a-f]{64})$")
CHUNK = 1024 * 1024
MAX_MANIFEST_BYTES = 256 * 1024 * 1024
# People created by an import cannot sign in until an admin sets a password and activates them;
# this is not an Argon2 hash, so no password ever matches it.
UNUSABLE_PASSWORD = "!imported-without-password"  # noqa: S105 - not a password
# Roles an import may give a person it creates (never admin: an import grants no admin rights).
IMPORTED_ROLES = {Role.LEARNER.value, Role.ASSESSOR.value, Role.IQA.value, Role.EQA.value}
KEPT_ID_TABLES = (
    (Enrolment, "enrolments", "enrolment"),
    (Evidence, "evidence", "evidence"),
    (Signature, "signatures", "signature"),
    (CriterionDecision, "criterion decisions", "criterion_decision"),
    (WitnessRequest, "witness records", "witness_request"),
)


class BundleRefused(DomainError):
    """The bundle cannot be imported; `problems` lists every reason found. Nothing was written."""

    status = 422
    title = "Bundle refused"

    def __init__(self, problems: list[str]) -> None:
        super().__init__("The bundle was refused and nothing was imported: "
                         f"{len(problems)} problem(s).")
        self.problems = problems

    def report(self) -> str:
        return self.message + "\n" + "\n".join(f"  - {p}" for p in self.problems)


@dataclass
class ImportReport:
    learner_email: str
    bundle_sha256: str
    enrolment_ids: list[int]
    evidence: int
    versions: int
    files_new: int
    files_already_here: int
    signatures: int
    signatures_valid: int
    audit_events: int
    people_matched: list[str] = field(default_factory=list)
    people_created: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        return [
            f"Imported the portfolio of {self.learner_email} "
            f"(enrolment(s) {', '.join(f'#{i}' for i in self.enrolment_ids)}).",
            f"{self.evidence} evidence item(s) with {self.versions} version(s); "
            f"{self.files_new} new file(s), {self.files_already_here} already stored.",
            f"{self.signatures} signature(s), {self.signatures_valid} valid here; "
            f"{self.audit_events} audit event(s) re-recorded.",
            "People matched by email: " + (", ".join(self.people_matched) or "none") + ".",
            "People created (inactive, no password): "
            + (", ".join(self.people_created) or "none") + ".",
        ]


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _d(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def _numbers(ids: Iterable[int]) -> str:
    return ", ".join(f"#{i}" for i in sorted(ids))


# --- reading --------------------------------------------------------------------------------

def _open_archive(path: Path, max_bytes: int) -> tuple[zipfile.ZipFile, dict[str, zipfile.ZipInfo]]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise BundleRefused(["The file is not a ZIP archive (a bundle is the .zip made by "
                             "“Download bundle” or the “portfolio bundle export” command)."]
                            ) from exc
    problems = []
    entries: dict[str, zipfile.ZipInfo] = {}
    total = 0
    for info in archive.infolist():
        if info.is_dir():
            continue
        name = info.filename
        if name != MANIFEST_NAME and not FILE_ENTRY.match(name):
            problems.append(f"Unexpected entry in the ZIP: {name[:120]!r} (a bundle holds only "
                            "manifest.json and files/<sha256>).")
            continue
        if info.flag_bits & 0x1:
            problems.append(f"{name}: encrypted entries are not accepted.")
        if name in entries:
            problems.append(f"{name} appears twice in the ZIP.")
        entries[name] = info
        total += info.file_size
    if MANIFEST_NAME not in entries:
        problems.append("The ZIP has no manifest.json at its top level.")
    if total > max_bytes:
        problems.append(f"The bundle unpacks to {total // (1024 * 1024)} MB, over the "
                        f"{max_bytes // (1024 * 1024)} MB limit.")
    if problems:
        archive.close()
        raise BundleRefused(problems)
    return archive, entries


def _read_manifest(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> dict[str, Any]:
    if info.file_size > MAX_MANIFEST_BYTES:
        raise BundleRefused(["manifest.json is too large."])
    try:
        with archive.open(info) as handle:
            raw = handle.read(MAX_MANIFEST_BYTES + 1)
        manifest = json.loads(raw.decode("utf-8"))
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise BundleRefused([f"manifest.json cannot be read from the ZIP: {exc}"]) from exc
    except UnicodeDecodeError as exc:
        raise BundleRefused(["manifest.json is not UTF-8 text."]) from exc
    except json.JSONDecodeError as exc:
        raise BundleRefused([f"manifest.json is not valid JSON: {exc.msg} at line {exc.lineno}, "
                             f"column {exc.colno}."]) from exc
    problems = schema_problems(manifest)
    if problems:
        raise BundleRefused(["manifest.json does not follow the bundle schema "
                             "(format version 1):", *problems])
    return manifest


def _stage_file(archive: zipfile.ZipFile, info: zipfile.ZipInfo, sha: str, size: int,
                tmp_dir: Path) -> tuple[Path | None, str | None]:
    """Copy one file out of the ZIP to a temp file, hashing it; return (path, problem)."""
    digest = hashlib.sha256()
    written = 0
    handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed below, kept on success
        dir=tmp_dir, delete=False, prefix="bundle-")
    path = Path(handle.name)
    try:
        with handle, archive.open(info) as source:
            while chunk := source.read(CHUNK):
                written += len(chunk)
                if written > size:
                    break
                digest.update(chunk)
                handle.write(chunk)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        path.unlink(missing_ok=True)
        return None, f"files/{sha}: cannot be read from the ZIP ({exc})."
    if written != size or digest.hexdigest() != sha:
        path.unlink(missing_ok=True)
        return None, (f"files/{sha}: its bytes do not match its SHA-256 and size "
                      "(the file was changed or damaged).")
    return path, None


# --- checking the bundle against itself -----------------------------------------------------

@dataclass
class _Index:
    manifest: dict[str, Any]
    people: dict[int, dict[str, Any]]
    criteria: dict[int, tuple[dict[str, Any], dict[str, Any]]]  # id -> (unit, criterion)
    enrolments: dict[int, dict[str, Any]]
    evidence: dict[int, dict[str, Any]]
    signatures: dict[int, dict[str, Any]]
    decisions: dict[int, dict[str, Any]]
    witnesses: dict[int, dict[str, Any]]


def _index(m: dict[str, Any], problems: list[str]) -> _Index:
    def unique(rows: list[dict[str, Any]], what: str, key: str = "id") -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        for row in rows:
            if row[key] in out:
                problems.append(f"{what} {row[key]} appears twice in the manifest.")
            out[row[key]] = row
        return out

    criteria: dict[int, tuple[dict[str, Any], dict[str, Any]]] = {}
    for unit in m["units"]:
        for c in unit["criteria"]:
            if c["id"] in criteria:
                problems.append(f"criterion id {c['id']} appears twice in the manifest.")
            criteria[c["id"]] = (unit, c)
    unique(m["people"], "person with email", "email")
    unique(m["units"], "unit", "reference")
    return _Index(m, unique(m["people"], "person id"), criteria,
                  unique(m["enrolments"], "enrolment"), unique(m["evidence"], "evidence"),
                  unique(m["signatures"], "signature"), unique(m["decisions"], "decision"),
                  unique(m["witness_requests"], "witness record"))


def _transient_event(row: dict[str, Any]) -> AuditEvent:
    return AuditEvent(seq=row["seq"], at=_dt(row["at"]), actor_id=row["actor_id"],
                      actor_role=row["actor_role"], action=row["action"],
                      subject_type=row["subject_type"], subject_id=row["subject_id"],
                      learner_id=row["learner_id"], centre_id=row["centre_id"],
                      detail=row["detail"], prev_hash=row["prev_hash"], hash=row["hash"])


def _transient_signature(row: dict[str, Any]) -> Signature:
    return Signature(id=row["id"], enrolment_id=row["enrolment_id"], purpose=row["purpose"],
                     subject_type=row["subject_type"], subject_id=row["subject_id"],
                     signer_id=row["signer_id"], signer_role=row["signer_role"],
                     typed_name=row["typed_name"], statement=row["statement"],
                     signed_at=_dt(row["signed_at"]), content=row["content"],
                     content_hash=row["content_hash"], seal=row["seal"])


def _check_references(ix: _Index, problems: list[str]) -> None:  # noqa: C901 - one list
    m = ix.manifest

    def person(pid: int | None, where: str) -> None:
        if pid is not None and pid not in ix.people:
            problems.append(f"{where} names person id {pid}, who is not in the bundle's people.")

    units = {u["reference"]: u for u in m["units"]}
    enrolment_units: dict[int, dict[str, Any]] = {}
    if m["learner_id"] not in ix.people:
        problems.append("The learner is not in the bundle's people.")
    for e in m["enrolments"]:
        where = f"enrolment #{e['id']}"
        if e["learner_id"] != m["learner_id"]:
            problems.append(f"{where} belongs to another learner than the bundle's.")
        for pid in (e["assessor_id"], e["iqa_id"]):
            person(pid, where)
        unit = units.get(e["unit_reference"])
        if unit is None or unit["version"] != e["unit_version"]:
            problems.append(f"{where}: its unit {e['unit_reference']} version "
                            f"{e['unit_version']} is not described in the bundle.")
        else:
            enrolment_units[e["id"]] = unit

    def criterion(cid: int, enrolment_id: int, where: str) -> None:
        found = ix.criteria.get(cid)
        unit = enrolment_units.get(enrolment_id)
        if found is None or (unit is not None and found[0]["reference"] != unit["reference"]):
            problems.append(f"{where} names criterion id {cid}, which is not a criterion of its "
                            "unit in the bundle.")

    files = {f["sha256"]: f["size"] for f in m["files"]}
    for item in m["evidence"]:
        where = f"evidence #{item['id']}"
        if item["enrolment_id"] not in ix.enrolments:
            problems.append(f"{where} belongs to an enrolment not in the bundle.")
        person(item["created_by_id"], where)
        numbers = [v["version"] for v in item["versions"]]
        if numbers != list(range(1, len(numbers) + 1)) or item["current_version"] != len(numbers):
            problems.append(f"{where}: its versions must be 1..{item['current_version']} in "
                            "order, with none missing.")
        for v in item["versions"]:
            person(v["created_by_id"], f"{where} version {v['version']}")
            for f in v["files"]:
                if files.get(f["sha256"]) != f["size"]:
                    problems.append(f"{where} version {v['version']}: file {f['sha256']} is not "
                                    "in the bundle's file list (or its size differs).")
        for mapping in item["mappings"]:
            criterion(mapping["criterion_id"], item["enrolment_id"], f"{where} mapping")
            person(mapping["created_by_id"], f"{where} mapping")
            person(mapping["removed_by_id"], f"{where} mapping")
        for review in item["reviews"]:
            person(review["reviewer_id"], f"{where} review")
            if review["version"] > item["current_version"]:
                problems.append(f"{where}: a review names version {review['version']}, which "
                                "does not exist.")
    for d in m["decisions"]:
        where = f"decision #{d['id']}"
        if d["enrolment_id"] not in ix.enrolments:
            problems.append(f"{where} belongs to an enrolment not in the bundle.")
        criterion(d["criterion_id"], d["enrolment_id"], where)
        person(d["decided_by_id"], where)
        person(d["countersigned_by_id"], where)
        for sid in (d["signature_id"], d["countersignature_id"]):
            if sid is not None and sid not in ix.signatures:
                problems.append(f"{where} names signature #{sid}, which is not in the bundle.")
        for cited in d["evidence"]:
            if cited["evidence_id"] not in ix.evidence:
                problems.append(f"{where} cites evidence #{cited['evidence_id']}, which is not "
                                "in the bundle.")
    for w in m["witness_requests"]:
        where = f"witness record #{w['id']}"
        if w["enrolment_id"] not in ix.enrolments:
            problems.append(f"{where} belongs to an enrolment not in the bundle.")
        person(w["requested_by_id"], where)
        for cid in w["criterion_ids"]:
            criterion(cid, w["enrolment_id"], where)
        if w["evidence_id"] is not None and w["evidence_id"] not in ix.evidence:
            problems.append(f"{where} names evidence #{w['evidence_id']}, not in the bundle.")
        if w["replaced_by_id"] is not None and w["replaced_by_id"] not in ix.witnesses:
            problems.append(f"{where} names a replacement not in the bundle.")
        if (w["content"] is None) != (w["content_hash"] is None) or (
                w["content"] is not None and sha256_of(w["content"]) != w["content_hash"]):
            problems.append(f"{where}: the signed testimony does not match its recorded hash "
                            "(it was altered).")
    for e in m["audit_events"]:
        person(e["actor_id"], f"audit event #{e['seq']}")
        if e["learner_id"] != m["learner_id"]:
            problems.append(f"audit event #{e['seq']} belongs to another learner.")


def _signature_events(m: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """Return, per signature id, the first audit event recorded when it was made."""
    found: dict[int, dict[str, Any]] = {}
    by_id = {s["id"]: s for s in m["signatures"]}
    for e in m["audit_events"]:
        sid = parse_id(e["subject_id"])
        if e["subject_type"] != "signature" or sid is None:
            continue
        signature = by_id.get(sid)
        if signature and e["action"] == f"signature.{signature['purpose']}" and sid not in found:
            found[sid] = e
    return found


def _sealed_ids(s: dict[str, Any], recorded: dict[str, Any] | None) -> dict[str, int] | None:
    """Return the ids the signature was sealed with where it was made (None: inconsistent).

    A signature that was itself imported before carries its original ids in its audit event
    (see `portfolio.assessment.signing.imported_seal_ids`); otherwise they are its own.
    """
    event = _transient_event(recorded) if recorded is not None else None
    ids = imported_seal_ids(_transient_signature(s), event)
    if isinstance(ids, str):
        return None
    return ids or {name: s[name] for name in SEALED_IDS}


def _check_integrity(ix: _Index, problems: list[str], sealer: Sealer) -> None:
    m = ix.manifest
    # Seals are keyed: they can be re-checked only where the source's seal key is held (the same
    # installation, or one sharing its key). Elsewhere the content hashes are still checked, and
    # the records are sealed afresh with this installation's key once imported.
    keyed = m["source"].get("seal_key_id") == sealer.key_id
    previous = 0
    for e in m["audit_events"]:
        if e["seq"] <= previous:
            problems.append(f"audit event #{e['seq']} is out of order.")
        previous = e["seq"]
        if keyed and not sealer.same(compute_hash(_transient_event(e), sealer), e["hash"]):
            problems.append(f"audit event #{e['seq']}: its seal does not match its content "
                            "(the event was altered).")
    events = _signature_events(m)
    for s in m["signatures"]:
        where = f"signature #{s['id']}"
        if s["enrolment_id"] not in ix.enrolments:
            problems.append(f"{where} belongs to an enrolment not in the bundle.")
        if s["signer_id"] not in ix.people:
            problems.append(f"{where}: its signer is not in the bundle's people.")
        if sha256_of(s["content"]) != s["content_hash"]:
            problems.append(f"{where}: the signed content does not match its content hash "
                            "(the snapshot was altered).")
            continue
        recorded = events.get(s["id"])
        ids = _sealed_ids(s, recorded)
        if ids is None or (keyed and not sealer.same(
                seal_of(_transient_signature(s), sealer, ids), s["seal"])):
            problems.append(f"{where}: its seal does not match the signer, statement, time and "
                            "content hash recorded (the signature record was altered).")
        if recorded is None or recorded["detail"].get("content_hash") != s["content_hash"]:
            problems.append(f"{where}: its content hash is not the one recorded in the bundle's "
                            "audit events.")


# --- checking against this instance ---------------------------------------------------------

@dataclass
class _Plan:
    centre: Centre | None  # None: a new centre named as in the bundle is created
    people: dict[int, User | None]  # source id -> matched person (None: to be created)
    criteria: dict[int, Criterion]  # source id -> criterion here
    units: dict[str, Unit]


def _plan(session: Session, ix: _Index, centre: Centre | None, problems: list[str]) -> _Plan:
    m = ix.manifest
    if centre is None:
        centre = session.scalar(select(Centre).where(Centre.name == m["source"]["centre"]))
    units: dict[str, Unit] = {}
    criteria: dict[int, Criterion] = {}
    for u in m["units"]:
        unit = session.scalar(select(Unit).where(Unit.reference == u["reference"]))
        if unit is None:
            problems.append(f"Unit {u['reference']} (version {u['version']}) is not loaded in "
                            "this instance: load its unit file first (“portfolio criteria load”).")
            continue
        if unit.version != u["version"]:
            problems.append(f"Unit {u['reference']} is at version {unit.version} here but the "
                            f"bundle was made against version {u['version']}: load the same "
                            "version of the unit file.")
            continue
        units[u["reference"]] = unit
        here = {c.number: c for c in session.scalars(
            select(Criterion).where(Criterion.unit_id == unit.id))}
        for c in u["criteria"]:
            match = here.get(c["number"])
            if match is None or match.version != c["version"] or match.text != c["text"]:
                problems.append(f"Unit {u['reference']} criterion {c['number']} (version "
                                f"{c['version']}) differs here or is missing.")
            else:
                criteria[c["id"]] = match
    people: dict[int, User | None] = {}
    for p in m["people"]:
        user = session.scalar(select(User).where(User.email == p["email"]))
        if user is not None and (centre is None or user.centre_id != centre.id):
            problems.append(f"{p['email']} belongs to another centre in this instance; people "
                            "are matched by email only within the target centre.")
        people[p["id"]] = user
    learner = people.get(m["learner_id"])
    if learner is not None:
        for e in m["enrolments"]:
            unit = units.get(e["unit_reference"])
            if unit is not None and session.scalar(select(Enrolment.id).where(
                    Enrolment.learner_id == learner.id, Enrolment.unit_id == unit.id)):
                problems.append(f"{learner.email} is already enrolled on unit "
                                f"{e['unit_reference']} here.")
    for model, label, key in KEPT_ID_TABLES:
        wanted = {
            "enrolment": ix.enrolments, "evidence": ix.evidence, "signature": ix.signatures,
            "criterion_decision": ix.decisions, "witness_request": ix.witnesses}[key]
        if not wanted:
            continue
        taken = set(session.scalars(select(model.id).where(model.id.in_(list(wanted)))))
        if taken:
            problems.append(f"The {label} id(s) {_numbers(taken)} are already used in this "
                            "instance. Ids are kept so signatures stay verifiable, so nothing "
                            "was renumbered: import into a fresh instance.")
    hashes = [w["token_hash"] for w in m["witness_requests"]]
    if hashes and session.scalar(select(WitnessRequest.id).where(
            WitnessRequest.token_hash.in_(hashes)).limit(1)):
        problems.append("A witness link in the bundle is already recorded in this instance.")
    return _Plan(centre, people, criteria, units)


# --- writing --------------------------------------------------------------------------------

def _create_people(session: Session, ix: _Index, plan: _Plan, actor: User | None
                   ) -> tuple[dict[int, User], list[str], list[str]]:
    users: dict[int, User] = {}
    matched, created = [], []
    for p in ix.manifest["people"]:
        user = plan.people[p["id"]]
        if user is not None:
            matched.append(p["email"])
        else:
            user = User(centre_id=plan.centre.id, email=p["email"], full_name=p["full_name"],
                        password_hash=UNUSABLE_PASSWORD, is_active=False,
                        assessor_status=p["assessor_status"])
            user.role_rows = [UserRole(role=r) for r in p["roles"] if r in IMPORTED_ROLES]
            session.add(user)
            session.flush()
            record_event(session, action="user.import", subject_type="user",
                         subject_id=user.id, actor=actor,
                         actor_role=Role.ADMIN.value if actor else None,
                         centre_id=plan.centre.id,
                         detail={"roles": sorted(r.role for r in user.role_rows),
                                 "active": False})
            created.append(p["email"])
        users[p["id"]] = user
    return users, matched, created


def _write_rows(session: Session, ix: _Index, plan: _Plan, users: dict[int, User],
                staged: dict[str, Path], sniffs: dict[tuple[str, str], Any]) -> None:
    m = ix.manifest
    uid = {source: user.id for source, user in users.items()}

    def opt(source: int | None) -> int | None:
        return uid[source] if source is not None else None

    crit = {source: c.id for source, c in plan.criteria.items()}
    for e in m["enrolments"]:
        session.add(Enrolment(
            id=e["id"], learner_id=uid[e["learner_id"]],
            unit_id=plan.units[e["unit_reference"]].id, assessor_id=uid[e["assessor_id"]],
            iqa_id=opt(e["iqa_id"]), start_on=_d(e["start_on"]),
            planned_end_on=_d(e["planned_end_on"]), employer=e["employer"],
            workplace=e["workplace"], status=e["status"], created_at=_dt(e["created_at"])))
    session.flush()
    for f in m["files"]:
        if session.get(StoredFile, f["sha256"]) is None:
            first = next(s for (sha, _), s in sniffs.items() if sha == f["sha256"])
            session.add(StoredFile(sha256=f["sha256"], size=f["size"],
                                   media_type=first[0].media_type))
    for item in m["evidence"]:
        evidence = Evidence(
            id=item["id"], enrolment_id=item["enrolment_id"], kind=item["kind"],
            status=item["status"], current_version=item["current_version"],
            created_by_id=uid[item["created_by_id"]], created_at=_dt(item["created_at"]),
            updated_at=_dt(item["updated_at"]), submitted_at=_dt(item["submitted_at"]),
            assessor_mapped_at=_dt(item["assessor_mapped_at"]))
        for v in item["versions"]:
            version = EvidenceVersion(
                version=v["version"], title=v["title"], activity_on=_d(v["activity_on"]),
                activity_place=v["activity_place"], body_md=v["body_md"],
                details=v["details"], is_simulated=v["is_simulated"],
                personal_data_confirmed=v["personal_data_confirmed"],
                change_note=v["change_note"], created_by_id=uid[v["created_by_id"]],
                created_at=_dt(v["created_at"]),
                # Absent from bundles made before redaction existed.
                assessor_only=v.get("assessor_only", False),
                redacted_from=v.get("redacted_from"),
                original_held_at=v.get("original_held_at"))
            for f in v["files"]:
                sniffed, preview = sniffs[(f["sha256"], f["filename"])]
                version.files.append(EvidenceFile(
                    sha256=f["sha256"], filename=f["filename"], media_type=sniffed.media_type,
                    category=sniffed.category, size=f["size"], position=f["position"],
                    preview=preview))
            evidence.versions.append(version)
        for mp in item["mappings"]:
            evidence.mappings.append(EvidenceMapping(
                criterion_id=crit[mp["criterion_id"]], source=mp["source"],
                criterion_version=mp["criterion_version"], rationale=mp["rationale"],
                location=mp["location"], created_by_id=uid[mp["created_by_id"]],
                created_at=_dt(mp["created_at"]), removed_at=_dt(mp["removed_at"]),
                removed_by_id=opt(mp["removed_by_id"])))
        session.add(evidence)
        session.flush()
        for r in item["reviews"]:
            session.add(EvidenceReview(
                evidence_id=evidence.id, version=r["version"], reviewer_id=uid[r["reviewer_id"]],
                outcome=r["outcome"], feedback_md=r["feedback_md"], varcs=r["varcs"],
                created_at=_dt(r["created_at"])))
    sealer = sealer_for(session)
    recorded = _signature_events(m)
    for s in m["signatures"]:
        # Sealed afresh with this installation's key, over the ids it was made with there.
        seal = seal_of(_transient_signature(s), sealer, _sealed_ids(s, recorded.get(s["id"])))
        session.add(Signature(
            id=s["id"], enrolment_id=s["enrolment_id"], purpose=s["purpose"],
            subject_type=s["subject_type"],
            subject_id=(crit[s["subject_id"]] if s["subject_type"] == "criterion"
                        else s["subject_id"]),
            signer_id=uid[s["signer_id"]], signer_role=s["signer_role"],
            typed_name=s["typed_name"], statement=s["statement"],
            signed_at=_dt(s["signed_at"]), content=s["content"],
            content_hash=s["content_hash"], seal=seal,
            invalidated_at=_dt(s["invalidated_at"]),
            invalidated_reason=s["invalidated_reason"]))
    session.flush()
    for d in m["decisions"]:
        session.add(CriterionDecision(
            id=d["id"], enrolment_id=d["enrolment_id"], criterion_id=crit[d["criterion_id"]],
            status=d["status"], evidence=d["evidence"], note_md=d["note_md"],
            decided_by_id=uid[d["decided_by_id"]], decided_at=_dt(d["decided_at"]),
            signature_id=d["signature_id"], needs_countersignature=d["needs_countersignature"],
            countersigned_by_id=opt(d["countersigned_by_id"]),
            countersignature_id=d["countersignature_id"], ended_at=_dt(d["ended_at"]),
            ended_reason=d["ended_reason"]))
    session.flush()
    requests = []
    for w in m["witness_requests"]:
        row = {k: v for k, v in w.items() if k != "replaced_by_id"}
        for name in ("expires_at", "created_at", "used_at", "signed_at",
                     "contact_minimised_at"):
            row[name] = _dt(row[name])
        row["activity_on"] = _d(row["activity_on"])
        row["requested_by_id"] = uid[w["requested_by_id"]]
        row["criterion_ids"] = [crit[c] for c in w["criterion_ids"]]
        request = WitnessRequest(**row)
        session.add(request)
        requests.append((request, w["replaced_by_id"]))
    session.flush()
    for request, replaced_by in requests:
        request.replaced_by_id = replaced_by
    session.flush()


def _reappend_events(session: Session, ix: _Index, plan: _Plan, users: dict[int, User],
                     bundle_sha: str) -> int:
    """Append the learner's source audit events to this chain, each carrying its original."""
    m = ix.manifest
    learner = users[m["learner_id"]]
    signature_events = {id(e): sid for sid, e in _signature_events(m).items()}
    signatures = {s["id"]: s for s in m["signatures"]}
    for e in m["audit_events"]:
        # The complete source event, so its hash can be recomputed from this copy at any time.
        imported: dict[str, Any] = {"bundle_sha256": bundle_sha, "source_event": dict(e)}
        sid = signature_events.get(id(e))
        if sid is not None:
            here = session.get(Signature, sid)
            original = _sealed_ids(signatures[sid], e) or {}
            imported["seal_ids"] = {name: [original[name], getattr(here, name)]
                                    for name in SEALED_IDS}
        detail = {k: v for k, v in e["detail"].items() if k != "imported"}
        subject_id = e["subject_id"]
        if e["subject_type"] == "user" and parse_id(subject_id) in users:
            subject_id = str(users[parse_id(subject_id)].id)
        record_event(session, action=e["action"], subject_type=e["subject_type"],
                     subject_id=subject_id,
                     actor=users[e["actor_id"]] if e["actor_id"] is not None else None,
                     actor_role=e["actor_role"], learner_id=learner.id,
                     centre_id=plan.centre.id, detail={**detail, "imported": imported})
    return len(m["audit_events"])


def _advance_sequences(session: Session) -> None:
    """On PostgreSQL, move id sequences past the ids the import inserted explicitly."""
    if session.get_bind().dialect.name != "postgresql":
        return
    for model, _label, _key in KEPT_ID_TABLES:
        table = model.__tablename__  # fixed model names, never input
        sequence = session.scalar(text(f"SELECT pg_get_serial_sequence('{table}', 'id')"))
        session.execute(text(
            f"SELECT setval('{sequence}', GREATEST("  # noqa: S608 - names from the catalogue
            f"(SELECT COALESCE(MAX(id), 1) FROM {table}), (SELECT last_value FROM {sequence})))"))


# --- the whole import -----------------------------------------------------------------------

def import_bundle(session: Session, path: Path, *, batch: UploadBatch, centre: Centre | None,
                  actor: User | None, max_bytes: int) -> ImportReport:
    """Check a bundle completely, then add it to the session (flushed, not committed).

    `centre` is where people are matched and created; None (the command line's default) means
    the centre named in the bundle, created if this instance has none of that name.

    The files are staged into `batch`; the caller commits with `batch.commit(session)`, which
    places them just before the commit and removes them if it fails.

    :raises BundleRefused: with every problem found; nothing has been added to the session
        (after a failure in the last check, the caller must roll back).
    """
    with open(path, "rb") as handle:
        digest = hashlib.sha256()
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    bundle_sha = digest.hexdigest()
    archive, entries = _open_archive(path, max_bytes)
    with archive:
        manifest = _read_manifest(archive, entries[MANIFEST_NAME])
        problems: list[str] = []
        ix = _index(manifest, problems)
        _check_references(ix, problems)
        _check_integrity(ix, problems, sealer_for(session))
        listed = {f["sha256"]: f["size"] for f in manifest["files"]}
        for name in entries:
            match = FILE_ENTRY.match(name)
            if match and match.group(1) not in listed:
                problems.append(f"{name} is in the ZIP but not in the manifest's file list.")
        staged: dict[str, Path] = {}
        tmp_dir = batch.store.root / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        for sha, size in listed.items():
            info = entries.get(f"files/{sha}")
            if info is None:
                problems.append(f"files/{sha} is listed in the manifest but missing from the ZIP.")
                continue
            path_, problem = _stage_file(archive, info, sha, size, tmp_dir)
            if problem:
                problems.append(problem)
            else:
                staged[sha] = path_
                batch.files.append(StagedFile(sha, size, None, sha, path_, None))  # type: ignore[arg-type]
    sniffs: dict[tuple[str, str], Any] = {}
    waiting = {placed.sha256: placed for placed in batch.files}
    for item in manifest["evidence"]:
        for v in item["versions"]:
            for f in v["files"]:
                key = (f["sha256"], f["filename"])
                if key in sniffs or f["sha256"] not in staged:
                    continue
                file_path = staged[f["sha256"]]
                with open(file_path, "rb") as reader:
                    head = reader.read(HEAD)
                try:
                    sniffed = sniff(head, f["filename"], file_path)
                except UnsupportedFile as exc:
                    problems.append(f"evidence #{item['id']}: {f['filename']!r} is a file type "
                                    f"this instance does not accept ({exc.message})")
                    continue
                preview = build_preview(file_path, sniffed)
                sniffs[key] = (sniffed, preview.to_json())
                placed = waiting.get(f["sha256"])
                if placed is not None and placed.preview is None:
                    # So a photo gets its print copy, and a PDF its screen copy, when placed.
                    placed.preview, placed.sniffed = preview, sniffed
    used = {f["sha256"] for item in manifest["evidence"] for v in item["versions"]
            for f in v["files"]}
    problems.extend(f"files/{sha} is listed in the manifest but no evidence version uses it."
                    for sha in sorted(set(listed) - used))
    plan = _plan(session, ix, centre, problems)
    if problems:
        raise BundleRefused(problems)

    if plan.centre is None:
        plan.centre = get_or_create_centre(session, manifest["source"]["centre"])
        record_event(session, action="centre.import", subject_type="centre",
                     subject_id=plan.centre.id, actor=actor, centre_id=plan.centre.id,
                     detail={"name": plan.centre.name})
    users, matched, created = _create_people(session, ix, plan, actor)
    _write_rows(session, ix, plan, users, staged, sniffs)
    events = _reappend_events(session, ix, plan, users, bundle_sha)
    _advance_sequences(session)
    enrolment_ids = sorted(ix.enrolments)
    verdicts = {v.signature_id: v for v in verify_all(session, enrolment_ids)}
    for s in manifest["signatures"]:
        verdict = verdicts[s["id"]]
        if s["state_at_export"] == "valid" and verdict.state != "valid":
            problems.append(f"signature #{s['id']} was valid where it was exported but is "
                            f"{verdict.state} here ({verdict.reason}).")
    if problems:
        raise BundleRefused(problems)
    learner = users[manifest["learner_id"]]
    new_files = sum(1 for sha in listed if not batch.store.exists(sha))
    report = ImportReport(
        learner_email=learner.email, bundle_sha256=bundle_sha, enrolment_ids=enrolment_ids,
        evidence=len(manifest["evidence"]),
        versions=sum(len(e["versions"]) for e in manifest["evidence"]),
        files_new=new_files, files_already_here=len(listed) - new_files,
        signatures=len(verdicts),
        signatures_valid=sum(1 for v in verdicts.values() if v.state == "valid"),
        audit_events=events, people_matched=matched, people_created=created)
    record_event(session, action="bundle.import", subject_type="user", subject_id=learner.id,
                 actor=actor, actor_role=Role.ADMIN.value if actor else None,
                 learner_id=learner.id, centre_id=plan.centre.id,
                 detail={"bundle_sha256": bundle_sha, "source_centre": manifest["source"]["centre"],
                         "source_chain_head": manifest["source"]["audit_chain_head"],
                         "enrolments": enrolment_ids, "evidence": report.evidence,
                         "signatures": report.signatures, "audit_events": events,
                         "people_created": len(created), "people_matched": len(matched)})
    return report


def import_and_commit(session: Session, path: Path, *, store: FileStore, centre: Centre | None,
                      actor: User | None, max_bytes: int) -> ImportReport:
    """Import a bundle and commit it with its files, or refuse it with nothing written.

    :raises BundleRefused: the session has been rolled back and no file was placed.
    """
    with store.batch() as batch:
        try:
            report = import_bundle(session, path, batch=batch, centre=centre, actor=actor,
                                   max_bytes=max_bytes)
        except BundleRefused:
            session.rollback()
            raise
        batch.commit(session)
    return report
