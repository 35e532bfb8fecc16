"""Access cases for countersign reading: the qualified assessor asked to countersign a trainee's
decision reads that decision and exactly the evidence it cites; nobody else does."""

from __future__ import annotations

from tests.factories import TINY_PDF, accept, decide, make_evidence, stage_bytes


def setup(app, session, world) -> None:
    pdf = stage_bytes(app.config["STORAGE_DIR"], TINY_PDF, "rota.pdf")
    cited = make_evidence(session, world.other_enrolment, world.other_learner, "work_product",
                          title="Rota", body="", files=[pdf], maps=("2.8",), submit=True)
    accept(session, cited, world.trainee)
    world.cs_decision_id = decide(session, world.other_enrolment, world.trainee, "2.8",
                                  [cited]).id
    world.cs_cited_file_id = cited.versions[0].files[0].id
    # Same learner, not cited by any decision: still closed to the countersigner.
    stray = make_evidence(session, world.other_enrolment, world.other_learner, "work_product",
                          title="Not cited", body="",
                          files=[stage_bytes(app.config["STORAGE_DIR"], TINY_PDF, "x.pdf")])
    world.cs_stray_file_id = stray.versions[0].files[0].id


def cases(m) -> list:
    only_countersigner = m.everyone(m.FORBIDDEN, assessor=m.OK, trainee=m.MISSING)
    return [
        m.Case("assessment.countersign_review", "GET",
               lambda w, t: f"/decisions/{w.cs_decision_id}/review", only_countersigner),
        m.Case("assessment.countersign_review", "GET", lambda w, t: "/decisions/999999/review",
               m.everyone(m.FORBIDDEN, assessor=m.MISSING, trainee=m.MISSING),
               label="unknown id"),
        m.Case("assessment.countersign_file", "GET",
               lambda w, t: f"/decisions/{w.cs_decision_id}/files/{w.cs_cited_file_id}",
               only_countersigner),
        m.Case("assessment.countersign_file", "GET",
               lambda w, t: f"/decisions/{w.cs_decision_id}/files/{w.cs_stray_file_id}",
               m.everyone(m.FORBIDDEN, assessor=m.MISSING, trainee=m.MISSING),
               label="file the decision does not cite"),
        m.Case("assessment.countersign_file", "GET",
               lambda w, t: f"/decisions/{w.cs_decision_id}/files/{w.file_id}",
               m.everyone(m.FORBIDDEN, assessor=m.MISSING, trainee=m.MISSING),
               label="another learner's file"),
        # Countersigning ticked decisions: assessors get in (the empty form is refused).
        m.Case("assessment.countersign_batch", "POST", lambda w, t: "/countersign",
               m.everyone(m.FORBIDDEN, assessor=m.INVALID, trainee=m.INVALID)),
        # Returning: only the countersigner gets in (refused here for the empty form).
        m.Case("assessment.return_to_trainee", "POST",
               lambda w, t: f"/decisions/{w.cs_decision_id}/return",
               m.everyone(m.FORBIDDEN, assessor=m.INVALID, trainee=m.MISSING)),
    ]
