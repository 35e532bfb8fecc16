"""Search: one entry per evidence item, piece of feedback and comment, with a full-text index
that suits the database (a generated tsvector with a GIN index on PostgreSQL, FTS5 on SQLite).

The SQLite triggers live on `search_entries`: a later migration that rebuilds that table in
batch mode must make them again.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-04 09:50:00.000000
"""
import sqlalchemy as sa
from alembic import op

import portfolio.db

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None

SQLITE_INDEX = [
    "CREATE VIRTUAL TABLE search_fts USING fts5(title, body, content='search_entries', "
    "content_rowid='id', tokenize='porter unicode61 remove_diacritics 2')",
    "CREATE TRIGGER search_entries_ai AFTER INSERT ON search_entries BEGIN "
    "INSERT INTO search_fts(rowid, title, body) VALUES (new.id, new.title, new.body); END",
    "CREATE TRIGGER search_entries_ad AFTER DELETE ON search_entries BEGIN "
    "INSERT INTO search_fts(search_fts, rowid, title, body) "
    "VALUES ('delete', old.id, old.title, old.body); END",
    "CREATE TRIGGER search_entries_au AFTER UPDATE ON search_entries BEGIN "
    "INSERT INTO search_fts(search_fts, rowid, title, body) "
    "VALUES ('delete', old.id, old.title, old.body); "
    "INSERT INTO search_fts(rowid, title, body) VALUES (new.id, new.title, new.body); END",
]

POSTGRES_INDEX = [
    "ALTER TABLE search_entries ADD COLUMN document tsvector GENERATED ALWAYS AS ("
    "setweight(to_tsvector('english', coalesce(title, '')), 'A') || "
    "setweight(to_tsvector('english', coalesce(body, '')), 'B')) STORED",
    "CREATE INDEX ix_search_entries_document ON search_entries USING gin (document)",
]


def upgrade() -> None:
    op.create_table(
        'search_entries',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('source_id', sa.Integer(), nullable=False),
        sa.Column('evidence_id', sa.Integer(), nullable=False),
        sa.Column('enrolment_id', sa.Integer(), nullable=False),
        sa.Column('title', sa.String(length=200), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('updated_at', portfolio.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['enrolment_id'], ['enrolments.id'],
                                name=op.f('fk_search_entries_enrolment_id_enrolments'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['evidence_id'], ['evidence.id'],
                                name=op.f('fk_search_entries_evidence_id_evidence'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_search_entries')),
        sa.UniqueConstraint('kind', 'source_id', name=op.f('uq_search_entries_kind_source_id')),
    )
    op.create_index(op.f('ix_search_entries_enrolment_id'), 'search_entries', ['enrolment_id'])
    op.create_index(op.f('ix_search_entries_evidence_id'), 'search_entries', ['evidence_id'])
    bind = op.get_bind()
    for statement in POSTGRES_INDEX if bind.dialect.name == "postgresql" else SQLITE_INDEX:
        bind.exec_driver_sql(statement)
    # Index what is already there.
    from portfolio.search.index import rebuild
    rebuild(bind)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for name in ("search_entries_au", "search_entries_ad", "search_entries_ai"):
            bind.exec_driver_sql(f"DROP TRIGGER IF EXISTS {name}")
        bind.exec_driver_sql("DROP TABLE IF EXISTS search_fts")
    op.drop_index(op.f('ix_search_entries_evidence_id'), table_name='search_entries')
    op.drop_index(op.f('ix_search_entries_enrolment_id'), table_name='search_entries')
    op.drop_table('search_entries')
