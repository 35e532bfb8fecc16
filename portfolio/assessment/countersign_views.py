"""Routes on the assessment blueprint for countersign work (imported at the end of views.py)."""

from __future__ import annotations

from portfolio.assessment.views import bp  # noqa: F401
