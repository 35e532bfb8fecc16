"""Assessor-recorded evidence: signature purpose "assessor_record", for an observation or a
discussion the assessor records and signs in one step.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03 17:00:00.000000
"""
import importlib.util
from pathlib import Path

from alembic import op


revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

_OLD_PURPOSES = ("'evidence_declaration', 'unit_declaration', 'criterion_decision', "
                 "'countersignature', 'unit_signoff', 'unit_cosign', 'iqa_outcome', "
                 "'decision_return'")
_NEW_PURPOSES = _OLD_PURPOSES + ", 'assessor_record'"


def _set_check(*args: str) -> None:
    # The same in-place rewrite 0012 uses (PostgreSQL: drop and add; SQLite: edit the schema).
    spec = importlib.util.spec_from_file_location(
        "migration_0012", Path(__file__).with_name("0012_decision_returns.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module._set_check(*args)


def upgrade() -> None:
    _set_check("signatures", "ck_signatures_purpose_known", "purpose",
               _OLD_PURPOSES, _NEW_PURPOSES)


def downgrade() -> None:
    if op.get_bind().exec_driver_sql(
            "SELECT count(*) FROM signatures WHERE purpose = 'assessor_record'").scalar():
        raise RuntimeError("Assessor records exist; they cannot be kept in the older schema.")
    _set_check("signatures", "ck_signatures_purpose_known", "purpose",
               _NEW_PURPOSES, _OLD_PURPOSES)
