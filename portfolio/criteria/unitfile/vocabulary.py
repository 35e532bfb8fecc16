"""The unit file format's vocabulary: schema version, assessment methods, guidance and
outcome kinds."""

from __future__ import annotations

import re

SCHEMA_VERSION = 1

METHODS: dict[str, str] = {
    "direct_observation": "Direct observation",
    "professional_discussion": "Professional discussion",
    "witness_testimony": "Witness testimony",
    "expert_witness_testimony": "Expert witness testimony",
    "product_evidence": "Work products",
    "reflective_account": "Reflective account",
    "questioning": "Questioning",
    "rpl": "Recognition of prior learning (RPL)",
    "simulation": "Simulation",
}

GUIDANCE_KINDS: dict[str, str] = {
    "tip": "Tips for learners",
    "mistake": "Common mistakes",
    "assessor_looks_for": "What an assessor looks for",
}

LO_KINDS: tuple[str, ...] = ("knowledge", "performance")

_UNIT_REFERENCE_RE = re.compile(r"^[A-Z]/\d{3}/\d{4}$")
_CRITERION_NUMBER_RE = re.compile(r"^([1-9]\d*)\.([1-9]\d*)$")
_TITLE_KINDS: tuple[tuple[str, str], ...] = (
    ("Understand", "knowledge"),
    ("Be able to", "performance"),
)
