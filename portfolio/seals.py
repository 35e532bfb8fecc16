"""Keyed seals: HMAC-SHA256 under a key the database never holds.

Signatures and audit events are sealed with keys derived from the installation's seal key
(SEAL_KEY or SEAL_KEY_FILE; generated into the instance folder outside production). Someone who
can write the database but not read that key cannot recompute a seal, so an edited row, a
recomputed chain or a forged checkpoint shows up on verification. One key, three purposes: each
purpose gets its own derived key so a seal made for one can never be replayed as another.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

MIN_KEY_LENGTH = 32
KEY_FILE_NAME = "seal_key"


class SealKeyMissing(RuntimeError):
    """No seal key is configured where one is required."""


@dataclass(frozen=True)
class Sealer:
    """The derived keys of one installation, and where audit checkpoints are written."""

    key_id: str
    _audit: bytes = field(repr=False)
    _signature: bytes = field(repr=False)
    _checkpoint: bytes = field(repr=False)
    checkpoint_dir: Path | None = None
    checkpoint_every: int = 1000

    @classmethod
    def from_secret(cls, secret: str | bytes, *, checkpoint_dir: Path | None = None,
                    checkpoint_every: int = 1000) -> Sealer:
        """Derive the purpose keys from the installation's seal key."""
        raw = secret.encode() if isinstance(secret, str) else bytes(secret)
        if len(raw) < MIN_KEY_LENGTH:
            raise SealKeyMissing(f"The seal key must be at least {MIN_KEY_LENGTH} characters "
                                 "long (generate one with `portfolio seal-key`).")

        def derive(purpose: str) -> bytes:
            return hmac.new(raw, f"portfolio/{purpose}/v1".encode(), hashlib.sha256).digest()

        return cls(key_id=derive("key-id").hex()[:16], _audit=derive("audit-chain"),
                   _signature=derive("signature-seal"), _checkpoint=derive("audit-checkpoint"),
                   checkpoint_dir=checkpoint_dir, checkpoint_every=max(1, checkpoint_every))

    @staticmethod
    def _mac(key: bytes, message: bytes) -> str:
        return hmac.new(key, message, hashlib.sha256).hexdigest()

    def audit(self, message: bytes) -> str:
        """Seal an audit event's canonical form."""
        return self._mac(self._audit, message)

    def signature(self, message: bytes) -> str:
        """Seal a signature's canonical fields."""
        return self._mac(self._signature, message)

    def checkpoint(self, message: bytes) -> str:
        """Seal an audit checkpoint."""
        return self._mac(self._checkpoint, message)

    @staticmethod
    def same(a: str | None, b: str | None) -> bool:
        """Compare two seals in constant time."""
        return a is not None and b is not None and hmac.compare_digest(a, b)


def read_seal_key(config: dict[str, Any], instance_path: str | Path, *,
                  create: bool) -> str:
    """Return the configured seal key (SEAL_KEY, else SEAL_KEY_FILE, else the instance file).

    :raises SealKeyMissing: nothing configured and `create` is false.
    """
    if config.get("SEAL_KEY"):
        return str(config["SEAL_KEY"])
    if config.get("SEAL_KEY_FILE"):
        path = Path(config["SEAL_KEY_FILE"]).expanduser()
        try:
            return path.read_text().strip()
        except OSError as exc:
            raise SealKeyMissing(f"SEAL_KEY_FILE {path} cannot be read: {exc.strerror}") from exc
    path = Path(instance_path) / KEY_FILE_NAME
    if path.exists():
        return path.read_text().strip()
    if not create:
        raise SealKeyMissing(
            "No seal key is configured. Set PORTFOLIO_SEAL_KEY_FILE to a file holding a key "
            "made by `portfolio seal-key` (kept outside the database and its backups).")
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    try:  # O_EXCL: two processes starting at once must agree on one key
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key


# Sessions made by an app's sessionmaker carry their sealer in `session.info`; a session bound
# directly to the engine (tests, scripts) finds it through the engine.
_BY_ENGINE: weakref.WeakKeyDictionary[Engine, Sealer] = weakref.WeakKeyDictionary()


def attach(engine: Engine, sealer: Sealer) -> None:
    """Let every session on this engine find the sealer."""
    _BY_ENGINE[engine] = sealer


def sealer_for(session: Session) -> Sealer:
    """Return the sealer of the app this session belongs to.

    :raises SealKeyMissing: the session's engine was not made by an app (never seal unkeyed).
    """
    sealer = session.info.get("sealer")
    if sealer is None:
        bind = session.get_bind()
        sealer = _BY_ENGINE.get(getattr(bind, "engine", bind))
    if sealer is None:
        raise SealKeyMissing("This database session has no seal key (use the app's sessions).")
    return sealer
