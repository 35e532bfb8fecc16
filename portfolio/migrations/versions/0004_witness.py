"""witness requests and rate events

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 00:16:02.523543
"""
from alembic import op
import sqlalchemy as sa
import portfolio.db


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('rate_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=120), nullable=False),
    sa.Column('at', portfolio.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rate_events'))
    )
    with op.batch_alter_table('rate_events', schema=None) as batch_op:
        batch_op.create_index('ix_rate_events_key_at', ['key', 'at'], unique=False)

    op.create_table('witness_requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('enrolment_id', sa.Integer(), nullable=False),
    sa.Column('requested_by_id', sa.Integer(), nullable=False),
    sa.Column('witness_name', sa.String(length=200), nullable=False),
    sa.Column('witness_email', sa.String(length=254), nullable=False),
    sa.Column('witness_role', sa.String(length=200), nullable=False),
    sa.Column('organisation', sa.String(length=200), nullable=False),
    sa.Column('relationship', sa.String(length=200), nullable=False),
    sa.Column('is_expert', sa.Boolean(), nullable=False),
    sa.Column('expert_competence', sa.Text(), nullable=False),
    sa.Column('activity', sa.Text(), nullable=False),
    sa.Column('activity_on', sa.Date(), nullable=False),
    sa.Column('activity_place', sa.String(length=200), nullable=False),
    sa.Column('criterion_ids', sa.JSON(), nullable=False),
    sa.Column('draft_md', sa.Text(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('expires_at', portfolio.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('created_at', portfolio.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('sent_count', sa.Integer(), nullable=False),
    sa.Column('used_at', portfolio.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('testimony_md', sa.Text(), nullable=True),
    sa.Column('declared_relationship', sa.String(length=200), nullable=True),
    sa.Column('declared_related', sa.Boolean(), nullable=True),
    sa.Column('signed_name', sa.String(length=200), nullable=True),
    sa.Column('signed_at', portfolio.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('content', sa.JSON(), nullable=True),
    sa.Column('content_hash', sa.String(length=64), nullable=True),
    sa.Column('decline_reason', sa.String(length=500), nullable=True),
    sa.Column('evidence_id', sa.Integer(), nullable=True),
    sa.Column('replaced_by_id', sa.Integer(), nullable=True),
    sa.Column('contact_minimised_at', portfolio.db.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status <> 'signed' OR (signed_name IS NOT NULL AND signed_at IS NOT NULL AND content_hash IS NOT NULL)", name=op.f('ck_witness_requests_signed_complete')),
    sa.CheckConstraint("status IN ('pending', 'signed', 'declined', 'cancelled', 'replaced')", name=op.f('ck_witness_requests_status_known')),
    sa.ForeignKeyConstraint(['enrolment_id'], ['enrolments.id'], name=op.f('fk_witness_requests_enrolment_id_enrolments')),
    sa.ForeignKeyConstraint(['evidence_id'], ['evidence.id'], name=op.f('fk_witness_requests_evidence_id_evidence')),
    sa.ForeignKeyConstraint(['replaced_by_id'], ['witness_requests.id'], name=op.f('fk_witness_requests_replaced_by_id_witness_requests')),
    sa.ForeignKeyConstraint(['requested_by_id'], ['users.id'], name=op.f('fk_witness_requests_requested_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_witness_requests')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_witness_requests_token_hash'))
    )
    with op.batch_alter_table('witness_requests', schema=None) as batch_op:
        batch_op.create_index('ix_witness_requests_email', ['witness_email'], unique=False)
        batch_op.create_index(batch_op.f('ix_witness_requests_enrolment_id'), ['enrolment_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('witness_requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_witness_requests_enrolment_id'))
        batch_op.drop_index('ix_witness_requests_email')

    op.drop_table('witness_requests')
    with op.batch_alter_table('rate_events', schema=None) as batch_op:
        batch_op.drop_index('ix_rate_events_key_at')

    op.drop_table('rate_events')
