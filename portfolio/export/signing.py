"""PAdES signing and signature verification for portfolio PDF exports (pyHanko)."""

from __future__ import annotations

import contextvars
import logging
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from pyhanko.keys import (
    load_cert_from_pemder,
    load_certs_from_pemder_data,
    load_private_key_from_pemder,
)
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.timestamps import HTTPTimeStamper
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

log = logging.getLogger(__name__)

SIGNING_DIR = "signing"
KEY_FILE = "centre-key.pem"
CERT_FILE = "centre-cert.pem"
CERT_VALIDITY = timedelta(days=3652)
NO_KEY_MESSAGE = "No signing key: run `portfolio keys init`, or set PORTFOLIO_SIGNING_PKCS12."
PDFSIG_VALID = "Signature is Valid."
PDFSIG_TIMEOUT_SECONDS = 60
_HEX_CONTENTS = re.compile(rb"<[0-9A-Fa-f\s]*>")

# pyHanko logs a WARNING with a traceback whenever a signer's chain cannot be trusted
# (e.g. our self-signed centre cert checked without a trust root). check_pdf_signature
# reports that in `problem`, so such records are muted while it runs.
_muting_pyhanko = contextvars.ContextVar("_muting_pyhanko", default=False)


class _MuteDuringCheck(logging.Filter):
    """Drop pyHanko certificate-path warnings emitted inside check_pdf_signature."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (_muting_pyhanko.get() and record.levelno < logging.ERROR)


logging.getLogger("pyhanko.sign.validation.generic_cms").addFilter(_MuteDuringCheck())


@dataclass(frozen=True)
class CentreKey:
    """Paths of the centre's PEM signing key and self-signed certificate."""

    key_path: Path
    cert_path: Path


@dataclass(frozen=True)
class PdfSignatureCheck:
    """Outcome of verifying the last signature embedded in a PDF."""

    intact: bool
    valid: bool
    signer: str
    signed_at: datetime | None
    covers_whole_file: bool
    problem: str
    trusted: bool = False


def _signing_paths(instance_path: Path) -> CentreKey:
    """Return where the centre key and certificate live under the instance folder."""
    folder = Path(instance_path) / SIGNING_DIR
    return CentreKey(key_path=folder / KEY_FILE, cert_path=folder / CERT_FILE)


def _write_file(path: Path, data: bytes, mode: int) -> None:
    """Atomically write data to path, creating it with the given permission bits."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def init_centre_key(instance_path: Path, centre_name: str, *, overwrite: bool = False) -> CentreKey:
    """Create the centre's RSA-3072 signing key and a 10-year self-signed certificate."""
    centre = " ".join(centre_name.split())
    if not centre:
        raise ValueError("centre_name must not be empty")
    paths = _signing_paths(instance_path)
    folder = paths.key_path.parent
    if paths.key_path.exists() and not overwrite:
        raise FileExistsError(
            f"A signing key already exists at {paths.key_path}; refusing to overwrite it "
            "(PDFs signed with it could no longer be checked against a new certificate). "
            "Pass overwrite=True (`--overwrite`) to replace it deliberately."
        )
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.chmod(0o700)

    key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, f"{centre} e-portfolio exports"[:64]),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, centre[:64]),
        ]
    )
    now = datetime.now(UTC)
    public_key = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + CERT_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write_file(paths.key_path, key_pem, 0o600)
    _write_file(paths.cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return paths


def load_signer(config: Mapping[str, Any], instance_path: Path) -> signers.Signer:
    """Load the configured PKCS#12 signer, else the centre PEM key and certificate."""
    pkcs12_path = config.get("SIGNING_PKCS12")
    if pkcs12_path:
        path = Path(pkcs12_path).expanduser()
        passphrase = config.get("SIGNING_PKCS12_PASSPHRASE")
        if isinstance(passphrase, str):
            passphrase = passphrase.encode("utf-8")
        data = path.read_bytes()  # FileNotFoundError names the missing file
        try:
            return signers.SimpleSigner.load_pkcs12_data(
                data, other_certs=[], passphrase=passphrase or None
            )
        except ValueError as exc:
            raise ValueError(
                f"Could not load the PKCS#12 file {path}: wrong passphrase or not a "
                "PKCS#12 key store with a private key and certificate."
            ) from exc

    paths = _signing_paths(instance_path)
    if not paths.key_path.exists() and not paths.cert_path.exists():
        raise FileNotFoundError(NO_KEY_MESSAGE)
    for p in (paths.key_path, paths.cert_path):
        if not p.exists():
            raise FileNotFoundError(f"{NO_KEY_MESSAGE} (missing {p})")
    key = load_private_key_from_pemder(str(paths.key_path), passphrase=None)
    cert = load_cert_from_pemder(str(paths.cert_path))
    return signers.SimpleSigner(signing_cert=cert, signing_key=key, cert_registry=None)


def off_event_loop(function: Any, *args: Any, **kwargs: Any) -> Any:
    """Call a pyHanko function that runs its own asyncio loop, from any thread.

    pyHanko's synchronous calls use `asyncio.run`, which fails in a thread that already runs
    an event loop (an async server, or Playwright's sync API in the test suite): there the
    call is made in a short-lived worker thread instead.
    """
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return function(*args, **kwargs)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(function, *args, **kwargs).result()


def sign_pdf(
    pdf: bytes,
    signer: signers.Signer,
    *,
    reason: str,
    location: str,
    tsa_url: str = "",
    field_name: str = "CentreSignature",
) -> bytes:
    """Sign a PDF as PAdES B-B (or B-T with a TSA URL) in an incremental update."""
    writer = IncrementalPdfFileWriter(BytesIO(pdf), strict=False)
    # PDF/A: Info entries must equal their XMP twins, but on save pyHanko sets the Info
    # /Producer to "<old>; pyHanko x" and the XMP pdf:Producer to "pyHanko x". An
    # incremental update cannot remove /Info (readers inherit it from the previous
    # trailer), so point the new trailer at a fresh empty Info dict; pyHanko then only
    # fills in a Producer identical to the XMP one. Title etc. stay in the XMP packet.
    if "/Metadata" in writer.root and "/Info" in writer.trailer:
        writer.set_info(generic.DictionaryObject())
    meta = signers.PdfSignatureMetadata(
        field_name=field_name,
        reason=reason or None,
        location=location or None,
        md_algorithm="sha256",
        subfilter=fields.SigSeedSubFilter.PADES,
        use_pades_lta=False,
    )
    timestamper = HTTPTimeStamper(tsa_url) if tsa_url else None
    pdf_signer = signers.PdfSigner(meta, signer=signer, timestamper=timestamper)
    out = BytesIO()
    off_event_loop(pdf_signer.sign_pdf, writer, output=out)
    return out.getvalue()


def _covers_whole_file(pdf: bytes, byte_range: Any) -> bool:
    """Tell whether a /ByteRange spans the whole file except the /Contents hex string."""
    try:
        start1, len1, start2, len2 = (int(v) for v in byte_range)
    except (TypeError, ValueError):
        return False
    if start1 != 0 or len1 <= 0 or start2 <= len1 or len2 < 0:
        return False
    if start2 + len2 != len(pdf):
        return False
    return _HEX_CONTENTS.fullmatch(pdf[len1:start2]) is not None


def _signer_name(cert: Any) -> str:
    """Return a human-friendly name for an asn1crypto certificate."""
    try:
        subject = cert.subject
        cn = subject.native.get("common_name")
        if isinstance(cn, list):
            cn = cn[0] if cn else None
        return str(cn) if cn else subject.human_friendly
    except Exception:  # a name is a nicety, never a failure
        return ""


def _as_utc(value: datetime | None) -> datetime | None:
    """Return value as an aware UTC datetime (naive values are taken as UTC)."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _failed(problem: str, **kwargs: Any) -> PdfSignatureCheck:
    """Build a failed check result."""
    base: dict[str, Any] = {
        "intact": False,
        "valid": False,
        "signer": "",
        "signed_at": None,
        "covers_whole_file": False,
        "problem": problem,
    }
    base.update(kwargs)
    return PdfSignatureCheck(**base)


def check_pdf_signature(pdf: bytes, *, trust_cert_pem: bytes | None = None) -> PdfSignatureCheck:
    """Verify the last signature in a PDF; never raises on malformed input."""
    if not isinstance(pdf, bytes | bytearray | memoryview):
        return _failed("the file is not a readable PDF")
    pdf = bytes(pdf)
    if b"%PDF-" not in pdf[:1024]:
        return _failed("the file is not a readable PDF")
    try:
        reader = PdfFileReader(BytesIO(pdf), strict=False)
        sigs = reader.embedded_regular_signatures
    except Exception as exc:  # any parse failure means unreadable
        log.debug("PDF parse failed", exc_info=exc)
        return _failed("the file is not a readable PDF")
    if not sigs:
        return _failed("no signature")
    embedded = sigs[-1]

    try:
        byte_range = embedded.sig_object.raw_get("/ByteRange")
    except Exception:
        byte_range = None
    whole = _covers_whole_file(pdf, byte_range)

    roots: list[Any] = []
    if trust_cert_pem:
        try:
            roots = list(load_certs_from_pemder_data(trust_cert_pem))
        except Exception as exc:  # a bad trust root just means untrusted
            log.warning("Ignoring unreadable trust certificate: %s", exc)
    token = _muting_pyhanko.set(True)
    try:
        vc = ValidationContext(trust_roots=roots, allow_fetching=False)
        status = off_event_loop(validate_pdf_signature, embedded,
                                signer_validation_context=vc, skip_diff=True)
    except Exception as exc:  # report, never raise
        log.debug("PDF signature validation failed", exc_info=exc)
        return _failed(
            f"the signature could not be validated: {exc}".rstrip(": "),
            covers_whole_file=whole,
        )
    finally:
        _muting_pyhanko.reset(token)

    signed_at = None
    tst = getattr(status, "timestamp_validity", None)
    if status.signer_reported_dt is not None:
        signed_at = status.signer_reported_dt
    elif tst is not None:
        signed_at = tst.timestamp
    intact = bool(status.intact)
    valid = intact and bool(status.valid)
    trusted = valid and bool(status.trusted)

    problems: list[str] = []
    if not intact:
        problems.append("the signed content has been modified (digest mismatch)")
    elif not valid:
        problems.append("the signature value does not verify against the signer's certificate")
    elif not trusted:
        if trust_cert_pem:
            problems.append("the signer's certificate is not trusted (not the given centre cert)")
        else:
            problems.append("the signer's certificate is untrusted (no trust root given)")
    if not whole:
        problems.append("the file was changed after signing (signature does not cover it all)")
    return PdfSignatureCheck(
        intact=intact,
        valid=valid,
        signer=_signer_name(status.signing_cert),
        signed_at=_as_utc(signed_at),
        covers_whole_file=whole,
        problem="; ".join(problems),
        trusted=trusted,
    )


def pdfsig_check(path: Path) -> tuple[bool, str]:
    """Check a signed PDF with poppler's pdfsig; True only if every signature is valid."""
    exe = shutil.which("pdfsig")
    if exe is None:
        return False, "pdfsig (poppler-utils) is not installed"
    env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
    try:
        proc = subprocess.run(
            [exe, str(path)],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=PDFSIG_TIMEOUT_SECONDS,
            env=env,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"pdfsig failed to run: {exc}"
    output = (proc.stdout + proc.stderr).strip()
    verdicts = [
        line.split(":", 1)[1].strip()
        for line in proc.stdout.splitlines()
        if line.strip().lstrip("- ").startswith("Signature Validation:")
    ]
    ok = bool(verdicts) and all(v == PDFSIG_VALID for v in verdicts)
    return ok, output
