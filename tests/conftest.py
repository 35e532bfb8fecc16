"""Fixtures: a fresh database per test (SQLite file or a real PostgreSQL server), app, clients."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
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
from tests.servers import RedisServer, SeaweedServer, ServerFailed  # noqa: E402

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
def own_instance(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An instance folder of this test's own, for apps made after it: the signing keys a test
    makes there (`portfolio keys init`) cannot sign another test's exports."""
    path = tmp_path / "instance"
    monkeypatch.setenv("PORTFOLIO_INSTANCE_PATH", str(path))
    return path


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
    server = RedisServer()
    try:
        yield server.start()
    except ServerFailed as exc:
        pytest.fail(str(exc))
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: str) -> str:
    """The test Redis server, emptied for this test."""
    from redis import Redis

    with Redis.from_url(redis_server) as client:
        client.flushdb()
    return redis_server


@pytest.fixture(scope="session")
def seaweedfs() -> Iterator[dict[str, str]]:
    """A private SeaweedFS with its S3 gateway and one bucket on free loopback ports; yields
    the S3 settings (config keys without the PORTFOLIO_ prefix)."""
    server = SeaweedServer()
    try:
        yield server.start()
    except ServerFailed as exc:
        pytest.fail(str(exc))
    finally:
        server.stop()


@pytest.fixture
def s3_config(seaweedfs: dict[str, str]) -> dict[str, str]:
    """App config for the S3 backend on the test SeaweedFS, under a prefix of this test's
    own, so tests never see each other's objects."""
    import uuid

    from portfolio.storage import s3

    s3.forget_checks()
    return {"STORAGE_BACKEND": "s3", **seaweedfs, "S3_PREFIX": f"test-{uuid.uuid4().hex}/"}


