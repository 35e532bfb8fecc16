"""Access cases for deciding several criteria at once: only the learner's own assessor."""

from __future__ import annotations


def cases(m) -> list:
    return [
        m.Case("assessment.batch_decide", "GET",
               lambda w, t: f"/enrolments/{w.enrolment.id}/decide",
               m.seen_by(m.VIEWERS) | {"assessor": m.OK, "learner": m.FORBIDDEN,
                                       "iqa": m.FORBIDDEN, "admin": m.FORBIDDEN}),
        # Allowed in, refused for the empty form (nothing ticked, no password).
        m.Case("assessment.batch_decide_sign", "POST",
               lambda w, t: f"/enrolments/{w.enrolment.id}/decide",
               m.seen_by(m.VIEWERS) | {"assessor": m.INVALID, "learner": m.FORBIDDEN,
                                       "iqa": m.FORBIDDEN, "admin": m.FORBIDDEN}),
        m.Case("assessment.review_batch", "POST",
               lambda w, t: f"/enrolments/{w.enrolment.id}/review",
               m.seen_by(m.VIEWERS) | {"assessor": m.INVALID, "learner": m.FORBIDDEN,
                                       "iqa": m.FORBIDDEN, "admin": m.FORBIDDEN}),
        # The learner's own drafts only (refused here for the empty form).
        m.Case("assessment.submit_batch", "POST",
               lambda w, t: f"/enrolments/{w.enrolment.id}/evidence/submit",
               m.seen_by(m.VIEWERS) | {"learner": m.INVALID, "assessor": m.FORBIDDEN,
                                       "iqa": m.FORBIDDEN, "admin": m.FORBIDDEN}),
        m.Case("assessment.batch_decide", "GET",
               lambda w, t: f"/enrolments/{w.foreign_enrolment.id}/decide",
               m.seen_by(set()) | {"other_admin": m.FORBIDDEN},
               label="another centre's enrolment (its own admin reads, never decides)"),
    ]
