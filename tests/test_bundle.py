"""Open portfolio bundles: export from one database, import into a second, fresh one.

The round trip runs on SQLite and on PostgreSQL (a second database on the suite's own server):
mappings, decisions, every evidence version, file bytes and signature verdicts come back the
same, with the same ids. Malformed or tampered bundles, unknown unit versions and id collisions
are refused with a report, and nothing at all is written (rows, audit events or files).
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from portfolio import create_app, schema
from portfolio.assessment.services import (
    cosign_unit,
    countersign_decision,
    sign_off_unit,
    unit_signoff,
)
from portfolio.assessment.signing import verify_all
from portfolio.audit import verify_chain
from portfolio.bundle.export import export_bundle
from portfolio.bundle.importer import BundleRefused, import_and_commit
from portfolio.bundle.schema import manifest_schema
from portfolio.cli import cli
from portfolio.db import get_database
from portfolio.evidence.storage import FileStore
from portfolio.models import (
    AuditEvent,
    Centre,
    CriterionDecision,
    Enrolment,
    Evidence,
    EvidenceMapping,
    EvidenceVersion,
    Signature,
    StoredFile,
    User,
    WitnessRequest,
)
from tests.conftest import Browserless, _test_config
from tests.factories import (
    LIMITS,
    PASSWORD,
    TINY_PDF,
    accept,
    ask_witness,
    decide,
    load_unit40,
    make_centre,
    make_evidence,
    make_user,
    sign_as,
    stage_bytes,
)
from tests.test_assessment import declare_unit, make_cast, observed, refer, revise, unit_numbers

MAX = 100 * 1024 * 1024
TARGET_DB = "portfolio_bundle_target"


# --- a second, fresh database ----------------------------------------------------------------

@pytest.fixture(scope="session")
def _target_template(db_kind: str, _database_template: str) -> Iterator[str]:
    """SQLite: the migrated template file. PostgreSQL: a second migrated database."""
    if db_kind != "postgresql":
        yield _database_template
        return
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(_database_template)
    admin = url.set(drivername="postgresql", database="postgres")
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {TARGET_DB}")
        conn.execute(f"CREATE DATABASE {TARGET_DB}")
    target = url.set(database=TARGET_DB).render_as_string(hide_password=False)
    app = create_app(_test_config(target))
    schema.upgrade(app)
    get_database(app).engine.dispose()
    yield target


@pytest.fixture
def target_app(db_kind: str, _target_template: str, tmp_path: Path):
    if db_kind == "postgresql":
        url = _target_template
        app = create_app(_test_config(url))
        with get_database(app).engine.begin() as conn:
            tables = [r[0] for r in conn.execute(text(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                "AND tablename <> 'alembic_version'"))]
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
    else:
        copy = tmp_path / "target.sqlite3"
        shutil.copyfile(_target_template, copy)
        app = create_app(_test_config(f"sqlite:///{copy}"))
    yield app
    get_database(app).engine.dispose()


@pytest.fixture
def target(target_app) -> Iterator[Session]:
    s = get_database(target_app).sessionmaker()
    yield s
    s.close()


# --- the source portfolio ---------------------------------------------------------------------

@dataclass
class Source:
    learner: User
    other_learner: User
    draft: Evidence  # two versions, never submitted
    letter: Evidence  # work product with a PDF file
    referred: Evidence  # other learner's: submitted, referred back, revised (declaration ended)


def make_source(app, session: Session) -> Source:
    """A signed-off, co-signed unit with files, versions, a witness request, and a trainee's
    countersigned decision plus an invalidated declaration for the other learner."""
    cast = make_cast(session)
    w = cast.w
    store = app.config["STORAGE_DIR"]
    draft = make_evidence(session, w.enrolment, w.learner, title="Notes to self", maps=("1.1",))
    revise(session, draft, w.learner)
    letter = make_evidence(session, w.enrolment, w.learner, "work_product", title="Reply letter",
                           body="", files=[stage_bytes(store, TINY_PDF, "reply-letter.pdf")],
                           maps=("2.8",), submit=True)
    accept(session, letter, w.assessor)
    ask_witness(session, w.enrolment, w.learner)
    numbers = unit_numbers(session, w.enrolment)
    account = make_evidence(session, w.enrolment, w.learner, title="How I resolve complaints",
                            maps=tuple(numbers), submit=True)
    accept(session, account, w.assessor)
    observation = observed(session, w.enrolment, w.assessor)
    for n in numbers:
        decide(session, w.enrolment, w.assessor, n,
               [account] if n.startswith("1.") else
               [observation, letter] if n == "2.8" else [observation])
    declare_unit(session, w.enrolment, w.learner)
    sign_off_unit(session, w.enrolment, actor=w.assessor, confirmation=sign_as(w.assessor),
                  **LIMITS)
    cosign_unit(session, w.enrolment, actor=w.learner, confirmation=sign_as(w.learner), **LIMITS)

    item = make_evidence(session, w.other_enrolment, w.other_learner, maps=("1.2",), submit=True)
    accept(session, item, w.trainee)
    countersign_decision(session, decide(session, w.other_enrolment, w.trainee, "1.2", [item]),
                         actor=w.assessor, confirmation=sign_as(w.assessor), **LIMITS)
    referred = make_evidence(session, w.other_enrolment, w.other_learner, maps=("1.3",),
                             submit=True)
    refer(session, referred, w.trainee)
    revise(session, referred, w.other_learner)
    session.commit()
    return Source(w.learner, w.other_learner, draft, letter, referred)


def export_to(app, session: Session, learner: User, path: Path) -> Path:
    with path.open("wb") as handle:
        export_bundle(session, learner, store=FileStore(Path(app.config["STORAGE_DIR"])),
                      out=handle, actor=None)
    session.commit()
    return path


def prepare_target(session: Session) -> Centre:
    """A fresh instance: the unit loaded, its own admin, and the assessor already known there
    (matched by email, under a different id than in the source)."""
    load_unit40(session)
    centre = make_centre(session, "Main Centre")
    make_user(session, centre, "admin", email="target-admin@example.org")
    make_user(session, centre, "iqa", email="someone-else@example.org")
    make_user(session, centre, "iqa", email="yet-another@example.org")
    make_user(session, centre, "assessor", email="assessor@example.org", name="Asha Assessor",
              assessor_status="qualified")
    session.commit()
    return centre


def run_import(app, session: Session, path: Path, centre: Centre | None = None):
    return import_and_commit(session, path, store=FileStore(Path(app.config["STORAGE_DIR"])),
                             centre=centre, actor=None, max_bytes=MAX)


def verdicts(session: Session, enrolment_ids: list[int] | None = None) -> dict[int, str]:
    with Session(bind=session.get_bind()) as fresh:
        return {v.signature_id: v.state for v in verify_all(fresh, enrolment_ids)}


def enrolment_ids(session: Session, learner_email: str) -> list[int]:
    return list(session.scalars(select(Enrolment.id).join(User, User.id == Enrolment.learner_id)
                                .where(User.email == learner_email)))


def portfolio_state(session: Session, learner_email: str) -> dict:
    """What must survive the trip: ids, versions, mappings, decisions (criteria by number)."""
    ids = enrolment_ids(session, learner_email)
    evidence = session.scalars(select(Evidence).where(Evidence.enrolment_id.in_(ids))
                               .order_by(Evidence.id)).all()
    return {
        "evidence": [(e.id, e.kind, e.status, e.current_version,
                      [(v.version, v.title, v.body_md, v.details,
                        [(f.sha256, f.filename, f.size) for f in v.files]) for v in e.versions])
                     for e in evidence],
        "mappings": sorted((m.evidence_id, m.criterion.number, m.source, m.rationale,
                            m.removed_at is not None)
                           for m in session.scalars(select(EvidenceMapping).where(
                               EvidenceMapping.evidence_id.in_([e.id for e in evidence])))),
        "decisions": sorted((d.id, d.criterion.number, d.status, json.dumps(d.evidence),
                             d.signature_id, d.countersignature_id, d.decided_by.email)
                            for d in session.scalars(select(CriterionDecision).where(
                                CriterionDecision.enrolment_id.in_(ids)))),
        "signatures": sorted((s.id, s.purpose, s.content_hash, s.seal, s.signer.email,
                              s.invalidated_reason)
                             for s in session.scalars(select(Signature).where(
                                 Signature.enrolment_id.in_(ids)))),
        "witness": sorted((w.id, w.witness_name, w.status, w.token_hash)
                          for w in session.scalars(select(WitnessRequest).where(
                              WitnessRequest.enrolment_id.in_(ids)))),
    }


# --- round trip -------------------------------------------------------------------------------

def test_round_trip_keeps_everything_and_every_signature_verifies(app, session, target_app,
                                                                   target, tmp_path):
    src = make_source(app, session)
    bundle = export_to(app, session, src.learner, tmp_path / "lee.zip")
    before = portfolio_state(session, "learner@example.org")
    source_verdicts = verdicts(session, enrolment_ids(session, "learner@example.org"))
    assert source_verdicts and set(source_verdicts.values()) == {"valid"}

    centre = prepare_target(target)
    report = run_import(target_app, target, bundle, centre)

    assert portfolio_state(target, "learner@example.org") == before
    ids = enrolment_ids(target, "learner@example.org")
    assert verdicts(target, ids) == source_verdicts  # same ids, all still valid
    assert report.signatures == report.signatures_valid == len(source_verdicts)
    # Every version, with the original file bytes in the new instance's storage.
    draft = target.get(Evidence, src.draft.id)
    assert [v.version for v in draft.versions] == [1, 2]
    sha = target.get(Evidence, src.letter.id).versions[0].files[0].sha256
    stored = FileStore(Path(target_app.config["STORAGE_DIR"])).path_for(sha)
    assert stored.read_bytes() == TINY_PDF
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == sha
    # The unit is still signed off; people were matched or created inactive.
    enrolment = target.get(Enrolment, ids[0])
    assert enrolment.status == "completed" and unit_signoff(target, enrolment) is not None
    assessor = target.scalar(select(User).where(User.email == "assessor@example.org"))
    assert "assessor@example.org" in report.people_matched
    assert assessor.id != src.learner.id and enrolment.assessor_id == assessor.id
    learner = target.scalar(select(User).where(User.email == "learner@example.org"))
    assert not learner.is_active and "learner@example.org" in report.people_created
    from portfolio.auth.services import authenticate
    from portfolio.errors import ValidationFailed

    with pytest.raises(ValidationFailed):
        authenticate(target, "learner@example.org", "correct horse battery staple",
                     client="test", max_failures=5, lockout_minutes=15)
    target.rollback()
    # The audit chain still verifies, and the learner's history came along.
    count, problems = verify_chain(target)
    assert problems == []
    imported = target.scalars(select(AuditEvent).where(AuditEvent.learner_id == learner.id)).all()
    assert {e.action for e in imported} >= {"evidence.create", "signature.unit_signoff",
                                            "bundle.import"}
    # New rows after the import get fresh ids (PostgreSQL sequences moved past the kept ones).
    extra = Evidence(enrolment_id=enrolment.id, kind="descriptor", created_by_id=learner.id)
    target.add(extra)
    target.flush()
    assert extra.id > max(e[0] for e in before["evidence"])


def test_imported_photos_get_their_print_copies(app, session, target_app, target, tmp_path):
    from PIL import Image

    from portfolio.evidence.print_copy import print_copy_path

    w = make_cast(session).w
    png = io.BytesIO()
    Image.new("RGB", (1800, 1200), (30, 90, 160)).save(png, "PNG")
    photo = make_evidence(session, w.enrolment, w.learner, "photo", title="Noticeboard", body="",
                          files=[stage_bytes(app.config["STORAGE_DIR"], png.getvalue(),
                                             "board.png")], maps=("1.1",))
    session.commit()
    sha = photo.versions[0].files[0].sha256
    bundle = export_to(app, session, w.learner, tmp_path / "photo.zip")
    run_import(target_app, target, bundle, prepare_target(target))
    copy = print_copy_path(Path(target_app.config["STORAGE_DIR"]), sha)
    assert copy.is_file()  # made on import, so the first export has nothing to prepare
    with Image.open(copy) as image:
        assert image.format == "JPEG" and image.size == (1100, 733)


def test_imported_pdfs_and_heic_photos_get_their_pictures(app, session, target_app, target,
                                                          tmp_path):
    from PIL import Image

    from portfolio.evidence.print_copy import print_copy_path
    from portfolio.evidence.screen_copy import screen_copy_path
    from tests.real_files import RED, heic_bytes, pdf_bytes

    w = make_cast(session).w
    store = app.config["STORAGE_DIR"]
    item = make_evidence(session, w.enrolment, w.learner, "work_product", title="Certificate",
                         body="", files=[stage_bytes(store, pdf_bytes([RED]), "cert.pdf"),
                                         stage_bytes(store, heic_bytes(), "IMG_1.heic")],
                         maps=("1.1",))
    session.commit()
    pdf, heic = (f.sha256 for f in item.versions[0].files)
    bundle = export_to(app, session, w.learner, tmp_path / "pictures.zip")
    run_import(target_app, target, bundle, prepare_target(target))
    root = Path(target_app.config["STORAGE_DIR"])
    # Made on import, from the files the bundle carried.
    with Image.open(screen_copy_path(root, pdf, "application/pdf")) as page:
        assert page.format == "PNG" and max(page.size) == 1200
    with Image.open(screen_copy_path(root, heic, "image/heic")) as photo:
        assert photo.format == "JPEG" and photo.size == (1200, 900)
    assert print_copy_path(root, heic).is_file()


def test_imported_signature_still_detects_tampering(app, session, target_app, target, tmp_path):
    """Verification recomputes an imported seal with the source ids, but only while the row
    carries the ids the import gave it: re-pointing the signer is still caught."""
    src = make_source(app, session)
    bundle = export_to(app, session, src.learner, tmp_path / "lee.zip")
    run_import(target_app, target, bundle, prepare_target(target))
    signature = target.scalars(select(Signature).where(
        Signature.purpose == "unit_signoff")).one()
    someone = target.scalar(select(User).where(User.email == "target-admin@example.org"))
    target.execute(text("UPDATE signatures SET signer_id = :who WHERE id = :id"),
                   {"who": someone.id, "id": signature.id})
    target.commit()
    assert verdicts(target)[signature.id] == "broken"


def test_round_trip_with_countersignature_versions_and_invalidated_signatures(
        app, session, target_app, target, tmp_path):
    src = make_source(app, session)
    bundle = export_to(app, session, src.other_learner, tmp_path / "olu.zip")
    before = portfolio_state(session, "other@example.org")
    source_verdicts = verdicts(session, enrolment_ids(session, "other@example.org"))
    assert set(source_verdicts.values()) == {"valid", "invalidated"}

    load_unit40(target)
    target.commit()
    run_import(target_app, target, bundle)  # no centre given: the bundle's, created here
    assert portfolio_state(target, "other@example.org") == before
    assert verdicts(target) == source_verdicts
    referred = target.get(Evidence, src.referred.id)
    assert referred.current_version == 2 and referred.status == "referred"
    assert target.scalar(select(Centre.name)) == "Main Centre"
    trainee = target.scalar(select(User).where(User.email == "trainee@example.org"))
    assert trainee.assessor_status == "trainee" and not trainee.is_active


# --- refusals ---------------------------------------------------------------------------------

def counts(app, session: Session) -> dict[str, int]:
    tables = {"users": User, "enrolments": Enrolment, "evidence": Evidence,
              "versions": EvidenceVersion, "signatures": Signature, "events": AuditEvent,
              "files": StoredFile, "centres": Centre, "witness": WitnessRequest}
    out = {name: session.scalar(select(func.count()).select_from(model))
           for name, model in tables.items()}
    objects = Path(app.config["STORAGE_DIR"]) / "objects"
    out["objects"] = sum(1 for p in objects.rglob("*") if p.is_file()) if objects.exists() else 0
    leftovers = Path(app.config["STORAGE_DIR"]) / "tmp"
    out["temp"] = sum(1 for _ in leftovers.iterdir()) if leftovers.exists() else 0
    return out


def rewrite(bundle: Path, out: Path, *, manifest: Callable[[dict], None] | None = None,
            files: Callable[[str, bytes], bytes] | None = None) -> Path:
    with zipfile.ZipFile(bundle) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "manifest.json" and manifest is not None:
                loaded = json.loads(data)
                manifest(loaded)
                data = json.dumps(loaded).encode()
            elif info.filename.startswith("files/") and files is not None:
                data = files(info.filename, data)
            target.writestr(info.filename, data)
    return out


def refused(app, session: Session, path: Path, centre: Centre | None = None) -> list[str]:
    before = counts(app, session)
    with pytest.raises(BundleRefused) as caught:
        run_import(app, session, path, centre)
    session.close()
    assert counts(app, session) == before, "a refused bundle must change nothing"
    return caught.value.problems


@pytest.fixture
def lee_bundle(app, session, tmp_path) -> Path:
    src = make_source(app, session)
    return export_to(app, session, src.learner, tmp_path / "lee.zip")


def _first_signature(m: dict, purpose: str) -> dict:
    return next(s for s in m["signatures"] if s["purpose"] == purpose)


def _edit_snapshot(m: dict) -> None:
    _first_signature(m, "criterion_decision")["content"]["note_md"] = "Met, said nobody."


def _edit_snapshot_and_hash(m: dict) -> None:
    from portfolio.assessment.signing import sha256_of

    signature = _first_signature(m, "criterion_decision")
    signature["content"]["note_md"] = "Met, said nobody."
    signature["content_hash"] = sha256_of(signature["content"])


def _edit_evidence_text(m: dict) -> None:
    version = next(e for e in m["evidence"] if e["kind"] == "reflective_account"
                   and e["status"] == "accepted")["versions"][0]
    version["body_md"] += " And I made the rest up."


def _unknown_unit_version(m: dict) -> None:
    m["units"][0]["version"] = 99
    for e in m["enrolments"]:
        e["unit_version"] = 99


def _flip_byte(name: str, data: bytes) -> bytes:
    return data[:10] + bytes([data[10] ^ 1]) + data[11:]


REFUSALS = {
    "schema: wrong format version": (
        lambda m: m.update(format_version=2), None, "format_version"),
    "schema: signatures missing": (lambda m: m.pop("signatures"), None, "'signatures'"),
    "schema: bad hash": (lambda m: m["files"][0].update(sha256="xyz"), None, "files/0/sha256"),
    "changed file byte": (None, _flip_byte, "do not match its SHA-256"),
    "edited signature snapshot": (_edit_snapshot, None, "snapshot was altered"),
    "edited snapshot with its hash": (_edit_snapshot_and_hash, None, "seal does not match"),
    "edited evidence signed over": (_edit_evidence_text, None, "was valid where it was exported"),
    "unknown unit version": (_unknown_unit_version, None, "bundle was made against version 99"),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_tampered_or_malformed_bundle_is_refused_and_imports_nothing(
        case, lee_bundle, target_app, target, tmp_path):
    edit_manifest, edit_files, expected = REFUSALS[case]
    bad = rewrite(lee_bundle, tmp_path / "bad.zip", manifest=edit_manifest, files=edit_files)
    centre = prepare_target(target)
    problems = refused(target_app, target, bad, centre)
    assert any(expected in p for p in problems), problems


def test_not_a_zip_and_bad_json_are_refused(lee_bundle, target_app, target, tmp_path):
    centre = prepare_target(target)
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"this is not a zip file at all")
    assert "not a ZIP" in refused(target_app, target, junk, centre)[0]
    broken = tmp_path / "broken.zip"
    with zipfile.ZipFile(broken, "w") as archive:
        archive.writestr("manifest.json", b"{\"format\": ")
    assert "not valid JSON" in refused(target_app, target, broken, centre)[0]
    sneaky = rewrite(lee_bundle, tmp_path / "sneaky.zip")
    with zipfile.ZipFile(sneaky, "a") as archive:
        archive.writestr("../../etc/evil", b"x")
    assert "Unexpected entry" in refused(target_app, target, sneaky, centre)[0]


def test_unit_not_loaded_is_refused(lee_bundle, target_app, target):
    centre = make_centre(target, "Main Centre")
    target.commit()
    problems = refused(target_app, target, lee_bundle, centre)
    assert any("R/506/2151" in p and "not loaded" in p for p in problems), problems


def test_id_collision_is_refused_not_renumbered(lee_bundle, target_app, target):
    centre = prepare_target(target)
    run_import(target_app, target, lee_bundle, centre)
    problems = refused(target_app, target, lee_bundle, centre)
    report = "\n".join(problems)
    assert "evidence id(s)" in report and "signatures id(s)" in report
    assert "already enrolled" in report and "nothing was renumbered" in report


def test_person_of_another_centre_is_refused(lee_bundle, target_app, target):
    centre = prepare_target(target)
    make_user(target, make_centre(target, "Elsewhere"), "learner", email="learner@example.org")
    target.commit()
    problems = refused(target_app, target, lee_bundle, centre)
    assert any("learner@example.org belongs to another centre" in p for p in problems)


def test_schema_file_is_a_valid_json_schema_and_matches_exports(lee_bundle):
    from jsonschema import Draft202012Validator

    Draft202012Validator.check_schema(manifest_schema())
    with zipfile.ZipFile(lee_bundle) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        names = set(archive.namelist())
    Draft202012Validator(manifest_schema()).validate(manifest)
    assert {f"files/{f['sha256']}" for f in manifest["files"]} | {"manifest.json"} == names


# --- command line ----------------------------------------------------------------------------

def test_cli_export_and_import_exit_codes(app, session, target_app, target, tmp_path):
    src = make_source(app, session)
    out = tmp_path / "cli.zip"
    result = app.test_cli_runner().invoke(cli, ["bundle", "export", "learner@example.org",
                                                "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.is_file() and "signature(s)" in result.output
    assert session.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.action == "bundle.export", AuditEvent.learner_id == src.learner.id)) == 1
    missing = app.test_cli_runner().invoke(cli, ["bundle", "export", "nobody@example.org",
                                                 "--out", str(tmp_path / "x.zip")])
    assert missing.exit_code == 1 and not (tmp_path / "x.zip").exists()

    prepare_target(target)
    runner = target_app.test_cli_runner()
    bad = rewrite(out, tmp_path / "bad.zip", files=_flip_byte)
    refusal = runner.invoke(cli, ["bundle", "import", str(bad)])
    assert refusal.exit_code == 1
    assert "refused" in refusal.output and "do not match its SHA-256" in refusal.output
    ok = runner.invoke(cli, ["bundle", "import", str(out), "--centre", "Main Centre"])
    assert ok.exit_code == 0, ok.output
    assert "Imported the portfolio of learner@example.org" in ok.output
    again = runner.invoke(cli, ["bundle", "import", str(out)])
    assert again.exit_code == 1 and "already used" in again.output
    verify = runner.invoke(cli, ["signatures", "verify"])
    assert verify.exit_code == 0 and " 0 broken" in verify.output


# --- admin pages -------------------------------------------------------------------------------

def test_admin_downloads_bundle_from_enrolment_page(app, session, web):
    src = make_source(app, session)
    enrolment_id = enrolment_ids(session, "learner@example.org")[0]
    web.login("admin@example.org", PASSWORD)
    page = web.client.get(f"/admin/enrolments/{enrolment_id}").get_data(True)
    assert "Download bundle" in page
    response = web.post(f"/admin/enrolments/{enrolment_id}/bundle")
    assert response.status_code == 200 and response.mimetype == "application/zip"
    assert "attachment" in response.headers["Content-Disposition"]
    with zipfile.ZipFile(io.BytesIO(response.get_data())) as archive:
        manifest = json.loads(archive.read("manifest.json"))
    assert manifest["learner_id"] == src.learner.id
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.action == "bundle.export", AuditEvent.actor_id != None)) == 1  # noqa: E711
    # Without the CSRF token the download is refused.
    assert web.client.post(f"/admin/enrolments/{enrolment_id}/bundle").status_code == 400


def test_admin_import_page_refuses_then_imports(lee_bundle, target_app, target):
    prepare_target(target)
    web = Browserless(target_app.test_client())
    web.login("target-admin@example.org", PASSWORD)
    assert "Import bundle" in web.client.get("/admin/enrolments").get_data(True)
    assert web.client.get("/admin/bundles/import").status_code == 200

    empty = web.post("/admin/bundles/import")
    assert empty.status_code == 422 and "Choose the bundle file" in empty.get_data(True)
    junk = web.post("/admin/bundles/import", data={"bundle": (io.BytesIO(b"nope"), "x.zip")},
                    content_type="multipart/form-data")
    assert junk.status_code == 422
    assert "nothing was imported" in junk.get_data(True)
    assert "not a ZIP" in junk.get_data(True)

    target_app.config["BUNDLE_MAX_MB"] = 0
    big = web.post("/admin/bundles/import",
                   data={"bundle": (io.BytesIO(lee_bundle.read_bytes()), "lee.zip")},
                   content_type="multipart/form-data")
    assert big.status_code == 413 and "limit" in big.get_data(True)
    target_app.config["BUNDLE_MAX_MB"] = 100

    ok = web.post("/admin/bundles/import",
                  data={"bundle": (io.BytesIO(lee_bundle.read_bytes()), "lee.zip")},
                  content_type="multipart/form-data")
    assert ok.status_code == 302, ok.get_data(True)
    assert "Imported the portfolio of learner@example.org" in web.client.get(
        ok.headers["Location"]).get_data(True)
    target.expire_all()
    states = set(verdicts(target).values())
    assert states == {"valid"}
    admin = target.scalar(select(User).where(User.email == "target-admin@example.org"))
    assert target.scalar(select(AuditEvent.actor_id).where(
        AuditEvent.action == "bundle.import")) == admin.id
    assert not list((Path(target_app.config["STORAGE_DIR"]) / "tmp").iterdir())
    enrolment_id = enrolment_ids(target, "learner@example.org")[0]
    history = web.client.get(f"/enrolments/{enrolment_id}/audit").get_data(True)
    assert "imported from a bundle; first recorded" in history


def _reset(app, db_kind: str, template: str) -> None:
    """Empty the app's database (as a fresh instance) in place."""
    engine = get_database(app).engine
    if db_kind == "postgresql":
        with engine.begin() as conn:
            tables = [r[0] for r in conn.execute(text(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                "AND tablename <> 'alembic_version'"))]
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
    else:
        engine.dispose()
        shutil.copyfile(template, engine.url.database)


def test_a_bundle_of_an_imported_portfolio_imports_again(app, session, target_app, target,
                                                         tmp_path, db_kind, _database_template):
    """Source -> second instance -> export again -> a third, fresh instance: the signatures
    still verify, sealed with the ids of the first instance."""
    src = make_source(app, session)
    first = export_to(app, session, src.learner, tmp_path / "first.zip")
    source_verdicts = verdicts(session, enrolment_ids(session, "learner@example.org"))
    before = portfolio_state(session, "learner@example.org")
    session.close()
    run_import(target_app, target, first, prepare_target(target))
    learner = target.scalar(select(User).where(User.email == "learner@example.org"))
    second = export_to(target_app, target, learner, tmp_path / "second.zip")

    _reset(app, db_kind, _database_template)
    third = get_database(app).sessionmaker()
    try:
        load_unit40(third)
        make_centre(third, "Main Centre")
        make_user(third, third.scalar(select(Centre)), "admin", email="third@example.org")
        third.commit()
        report = run_import(app, third, second)
        assert report.signatures_valid == len(source_verdicts)
        assert verdicts(third) == source_verdicts
        assert portfolio_state(third, "learner@example.org") == before
        assert verify_chain(third)[1] == []
    finally:
        third.close()


def test_commit_failure_removes_the_placed_files(lee_bundle, target_app, target, monkeypatch):
    centre = prepare_target(target)
    before = counts(target_app, target)

    def failing_commit() -> None:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(target, "commit", failing_commit)
    with pytest.raises(RuntimeError):
        run_import(target_app, target, lee_bundle, centre)
    monkeypatch.undo()
    target.close()
    assert counts(target_app, target) == before
