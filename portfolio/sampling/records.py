"""Sample records for the portfolio page and the exported PDF."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from portfolio.models import (
    IqaSample,
    SampleStatus,
)
from portfolio.sampling.strategy import ACTION_STATUS_LABELS, OUTCOME_LABELS


def sample_records_for_enrolment(session: Session, enrolment_id: int) -> list[dict[str, Any]]:
    """The portfolio's IQA sample records, oldest first, for the exported PDF.

    Each: ``scope`` ("criterion" or "unit"), ``criterion`` (its number, or "Unit"),
    ``decided_by`` (the assessor sampled), ``iqa``, ``started_at``/``completed_at`` (datetimes
    or None), ``status`` and ``outcome`` (labels), ``rationale_md``, ``snapshot_sha256``,
    ``signature_hash`` (or None) and ``actions`` (description, owner, due_on, status, response).
    """
    records = []
    for sample in session.scalars(select(IqaSample).where(IqaSample.enrolment_id == enrolment_id)
                                  .order_by(IqaSample.id)):
        records.append({
            "id": sample.id,
            "scope": sample.scope,
            "criterion": sample.criterion_label,
            "decided_by": sample.assessor.full_name,
            "iqa": sample.iqa.full_name,
            "started_at": sample.started_at,
            "completed_at": sample.completed_at,
            "status": "Completed" if sample.status == SampleStatus.COMPLETED else "In progress",
            "outcome": OUTCOME_LABELS.get(sample.outcome or "", "Not yet recorded"),
            "rationale_md": sample.rationale_md,
            "snapshot_sha256": sample.snapshot_sha256,
            "signature_hash": sample.signature.content_hash if sample.signature else None,
            "actions": [{"description": a.description, "owner": a.owner.full_name,
                         "due_on": a.due_on, "status": ACTION_STATUS_LABELS[a.status],
                         "response_md": a.response_md or ""} for a in sample.actions],
        })
    return records


def sample_rows_for_export(session: Session, enrolment_id: int) -> list[dict[str, Any]]:
    """The same records shaped for the PDF's "Internal quality assurance" table."""
    return [{
        "sampled_at": f"{r['started_at']:%d %b %Y}",
        "by": r["iqa"],
        "scope": (f"Unit sign-off (signed off by {r['decided_by']})" if r["scope"] == "unit"
                  else f"Criterion {r['criterion']} (decided by {r['decided_by']})"),
        "outcome": r["outcome"] + ("" if r["status"] == "Completed" else " (in progress)"),
        "rationale": r["rationale_md"],
        "actions": [f"{a['description']} ({a['owner']}, due {a['due_on']:%d %b %Y}: "
                    f"{a['status'].lower()})" for a in r["actions"]],
    } for r in sample_records_for_enrolment(session, enrolment_id)]
