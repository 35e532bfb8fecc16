"""assessment: reviews, decisions, signatures, declarations

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 23:42:58.168705
"""
from alembic import op
import sqlalchemy as sa
import portfolio.db


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('signatures',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('enrolment_id', sa.Integer(), nullable=False),
    sa.Column('purpose', sa.String(length=30), nullable=False),
    sa.Column('subject_type', sa.String(length=30), nullable=False),
    sa.Column('subject_id', sa.Integer(), nullable=False),
    sa.Column('signer_id', sa.Integer(), nullable=False),
    sa.Column('signer_role', sa.String(length=20), nullable=False),
    sa.Column('typed_name', sa.String(length=200), nullable=False),
    sa.Column('statement', sa.Text(), nullable=False),
    sa.Column('signed_at', portfolio.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('content', sa.JSON(), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('seal', sa.String(length=64), nullable=False),
    sa.Column('invalidated_at', portfolio.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('invalidated_reason', sa.String(length=300), nullable=True),
    sa.CheckConstraint("purpose IN ('evidence_declaration', 'unit_declaration', 'criterion_decision', 'countersignature', 'unit_signoff', 'unit_cosign')", name=op.f('ck_signatures_purpose_known')),
    sa.ForeignKeyConstraint(['enrolment_id'], ['enrolments.id'], name=op.f('fk_signatures_enrolment_id_enrolments')),
    sa.ForeignKeyConstraint(['signer_id'], ['users.id'], name=op.f('fk_signatures_signer_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_signatures'))
    )
    with op.batch_alter_table('signatures', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_signatures_enrolment_id'), ['enrolment_id'], unique=False)
        batch_op.create_index('ix_signatures_subject', ['subject_type', 'subject_id'], unique=False)

    op.create_table('criterion_decisions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('enrolment_id', sa.Integer(), nullable=False),
    sa.Column('criterion_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=30), nullable=False),
    sa.Column('evidence', sa.JSON(), nullable=False),
    sa.Column('note_md', sa.Text(), nullable=False),
    sa.Column('decided_by_id', sa.Integer(), nullable=False),
    sa.Column('decided_at', portfolio.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('signature_id', sa.Integer(), nullable=False),
    sa.Column('needs_countersignature', sa.Integer(), nullable=False),
    sa.Column('countersigned_by_id', sa.Integer(), nullable=True),
    sa.Column('countersignature_id', sa.Integer(), nullable=True),
    sa.Column('ended_at', portfolio.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('ended_reason', sa.String(length=300), nullable=True),
    sa.CheckConstraint("status <> 'met' OR countersigned_by_id IS NOT NULL OR needs_countersignature = 0", name=op.f('ck_criterion_decisions_trainee_decisions_countersigned')),
    sa.CheckConstraint("status IN ('awaiting_countersignature', 'met', 'invalidated', 'reopened')", name=op.f('ck_criterion_decisions_status_known')),
    sa.CheckConstraint('signature_id IS NOT NULL AND decided_at IS NOT NULL', name=op.f('ck_criterion_decisions_signed')),
    sa.ForeignKeyConstraint(['countersignature_id'], ['signatures.id'], name=op.f('fk_criterion_decisions_countersignature_id_signatures')),
    sa.ForeignKeyConstraint(['countersigned_by_id'], ['users.id'], name=op.f('fk_criterion_decisions_countersigned_by_id_users')),
    sa.ForeignKeyConstraint(['criterion_id'], ['criteria.id'], name=op.f('fk_criterion_decisions_criterion_id_criteria')),
    sa.ForeignKeyConstraint(['decided_by_id'], ['users.id'], name=op.f('fk_criterion_decisions_decided_by_id_users')),
    sa.ForeignKeyConstraint(['enrolment_id'], ['enrolments.id'], name=op.f('fk_criterion_decisions_enrolment_id_enrolments')),
    sa.ForeignKeyConstraint(['signature_id'], ['signatures.id'], name=op.f('fk_criterion_decisions_signature_id_signatures')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_criterion_decisions'))
    )
    with op.batch_alter_table('criterion_decisions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_criterion_decisions_criterion_id'), ['criterion_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_criterion_decisions_enrolment_id'), ['enrolment_id'], unique=False)
        batch_op.create_index('uq_criterion_decisions_live', ['enrolment_id', 'criterion_id'], unique=True, sqlite_where=sa.text("status IN ('met', 'awaiting_countersignature')"), postgresql_where=sa.text("status IN ('met', 'awaiting_countersignature')"))

    op.create_table('evidence_reviews',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('evidence_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('reviewer_id', sa.Integer(), nullable=False),
    sa.Column('outcome', sa.String(length=20), nullable=False),
    sa.Column('feedback_md', sa.Text(), nullable=False),
    sa.Column('varcs', sa.JSON(), nullable=False),
    sa.Column('created_at', portfolio.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("outcome IN ('accepted', 'referred')", name=op.f('ck_evidence_reviews_outcome_known')),
    sa.ForeignKeyConstraint(['evidence_id'], ['evidence.id'], name=op.f('fk_evidence_reviews_evidence_id_evidence')),
    sa.ForeignKeyConstraint(['reviewer_id'], ['users.id'], name=op.f('fk_evidence_reviews_reviewer_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_evidence_reviews'))
    )
    with op.batch_alter_table('evidence_reviews', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_evidence_reviews_evidence_id'), ['evidence_id'], unique=False)

    with op.batch_alter_table('centres', schema=None) as batch_op:
        batch_op.add_column(sa.Column('evidence_declaration', sa.Text(), server_default="I confirm that this evidence is my own work, that it is a true record of what I did, and that I have removed or not included customers' personal details.", nullable=False))
        batch_op.add_column(sa.Column('unit_declaration', sa.Text(), server_default='I confirm that all the evidence in this unit is my own work, produced in my workplace, and that the witness testimonies are from the people named.', nullable=False))

    with op.batch_alter_table('evidence', schema=None) as batch_op:
        batch_op.add_column(sa.Column('assessor_mapped_at', portfolio.db.UTCDateTime(timezone=True), nullable=True))

    with op.batch_alter_table('evidence_mappings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('source', sa.String(length=20), server_default='learner', nullable=False))
        batch_op.drop_index('uq_evidence_mappings_live', sqlite_where=sa.text('removed_at IS NULL'), postgresql_where=sa.text('removed_at IS NULL'))
        batch_op.create_index('uq_evidence_mappings_live_source', ['evidence_id', 'criterion_id', 'source'], unique=True, sqlite_where=sa.text('removed_at IS NULL'), postgresql_where=sa.text('removed_at IS NULL'))



def downgrade() -> None:
    with op.batch_alter_table('evidence_mappings', schema=None) as batch_op:
        batch_op.drop_index('uq_evidence_mappings_live_source', sqlite_where=sa.text('removed_at IS NULL'), postgresql_where=sa.text('removed_at IS NULL'))
        batch_op.create_index('uq_evidence_mappings_live', ['evidence_id', 'criterion_id'], unique=True, sqlite_where=sa.text('removed_at IS NULL'), postgresql_where=sa.text('removed_at IS NULL'))
        batch_op.drop_column('source')

    with op.batch_alter_table('evidence', schema=None) as batch_op:
        batch_op.drop_column('assessor_mapped_at')

    with op.batch_alter_table('centres', schema=None) as batch_op:
        batch_op.drop_column('unit_declaration')
        batch_op.drop_column('evidence_declaration')

    with op.batch_alter_table('evidence_reviews', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_evidence_reviews_evidence_id'))

    op.drop_table('evidence_reviews')
    with op.batch_alter_table('criterion_decisions', schema=None) as batch_op:
        batch_op.drop_index('uq_criterion_decisions_live', sqlite_where=sa.text("status IN ('met', 'awaiting_countersignature')"), postgresql_where=sa.text("status IN ('met', 'awaiting_countersignature')"))
        batch_op.drop_index(batch_op.f('ix_criterion_decisions_enrolment_id'))
        batch_op.drop_index(batch_op.f('ix_criterion_decisions_criterion_id'))

    op.drop_table('criterion_decisions')
    with op.batch_alter_table('signatures', schema=None) as batch_op:
        batch_op.drop_index('ix_signatures_subject')
        batch_op.drop_index(batch_op.f('ix_signatures_enrolment_id'))

    op.drop_table('signatures')
