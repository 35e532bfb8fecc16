"""Access cases for screen copies (the picture of a PDF's first page or of a HEIC photo): each
is served exactly where its file is, to the same people, and a file with no picture (the world's
file is a PDF with no cross-reference table) is a 404 for everyone."""

from __future__ import annotations

from tests.factories import accept, decide, make_evidence, stage_bytes
from tests.real_files import RED, heic_bytes, pdf_bytes


def setup(app, session, world) -> None:
    store = app.config["STORAGE_DIR"]
    certificate = make_evidence(
        session, world.enrolment, world.learner, "rpl", title="Earlier certificate", body="",
        details={"certificate_title": "Level 2 Customer Service", "awarding_body": "NCFE"},
        files=[stage_bytes(store, pdf_bytes([RED]), "certificate.pdf")])
    world.pv_file_id = certificate.versions[0].files[0].id
    # A trainee's decision waiting for countersignature, citing a HEIC photo.
    photo = make_evidence(session, world.other_enrolment, world.other_learner, "photo",
                          title="Desk notice", body="",
                          files=[stage_bytes(store, heic_bytes(), "IMG_0007.heic")],
                          maps=("2.9",), submit=True)
    accept(session, photo, world.trainee)
    world.pv_decision_id = decide(session, world.other_enrolment, world.trainee, "2.9",
                                  [photo]).id
    world.pv_cited_file_id = photo.versions[0].files[0].id


def cases(m) -> list:
    only_countersigner = m.everyone(m.FORBIDDEN, assessor=m.OK, trainee=m.MISSING)
    nobody = m.everyone(m.FORBIDDEN, assessor=m.MISSING, trainee=m.MISSING)
    return [
        m.Case("evidence.file_preview", "GET", lambda w, t: f"/files/{w.pv_file_id}/preview",
               m.seen_by(m.VIEWERS)),
        m.Case("evidence.file_preview", "GET", lambda w, t: f"/files/{w.file_id}/preview",
               m.seen_by(set()), label="file with no picture"),
        m.Case("evidence.file_preview", "GET", lambda w, t: "/files/999999/preview",
               m.everyone(m.MISSING), label="unknown id"),
        m.Case("eqa.file_preview", "GET",
               lambda w, t: f"/eqa/packs/{w.eqa_pack_id}/files/{w.pv_file_id}/preview",
               m.only_eqa(m.OK)),
        m.Case("eqa.file_preview", "GET",
               lambda w, t: f"/eqa/packs/{w.eqa_pack_id}/files/{w.pv_cited_file_id}/preview",
               m.only_eqa(m.MISSING), label="file not in the pack"),
        m.Case("assessment.countersign_file_preview", "GET",
               lambda w, t: f"/decisions/{w.pv_decision_id}/files/{w.pv_cited_file_id}/preview",
               only_countersigner),
        m.Case("assessment.countersign_file_preview", "GET",
               lambda w, t: f"/decisions/{w.pv_decision_id}/files/{w.pv_file_id}/preview",
               nobody, label="file the decision does not cite"),
    ]
