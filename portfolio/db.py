"""Database engine and session per app; the declarative Base with a constraint naming convention."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar, cast

from flask import Flask, current_app, g
from sqlalchemy import DateTime, MetaData, create_engine, event
from sqlalchemy.engine import CursorResult, Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from portfolio.seals import Sealer, SealKeyMissing, attach, read_seal_key

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> datetime:
    """Return the current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use timezone-aware UTC")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _enable_sqlite_foreign_keys(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    # WAL lets the web server read while a CLI command writes.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def make_engine(url: str, pool: dict[str, int] | None = None) -> Engine:
    """Create an engine for the URL, with SQLite foreign keys switched on; `pool` sizes a
    server database's connection pool (pool_size, max_overflow, pool_timeout, pool_recycle)."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    options: dict[str, Any] = {"pool_pre_ping": True}
    if not url.startswith("sqlite"):
        options.update(pool or {})
    engine = create_engine(url, **options)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _enable_sqlite_foreign_keys)
    return engine


class Database:
    """Holds one app's engine and session factory, and the key its sessions seal with."""

    def __init__(self, url: str, sealer: Sealer | None = None,
                 pool: dict[str, int] | None = None) -> None:
        from portfolio.audit import checkpoint_after_commit, forget_head

        self.engine = make_engine(url, pool)
        self.sealer = sealer
        self.sessionmaker = sessionmaker(bind=self.engine, expire_on_commit=False,
                                         info={"sealer": sealer} if sealer else {})
        if sealer is not None:
            attach(self.engine, sealer)
        event.listen(self.sessionmaker, "after_commit", checkpoint_after_commit)
        event.listen(self.sessionmaker, "after_rollback", forget_head)


def app_sealer(app: Flask) -> Sealer | None:
    """Build the app's sealer; None in production when no seal key is configured."""
    production = app.config["ENV"] == "production" and not app.config.get("TESTING")
    try:
        secret = read_seal_key(app.config, app.instance_path, create=not production)
    except SealKeyMissing:
        return None  # sealing refuses with a clear message; `serve` refuses to start
    folder = app.config.get("AUDIT_CHECKPOINT_DIR") or str(Path(app.instance_path)
                                                           / "audit-checkpoints")
    return Sealer.from_secret(secret, checkpoint_dir=Path(folder),
                              checkpoint_every=int(app.config["AUDIT_CHECKPOINT_EVERY"]))


def init_app(app: Flask) -> None:
    """Attach a Database to the app and close the request session on teardown."""
    pool = {"pool_size": int(app.config["DATABASE_POOL_SIZE"]),
            "max_overflow": int(app.config["DATABASE_MAX_OVERFLOW"]),
            "pool_timeout": int(app.config["DATABASE_POOL_TIMEOUT"]),
            "pool_recycle": int(app.config["DATABASE_POOL_RECYCLE"])}
    app.extensions["portfolio.db"] = Database(app.config["DATABASE_URL"], app_sealer(app), pool)

    @app.teardown_appcontext
    def _close_session(_exc: BaseException | None) -> None:
        session: Session | None = g.pop("db_session", None)
        if session is not None:
            # Anything not committed by the view is thrown away: a failed request leaves nothing.
            session.rollback()
            session.close()


def get_database(app: Flask | None = None) -> Database:
    """Return the Database of the given or current app."""
    return (app or current_app).extensions["portfolio.db"]


def session() -> Session:
    """Return the session of the current app context, opening it on first use."""
    if "db_session" not in g:
        g.db_session = get_database().sessionmaker()
    return g.db_session


def rowcount(result: Any) -> int:
    """The rows an UPDATE or DELETE touched (a CursorResult's count, typed for the checker)."""
    return cast(CursorResult[Any], result).rowcount


_Row = TypeVar("_Row")


def must_get(session: Any, model: type[_Row], key: Any) -> _Row:
    """A row that must exist (its id came from another row): LookupError if it does not."""
    row = session.get(model, key)
    if row is None:
        raise LookupError(f"{model.__name__} {key} is missing")
    return cast(_Row, row)
