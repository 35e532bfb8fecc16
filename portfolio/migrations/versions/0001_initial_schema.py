"""initial schema: centres, people, units, criteria, enrolments, audit

Revision ID: 0001
Revises: 
Create Date: 2026-11-22 23:12:27.804707
"""
from alembic import op
import sqlalchemy as sa
import portfolio.db


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('centres',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('created_at', portfolio.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_centres')),
    sa.UniqueConstraint('name', name=op.f('uq_centres_name'))
    )
    op.create_table('login_attempts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('client', sa.String(length=64), nullable=False),
    sa.Column('attempted_at', portfolio.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('succeeded', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_login_attempts'))
    )
    with op.batch_alter_table('login_attempts', schema=None) as batch_op:
        batch_op.create_index('ix_login_attempts_client_at', ['client', 'attempted_at'], unique=False)
        batch_op.create_index('ix_login_attempts_email_at', ['email', 'attempted_at'], unique=False)

    op.create_table('qualifications',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=40), nullable=False),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('level', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_qualifications')),
    sa.UniqueConstraint('code', name=op.f('uq_qualifications_code'))
    )
    op.create_table('units',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('qualification_id', sa.Integer(), nullable=False),
    sa.Column('reference', sa.String(length=20), nullable=False),
    sa.Column('number', sa.String(length=20), nullable=False),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('level', sa.Integer(), nullable=False),
    sa.Column('credits', sa.Integer(), nullable=False),
    sa.Column('guided_learning_hours', sa.Integer(), nullable=False),
    sa.Column('unit_type', sa.String(length=40), nullable=False),
    sa.Column('summary', sa.Text(), nullable=False),
    sa.Column('workplace_only', sa.Boolean(), nullable=False),
    sa.Column('simulation_allowed', sa.Boolean(), nullable=False),
    sa.Column('rpl_allowed', sa.Boolean(), nullable=False),
    sa.Column('currency_months', sa.Integer(), nullable=False),
    sa.Column('assessment_notes_md', sa.Text(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('source_file', sa.String(length=300), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('loaded_at', portfolio.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('currency_months >= 1', name=op.f('ck_units_currency_positive')),
    sa.CheckConstraint('version >= 1', name=op.f('ck_units_version_positive')),
    sa.ForeignKeyConstraint(['qualification_id'], ['qualifications.id'], name=op.f('fk_units_qualification_id_qualifications')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_units')),
    sa.UniqueConstraint('reference', name=op.f('uq_units_reference'))
    )
    with op.batch_alter_table('units', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_units_qualification_id'), ['qualification_id'], unique=False)

    op.create_table('users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('centre_id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('full_name', sa.String(length=200), nullable=False),
    sa.Column('password_hash', sa.Text(), nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('assessor_status', sa.String(length=20), nullable=True),
    sa.Column('login_id', sa.String(length=64), nullable=False),
    sa.Column('created_at', portfolio.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_login_at', portfolio.db.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("assessor_status IS NULL OR assessor_status IN ('trainee', 'qualified')", name=op.f('ck_users_assessor_status_known')),
    sa.CheckConstraint('email = lower(email)', name=op.f('ck_users_email_lowercase')),
    sa.ForeignKeyConstraint(['centre_id'], ['centres.id'], name=op.f('fk_users_centre_id_centres')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('email', name=op.f('uq_users_email')),
    sa.UniqueConstraint('login_id', name=op.f('uq_users_login_id'))
    )
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_users_centre_id'), ['centre_id'], unique=False)

    op.create_table('api_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('prefix', sa.String(length=16), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', portfolio.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', portfolio.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', portfolio.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_api_tokens_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_api_tokens_token_hash'))
    )
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_tokens_user_id'), ['user_id'], unique=False)

    op.create_table('audit_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('at', portfolio.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('actor_role', sa.String(length=20), nullable=True),
    sa.Column('action', sa.String(length=60), nullable=False),
    sa.Column('subject_type', sa.String(length=40), nullable=False),
    sa.Column('subject_id', sa.String(length=64), nullable=False),
    sa.Column('learner_id', sa.Integer(), nullable=True),
    sa.Column('centre_id', sa.Integer(), nullable=True),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_audit_events_actor_id_users')),
    sa.ForeignKeyConstraint(['centre_id'], ['centres.id'], name=op.f('fk_audit_events_centre_id_centres')),
    sa.ForeignKeyConstraint(['learner_id'], ['users.id'], name=op.f('fk_audit_events_learner_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_events')),
    sa.UniqueConstraint('hash', name=op.f('uq_audit_events_hash')),
    sa.UniqueConstraint('seq', name=op.f('uq_audit_events_seq'))
    )
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_events_actor_id'), ['actor_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_events_centre_id'), ['centre_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_events_learner_id'), ['learner_id'], unique=False)

    op.create_table('enrolments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('learner_id', sa.Integer(), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('assessor_id', sa.Integer(), nullable=False),
    sa.Column('iqa_id', sa.Integer(), nullable=True),
    sa.Column('start_on', sa.Date(), nullable=False),
    sa.Column('planned_end_on', sa.Date(), nullable=False),
    sa.Column('employer', sa.String(length=200), nullable=False),
    sa.Column('workplace', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('created_at', portfolio.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('active', 'completed', 'withdrawn')", name=op.f('ck_enrolments_status_known')),
    sa.CheckConstraint('iqa_id IS NULL OR iqa_id <> assessor_id', name=op.f('ck_enrolments_assessor_not_iqa')),
    sa.CheckConstraint('iqa_id IS NULL OR iqa_id <> learner_id', name=op.f('ck_enrolments_learner_not_iqa')),
    sa.CheckConstraint('learner_id <> assessor_id', name=op.f('ck_enrolments_learner_not_assessor')),
    sa.CheckConstraint('planned_end_on >= start_on', name=op.f('ck_enrolments_dates_ordered')),
    sa.ForeignKeyConstraint(['assessor_id'], ['users.id'], name=op.f('fk_enrolments_assessor_id_users')),
    sa.ForeignKeyConstraint(['iqa_id'], ['users.id'], name=op.f('fk_enrolments_iqa_id_users')),
    sa.ForeignKeyConstraint(['learner_id'], ['users.id'], name=op.f('fk_enrolments_learner_id_users')),
    sa.ForeignKeyConstraint(['unit_id'], ['units.id'], name=op.f('fk_enrolments_unit_id_units')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_enrolments')),
    sa.UniqueConstraint('learner_id', 'unit_id', name=op.f('uq_enrolments_learner_id_unit_id'))
    )
    with op.batch_alter_table('enrolments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_enrolments_assessor_id'), ['assessor_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_enrolments_iqa_id'), ['iqa_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_enrolments_learner_id'), ['learner_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_enrolments_unit_id'), ['unit_id'], unique=False)

    op.create_table('guidance_notes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=30), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('source', sa.String(length=200), nullable=False),
    sa.CheckConstraint("kind IN ('tip', 'mistake', 'assessor_looks_for')", name=op.f('ck_guidance_notes_kind_known')),
    sa.ForeignKeyConstraint(['unit_id'], ['units.id'], name=op.f('fk_guidance_notes_unit_id_units'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_guidance_notes'))
    )
    with op.batch_alter_table('guidance_notes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_guidance_notes_unit_id'), ['unit_id'], unique=False)

    op.create_table('learning_outcomes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('title', sa.Text(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.CheckConstraint("kind IN ('knowledge', 'performance')", name=op.f('ck_learning_outcomes_kind_known')),
    sa.ForeignKeyConstraint(['unit_id'], ['units.id'], name=op.f('fk_learning_outcomes_unit_id_units'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_learning_outcomes')),
    sa.UniqueConstraint('unit_id', 'number', name=op.f('uq_learning_outcomes_unit_id_number'))
    )
    with op.batch_alter_table('learning_outcomes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_learning_outcomes_unit_id'), ['unit_id'], unique=False)

    op.create_table('user_roles',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.CheckConstraint("role IN ('learner', 'assessor', 'iqa', 'eqa', 'admin')", name=op.f('ck_user_roles_role_known')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_user_roles_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', 'role', name=op.f('pk_user_roles'))
    )
    op.create_table('criteria',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('learning_outcome_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=10), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('amplification_md', sa.Text(), nullable=False),
    sa.Column('required_occurrences', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('is_retired', sa.Boolean(), nullable=False),
    sa.CheckConstraint('required_occurrences >= 1', name=op.f('ck_criteria_occurrences_positive')),
    sa.CheckConstraint('version >= 1', name=op.f('ck_criteria_version_positive')),
    sa.ForeignKeyConstraint(['learning_outcome_id'], ['learning_outcomes.id'], name=op.f('fk_criteria_learning_outcome_id_learning_outcomes')),
    sa.ForeignKeyConstraint(['unit_id'], ['units.id'], name=op.f('fk_criteria_unit_id_units')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_criteria')),
    sa.UniqueConstraint('unit_id', 'number', name=op.f('uq_criteria_unit_id_number'))
    )
    with op.batch_alter_table('criteria', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_criteria_learning_outcome_id'), ['learning_outcome_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_criteria_unit_id'), ['unit_id'], unique=False)

    op.create_table('criterion_methods',
    sa.Column('criterion_id', sa.Integer(), nullable=False),
    sa.Column('method', sa.String(length=40), nullable=False),
    sa.Column('preferred', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['criterion_id'], ['criteria.id'], name=op.f('fk_criterion_methods_criterion_id_criteria'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('criterion_id', 'method', name=op.f('pk_criterion_methods'))
    )
    op.create_table('criterion_revisions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('criterion_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('amplification_md', sa.Text(), nullable=False),
    sa.Column('superseded_at', portfolio.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['criterion_id'], ['criteria.id'], name=op.f('fk_criterion_revisions_criterion_id_criteria'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_criterion_revisions')),
    sa.UniqueConstraint('criterion_id', 'version', name=op.f('uq_criterion_revisions_criterion_id_version'))
    )
    op.create_table('guidance_criteria',
    sa.Column('guidance_id', sa.Integer(), nullable=False),
    sa.Column('criterion_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['criterion_id'], ['criteria.id'], name=op.f('fk_guidance_criteria_criterion_id_criteria'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['guidance_id'], ['guidance_notes.id'], name=op.f('fk_guidance_criteria_guidance_id_guidance_notes'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('guidance_id', 'criterion_id', name=op.f('pk_guidance_criteria'))
    )


    _protect_audit_trail()


def _protect_audit_trail() -> None:
    """Make audit events append-only in the database itself, not only in the app."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION audit_events_append_only() RETURNS trigger AS $$ "
            "BEGIN RAISE EXCEPTION 'audit events are append-only'; END; $$ LANGUAGE plpgsql"
        )
        op.execute(
            "CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events "
            "FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()"
        )
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_events_no_{verb.lower()} BEFORE {verb} ON audit_events "
                "BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_events_append_only ON audit_events")
        op.execute("DROP FUNCTION IF EXISTS audit_events_append_only()")
    op.drop_table('guidance_criteria')
    op.drop_table('criterion_revisions')
    op.drop_table('criterion_methods')
    with op.batch_alter_table('criteria', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_criteria_unit_id'))
        batch_op.drop_index(batch_op.f('ix_criteria_learning_outcome_id'))

    op.drop_table('criteria')
    op.drop_table('user_roles')
    with op.batch_alter_table('learning_outcomes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_learning_outcomes_unit_id'))

    op.drop_table('learning_outcomes')
    with op.batch_alter_table('guidance_notes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_guidance_notes_unit_id'))

    op.drop_table('guidance_notes')
    with op.batch_alter_table('enrolments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_enrolments_unit_id'))
        batch_op.drop_index(batch_op.f('ix_enrolments_learner_id'))
        batch_op.drop_index(batch_op.f('ix_enrolments_iqa_id'))
        batch_op.drop_index(batch_op.f('ix_enrolments_assessor_id'))

    op.drop_table('enrolments')
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_events_learner_id'))
        batch_op.drop_index(batch_op.f('ix_audit_events_centre_id'))
        batch_op.drop_index(batch_op.f('ix_audit_events_actor_id'))

    op.drop_table('audit_events')
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_tokens_user_id'))

    op.drop_table('api_tokens')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_users_centre_id'))

    op.drop_table('users')
    with op.batch_alter_table('units', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_units_qualification_id'))

    op.drop_table('units')
    op.drop_table('qualifications')
    with op.batch_alter_table('login_attempts', schema=None) as batch_op:
        batch_op.drop_index('ix_login_attempts_email_at')
        batch_op.drop_index('ix_login_attempts_client_at')

    op.drop_table('login_attempts')
    op.drop_table('centres')
