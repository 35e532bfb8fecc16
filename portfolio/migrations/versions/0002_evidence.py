"""evidence, versions, files, mappings

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 23:24:19.861563
"""
from alembic import op
import sqlalchemy as sa
import portfolio.db


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('stored_files',
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('media_type', sa.String(length=120), nullable=False),
    sa.Column('created_at', portfolio.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('size >= 0', name=op.f('ck_stored_files_size_not_negative')),
    sa.PrimaryKeyConstraint('sha256', name=op.f('pk_stored_files'))
    )
    op.create_table('evidence',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('enrolment_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('current_version', sa.Integer(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=False),
    sa.Column('created_at', portfolio.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', portfolio.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('submitted_at', portfolio.db.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("kind IN ('reflective_account', 'witness_testimony', 'observation', 'professional_discussion', 'work_product', 'log', 'email', 'photo', 'questioning', 'rpl', 'descriptor')", name=op.f('ck_evidence_kind_known')),
    sa.CheckConstraint("status IN ('draft', 'submitted', 'referred', 'accepted', 'withdrawn')", name=op.f('ck_evidence_status_known')),
    sa.CheckConstraint('current_version >= 1', name=op.f('ck_evidence_version_positive')),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_evidence_created_by_id_users')),
    sa.ForeignKeyConstraint(['enrolment_id'], ['enrolments.id'], name=op.f('fk_evidence_enrolment_id_enrolments')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_evidence'))
    )
    with op.batch_alter_table('evidence', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_evidence_enrolment_id'), ['enrolment_id'], unique=False)
        batch_op.create_index('ix_evidence_enrolment_status', ['enrolment_id', 'status'], unique=False)

    op.create_table('evidence_mappings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('evidence_id', sa.Integer(), nullable=False),
    sa.Column('criterion_id', sa.Integer(), nullable=False),
    sa.Column('criterion_version', sa.Integer(), nullable=False),
    sa.Column('rationale', sa.String(length=500), nullable=False),
    sa.Column('location', sa.String(length=120), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=False),
    sa.Column('created_at', portfolio.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('removed_at', portfolio.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('removed_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_evidence_mappings_created_by_id_users')),
    sa.ForeignKeyConstraint(['criterion_id'], ['criteria.id'], name=op.f('fk_evidence_mappings_criterion_id_criteria')),
    sa.ForeignKeyConstraint(['evidence_id'], ['evidence.id'], name=op.f('fk_evidence_mappings_evidence_id_evidence'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['removed_by_id'], ['users.id'], name=op.f('fk_evidence_mappings_removed_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_evidence_mappings'))
    )
    with op.batch_alter_table('evidence_mappings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_evidence_mappings_criterion_id'), ['criterion_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_evidence_mappings_evidence_id'), ['evidence_id'], unique=False)
        batch_op.create_index('uq_evidence_mappings_live', ['evidence_id', 'criterion_id'], unique=True, sqlite_where=sa.text('removed_at IS NULL'), postgresql_where=sa.text('removed_at IS NULL'))

    op.create_table('evidence_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('evidence_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('activity_on', sa.Date(), nullable=True),
    sa.Column('activity_place', sa.String(length=200), nullable=False),
    sa.Column('body_md', sa.Text(), nullable=False),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.Column('is_simulated', sa.Boolean(), nullable=False),
    sa.Column('personal_data_confirmed', sa.Boolean(), nullable=False),
    sa.Column('change_note', sa.String(length=300), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=False),
    sa.Column('created_at', portfolio.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_evidence_versions_created_by_id_users')),
    sa.ForeignKeyConstraint(['evidence_id'], ['evidence.id'], name=op.f('fk_evidence_versions_evidence_id_evidence'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_evidence_versions')),
    sa.UniqueConstraint('evidence_id', 'version', name=op.f('uq_evidence_versions_evidence_id_version'))
    )
    with op.batch_alter_table('evidence_versions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_evidence_versions_evidence_id'), ['evidence_id'], unique=False)

    op.create_table('evidence_files',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('filename', sa.String(length=160), nullable=False),
    sa.Column('media_type', sa.String(length=120), nullable=False),
    sa.Column('category', sa.String(length=20), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('preview', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['sha256'], ['stored_files.sha256'], name=op.f('fk_evidence_files_sha256_stored_files')),
    sa.ForeignKeyConstraint(['version_id'], ['evidence_versions.id'], name=op.f('fk_evidence_files_version_id_evidence_versions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_evidence_files'))
    )
    with op.batch_alter_table('evidence_files', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_evidence_files_sha256'), ['sha256'], unique=False)
        batch_op.create_index(batch_op.f('ix_evidence_files_version_id'), ['version_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('evidence_files', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_evidence_files_version_id'))
        batch_op.drop_index(batch_op.f('ix_evidence_files_sha256'))

    op.drop_table('evidence_files')
    with op.batch_alter_table('evidence_versions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_evidence_versions_evidence_id'))

    op.drop_table('evidence_versions')
    with op.batch_alter_table('evidence_mappings', schema=None) as batch_op:
        batch_op.drop_index('uq_evidence_mappings_live', sqlite_where=sa.text('removed_at IS NULL'), postgresql_where=sa.text('removed_at IS NULL'))
        batch_op.drop_index(batch_op.f('ix_evidence_mappings_evidence_id'))
        batch_op.drop_index(batch_op.f('ix_evidence_mappings_criterion_id'))

    op.drop_table('evidence_mappings')
    with op.batch_alter_table('evidence', schema=None) as batch_op:
        batch_op.drop_index('ix_evidence_enrolment_status')
        batch_op.drop_index(batch_op.f('ix_evidence_enrolment_id'))

    op.drop_table('evidence')
    op.drop_table('stored_files')
