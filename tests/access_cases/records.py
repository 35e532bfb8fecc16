"""Access cases for an assessor's own record (an observation), signed in one step: only the
assessor who made it, on a learner they assess."""

from __future__ import annotations


def setup(app, session, world) -> None:
    from tests.factories import make_evidence

    world.assessor_record_id = make_evidence(
        session, world.enrolment, world.assessor, "observation", title="Observed at the desk",
        maps=("2.1",)).id


def cases(m) -> list:
    return [
        # Allowed in, refused for the missing password and name (nothing is signed).
        m.Case("assessment.record", "POST",
               lambda w, t: f"/evidence/{w.assessor_record_id}/record",
               m.seen_by(m.VIEWERS) | {"assessor": m.INVALID, "learner": m.FORBIDDEN,
                                       "iqa": m.FORBIDDEN, "admin": m.FORBIDDEN}),
        # Evidence the learner made is never the assessor's to record.
        m.Case("assessment.record", "POST",
               lambda w, t: f"/evidence/{w.evidence.id}/record",
               m.seen_by(m.VIEWERS) | {"assessor": m.FORBIDDEN, "learner": m.FORBIDDEN,
                                       "iqa": m.FORBIDDEN, "admin": m.FORBIDDEN},
               label="the learner's own evidence"),
    ]
