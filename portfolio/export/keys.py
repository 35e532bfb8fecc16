"""Each centre's key for signing exported PDFs, and the certificates each centre trusts.

Layout, under SIGNING_KEYS_DIR (empty: instance/signing), so several machines can share one
secret mount::

    centre-<id>/key.pem            the current private key (0600)
    centre-<id>/cert.pem           its self-signed certificate
    centre-<id>/retired/*.pem      certificates of earlier keys (rotated): still trusted, so
                                   older exports keep verifying; their private keys are gone

A configured SIGNING_PKCS12 is the install's own key store: it signs for every centre without
a key folder of its own, and its certificate is trusted for every centre. The old single-key
layout (instance/signing/centre-key.pem, from before keys were per centre) is read the same
way until `portfolio keys init` adopts it.

A certificate is trusted by its SHA-256 fingerprint (of its DER bytes), never by its name: a
certificate someone made with the same subject is a different certificate.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID
from sqlalchemy import select
from sqlalchemy.orm import Session

from portfolio.models import Centre

SIGNING_DIR = "signing"
# The single-key layout from before keys were per centre (still written by init_centre_key).
KEY_FILE = "centre-key.pem"
CERT_FILE = "centre-cert.pem"
CENTRE_KEY_FILE = "key.pem"
CENTRE_CERT_FILE = "cert.pem"
RETIRED_DIR = "retired"
CERT_VALIDITY = timedelta(days=3652)
NO_KEY_MESSAGE = ("No signing key: run `portfolio keys init`, or set PORTFOLIO_SIGNING_PKCS12.")


@dataclass(frozen=True)
class CentreKey:
    """Paths of a PEM signing key and its self-signed certificate."""

    key_path: Path
    cert_path: Path


@dataclass(frozen=True)
class TrustedCertificate:
    """A certificate a centre trusts for its exports, and where it comes from."""

    fingerprint: str  # SHA-256 of the DER certificate, lowercase hex
    subject: str  # the common name (else the whole subject)
    not_before: datetime
    not_after: datetime
    status: str  # current, retired, pkcs12 (SIGNING_PKCS12), legacy (instance/signing)
    path: Path | None
    centre_id: int | None  # None: install-wide (PKCS#12 or the old single key)


def fingerprint_of(cert_der: bytes) -> str:
    """Return a certificate's SHA-256 fingerprint (lowercase hex of its DER bytes)."""
    return hashlib.sha256(cert_der).hexdigest()


def format_fingerprint(fingerprint: str) -> str:
    """Group a hex fingerprint as AB:CD:... for people to compare by eye."""
    value = fingerprint.upper()
    return ":".join(value[i:i + 2] for i in range(0, len(value), 2))


def keys_root(config: Mapping[str, Any], instance_path: Path) -> Path:
    """Where centres' key folders live: SIGNING_KEYS_DIR, else instance/signing."""
    configured = str(config.get("SIGNING_KEYS_DIR") or "").strip()
    return Path(configured).expanduser() if configured else Path(instance_path) / SIGNING_DIR


def centre_folder(config: Mapping[str, Any], instance_path: Path, centre_id: int) -> Path:
    """The key folder of one centre."""
    return keys_root(config, instance_path) / f"centre-{int(centre_id)}"


def centre_key_paths(config: Mapping[str, Any], instance_path: Path, centre_id: int) -> CentreKey:
    """The current key and certificate files of one centre."""
    folder = centre_folder(config, instance_path, centre_id)
    return CentreKey(key_path=folder / CENTRE_KEY_FILE, cert_path=folder / CENTRE_CERT_FILE)


def legacy_key_paths(instance_path: Path) -> CentreKey:
    """The single key from before keys were per centre."""
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


def _private_folder(folder: Path) -> None:
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.chmod(0o700)


def _new_key_and_certificate(centre_name: str) -> tuple[bytes, bytes]:
    """Make an RSA-3072 key and a 10-year self-signed certificate; return both as PEM."""
    centre = " ".join(centre_name.split())
    if not centre:
        raise ValueError("centre_name must not be empty")
    key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    name = x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, f"{centre} e-portfolio exports"[:64]),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, centre[:64]),
    ])
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
            x509.KeyUsage(digital_signature=True, content_commitment=True,
                          key_encipherment=False, data_encipherment=False, key_agreement=False,
                          key_cert_sign=False, crl_sign=False, encipher_only=False,
                          decipher_only=False),
            critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)


def init_centre_key(instance_path: Path, centre_name: str, *, overwrite: bool = False) -> CentreKey:
    """Create the install's single signing key under instance/signing (the old layout).

    Kept for single-centre installs and tests; `init_centre_signing_key` makes per-centre keys.
    """
    paths = legacy_key_paths(instance_path)
    if paths.key_path.exists() and not overwrite:
        raise FileExistsError(
            f"A signing key already exists at {paths.key_path}; refusing to overwrite it "
            "(PDFs signed with it could no longer be checked against a new certificate). "
            "Pass overwrite=True (`--overwrite`) to replace it deliberately.")
    key_pem, cert_pem = _new_key_and_certificate(centre_name)
    _private_folder(paths.key_path.parent)
    _write_file(paths.key_path, key_pem, 0o600)
    _write_file(paths.cert_path, cert_pem, 0o644)
    return paths


def _retire(folder: Path, cert_pem: bytes) -> Path:
    """Keep a certificate in a centre's retired folder (idempotent); return its path."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    fingerprint = fingerprint_of(cert.public_bytes(serialization.Encoding.DER))
    retired = folder / RETIRED_DIR
    _private_folder(retired)
    for existing in retired.glob("*.pem"):
        if existing.name.endswith(f"{fingerprint[:16]}.pem"):
            return existing
    target = retired / f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{fingerprint[:16]}.pem"
    _write_file(target, cert_pem, 0o644)
    return target


def init_centre_signing_key(config: Mapping[str, Any], instance_path: Path, centre_id: int,
                            centre_name: str, *, overwrite: bool = False,
                            adopt_legacy: bool = False) -> CentreKey:
    """Give a centre its own signing key, or adopt the old single key as its key.

    With adopt_legacy the old instance/signing key becomes this centre's current key (it
    signed this centre's earlier exports). Overwriting keeps the old certificate as retired.

    :raises FileExistsError: the centre has a key already and overwrite is not set.
    """
    paths = centre_key_paths(config, instance_path, centre_id)
    folder = paths.key_path.parent
    if paths.key_path.exists() and not overwrite:
        raise FileExistsError(
            f"Centre {centre_name!r} already has a signing key at {paths.key_path}. "
            "Use `portfolio keys rotate` to replace it while keeping older exports verifiable.")
    legacy = legacy_key_paths(instance_path)
    if adopt_legacy and legacy.key_path.is_file() and legacy.cert_path.is_file():
        key_pem, cert_pem = legacy.key_path.read_bytes(), legacy.cert_path.read_bytes()
    else:
        key_pem, cert_pem = _new_key_and_certificate(centre_name)
    _private_folder(folder)
    if paths.cert_path.exists():
        _retire(folder, paths.cert_path.read_bytes())
    _write_file(paths.key_path, key_pem, 0o600)
    _write_file(paths.cert_path, cert_pem, 0o644)
    return paths


def rotate_centre_key(config: Mapping[str, Any], instance_path: Path, centre_id: int,
                      centre_name: str) -> tuple[TrustedCertificate, TrustedCertificate]:
    """Make a new key for a centre; keep the old certificate trusted; return (old, new).

    The old private key is removed: it signs nothing any more, and its certificate alone
    lets older exports verify.

    :raises FileNotFoundError: the centre has no key of its own to rotate.
    """
    paths = centre_key_paths(config, instance_path, centre_id)
    if not (paths.key_path.is_file() and paths.cert_path.is_file()):
        raise FileNotFoundError(
            f"Centre {centre_name!r} has no signing key of its own to rotate: run "
            f"`portfolio keys init --centre {centre_name!r}` first.")
    old = _describe(paths.cert_path.read_bytes(), "retired", None, centre_id)
    key_pem, cert_pem = _new_key_and_certificate(centre_name)
    retired_path = _retire(paths.key_path.parent, paths.cert_path.read_bytes())
    # The certificate goes first: a signer that reads a key and certificate that do not match
    # (mid-rotation) notices and reads again (see load_centre_signer).
    _write_file(paths.cert_path, cert_pem, 0o644)
    _write_file(paths.key_path, key_pem, 0o600)
    new = _describe(cert_pem, "current", paths.cert_path, centre_id)
    return (TrustedCertificate(**{**old.__dict__, "path": retired_path}), new)


def _describe(cert_data: bytes, status: str, path: Path | None,
              centre_id: int | None) -> TrustedCertificate:
    """Read a PEM or DER certificate into a TrustedCertificate."""
    if b"-----BEGIN" in cert_data:
        cert = x509.load_pem_x509_certificate(cert_data)
    else:
        cert = x509.load_der_x509_certificate(cert_data)
    return _from_x509(cert, status, path, centre_id)


def _from_x509(cert: x509.Certificate, status: str, path: Path | None,
               centre_id: int | None) -> TrustedCertificate:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    subject = str(names[0].value) if names else cert.subject.rfc4514_string()
    return TrustedCertificate(
        fingerprint=fingerprint_of(cert.public_bytes(serialization.Encoding.DER)),
        subject=subject, not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc, status=status, path=path, centre_id=centre_id)


def _pkcs12(config: Mapping[str, Any]) -> tuple[Path, bytes | None] | None:
    value = str(config.get("SIGNING_PKCS12") or "").strip()
    if not value:
        return None
    passphrase = config.get("SIGNING_PKCS12_PASSPHRASE")
    if isinstance(passphrase, str):
        passphrase = passphrase.encode("utf-8")
    return Path(value).expanduser(), passphrase or None


def _pkcs12_certificate(config: Mapping[str, Any]) -> TrustedCertificate | None:
    found = _pkcs12(config)
    if found is None:
        return None
    path, passphrase = found
    try:
        _key, cert, _extra = pkcs12.load_key_and_certificates(path.read_bytes(), passphrase)
    except (OSError, ValueError):
        return None
    return _from_x509(cert, "pkcs12", path, None) if cert is not None else None


def trusted_certificates(config: Mapping[str, Any], instance_path: Path,
                         centre_id: int) -> list[TrustedCertificate]:
    """The trust list of one centre: its current and retired certificates (and install-wide)."""
    paths = centre_key_paths(config, instance_path, centre_id)
    found: list[TrustedCertificate] = []
    if paths.cert_path.is_file():
        found.append(_describe(paths.cert_path.read_bytes(), "current", paths.cert_path,
                               centre_id))
    for retired in sorted((paths.cert_path.parent / RETIRED_DIR).glob("*.pem")):
        found.append(_describe(retired.read_bytes(), "retired", retired, centre_id))
    pkcs = _pkcs12_certificate(config)
    if pkcs is not None:
        found.append(pkcs)
    legacy = legacy_key_paths(instance_path)
    if legacy.cert_path.is_file():
        found.append(_describe(legacy.cert_path.read_bytes(), "legacy", legacy.cert_path, None))
    unique: dict[str, TrustedCertificate] = {}
    for cert in found:
        unique.setdefault(cert.fingerprint, cert)
    return list(unique.values())


def load_centre_signer(config: Mapping[str, Any], instance_path: Path,
                       centre_id: int | None) -> Any:
    """Load the signer for a centre: its own key, else SIGNING_PKCS12, else the old single key.

    :raises FileNotFoundError: no key is set up (the message says how to make one).
    :raises ValueError: the PKCS#12 file cannot be opened.
    """
    from asn1crypto import x509 as asn1_x509
    from pyhanko.keys import (
        load_cert_from_pemder,
        load_private_key_from_pemder,
        load_private_key_from_pemder_data,
    )
    from pyhanko.sign import signers

    if centre_id is not None:
        paths = centre_key_paths(config, instance_path, centre_id)
        if paths.key_path.is_file():
            for _attempt in range(3):
                key_pem, cert_pem = paths.key_path.read_bytes(), paths.cert_path.read_bytes()
                private = serialization.load_pem_private_key(key_pem, password=None)
                cert = x509.load_pem_x509_certificate(cert_pem)
                spki = (serialization.Encoding.DER,
                        serialization.PublicFormat.SubjectPublicKeyInfo)
                if private.public_key().public_bytes(*spki) == cert.public_key().public_bytes(
                        *spki):
                    return signers.SimpleSigner(
                        signing_cert=asn1_x509.Certificate.load(
                            cert.public_bytes(serialization.Encoding.DER)),
                        signing_key=load_private_key_from_pemder_data(key_pem, passphrase=None),
                        cert_registry=None)  # type: ignore[arg-type]
                time.sleep(0.2)  # read mid-rotation: the key file follows the certificate
            raise ValueError(f"The signing key and certificate in {paths.key_path.parent} "
                             "do not belong together.")
    found = _pkcs12(config)
    if found is not None:
        path, passphrase = found
        data = path.read_bytes()  # FileNotFoundError names the missing file
        try:
            return signers.SimpleSigner.load_pkcs12_data(data, other_certs=[],
                                                         passphrase=passphrase)
        except ValueError as exc:
            raise ValueError(
                f"Could not load the PKCS#12 file {path}: wrong passphrase or not a "
                "PKCS#12 key store with a private key and certificate.") from exc
    legacy = legacy_key_paths(instance_path)
    if centre_id is None and not legacy.key_path.exists():
        # No centre named (an older caller): only unambiguous with one centre key.
        folders = sorted(keys_root(config, instance_path).glob(f"centre-*/{CENTRE_KEY_FILE}"))
        if len(folders) == 1:
            return load_centre_signer(config, instance_path,
                                      int(folders[0].parent.name.removeprefix("centre-")))
        if folders:
            raise FileNotFoundError("Several centres have signing keys: say which centre "
                                    "signs (load_signer(config, instance_path, centre_id)).")
    if not legacy.key_path.exists() and not legacy.cert_path.exists():
        raise FileNotFoundError(NO_KEY_MESSAGE)
    for p in (legacy.key_path, legacy.cert_path):
        if not p.exists():
            raise FileNotFoundError(f"{NO_KEY_MESSAGE} (missing {p})")
    key = load_private_key_from_pemder(str(legacy.key_path), passphrase=None)
    cert = load_cert_from_pemder(str(legacy.cert_path))
    return signers.SimpleSigner(signing_cert=cert, signing_key=key, cert_registry=None)  # type: ignore[arg-type]


def has_own_key(config: Mapping[str, Any], instance_path: Path, centre_id: int) -> bool:
    """Tell whether a centre has a key folder with a key and certificate."""
    paths = centre_key_paths(config, instance_path, centre_id)
    return paths.key_path.is_file() and paths.cert_path.is_file()


def missing_signing_keys(config: Mapping[str, Any], instance_path: Path,
                         session: Session) -> list[str]:
    """Name the centres without a usable signing key of their own; empty when all have one.

    With one centre, SIGNING_PKCS12 or the old single key will do. With several, each centre
    needs its own key (`portfolio keys init --all`), so no two centres sign alike.
    """
    centres = list(session.execute(select(Centre.id, Centre.name).order_by(Centre.id)))
    shared_ok = len(centres) <= 1 and (
        _pkcs12_certificate(config) is not None
        or (legacy_key_paths(instance_path).key_path.is_file()
            and legacy_key_paths(instance_path).cert_path.is_file()))
    return [name for centre_id, name in centres
            if not has_own_key(config, instance_path, centre_id) and not shared_ok]


def forget_legacy_key(instance_path: Path) -> None:
    """Remove the old single key once every centre has its own (each trusts its certificate)."""
    legacy = legacy_key_paths(instance_path)
    legacy.key_path.unlink(missing_ok=True)
    legacy.cert_path.unlink(missing_ok=True)


def retire_legacy_certificate(config: Mapping[str, Any], instance_path: Path,
                              centre_id: int) -> None:
    """Keep the old single key's certificate in a centre's trust list (its older exports)."""
    legacy = legacy_key_paths(instance_path)
    if legacy.cert_path.is_file():
        folder = centre_folder(config, instance_path, centre_id)
        _private_folder(folder)
        _retire(folder, legacy.cert_path.read_bytes())
