"""PAdES signing of portfolio exports and both verifiers (pyHanko and poppler's pdfsig)."""

from __future__ import annotations

import hashlib
import io
import re
import stat
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pypdf
import pytest
import weasyprint
from asn1crypto import tsp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pyhanko.keys import load_cert_from_pemder, load_private_key_from_pemder_data
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.timestamps import DummyTimeStamper

from portfolio.export import signing
from portfolio.export.signing import (
    CentreKey,
    check_pdf_signature,
    init_centre_key,
    load_signer,
    pdfsig_check,
    sign_pdf,
)

CENTRE = "Northgate Training Centre"
HTML = "<title>Portfolio of A. Learner</title><h1>Portfolio</h1><p>Evidence and sign-off.</p>"

needs_pdfsig = pytest.mark.skipif(
    signing.shutil.which("pdfsig") is None, reason="poppler-utils (pdfsig) not installed"
)


# --- fixtures ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("instance")


@pytest.fixture(scope="module")
def centre_key(instance: Path) -> CentreKey:
    return init_centre_key(instance, CENTRE)


@pytest.fixture(scope="module")
def signer(centre_key: CentreKey, instance: Path):
    return load_signer({}, instance)


@pytest.fixture(scope="module")
def trust_pem(centre_key: CentreKey) -> bytes:
    return centre_key.cert_path.read_bytes()


@pytest.fixture(scope="module")
def plain_pdf() -> bytes:
    return weasyprint.HTML(string=HTML).write_pdf()


@pytest.fixture(scope="module")
def pdfa_with_attachment() -> bytes:
    attachment = weasyprint.Attachment(
        string="unit,criterion,evidence\nU1,1.1,Witness statement\n",
        name="evidence-map.csv",
        description="Evidence map",
    )
    return weasyprint.HTML(string=HTML).write_pdf(pdf_variant="pdf/a-3b", attachments=[attachment])


@pytest.fixture(scope="module")
def signed(plain_pdf: bytes, signer) -> bytes:
    return sign_pdf(plain_pdf, signer, reason="Portfolio export", location="Northgate")


def _self_signed(common_name: str, *, eku=None, use_rsa: bool = False):
    """Return (cryptography key, cryptography cert) for a throwaway EC P-256 or RSA identity."""
    key = (
        rsa.generate_private_key(65537, 2048)
        if use_rsa
        else ec.generate_private_key(ec.SECP256R1())
    )
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=30))
    )
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=True)
    return key, builder.sign(key, hashes.SHA256())


def _byte_range(pdf: bytes) -> list[int]:
    match = list(re.finditer(rb"/ByteRange\s*\[\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*\]", pdf))[-1]
    return [int(g) for g in match.groups()]


def _flip_byte_in_signed_stream(pdf: bytes) -> bytes:
    """Change one byte in the middle of the largest stream in the signed (original) part."""
    _, len1, _, _ = _byte_range(pdf)
    spans = [
        (m.end(), pdf.index(b"endstream", m.end()))
        for m in re.finditer(rb"stream\r?\n", pdf[:len1])
        if pdf[m.start() - 3 : m.start()] != b"end"
    ]
    start, end = max(spans, key=lambda s: s[1] - s[0])
    assert end <= len1 and end - start > 16
    pos = (start + end) // 2
    tampered = bytearray(pdf)
    tampered[pos] ^= 0x01
    return bytes(tampered)


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# --- key management ---------------------------------------------------------------------


def test_init_centre_key_creates_private_key_and_certificate(centre_key, instance):
    assert centre_key.key_path == instance / "signing" / "centre-key.pem"
    assert centre_key.cert_path == instance / "signing" / "centre-cert.pem"
    assert stat.S_IMODE(centre_key.key_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(centre_key.key_path.parent.stat().st_mode) == 0o700

    key = serialization.load_pem_private_key(centre_key.key_path.read_bytes(), password=None)
    cert = x509.load_pem_x509_certificate(centre_key.cert_path.read_bytes())
    assert cert.public_key().public_numbers() == key.public_key().public_numbers()
    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    org = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value
    assert cn == f"{CENTRE} e-portfolio exports"
    assert org == CENTRE
    assert cert.issuer == cert.subject
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.content_commitment
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert timedelta(days=3650) <= lifetime <= timedelta(days=3660)


def test_init_centre_key_refuses_to_overwrite(tmp_path):
    first = init_centre_key(tmp_path, "Old Centre")
    before = first.key_path.read_bytes()
    with pytest.raises(FileExistsError, match="overwrite"):
        init_centre_key(tmp_path, "New Centre")
    assert first.key_path.read_bytes() == before

    second = init_centre_key(tmp_path, "New Centre", overwrite=True)
    assert second.key_path.read_bytes() != before
    assert stat.S_IMODE(second.key_path.stat().st_mode) == 0o600
    cert = x509.load_pem_x509_certificate(second.cert_path.read_bytes())
    assert "New Centre" in cert.subject.rfc4514_string()
    assert not list(first.key_path.parent.glob("*.tmp"))


def test_load_signer_without_any_key_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="portfolio keys init"):
        load_signer({}, tmp_path)
    with pytest.raises(FileNotFoundError, match="PORTFOLIO_SIGNING_PKCS12"):
        load_signer({"SIGNING_PKCS12": ""}, tmp_path)


# --- sign and verify --------------------------------------------------------------------


@needs_pdfsig
@pytest.mark.parametrize("which", ["plain_pdf", "pdfa_with_attachment"])
def test_signed_pdf_verifies_with_both_verifiers(which, request, signer, trust_pem, tmp_path):
    pdf = request.getfixturevalue(which)
    before = datetime.now(UTC)
    out = sign_pdf(pdf, signer, reason="Portfolio export", location="Northgate")
    assert out.startswith(pdf)  # incremental update: the original bytes are untouched

    check = check_pdf_signature(out, trust_cert_pem=trust_pem)
    assert check.intact and check.valid and check.trusted
    assert check.covers_whole_file
    assert check.problem == ""
    assert check.signer == f"{CENTRE} e-portfolio exports"
    assert check.signed_at is not None and check.signed_at.tzinfo is not None
    assert check.signed_at.utcoffset() == timedelta(0)
    assert before - timedelta(seconds=2) <= check.signed_at <= datetime.now(UTC)

    ok, output = pdfsig_check(_write(tmp_path, "signed.pdf", out))
    assert ok, output
    assert "Signature is Valid." in output


def test_signature_is_pades_baseline(signed):
    sig = PdfFileReader(io.BytesIO(signed)).embedded_signatures[-1]
    assert sig.field_name == "CentreSignature"
    assert sig.sig_object["/SubFilter"] == "/ETSI.CAdES.detached"
    assert sig.sig_object["/Reason"] == "Portfolio export"
    assert sig.sig_object["/Location"] == "Northgate"
    assert sig.md_algorithm == "sha256"
    signed_attrs = {a["type"].native for a in sig.signer_info["signed_attrs"]}
    assert "signing_certificate_v2" in signed_attrs  # ESS cert binding (PAdES B-B)
    assert "signing_time" not in signed_attrs  # PAdES puts the claimed time in /M instead


def test_without_trust_root_signature_is_intact_but_untrusted(signed):
    check = check_pdf_signature(signed)
    assert check.intact and check.valid and check.covers_whole_file
    assert not check.trusted
    assert "untrusted" in check.problem


def test_another_centres_certificate_is_not_a_trust_root(signed):
    _, other = _self_signed("Some Other Centre")
    check = check_pdf_signature(
        signed, trust_cert_pem=other.public_bytes(serialization.Encoding.PEM)
    )
    assert check.intact and check.valid and not check.trusted
    assert "not trusted" in check.problem


def test_a_certificate_with_the_centres_own_name_is_not_trusted(signed, trust_pem, tmp_path):
    from portfolio.export.keys import _new_key_and_certificate

    _key, lookalike = _new_key_and_certificate(CENTRE)  # same subject, different key
    real = x509.load_pem_x509_certificate(trust_pem)
    assert x509.load_pem_x509_certificate(lookalike).subject == real.subject
    check = check_pdf_signature(signed, trust_cert_pem=lookalike)
    assert check.intact and check.valid and not check.trusted
    genuine = check_pdf_signature(signed, trust_cert_pem=trust_pem)
    assert genuine.trusted and genuine.fingerprint == hashlib.sha256(
        real.public_bytes(serialization.Encoding.DER)).hexdigest()


def test_a_centre_key_that_does_not_match_its_certificate_is_refused(tmp_path):
    from portfolio.export import keys

    config = {"SIGNING_KEYS_DIR": str(tmp_path / "keys")}
    paths = keys.init_centre_signing_key(config, tmp_path, 7, "Seventh Centre")
    assert stat.S_IMODE(paths.key_path.stat().st_mode) == 0o600
    signer = load_signer(config, tmp_path, 7)
    assert keys.fingerprint_of(signer.signing_cert.dump()) == keys.trusted_certificates(
        config, tmp_path, 7)[0].fingerprint
    other_key, _cert = keys._new_key_and_certificate("Seventh Centre")
    paths.key_path.write_bytes(other_key)
    with pytest.raises(ValueError, match="do not belong together"):
        load_signer(config, tmp_path, 7)


def test_unreadable_trust_root_is_ignored(signed):
    check = check_pdf_signature(signed, trust_cert_pem=b"not a certificate")
    assert check.intact and check.valid and not check.trusted


@needs_pdfsig
def test_one_changed_byte_fails_both_verifiers(signed, trust_pem, tmp_path):
    tampered = _flip_byte_in_signed_stream(signed)
    assert len(tampered) == len(signed) and tampered != signed

    check = check_pdf_signature(tampered, trust_cert_pem=trust_pem)
    assert not check.intact and not check.valid and not check.trusted
    assert "modified" in check.problem

    ok, output = pdfsig_check(_write(tmp_path, "tampered.pdf", tampered))
    assert not ok, output


@needs_pdfsig
def test_one_changed_byte_anywhere_outside_contents_is_never_accepted(signed, trust_pem, tmp_path):
    # A byte in the middle of the file may land in PDF syntax rather than a stream: the
    # file might then not even parse, but neither verifier may call it valid.
    _, len1, start2, _ = _byte_range(signed)
    for pos in (len1 // 3, len1 // 2, start2 + 5):
        tampered = bytearray(signed)
        tampered[pos] = ord("#") if tampered[pos] != ord("#") else ord("%")
        tampered = bytes(tampered)
        assert not check_pdf_signature(tampered, trust_cert_pem=trust_pem).valid
        ok, output = pdfsig_check(_write(tmp_path, f"t{pos}.pdf", tampered))
        assert not ok, output


def test_appended_bytes_are_reported(signed, trust_pem):
    check = check_pdf_signature(signed + b"\n% appended after signing\n", trust_cert_pem=trust_pem)
    assert check.intact and check.valid
    assert not check.covers_whole_file
    assert "after signing" in check.problem


def test_incremental_update_after_signing_is_reported(signed, trust_pem):
    writer = pypdf.PdfWriter(io.BytesIO(signed), incremental=True)
    writer.add_blank_page()
    buffer = io.BytesIO()
    writer.write(buffer)
    check = check_pdf_signature(buffer.getvalue(), trust_cert_pem=trust_pem)
    assert check.intact
    assert not check.covers_whole_file


@pytest.mark.parametrize(
    "data, problem",
    [
        (b"", "not a readable PDF"),
        (b"this is not a pdf at all \x00\xff" * 50, "not a readable PDF"),
        (b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog", "not a readable PDF"),
    ],
)
def test_garbage_is_reported_not_raised(data, problem):
    check = check_pdf_signature(data)
    assert not check.intact and not check.valid and not check.covers_whole_file
    assert problem in check.problem


def test_unsigned_pdf_has_no_signature(plain_pdf):
    check = check_pdf_signature(plain_pdf)
    assert not check.intact and not check.valid
    assert check.problem == "no signature"
    assert check.signed_at is None


def test_truncated_signed_pdf_is_reported_not_raised(signed):
    check = check_pdf_signature(signed[: len(signed) - 200])
    assert not check.valid
    assert check.problem


@needs_pdfsig
def test_pdfsig_rejects_unsigned_and_missing_tool(plain_pdf, signed, tmp_path, monkeypatch):
    ok, output = pdfsig_check(_write(tmp_path, "unsigned.pdf", plain_pdf))
    assert not ok
    signed_path = _write(tmp_path, "signed.pdf", signed)
    monkeypatch.setattr(signing.shutil, "which", lambda _name: None)
    ok, output = pdfsig_check(signed_path)
    assert not ok and "not installed" in output


# --- PDF/A and metadata -----------------------------------------------------------------


def test_pdfa_signing_keeps_xmp_and_info_consistent(pdfa_with_attachment, signer):
    out = sign_pdf(pdfa_with_attachment, signer, reason="Portfolio export", location="Northgate")
    reader = pypdf.PdfReader(io.BytesIO(out))
    xmp = reader.trailer["/Root"]["/Metadata"].get_object().get_data().decode()
    assert 'pdfaid:part="3"' in xmp and 'pdfaid:conformance="B"' in xmp
    # The original Info dict (WeasyPrint's Producer, Title) is replaced by a fresh one that
    # only carries the Producer pyHanko also writes to the XMP packet.
    info = dict(reader.metadata or {})
    assert set(info) <= {"/Producer"}
    producer = re.search(r'pdf:Producer="([^"]*)"', xmp)
    assert producer and info.get("/Producer", producer.group(1)) == producer.group(1)
    # The attachment survives signing.
    assert "evidence-map.csv" in reader.attachments


def test_non_pdfa_keeps_its_info_dict(signed):
    info = pypdf.PdfReader(io.BytesIO(signed)).metadata
    assert info is not None and info.title == "Portfolio of A. Learner"


# --- other key sources and timestamps ---------------------------------------------------


@pytest.mark.parametrize("passphrase", [b"s3cret pass", "s3cret pass"])
def test_pkcs12_key_store_loads_and_signs(passphrase, tmp_path, plain_pdf):
    key, cert = _self_signed("PKCS12 Centre e-portfolio exports")
    p12 = pkcs12.serialize_key_and_certificates(
        b"centre",
        key,
        cert,
        None,
        serialization.BestAvailableEncryption(b"s3cret pass"),
    )
    p12_path = _write(tmp_path, "centre.p12", p12)
    config = {"SIGNING_PKCS12": str(p12_path), "SIGNING_PKCS12_PASSPHRASE": passphrase}

    pkcs12_signer = load_signer(config, tmp_path / "empty-instance")
    out = sign_pdf(plain_pdf, pkcs12_signer, reason="Export", location="Leeds")
    check = check_pdf_signature(out, trust_cert_pem=cert.public_bytes(serialization.Encoding.PEM))
    assert check.intact and check.valid and check.trusted and check.covers_whole_file
    assert check.signer == "PKCS12 Centre e-portfolio exports"

    with pytest.raises(ValueError, match="passphrase"):
        load_signer({**config, "SIGNING_PKCS12_PASSPHRASE": "wrong"}, tmp_path)
    with pytest.raises(FileNotFoundError):
        load_signer({"SIGNING_PKCS12": str(tmp_path / "missing.p12")}, tmp_path)


@pytest.fixture()
def local_tsa(tmp_path: Path):
    """Serve RFC 3161 time-stamps over HTTP on localhost with pyHanko's test time-stamper."""
    # pyHanko's DummyTimeStamper only signs with RSA keys.
    key, cert = _self_signed("Test TSA", eku=[ExtendedKeyUsageOID.TIME_STAMPING], use_rsa=True)
    cert_path = _write(tmp_path, "tsa.pem", cert.public_bytes(serialization.Encoding.PEM))
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    stamper = DummyTimeStamper(
        tsa_cert=load_cert_from_pemder(str(cert_path)),
        tsa_key=load_private_key_from_pemder_data(key_pem, passphrase=None),
    )

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            response = stamper.request_tsa_response(tsp.TimeStampReq.load(body)).dump()
            self.send_response(200)
            self.send_header("Content-Type", "application/timestamp-reply")
            self.send_header("Content-Length", str(len(response)))
            self.end_headers()
            self.wfile.write(response)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/tsa"
    finally:
        server.shutdown()
        server.server_close()


@needs_pdfsig
def test_tsa_url_gives_pades_b_t(local_tsa, plain_pdf, signer, trust_pem, tmp_path):
    out = sign_pdf(plain_pdf, signer, reason="Export", location="Leeds", tsa_url=local_tsa)
    sig = PdfFileReader(io.BytesIO(out)).embedded_signatures[-1]
    unsigned = {a["type"].native for a in sig.signer_info["unsigned_attrs"]}
    assert "signature_time_stamp_token" in unsigned

    check = check_pdf_signature(out, trust_cert_pem=trust_pem)
    assert check.intact and check.valid and check.trusted and check.covers_whole_file
    assert check.signed_at is not None and check.signed_at.tzinfo is not None
    ok, output = pdfsig_check(_write(tmp_path, "bt.pdf", out))
    assert ok, output


def test_fifty_page_pdf_signs(signer, trust_pem):
    pages = "".join(
        f'<section style="break-after: page"><h2>Unit {i}</h2><p>Evidence {i}</p></section>'
        for i in range(50)
    )
    pdf = weasyprint.HTML(string=pages).write_pdf()
    assert len(pypdf.PdfReader(io.BytesIO(pdf)).pages) >= 50
    out = sign_pdf(pdf, signer, reason="Export", location="Leeds")
    check = check_pdf_signature(out, trust_cert_pem=trust_pem)
    assert check.intact and check.valid and check.covers_whole_file
