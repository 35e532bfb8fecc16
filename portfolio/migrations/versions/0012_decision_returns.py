"""Decisions returned to a trainee by a countersigner: decision status "returned" and signature
purpose "decision_return".

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 17:00:00.000000
"""
from alembic import op


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

_OLD_PURPOSES = ("'evidence_declaration', 'unit_declaration', 'criterion_decision', "
                 "'countersignature', 'unit_signoff', 'unit_cosign', 'iqa_outcome'")
_NEW_PURPOSES = _OLD_PURPOSES + ", 'decision_return'"
_OLD_STATUSES = "'awaiting_countersignature', 'met', 'invalidated', 'reopened'"
_NEW_STATUSES = _OLD_STATUSES + ", 'returned'"


def _set_check(table: str, name: str, column: str, old: str, new: str) -> None:
    """Rewrite a CHECK constraint's list of values (the way 0006 does for signatures).

    PostgreSQL drops and re-adds the constraint. SQLite cannot alter a constraint, and a table
    rebuild would break the foreign keys that point at these tables, so the stored definition
    is edited in place (https://sqlite.org/lang_altertable.html#otheralter); the rows already
    stored satisfy both lists.
    """
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        op.drop_constraint(op.f(name), table, type_="check")
        op.create_check_constraint(op.f(name), table, f"{column} IN ({new})")
        return
    sql = bind.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).scalar()
    if f"IN ({old})" not in sql:
        raise RuntimeError(f"{table}.{column} constraint is not the expected one")
    version = bind.exec_driver_sql("PRAGMA schema_version").scalar()
    bind.exec_driver_sql("PRAGMA writable_schema = ON")
    bind.exec_driver_sql(
        "UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = ?",
        (sql.replace(f"IN ({old})", f"IN ({new})"), table))
    bind.exec_driver_sql(f"PRAGMA schema_version = {int(version) + 1}")
    bind.exec_driver_sql("PRAGMA writable_schema = OFF")


def upgrade() -> None:
    _set_check("signatures", "ck_signatures_purpose_known", "purpose",
               _OLD_PURPOSES, _NEW_PURPOSES)
    _set_check("criterion_decisions", "ck_criterion_decisions_status_known", "status",
               _OLD_STATUSES, _NEW_STATUSES)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.exec_driver_sql(
            "SELECT count(*) FROM criterion_decisions WHERE status = 'returned'").scalar() \
            or bind.exec_driver_sql(
                "SELECT count(*) FROM signatures WHERE purpose = 'decision_return'").scalar():
        raise RuntimeError("Returned decisions exist; they cannot be kept in the older schema.")
    _set_check("criterion_decisions", "ck_criterion_decisions_status_known", "status",
               _NEW_STATUSES, _OLD_STATUSES)
    _set_check("signatures", "ck_signatures_purpose_known", "purpose",
               _NEW_PURPOSES, _OLD_PURPOSES)
