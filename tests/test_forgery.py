"""Forged portfolio PDFs, made the way an attacker would, are refused by the CLI and /verify.

Each test makes one genuine export (they are slow) and derives every forgery from its bytes:
re-signed with an attacker's key (also one whose certificate copies the centre's subject), a
second signature or new page text appended in an incremental update, an attachment swapped
(re-signed, and appended without re-signing), page text added, and the centre's real key over
a file it never exported. Rotated keys still verify older exports; a file signed with another
centre's key is refused and names that centre.
"""

from __future__ import annotations

import io
import re
import tempfile
from pathlib import Path

import pikepdf
import pytest
from cryptography import x509
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import signers
from sqlalchemy import select

from portfolio.assessment.services import review_evidence
from portfolio.cli import cli
from portfolio.evidence.services import withdraw_evidence
from portfolio.evidence.storage import FileStore
from portfolio.export import keys
from portfolio.export.services import export_portfolio, verify_export
from portfolio.export.signing import load_signer, sign_pdf
from portfolio.models import Centre, Export, Signature
from tests.factories import make_evidence, make_world

STATIC = Path(__file__).resolve().parent.parent / "static"
SWAPPED = b"%PDF-1.4\n% a letter the learner never wrote\n%%EOF\n"
ADDED_TEXT = "All criteria met - signed Asha Assessor"

# outcome -> (CLI exit code, CLI headline, page status, page heading)
OUTCOMES = {
    "intact and current": (0, "GENUINE AND CURRENT", 200,
                           "Genuine, and the portfolio is unchanged"),
    "intact but changed": (3, "GENUINE, BUT THE PORTFOLIO HAS CHANGED", 200,
                           "Genuine, but the portfolio has changed since"),
    "altered": (4, "ALTERED", 422, "Altered: do not rely on this file"),
    "not signed by this centre": (5, "SIGNED, BUT NOT BY THIS CENTRE", 422,
                                  "Signed, but not by this centre"),
    "not one of our exports": (6, "NOT ONE OF OUR EXPORTS", 422, "Not one of our exports"),
    "not a signed PDF": (7, "NOT A SIGNED PDF", 422, "Not a signed PDF"),
}


@pytest.fixture
def app(make_app, tmp_path, monkeypatch):
    # A private instance folder: these tests make, adopt and rotate keys, which must not
    # reach the single key other tests share in the suite's instance folder.
    monkeypatch.setenv("PORTFOLIO_INSTANCE_PATH", str(tmp_path / "instance"))
    return make_app(WITNESS_RATE_LIMIT=1000)


def _centre_ids(session) -> dict[str, int]:
    return {name: cid for cid, name in session.execute(select(Centre.id, Centre.name))}


@pytest.fixture
def genuine(app, session, tmp_path):
    """One real export of the Main Centre learner, signed with that centre's own key."""
    world = make_world(session, app.config["STORAGE_DIR"])
    # A declaration invalidated *before* the export: not a change since the export.
    early = make_evidence(session, world.enrolment, world.learner, title="Early account",
                          maps=("1.1",), submit=True)
    review_evidence(session, early, actor=world.assessor, outcome="referred",
                    feedback_md="Say what you did.", varcs={}, expected_version=1)
    withdraw_evidence(session, early, actor=world.learner, reason="Replaced by another")
    session.commit()
    assert session.scalar(select(Signature).where(
        Signature.enrolment_id == world.enrolment.id, Signature.invalidated_at.is_not(None)))

    result = app.test_cli_runner().invoke(cli, ["keys", "init", "--if-missing"])
    assert result.exit_code == 0, result.output
    out = tmp_path / "genuine.pdf"
    with app.test_request_context():
        export = export_portfolio(session, world.enrolment, actor=world.assessor,
                                  config=app.config, instance_path=Path(app.instance_path),
                                  static_dir=STATIC,
                                  store=FileStore(Path(app.config["STORAGE_DIR"])),
                                  verify_base="https://portfolio.example/verify", out=out)
    session.commit()
    return world, export, out


def _attacker(tmp_path: Path, centre_name: str) -> signers.Signer:
    """A key and self-signed certificate an attacker makes, with any subject they like."""
    key_pem, cert_pem = keys._new_key_and_certificate(centre_name)
    folder = Path(tempfile.mkdtemp(dir=tmp_path))
    (folder / "key.pem").write_bytes(key_pem)
    (folder / "cert.pem").write_bytes(cert_pem)
    return signers.SimpleSigner.load(str(folder / "key.pem"), str(folder / "cert.pem"))


def _rewritten(pdf: bytes, change=None) -> bytes:
    """Remove the signature (field and widget) and optionally change the document; rewrite."""
    with pikepdf.open(io.BytesIO(pdf)) as doc:
        if "/AcroForm" in doc.Root:
            del doc.Root.AcroForm
        for page in doc.pages:
            if "/Annots" in page:
                page.Annots = pikepdf.Array([a for a in page.Annots if a.get("/FT") != "/Sig"])
        if change is not None:
            change(doc)
        out = io.BytesIO()
        doc.save(out)
        return out.getvalue()


def _swap_attachment(doc: pikepdf.Pdf) -> None:
    name = next(n for n in doc.attachments if n.endswith("complaint-letter.pdf"))
    doc.attachments[name] = pikepdf.AttachedFileSpec(doc, SWAPPED, filename=name)


def _add_text(doc: pikepdf.Pdf) -> None:
    page = doc.pages[1]
    font = page.add_resource(pikepdf.Dictionary(Type=pikepdf.Name.Font,
                                                Subtype=pikepdf.Name.Type1,
                                                BaseFont=pikepdf.Name.Helvetica),
                             pikepdf.Name.Font)
    page.contents_add(pikepdf.Stream(doc, f"BT {font} 14 Tf 72 72 Td ({ADDED_TEXT}) Tj ET"
                                     .encode()), prepend=False)


def _blank_pdf() -> bytes:
    doc = pikepdf.new()
    doc.add_blank_page()
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()


def _signed(pdf: bytes, signer: signers.Signer, field: str = "CentreSignature") -> bytes:
    return sign_pdf(pdf, signer, reason="Portfolio", location="Main Centre", field_name=field)


def _appended_text(pdf: bytes) -> bytes:
    """An incremental update after the signature that writes on page 2."""
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)
    name = generic.NameObject
    font = generic.DictionaryObject({name("/Type"): name("/Font"),
                                     name("/Subtype"): name("/Type1"),
                                     name("/BaseFont"): name("/Helvetica")})
    resources = generic.DictionaryObject({name("/Font"): generic.DictionaryObject(
        {name("/FForged"): writer.add_object(font)})})
    stream = generic.StreamObject(
        stream_data=f"BT /FForged 14 Tf 72 72 Td ({ADDED_TEXT}) Tj ET".encode())
    writer.add_stream_to_page(1, writer.add_object(stream), resources=resources)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _appended_attachment(pdf: bytes) -> bytes:
    """An incremental update after the signature that replaces an embedded file's bytes."""
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)

    def find(node):
        node = node.get_object()
        names = node.get("/Names")
        if names is not None:
            for i in range(0, len(names), 2):
                if str(names[i]).endswith("complaint-letter.pdf"):
                    return names.raw_get(i + 1)
        for kid in node.get("/Kids", []):
            found = find(kid)
            if found is not None:
                return found
        return None

    ref = find(writer.root["/Names"].raw_get("/EmbeddedFiles"))
    spec = ref.get_object()
    name = generic.NameObject
    fake = generic.StreamObject({name("/Type"): name("/EmbeddedFile")}, stream_data=SWAPPED)
    spec[name("/EF")] = generic.DictionaryObject({name("/F"): writer.add_object(fake)})
    writer.mark_update(ref)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


class Checker:
    """Runs one file through `portfolio verify` and the public /verify page."""

    def __init__(self, app, tmp_path: Path) -> None:
        self.app, self.tmp_path, self.runner = app, tmp_path, app.test_cli_runner()
        self.client = app.test_client()
        page = self.client.get("/verify").get_data(True)
        self.token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        self.count = 0

    def __call__(self, data: bytes, state: str, *phrases: str) -> tuple[str, str]:
        code, headline, status, heading = OUTCOMES[state]
        self.count += 1
        path = self.tmp_path / f"case-{self.count}.pdf"
        path.write_bytes(data)
        result = self.runner.invoke(cli, ["verify", str(path)])
        assert result.exit_code == code, (state, result.output)
        assert headline in result.output, result.output
        response = self.client.post("/verify", data={"csrf_token": self.token,
                                                     "pdf": (io.BytesIO(data), "p.pdf")},
                                    content_type="multipart/form-data")
        html = response.get_data(True)
        assert response.status_code == status, (state, html[:2000])
        assert heading in html and f'data-outcome="{state}"' in html, html[:3000]
        for phrase in phrases:
            assert phrase in result.output, (phrase, result.output)
            assert phrase in html.replace("&#34;", '"').replace("&#39;", "'"), phrase
        return result.output, html


def _fingerprint_shown(fingerprint: str) -> str:
    return keys.format_fingerprint(fingerprint)


def test_the_genuine_export_verifies_with_who_signed_it(app, session, genuine, tmp_path):
    world, export, out = genuine
    check = Checker(app, tmp_path)
    ids = _centre_ids(session)
    centre_cert = keys.trusted_certificates(app.config, Path(app.instance_path),
                                            ids["Main Centre"])[0]
    assert export.signer_fingerprint == centre_cert.fingerprint
    # The declaration invalidated before the export is no change since it.
    output, html = check(out.read_bytes(), "intact and current",
                         "Main Centre e-portfolio exports",
                         _fingerprint_shown(centre_cert.fingerprint))
    assert "Signed on" in html and "What to do" in html
    link = check.client.get(f"/verify/{export.public_id}").get_data(True)
    assert "Genuine, and the portfolio is unchanged" in link
    assert _fingerprint_shown(centre_cert.fingerprint) in link
    # A change after the export is reported, and only that.
    make_evidence(session, world.enrolment, world.learner, title="A later account",
                  maps=("1.4",), submit=True)
    session.commit()
    verdict = verify_export(session, out, config=app.config,
                            instance_path=Path(app.instance_path))
    assert verdict.state == "intact but changed"
    assert not any("invalidated" in change for change in verdict.changes), verdict.changes
    assert any("was added" in change for change in verdict.changes), verdict.changes


def test_forgeries_are_refused_by_the_cli_and_the_page(app, session, genuine, tmp_path):
    world, export, out = genuine
    pdf = out.read_bytes()
    check = Checker(app, tmp_path)
    ids = _centre_ids(session)
    instance = Path(app.instance_path)
    attacker = _attacker(tmp_path, "Attacker Ltd")
    lookalike = _attacker(tmp_path, "Main Centre")  # the same subject as the centre's cert
    attacker_print = keys.fingerprint_of(attacker.signing_cert.dump())
    lookalike_print = keys.fingerprint_of(lookalike.signing_cert.dump())
    centre_cert = keys.trusted_certificates(app.config, instance, ids["Main Centre"])[0]
    real = x509.load_pem_x509_certificate(centre_cert.path.read_bytes())
    assert lookalike.signing_cert.subject.dump() == real.subject.public_bytes()  # same name
    assert lookalike_print != centre_cert.fingerprint

    # Re-signed with an attacker's key, content unchanged: refused, naming the signer.
    check(_signed(_rewritten(pdf), attacker), "not signed by this centre",
          "Attacker Ltd e-portfolio exports", _fingerprint_shown(attacker_print))
    # The same, with a certificate copying the centre's name: the fingerprint gives it away.
    _out, html = check(_signed(_rewritten(pdf), lookalike), "not signed by this centre",
                       "Main Centre e-portfolio exports", _fingerprint_shown(lookalike_print))
    assert _fingerprint_shown(centre_cert.fingerprint) not in html
    # An attachment swapped, re-signed by the attacker: refused, and the swap named.
    check(_signed(_rewritten(pdf, _swap_attachment), lookalike), "not signed by this centre",
          "complaint-letter.pdf", "is not the file the portfolio listed")
    # Page text added, re-signed by the attacker.
    forged = _signed(_rewritten(pdf, _add_text), lookalike)
    check(forged, "not signed by this centre", "bytes differ from export")
    # A second signature, by another key, in an incremental update on the genuine file.
    check(_signed(pdf, lookalike, field="Approval"), "altered",
          "a further signature was added", _fingerprint_shown(lookalike_print))
    # Page text appended in an incremental update, not re-signed.
    check(_appended_text(pdf), "altered", "content was added after signing",
          "changing page 2")
    # An attachment swapped in an incremental update, not re-signed.
    check(_appended_attachment(pdf), "altered", "content was added after signing",
          "complaint-letter.pdf")
    # An attachment's bytes edited in place (no update at all): the digest breaks.
    with pikepdf.open(io.BytesIO(pdf)) as doc:
        name = next(n for n in doc.attachments if n.endswith("complaint-letter.pdf"))
        original = doc.attachments[name].get_file().read_bytes()
    assert pdf.count(original) == 1  # stored uncompressed: find it and change one byte
    at = pdf.index(original) + len(original) // 2
    edited = pdf[:at] + bytes([pdf[at] ^ 0x20]) + pdf[at + 1:]
    check(edited, "altered", "modified after signing", "complaint-letter.pdf")
    # The centre's real key over a file it never exported (a stolen key, or a signing
    # service misused): a genuine signature, but not one of our exports.
    centre_signer = load_signer(app.config, instance, ids["Main Centre"])
    check(_signed(_blank_pdf(), centre_signer), "not one of our exports",
          _fingerprint_shown(centre_cert.fingerprint))
    check(_signed(_rewritten(pdf, _add_text), centre_signer), "not one of our exports",
          "bytes differ from export")
    # No signature at all, and not a PDF.
    check(_rewritten(pdf), "not a signed PDF")
    check(b"GIF89a not a pdf at all", "not a signed PDF")
    assert session.scalar(select(Export).where(Export.id != export.id)) is None


def test_rotated_keys_still_verify_and_another_centres_key_is_named(app, session, genuine,
                                                                     tmp_path):
    world, export, out = genuine
    pdf = out.read_bytes()
    instance = Path(app.instance_path)
    ids = _centre_ids(session)
    runner = app.test_cli_runner()
    old = keys.trusted_certificates(app.config, instance, ids["Main Centre"])[0]

    result = runner.invoke(cli, ["keys", "rotate", "--centre", "Main Centre"])
    assert result.exit_code == 0, result.output
    new = keys.trusted_certificates(app.config, instance, ids["Main Centre"])
    assert new[0].status == "current" and new[0].fingerprint != old.fingerprint
    assert {c.fingerprint: c.status for c in new}[old.fingerprint] == "retired"
    listing = runner.invoke(cli, ["keys", "list"])
    assert listing.exit_code == 0
    for fingerprint in (old.fingerprint, new[0].fingerprint):
        assert keys.format_fingerprint(fingerprint) in listing.output
    assert "retired" in listing.output and "Far Centre" in listing.output
    # New exports are signed with the new key; the old private key is gone.
    signer = load_signer(app.config, instance, ids["Main Centre"])
    assert keys.fingerprint_of(signer.signing_cert.dump()) == new[0].fingerprint
    assert not any(p.name.endswith("key.pem")
                   for p in (keys.centre_folder(app.config, instance, ids["Main Centre"])
                             / "retired").iterdir())

    check = Checker(app, tmp_path)
    _output, html = check(pdf, "intact and current", keys.format_fingerprint(old.fingerprint))
    assert "an earlier key of Main Centre" in html

    # Main Centre's portfolio, signed with Far Centre's key: refused, naming Far Centre.
    far = load_signer(app.config, instance, ids["Far Centre"])
    far_print = keys.fingerprint_of(far.signing_cert.dump())
    assert far_print not in {c.fingerprint for c in new}
    check(_signed(_rewritten(pdf), far), "not signed by this centre", "Far Centre",
          keys.format_fingerprint(far_print))
    # Even when recorded as Main Centre's export (a misconfigured signer), it is refused.
    crossed = _signed(_rewritten(pdf), far)
    import hashlib

    session.add(Export(enrolment_id=world.enrolment.id, public_id="x" * 43,
                       filename="crossed.pdf", sha256=hashlib.sha256(crossed).hexdigest(),
                       size=len(crossed), pages=export.pages, manifest=export.manifest,
                       signer_fingerprint=far_print))
    session.commit()
    check(crossed, "not signed by this centre", "Far Centre", "belongs to Main Centre")


def test_verify_uploads_have_a_size_limit_and_leave_no_temporary_file(make_app, tmp_path,
                                                                       monkeypatch):
    app = make_app(VERIFY_MAX_MB=1, WITNESS_RATE_LIMIT=1000)
    client = app.test_client()
    page = client.get("/verify").get_data(True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    # A temporary folder of this test's own: the other database's run, side by side, makes
    # and removes its own verify-* files in the shared one.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    folder = Path(tempfile.gettempdir())
    before = set(folder.glob("verify-*"))

    def post(size: int):
        body = b"%PDF-1.7\n" + b"0" * (size - 9)
        return client.post("/verify", data={"csrf_token": token,
                                            "pdf": (io.BytesIO(body), "big.pdf")},
                           content_type="multipart/form-data")

    # Far over: refused before the body is read.
    response = post(5 * 1024 * 1024)
    assert response.status_code == 413
    assert "larger than 1 MB" in response.get_data(True)
    # Just over (the form fits, the file does not): refused while copying, nothing kept.
    response = post(1024 * 1024 + 1000)
    assert response.status_code == 413 and "larger than 1 MB" in response.get_data(True)
    # Within the limit: checked from the temporary file, which is removed afterwards.
    response = post(1024 * 1024 - 1000)
    assert response.status_code == 422 and "Not a signed PDF" in response.get_data(True)
    assert set(folder.glob("verify-*")) == before


def test_keys_init_gives_each_centre_its_own_key_and_reports_missing_ones(app, session,
                                                                         tmp_path):
    from tests.factories import make_centre

    shared = tmp_path / "shared-mount"
    app.config["SIGNING_KEYS_DIR"] = str(shared)
    instance = Path(app.instance_path)
    make_centre(session, "North")
    make_centre(session, "South")
    session.commit()
    ids = _centre_ids(session)
    assert sorted(keys.missing_signing_keys(app.config, instance, session)) == ["North", "South"]
    # An older single key: adopted by the first centre, still trusted for the other's exports.
    legacy = keys.init_centre_key(instance, "North")
    legacy_print = keys.trusted_certificates(app.config, instance, ids["North"])[0].fingerprint
    runner = app.test_cli_runner()
    result = runner.invoke(cli, ["keys", "init", "--centre", "South"])
    assert result.exit_code == 0, result.output
    assert keys.missing_signing_keys(app.config, instance, session) == ["North"]
    result = runner.invoke(cli, ["keys", "init", "--if-missing"])
    assert result.exit_code == 0, result.output
    assert keys.missing_signing_keys(app.config, instance, session) == []
    assert not legacy.key_path.exists()  # the single private key is not left lying around
    north = keys.trusted_certificates(app.config, instance, ids["North"])
    south = keys.trusted_certificates(app.config, instance, ids["South"])
    assert north[0].fingerprint == legacy_print and north[0].status == "current"
    assert {c.fingerprint: c.status for c in south}[legacy_print] == "retired"
    assert south[0].fingerprint != legacy_print
    assert (shared / f"centre-{ids['South']}" / "key.pem").stat().st_mode & 0o077 == 0
    # Without --if-missing an existing key is not replaced silently.
    again = runner.invoke(cli, ["keys", "init", "--centre", "North"])
    assert again.exit_code == 1 and "keys rotate" in again.output
    assert runner.invoke(cli, ["keys", "init", "--centre", "Nowhere"]).exit_code == 1


def test_a_configured_pkcs12_key_signs_and_is_trusted(app, session, tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.serialization import pkcs12

    from tests.factories import make_centre

    make_centre(session, "Only Centre")
    session.commit()
    key_pem, cert_pem = keys._new_key_and_certificate("Only Centre PKCS12")
    store = tmp_path / "centre.p12"
    store.write_bytes(pkcs12.serialize_key_and_certificates(
        b"centre", serialization.load_pem_private_key(key_pem, None),
        x509.load_pem_x509_certificate(cert_pem), None,
        serialization.BestAvailableEncryption(b"secret")))
    instance = Path(app.instance_path)
    assert keys.missing_signing_keys(app.config, instance, session) == ["Only Centre"]
    config = {**app.config, "SIGNING_PKCS12": str(store), "SIGNING_PKCS12_PASSPHRASE": "secret"}
    assert keys.missing_signing_keys(config, instance, session) == []
    signed = _signed(_blank_pdf(), load_signer(config, instance, None))
    path = tmp_path / "p12.pdf"
    path.write_bytes(signed)
    # Trusted (a genuine centre signature), though the file was never exported here.
    assert verify_export(session, path, config=config,
                         instance_path=instance).state == "not one of our exports"
    assert verify_export(session, path, config=app.config,
                         instance_path=instance).state == "not signed by this centre"
