"""Access cases for masking customers' personal data and for descriptors: only the person who
added the evidence, while they may still change it."""

from __future__ import annotations


def cases(m) -> list:
    return [
        # The learner's draft holds nothing to mask: let in, and told so.
        m.Case("evidence.redact", "POST", lambda w, t: f"/evidence/{w.evidence.id}/redact",
               m.seen_by(m.VIEWERS) | {"learner": m.CONFLICT, "assessor": m.FORBIDDEN,
                                       "iqa": m.FORBIDDEN, "admin": m.FORBIDDEN},
               data={"expected_version": "1"}),
        # Let in, and refused for the empty form.
        m.Case("evidence.descriptor", "POST",
               lambda w, t: f"/evidence/{w.evidence.id}/descriptor",
               m.seen_by(m.VIEWERS) | {"learner": m.INVALID, "assessor": m.FORBIDDEN,
                                       "iqa": m.FORBIDDEN, "admin": m.FORBIDDEN},
               data={"expected_version": "1"}),
    ]
