"""PAdES signing and signature verification for portfolio PDF exports (pyHanko)."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path
from typing import Any

from pyhanko.keys import load_certs_from_pemder_data
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.timestamps import HTTPTimeStamper
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from portfolio.export.keys import (  # noqa: F401 - key handling moved to keys.py
    CERT_FILE,
    KEY_FILE,
    NO_KEY_MESSAGE,
    SIGNING_DIR,
    CentreKey,
    fingerprint_of,
    format_fingerprint,
    init_centre_key,
    load_centre_signer,
)

log = logging.getLogger(__name__)

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
class PdfSignatureCheck:
    """Outcome of verifying the last signature embedded in a PDF."""

    intact: bool
    valid: bool
    signer: str
    signed_at: datetime | None
    covers_whole_file: bool
    problem: str
    trusted: bool = False
    fingerprint: str = ""  # SHA-256 of the signer's certificate (DER), lowercase hex


def load_signer(config: Mapping[str, Any], instance_path: Path,
                centre_id: int | None = None) -> signers.Signer:
    """Load the signer of a centre (its own key, else SIGNING_PKCS12, else the single key)."""
    return load_centre_signer(config, instance_path, centre_id)


def off_event_loop(function: Any, *args: Any, **kwargs: Any) -> Any:
    """Call a pyHanko function that runs its own asyncio loop, from any thread.

    pyHanko's synchronous calls use `asyncio.run`, which fails in a thread that already runs
    an event loop (an async server, or Playwright's sync API in the test suite): there the
    call is made in a short-lived worker thread instead.
    """
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


def _fingerprint(cert: Any) -> str:
    """Return an asn1crypto certificate's SHA-256 fingerprint, or "" if there is none."""
    try:
        return fingerprint_of(cert.dump())
    except Exception:  # noqa: BLE001 - no certificate, no fingerprint
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
    # Trust is the exact certificate, never a look-alike with the same name.
    trusted_prints = {fingerprint_of(root.dump()) for root in roots}
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
    fingerprint = _fingerprint(status.signing_cert)
    trusted = valid and bool(status.trusted) and fingerprint in trusted_prints

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
        fingerprint=fingerprint,
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


@dataclass(frozen=True)
class SignedPdf:
    """What a PDF on disk says about its signatures, read without trusting anyone yet."""

    readable: bool
    signatures: int = 0
    intact: bool = False  # the signed bytes hash to the signed digest
    valid: bool = False  # and the signature value verifies with the signer's certificate
    covers_whole_file: bool = False
    updates_after: int = 0  # incremental updates appended after the signed revision
    changed_pages: tuple[int, ...] = ()  # pages (1-based) those updates touch
    signer: str = ""
    fingerprint: str = ""
    signed_at: datetime | None = None
    other_signers: tuple[str, ...] = ()  # "CN (fingerprint)" of any further signature
    problem: str = ""


def _page_refs(reader: PdfFileReader) -> list[set[tuple[int, int]]]:
    """For each page in order, the object references that make up its look (page, contents)."""
    pages: list[set[tuple[int, int]]] = []

    def refs_of(value: Any) -> set[tuple[int, int]]:
        found: set[tuple[int, int]] = set()
        if isinstance(value, generic.IndirectObject):
            found.add((value.idnum, value.generation))
            value = value.get_object()
        if isinstance(value, generic.ArrayObject):
            for item in value:
                if isinstance(item, generic.IndirectObject):
                    found.add((item.idnum, item.generation))
        return found

    def walk(node_ref: Any, depth: int = 0) -> None:
        if depth > 64:
            return
        node = node_ref.get_object() if isinstance(node_ref, generic.IndirectObject) else node_ref
        if not isinstance(node, generic.DictionaryObject):
            return
        if node.get("/Type") == "/Pages" or "/Kids" in node:
            for kid in node.raw_get("/Kids") if "/Kids" in node else []:
                walk(kid, depth + 1)
            return
        refs = set()
        if isinstance(node_ref, generic.IndirectObject):
            refs.add((node_ref.idnum, node_ref.generation))
        if "/Contents" in node:
            refs |= refs_of(node.raw_get("/Contents"))
        pages.append(refs)

    walk(reader.root.raw_get("/Pages"))
    return pages


def _cert_label(cert: Any) -> str:
    return f"{_signer_name(cert)} (certificate SHA-256 {format_fingerprint(_fingerprint(cert))})"


def inspect_signed_pdf(path: Path) -> SignedPdf:
    """Read the signature(s) of a PDF on disk, streaming; never raises on malformed input.

    The first signature is the one checked: anything appended after it (content, a second
    signature) is counted as an update, with the pages it touches.
    """
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed below, the reader keeps it open
    except OSError:
        return SignedPdf(readable=False, problem="the file could not be read")
    with handle:
        size = os.fstat(handle.fileno()).st_size
        if b"%PDF-" not in handle.read(1024):
            return SignedPdf(readable=False, problem="the file is not a PDF")
        handle.seek(0)
        try:
            reader = PdfFileReader(handle, strict=False)
            sigs = list(reader.embedded_signatures)
            total = reader.xrefs.total_revisions
        except Exception as exc:  # noqa: BLE001 - any parse failure means unreadable
            log.debug("PDF parse failed", exc_info=exc)
            return SignedPdf(readable=False, problem="the file is not a readable PDF")
        if not sigs:
            return SignedPdf(readable=True, problem="the file carries no signature")
        sigs.sort(key=lambda sig: sig.signed_revision)
        first = sigs[0]
        try:
            start1, len1, start2, len2 = (int(v) for v in first.sig_object.raw_get("/ByteRange"))
            whole = (start1 == 0 and 0 < len1 < start2 and len2 >= 0 and start2 + len2 == size)
            if whole:
                handle.seek(len1)
                gap = handle.read(start2 - len1)
                whole = _HEX_CONTENTS.fullmatch(gap) is not None
        except Exception:  # noqa: BLE001 - a broken /ByteRange covers nothing
            whole = False
        updates = max(0, total - 1 - first.signed_revision)
        changed: list[int] = []
        if updates:
            try:
                touched: set[tuple[int, int]] = set()
                for revision in range(first.signed_revision + 1, total):
                    touched |= {(ref.idnum, ref.generation)
                                for ref in reader.xrefs.explicit_refs_in_revision(revision)}
                changed = [n for n, refs in enumerate(_page_refs(reader), start=1)
                           if refs & touched]
            except Exception as exc:  # noqa: BLE001 - the pages are a detail, not the verdict
                log.debug("could not map the update to pages", exc_info=exc)
        token = _muting_pyhanko.set(True)
        try:
            vc = ValidationContext(trust_roots=[], allow_fetching=False)
            status = off_event_loop(validate_pdf_signature, first,
                                    signer_validation_context=vc, skip_diff=True)
        except Exception as exc:  # noqa: BLE001 - report, never raise
            log.debug("PDF signature validation failed", exc_info=exc)
            return SignedPdf(readable=True, signatures=len(sigs), covers_whole_file=whole,
                             updates_after=updates, changed_pages=tuple(changed),
                             signer=_signer_name(first.signer_cert),
                             fingerprint=_fingerprint(first.signer_cert),
                             problem="the signature could not be checked")
        finally:
            _muting_pyhanko.reset(token)
        others = []
        for sig in sigs[1:]:
            try:
                others.append(_cert_label(sig.signer_cert))
            except Exception:  # noqa: BLE001 - e.g. a signature field with nothing in it
                others.append("an unreadable signature")
        signed_at = status.signer_reported_dt
        tst = getattr(status, "timestamp_validity", None)
        if signed_at is None and tst is not None:
            signed_at = tst.timestamp
        intact = bool(status.intact)
        return SignedPdf(
            readable=True, signatures=len(sigs), intact=intact,
            valid=intact and bool(status.valid), covers_whole_file=whole,
            updates_after=updates, changed_pages=tuple(changed),
            signer=_signer_name(status.signing_cert),
            fingerprint=_fingerprint(status.signing_cert), signed_at=_as_utc(signed_at),
            other_signers=tuple(others))
