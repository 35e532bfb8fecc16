"""EQA access packs, the enrolments each shares, and the log of every page an EQA opened

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 02:05:00.000000
"""
from alembic import op
import sqlalchemy as sa
import portfolio.db


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('eqa_packs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('centre_id', sa.Integer(), nullable=False),
    sa.Column('eqa_id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('valid_from', sa.Date(), nullable=False),
    sa.Column('valid_to', sa.Date(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=False),
    sa.Column('created_at', portfolio.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', portfolio.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('revoked_by_id', sa.Integer(), nullable=True),
    sa.Column('revoked_reason', sa.String(length=300), nullable=False),
    sa.CheckConstraint('valid_to >= valid_from', name=op.f('ck_eqa_packs_dates_ordered')),
    sa.CheckConstraint('(revoked_at IS NULL) = (revoked_by_id IS NULL)', name=op.f('ck_eqa_packs_revoked_by')),
    sa.ForeignKeyConstraint(['centre_id'], ['centres.id'], name=op.f('fk_eqa_packs_centre_id_centres')),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_eqa_packs_created_by_id_users')),
    sa.ForeignKeyConstraint(['eqa_id'], ['users.id'], name=op.f('fk_eqa_packs_eqa_id_users')),
    sa.ForeignKeyConstraint(['revoked_by_id'], ['users.id'], name=op.f('fk_eqa_packs_revoked_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_eqa_packs'))
    )
    with op.batch_alter_table('eqa_packs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_eqa_packs_centre_id'), ['centre_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_eqa_packs_eqa_id'), ['eqa_id'], unique=False)

    op.create_table('eqa_pack_enrolments',
    sa.Column('pack_id', sa.Integer(), nullable=False),
    sa.Column('enrolment_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['enrolment_id'], ['enrolments.id'], name=op.f('fk_eqa_pack_enrolments_enrolment_id_enrolments')),
    sa.ForeignKeyConstraint(['pack_id'], ['eqa_packs.id'], name=op.f('fk_eqa_pack_enrolments_pack_id_eqa_packs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('pack_id', 'enrolment_id', name=op.f('pk_eqa_pack_enrolments'))
    )
    with op.batch_alter_table('eqa_pack_enrolments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_eqa_pack_enrolments_enrolment_id'), ['enrolment_id'], unique=False)

    op.create_table('eqa_access_log',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('pack_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('method', sa.String(length=10), nullable=False),
    sa.Column('path', sa.String(length=500), nullable=False),
    sa.Column('status', sa.Integer(), nullable=False),
    sa.Column('at', portfolio.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['pack_id'], ['eqa_packs.id'], name=op.f('fk_eqa_access_log_pack_id_eqa_packs'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_eqa_access_log_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_eqa_access_log'))
    )
    with op.batch_alter_table('eqa_access_log', schema=None) as batch_op:
        batch_op.create_index('ix_eqa_access_log_pack_at', ['pack_id', 'at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('eqa_access_log', schema=None) as batch_op:
        batch_op.drop_index('ix_eqa_access_log_pack_at')

    op.drop_table('eqa_access_log')
    with op.batch_alter_table('eqa_pack_enrolments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_eqa_pack_enrolments_enrolment_id'))

    op.drop_table('eqa_pack_enrolments')
    with op.batch_alter_table('eqa_packs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_eqa_packs_eqa_id'))
        batch_op.drop_index(batch_op.f('ix_eqa_packs_centre_id'))

    op.drop_table('eqa_packs')
