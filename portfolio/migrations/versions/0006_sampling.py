"""IQA sampling: strategy history, assessor risk profiles, plans, samples (of one criterion
decision or of a unit's sign-off), actions; signatures may have the purpose "iqa_outcome".

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 01:52:21.949368
"""
from alembic import op
import sqlalchemy as sa
import portfolio.db


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

_OLD_PURPOSES = ("'evidence_declaration', 'unit_declaration', 'criterion_decision', "
                 "'countersignature', 'unit_signoff', 'unit_cosign'")
_NEW_PURPOSES = _OLD_PURPOSES + ", 'iqa_outcome'"


def _set_signature_purposes(old: str, new: str) -> None:
    """Rewrite the CHECK constraint on signatures.purpose from one list of values to another.

    PostgreSQL drops and re-adds the constraint. SQLite cannot alter a constraint, and rebuilding
    the table would fail its foreign keys (decisions refer to signatures), so the table's stored
    definition is edited in place, the documented way for a CHECK change that leaves the stored
    rows as they are (https://sqlite.org/lang_altertable.html#otheralter).
    """
    bind = op.get_bind()
    name = "ck_signatures_purpose_known"
    if bind.dialect.name != "sqlite":
        op.drop_constraint(op.f(name), "signatures", type_="check")
        op.create_check_constraint(op.f(name), "signatures", f"purpose IN ({new})")
        return
    sql = bind.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'signatures'").scalar()
    if f"IN ({old})" not in sql:
        raise RuntimeError("signatures.purpose constraint is not the expected one")
    version = bind.exec_driver_sql("PRAGMA schema_version").scalar()
    bind.exec_driver_sql("PRAGMA writable_schema = ON")
    bind.exec_driver_sql(
        "UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = 'signatures'",
        (sql.replace(f"IN ({old})", f"IN ({new})"),))
    bind.exec_driver_sql(f"PRAGMA schema_version = {int(version) + 1}")
    bind.exec_driver_sql("PRAGMA writable_schema = OFF")


def upgrade() -> None:
    _set_signature_purposes(_OLD_PURPOSES, _NEW_PURPOSES)
    op.create_table('assessor_sampling_profiles',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('centre_id', sa.Integer(), nullable=False),
    sa.Column('assessor_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=True),
    sa.Column('override_pct', sa.Integer(), nullable=True),
    sa.Column('raised_after_disagreement', sa.Boolean(), nullable=False),
    sa.Column('source', sa.String(length=10), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('changed_by_id', sa.Integer(), nullable=False),
    sa.Column('changed_at', portfolio.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("source IN ('iqa', 'admin', 'disagree')", name=op.f('ck_assessor_sampling_profiles_source_known')),
    sa.CheckConstraint("status IS NULL OR status IN ('trainee', 'newly_qualified', 'first_year', 'experienced')", name=op.f('ck_assessor_sampling_profiles_status_known')),
    sa.CheckConstraint('override_pct IS NULL OR (override_pct >= 0 AND override_pct <= 100)', name=op.f('ck_assessor_sampling_profiles_override_is_percentage')),
    sa.ForeignKeyConstraint(['assessor_id'], ['users.id'], name=op.f('fk_assessor_sampling_profiles_assessor_id_users')),
    sa.ForeignKeyConstraint(['centre_id'], ['centres.id'], name=op.f('fk_assessor_sampling_profiles_centre_id_centres')),
    sa.ForeignKeyConstraint(['changed_by_id'], ['users.id'], name=op.f('fk_assessor_sampling_profiles_changed_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_assessor_sampling_profiles'))
    )
    with op.batch_alter_table('assessor_sampling_profiles', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_assessor_sampling_profiles_assessor_id'), ['assessor_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_assessor_sampling_profiles_centre_id'), ['centre_id'], unique=False)

    op.create_table('sampling_strategies',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('centre_id', sa.Integer(), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('trainee_pct', sa.Integer(), nullable=False),
    sa.Column('newly_qualified_pct', sa.Integer(), nullable=False),
    sa.Column('first_year_pct', sa.Integer(), nullable=False),
    sa.Column('experienced_pct', sa.Integer(), nullable=False),
    sa.Column('after_disagreement_pct', sa.Integer(), nullable=False),
    sa.Column('rpl_pct', sa.Integer(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('changed_by_id', sa.Integer(), nullable=False),
    sa.Column('changed_at', portfolio.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('trainee_pct >= 0 AND trainee_pct <= 100 AND newly_qualified_pct >= 0 AND newly_qualified_pct <= 100 AND first_year_pct >= 0 AND first_year_pct <= 100 AND experienced_pct >= 0 AND experienced_pct <= 100 AND after_disagreement_pct >= 0 AND after_disagreement_pct <= 100 AND rpl_pct >= 0 AND rpl_pct <= 100', name=op.f('ck_sampling_strategies_rates_are_percentages')),
    sa.ForeignKeyConstraint(['centre_id'], ['centres.id'], name=op.f('fk_sampling_strategies_centre_id_centres')),
    sa.ForeignKeyConstraint(['changed_by_id'], ['users.id'], name=op.f('fk_sampling_strategies_changed_by_id_users')),
    sa.ForeignKeyConstraint(['unit_id'], ['units.id'], name=op.f('fk_sampling_strategies_unit_id_units')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sampling_strategies'))
    )
    with op.batch_alter_table('sampling_strategies', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sampling_strategies_centre_id'), ['centre_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_sampling_strategies_unit_id'), ['unit_id'], unique=False)

    op.create_table('sampling_plans',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('centre_id', sa.Integer(), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('iqa_id', sa.Integer(), nullable=False),
    sa.Column('period_start', sa.Date(), nullable=False),
    sa.Column('period_end', sa.Date(), nullable=False),
    sa.Column('rates', sa.JSON(), nullable=False),
    sa.Column('generated_ids', sa.JSON(), nullable=False),
    sa.Column('inputs_sha256', sa.String(length=64), nullable=False),
    sa.Column('created_at', portfolio.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('period_end >= period_start', name=op.f('ck_sampling_plans_period_ordered')),
    sa.ForeignKeyConstraint(['centre_id'], ['centres.id'], name=op.f('fk_sampling_plans_centre_id_centres')),
    sa.ForeignKeyConstraint(['iqa_id'], ['users.id'], name=op.f('fk_sampling_plans_iqa_id_users')),
    sa.ForeignKeyConstraint(['unit_id'], ['units.id'], name=op.f('fk_sampling_plans_unit_id_units')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sampling_plans'))
    )
    with op.batch_alter_table('sampling_plans', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sampling_plans_centre_id'), ['centre_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_sampling_plans_iqa_id'), ['iqa_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_sampling_plans_unit_id'), ['unit_id'], unique=False)

    op.create_table('sampling_plan_items',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('plan_id', sa.Integer(), nullable=False),
    sa.Column('decision_id', sa.Integer(), nullable=False),
    sa.Column('enrolment_id', sa.Integer(), nullable=False),
    sa.Column('reason', sa.String(length=300), nullable=False),
    sa.Column('stage', sa.String(length=10), nullable=False),
    sa.Column('source', sa.String(length=10), nullable=False),
    sa.Column('added_by_id', sa.Integer(), nullable=False),
    sa.Column('added_at', portfolio.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('removed_at', portfolio.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('removed_by_id', sa.Integer(), nullable=True),
    sa.Column('removed_reason', sa.String(length=300), nullable=True),
    sa.CheckConstraint("source IN ('generated', 'manual')", name=op.f('ck_sampling_plan_items_source_known')),
    sa.CheckConstraint("stage IN ('interim', 'summative')", name=op.f('ck_sampling_plan_items_stage_known')),
    sa.ForeignKeyConstraint(['added_by_id'], ['users.id'], name=op.f('fk_sampling_plan_items_added_by_id_users')),
    sa.ForeignKeyConstraint(['decision_id'], ['criterion_decisions.id'], name=op.f('fk_sampling_plan_items_decision_id_criterion_decisions')),
    sa.ForeignKeyConstraint(['enrolment_id'], ['enrolments.id'], name=op.f('fk_sampling_plan_items_enrolment_id_enrolments')),
    sa.ForeignKeyConstraint(['plan_id'], ['sampling_plans.id'], name=op.f('fk_sampling_plan_items_plan_id_sampling_plans')),
    sa.ForeignKeyConstraint(['removed_by_id'], ['users.id'], name=op.f('fk_sampling_plan_items_removed_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sampling_plan_items'))
    )
    with op.batch_alter_table('sampling_plan_items', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sampling_plan_items_decision_id'), ['decision_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_sampling_plan_items_enrolment_id'), ['enrolment_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_sampling_plan_items_plan_id'), ['plan_id'], unique=False)
        batch_op.create_index('uq_sampling_plan_items_live', ['plan_id', 'decision_id'], unique=True, sqlite_where=sa.text('removed_at IS NULL'), postgresql_where=sa.text('removed_at IS NULL'))

    op.create_table('iqa_samples',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('scope', sa.String(length=10), nullable=False),
    sa.Column('plan_item_id', sa.Integer(), nullable=True),
    sa.Column('decision_id', sa.Integer(), nullable=True),
    sa.Column('signoff_id', sa.Integer(), nullable=True),
    sa.Column('enrolment_id', sa.Integer(), nullable=False),
    sa.Column('iqa_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('started_at', portfolio.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('snapshot', sa.JSON(), nullable=False),
    sa.Column('snapshot_sha256', sa.String(length=64), nullable=False),
    sa.Column('outcome', sa.String(length=20), nullable=True),
    sa.Column('rationale_md', sa.Text(), nullable=False),
    sa.Column('signature_id', sa.Integer(), nullable=True),
    sa.Column('completed_at', portfolio.db.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("scope IN ('criterion', 'unit')", name=op.f('ck_iqa_samples_scope_known')),
    sa.CheckConstraint("scope <> 'criterion' OR (decision_id IS NOT NULL AND plan_item_id IS NOT NULL)", name=op.f('ck_iqa_samples_criterion_has_decision')),
    sa.CheckConstraint("scope <> 'unit' OR (signoff_id IS NOT NULL AND decision_id IS NULL AND plan_item_id IS NULL)", name=op.f('ck_iqa_samples_unit_has_signoff')),
    sa.CheckConstraint("outcome IS NULL OR outcome IN ('agree', 'agree_with_actions', 'disagree')", name=op.f('ck_iqa_samples_outcome_known')),
    sa.CheckConstraint("status <> 'completed' OR (outcome IS NOT NULL AND signature_id IS NOT NULL AND completed_at IS NOT NULL)", name=op.f('ck_iqa_samples_completed_is_signed')),
    sa.CheckConstraint("status IN ('in_progress', 'completed')", name=op.f('ck_iqa_samples_status_known')),
    sa.ForeignKeyConstraint(['decision_id'], ['criterion_decisions.id'], name=op.f('fk_iqa_samples_decision_id_criterion_decisions')),
    sa.ForeignKeyConstraint(['enrolment_id'], ['enrolments.id'], name=op.f('fk_iqa_samples_enrolment_id_enrolments')),
    sa.ForeignKeyConstraint(['iqa_id'], ['users.id'], name=op.f('fk_iqa_samples_iqa_id_users')),
    sa.ForeignKeyConstraint(['plan_item_id'], ['sampling_plan_items.id'], name=op.f('fk_iqa_samples_plan_item_id_sampling_plan_items')),
    sa.ForeignKeyConstraint(['signature_id'], ['signatures.id'], name=op.f('fk_iqa_samples_signature_id_signatures')),
    sa.ForeignKeyConstraint(['signoff_id'], ['signatures.id'], name=op.f('fk_iqa_samples_signoff_id_signatures')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_iqa_samples')),
    sa.UniqueConstraint('plan_item_id', name=op.f('uq_iqa_samples_plan_item_id')),
    sa.UniqueConstraint('signoff_id', name=op.f('uq_iqa_samples_signoff_id'))
    )
    with op.batch_alter_table('iqa_samples', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_iqa_samples_decision_id'), ['decision_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_iqa_samples_enrolment_id'), ['enrolment_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_iqa_samples_iqa_id'), ['iqa_id'], unique=False)

    op.create_table('iqa_actions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('sample_id', sa.Integer(), nullable=False),
    sa.Column('enrolment_id', sa.Integer(), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('due_on', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('created_at', portfolio.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('acknowledged_at', portfolio.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('response_md', sa.Text(), nullable=True),
    sa.Column('responded_at', portfolio.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('closed_at', portfolio.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('closed_by_id', sa.Integer(), nullable=True),
    sa.Column('closing_note', sa.Text(), nullable=True),
    sa.CheckConstraint("status <> 'closed' OR (closed_at IS NOT NULL AND closed_by_id IS NOT NULL)", name=op.f('ck_iqa_actions_closed')),
    sa.CheckConstraint("status = 'open' OR acknowledged_at IS NOT NULL", name=op.f('ck_iqa_actions_acknowledged')),
    sa.CheckConstraint("status IN ('open', 'acknowledged', 'responded', 'closed')", name=op.f('ck_iqa_actions_status_known')),
    sa.CheckConstraint("status NOT IN ('responded', 'closed') OR responded_at IS NOT NULL", name=op.f('ck_iqa_actions_responded')),
    sa.ForeignKeyConstraint(['closed_by_id'], ['users.id'], name=op.f('fk_iqa_actions_closed_by_id_users')),
    sa.ForeignKeyConstraint(['enrolment_id'], ['enrolments.id'], name=op.f('fk_iqa_actions_enrolment_id_enrolments')),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('fk_iqa_actions_owner_id_users')),
    sa.ForeignKeyConstraint(['sample_id'], ['iqa_samples.id'], name=op.f('fk_iqa_actions_sample_id_iqa_samples')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_iqa_actions'))
    )
    with op.batch_alter_table('iqa_actions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_iqa_actions_enrolment_id'), ['enrolment_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_iqa_actions_owner_id'), ['owner_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_iqa_actions_sample_id'), ['sample_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('iqa_actions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_iqa_actions_sample_id'))
        batch_op.drop_index(batch_op.f('ix_iqa_actions_owner_id'))
        batch_op.drop_index(batch_op.f('ix_iqa_actions_enrolment_id'))

    op.drop_table('iqa_actions')
    with op.batch_alter_table('iqa_samples', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_iqa_samples_iqa_id'))
        batch_op.drop_index(batch_op.f('ix_iqa_samples_enrolment_id'))
        batch_op.drop_index(batch_op.f('ix_iqa_samples_decision_id'))

    op.drop_table('iqa_samples')
    with op.batch_alter_table('sampling_plan_items', schema=None) as batch_op:
        batch_op.drop_index('uq_sampling_plan_items_live', sqlite_where=sa.text('removed_at IS NULL'), postgresql_where=sa.text('removed_at IS NULL'))
        batch_op.drop_index(batch_op.f('ix_sampling_plan_items_plan_id'))
        batch_op.drop_index(batch_op.f('ix_sampling_plan_items_enrolment_id'))
        batch_op.drop_index(batch_op.f('ix_sampling_plan_items_decision_id'))

    op.drop_table('sampling_plan_items')
    with op.batch_alter_table('sampling_plans', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sampling_plans_unit_id'))
        batch_op.drop_index(batch_op.f('ix_sampling_plans_iqa_id'))
        batch_op.drop_index(batch_op.f('ix_sampling_plans_centre_id'))

    op.drop_table('sampling_plans')
    with op.batch_alter_table('sampling_strategies', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sampling_strategies_unit_id'))
        batch_op.drop_index(batch_op.f('ix_sampling_strategies_centre_id'))

    op.drop_table('sampling_strategies')
    with op.batch_alter_table('assessor_sampling_profiles', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_assessor_sampling_profiles_centre_id'))
        batch_op.drop_index(batch_op.f('ix_assessor_sampling_profiles_assessor_id'))

    op.drop_table('assessor_sampling_profiles')
    # IQA outcome signatures belong to the samples just dropped.
    op.execute("DELETE FROM signatures WHERE purpose = 'iqa_outcome'")
    _set_signature_purposes(_NEW_PURPOSES, _OLD_PURPOSES)
