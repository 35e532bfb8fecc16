"""Configuration: defaults, instance/config.py, PORTFOLIO_* environment, then test config."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Every setting the app reads, with its default. Each can be overridden by an environment
# variable named PORTFOLIO_<KEY> (DATABASE_URL and REDIS_URL are also read without the prefix,
# as hosting platforms set them that way). The README lists them all; a test keeps the two in
# step.
DEFAULTS: dict[str, Any] = {
    # "production" or "development"; development relaxes the Secure cookie flag for plain http.
    "ENV": "production",
    # SQLAlchemy URL; empty means an SQLite file in the instance folder.
    "DATABASE_URL": "",
    "DATABASE_URL_FILE": "",
    # PostgreSQL connection pool, per process: connections kept open, extra ones allowed at a
    # peak, seconds to wait for one before the request fails (503), and seconds after which a
    # connection is replaced (under a proxy or firewall that drops idle ones). With gunicorn,
    # workers x (DATABASE_POOL_SIZE + DATABASE_MAX_OVERFLOW) must stay under the server's
    # max_connections. SQLite ignores them.
    "DATABASE_POOL_SIZE": 5,
    "DATABASE_MAX_OVERFLOW": 10,
    "DATABASE_POOL_TIMEOUT": 10,
    "DATABASE_POOL_RECYCLE": 1800,
    # Signs session cookies and CSRF tokens. Outside production it is generated into
    # instance/secret_key on first run; in production it must be given (here or as a file),
    # identical on every machine.
    "SECRET_KEY": "",
    "SECRET_KEY_FILE": "",
    # Key of the HMAC seals over signatures and the audit chain, kept out of the database and
    # its backups: the text itself, or a file holding it (`portfolio keys seal-key` makes one).
    # Outside production it is generated into instance/seal_key; production refuses to start
    # without it.
    "SEAL_KEY": "",
    "SEAL_KEY_FILE": "",
    # Where sealed audit checkpoints (the chain's head) are written; empty means
    # instance/audit-checkpoints. Ship this folder off the machine regularly.
    "AUDIT_CHECKPOINT_DIR": "",
    # Besides latest.json (updated after every commit), keep a dated checkpoint file every
    # this many audit events.
    "AUDIT_CHECKPOINT_EVERY": 500,
    # Human name of this installation, shown in the header.
    "SITE_NAME": "Evidence Builder",
    # Folder of unit files loaded by `portfolio criteria load`.
    "CRITERIA_DIR": str(PROJECT_ROOT / "criteria"),
    # Generated PDFs and bundles.
    "EXPORTS_DIR": str(PROJECT_ROOT / "exports"),
    # Send the session cookie over https only. Forced off only when ENV is development.
    "SESSION_COOKIE_SECURE": True,
    # Minutes of inactivity after which a login session ends.
    "SESSION_LIFETIME_MINUTES": 480,
    # Failed logins allowed per account (and per client address) inside the window below.
    "LOGIN_MAX_FAILURES": 5,
    # Window, and lock-out length, for login throttling, in minutes.
    "LOGIN_LOCKOUT_MINUTES": 15,
    # Minimum password length for new and changed passwords.
    "PASSWORD_MIN_LENGTH": 12,
    # Uploaded evidence files, stored by SHA-256; empty means instance/storage. With the s3
    # backend this folder still stages uploads (and holds nothing else).
    "STORAGE_DIR": "",
    # Where evidence files and print copies are kept: "local" (STORAGE_DIR) or "s3" (any
    # S3-compatible store: AWS S3, MinIO, Ceph, SeaweedFS). The S3 keys are read only for s3;
    # empty credentials fall back to boto3's own chain (AWS_* environment, instance role).
    "STORAGE_BACKEND": "local",
    "S3_ENDPOINT_URL": "",
    "S3_BUCKET": "",
    "S3_REGION": "",
    "S3_PREFIX": "",
    "S3_ACCESS_KEY_ID": "",
    "S3_SECRET_ACCESS_KEY": "",
    "S3_SECRET_ACCESS_KEY_FILE": "",
    # Largest single evidence file accepted, in megabytes.
    "MAX_FILE_MB": 50,
    # Most files accepted in one upload.
    "MAX_FILES_PER_UPLOAD": 20,
    # Largest portfolio bundle (ZIP) the admin's import page accepts, and the most it may unpack
    # to, in megabytes (the upload also stays within the request limit set from the two above).
    "BUNDLE_MAX_MB": 1000,
    # CSV import of learners and enrolments: the most rows one file may have, and the number
    # of rows to import above which the import runs in the background with a progress bar
    # (on the RQ worker with REDIS_URL, else a thread) instead of inside the request.
    "IMPORT_MAX_ROWS": 5000,
    "IMPORT_BACKGROUND_ROWS": 200,
    # Outgoing email. Without SMTP_HOST, messages are written as .eml files to OUTBOX_DIR
    # (default instance/outbox) and shown on the Outbox page, which suits a demo.
    "SMTP_HOST": "",
    "SMTP_PORT": 587,
    "SMTP_USERNAME": "",
    "SMTP_PASSWORD": "",
    "SMTP_STARTTLS": True,
    "SMTP_USE_SSL": False,
    "SMTP_FROM": "Evidence Builder <no-reply@localhost>",
    "OUTBOX_DIR": "",
    # Days a witness's single-use link stays valid.
    "WITNESS_LINK_DAYS": 14,
    # Days after which finished witness requests lose the witness's email (name, role and
    # relationship stay for the witness status list): `portfolio witness minimise`.
    "WITNESS_CONTACT_DAYS": 90,
    # Requests to witness link pages allowed per client address in ten minutes.
    "WITNESS_RATE_LIMIT": 30,
    # The time zone times are shown in (an IANA name) unless a centre sets its own.
    "DEFAULT_TIMEZONE": "Europe/London",
    # The address people reach this app at, used in links printed on exported PDFs.
    "PUBLIC_URL": "http://127.0.0.1:5000",
    # A centre's own PKCS#12 signing file and its passphrase; empty uses `portfolio keys init`.
    "SIGNING_PKCS12": "",
    "SIGNING_PKCS12_PASSPHRASE": "",
    # Folder of the centres' signing keys (centre-<id>/ each, with retired/ certificates);
    # empty means instance/signing. Point every machine at the same secret mount.
    "SIGNING_KEYS_DIR": "",
    # Largest PDF the public /verify page accepts, in megabytes.
    "VERIFY_MAX_MB": 200,
    # A timestamp authority for PAdES B-T signatures; empty signs PAdES B-B.
    "SIGNING_TSA_URL": "",
    # Run PDF exports inside the request instead of a background thread (tests, tiny sites).
    "EXPORT_RUN_INLINE": False,
    # Lay out a learner's PDF parts in the background after each review or signature, so the
    # export click finds them ready (portfolio/export/prepare.py).
    "EXPORT_PREPARE": True,
    # `portfolio maintenance` deletes upload temp files untouched this long (a process killed
    # mid-upload leaves its half-written file).
    "STAGING_MAX_AGE_HOURS": 24,
    # Processes that lay out PDF parts in parallel; 0 uses one per CPU core.
    "EXPORT_PROCESSES": 0,
    # Exports one person may have queued or running at once; more are refused until one ends.
    "EXPORT_MAX_QUEUED_PER_PERSON": 2,
    # A running export whose worker has not beaten its heartbeat for this many seconds (its
    # process died) is marked failed; so is one still queued, never picked up, after
    # EXPORT_QUEUED_TIMEOUT seconds.
    "EXPORT_HEARTBEAT_TIMEOUT": 120,
    "EXPORT_QUEUED_TIMEOUT": 3600,
    # A finished EQA pack ZIP is kept (and handed out again while the pack is unchanged) this
    # many hours; then `portfolio maintenance` removes it.
    "EQA_PACK_KEEP_HOURS": 168,
    # Rendered PDF parts and print-ready photos, cached by content hash so a re-export lays out
    # only what changed; empty means instance/render-cache. Least recently used files beyond
    # RENDER_CACHE_MB are deleted after each export.
    "RENDER_CACHE_DIR": "",
    "RENDER_CACHE_MB": 2048,
    # Redis for the export queue, e.g. redis://127.0.0.1:6379/0: PDF exports are queued and run
    # by `portfolio worker` processes instead of inside the web process. Also read as REDIS_URL.
    "REDIS_URL": "",
    # Number of trusted proxies in front of the app (for the client address used by throttling).
    "TRUSTED_PROXIES": 0,
    # Notification emails: the local hour (in NOTIFY_TIMEZONE, or DEFAULT_TIMEZONE when it is
    # empty) after which each day's digest
    # goes to people who chose "daily", and how often (seconds) the sender thread started by
    # `portfolio serve` and `portfolio worker` looks for due emails (0: only cron sends, with
    # `portfolio notifications send`).
    "NOTIFY_DIGEST_HOUR": 7,
    "NOTIFY_TIMEZONE": "",
    "NOTIFY_SEND_INTERVAL": 60,
    # Logs: "json" (one object per line), "text", or empty for json in production and text
    # otherwise; the level; and whether each request writes a line (method, route pattern,
    # status, time and request id: never an address, an id from the URL or a search word).
    "LOG_FORMAT": "",
    "LOG_LEVEL": "INFO",
    "LOG_REQUESTS": True,
    # /metrics answers the machine itself only, unless this token is set: then anyone sending
    # "Authorization: Bearer <token>" (a Prometheus server elsewhere) and nobody else.
    "METRICS_TOKEN": "",
    # Calls each API token may make (Flask-Limiter's notation, e.g. "600 per minute" or
    # "20 per second;600 per minute"); counted in Redis when REDIS_URL is set.
    "API_RATE_LIMIT": "600 per minute",
    # Send notification emails before the response instead of off the request path (the
    # mail queue with REDIS_URL, else a background thread with retries).
    "MAIL_SEND_INLINE": False,
    # Without Redis: seconds between the background thread's attempts at an email the server
    # refused or did not answer (comma-separated; after the last it gives up and logs it).
    "MAIL_RETRY_SECONDS": "5,30,120",
    # "Forgotten your password?": a link works once, for this many minutes; each address may be
    # sent this many links an hour, and each client may ask this many times an hour.
    "RESET_LINK_MINUTES": 60,
    "RESET_MAX_PER_ACCOUNT": 3,
    "RESET_MAX_PER_CLIENT": 20,
    # An admin's invitation to a new person (to choose their first password) works this long.
    "INVITE_LINK_DAYS": 7,
}

ENV_PREFIX = "PORTFOLIO_"


def _coerce(value: str, default: Any) -> Any:
    """Convert an environment string to the type of the default."""
    if isinstance(default, bool):
        lowered = value.strip().lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off"}:
            return False
        raise ValueError(f"expected true/false, got {value!r}")
    if isinstance(default, int):
        return int(value)
    return value


def from_environment(environ: dict[str, str] | None = None) -> dict[str, Any]:
    """Read PORTFOLIO_* overrides (and plain DATABASE_URL and REDIS_URL) from the environment."""
    environ = dict(os.environ if environ is None else environ)
    found: dict[str, Any] = {}
    for plain in ("DATABASE_URL", "REDIS_URL"):
        if environ.get(plain):
            found[plain] = environ[plain]
    for key, default in DEFAULTS.items():
        name = ENV_PREFIX + key
        if name in environ:
            try:
                found[key] = _coerce(environ[name], default)
            except ValueError as exc:
                raise RuntimeError(f"{name}: {exc}") from exc
    return found


def default_database_url(instance_path: str) -> str:
    """Return the SQLite URL of the embedded default database."""
    return "sqlite:///" + str(Path(instance_path) / "portfolio.sqlite3")


def load_or_create_secret_key(instance_path: str) -> str:
    """Read the instance secret key, creating it (mode 0600) on first run."""
    path = Path(instance_path) / "secret_key"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    # O_EXCL: two processes starting at once must not overwrite each other's key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key


def is_production(config: Any) -> bool:
    """True for a production install (not development, not the test suite)."""
    return config.get("ENV") == "production" and not config.get("TESTING")


def read_secret_file(path: str) -> str:
    """Read a secret from a file (e.g. a mounted secret), refusing an empty or missing one."""
    try:
        value = Path(path).expanduser().read_text().strip()
    except OSError as exc:
        raise RuntimeError(f"The secret file {path} cannot be read: {exc.strerror}") from exc
    if not value:
        raise RuntimeError(f"The secret file {path} is empty.")
    return value
