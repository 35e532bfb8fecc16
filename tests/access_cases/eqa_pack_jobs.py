"""Access cases for an EQA pack's download jobs (issue 14): only the pack's own EQA, and a job
is reachable only under its own pack (another pack's job id is a 404, as is an unknown one)."""

from __future__ import annotations

import hashlib

ZIP = b"PK\x05\x06" + b"\x00" * 18  # an empty ZIP: what the download hands out is not tested here


def setup(app, session, world) -> None:
    from portfolio.eqa.services import PackInput, create_pack
    from portfolio.export.files import export_files
    from portfolio.job_states import JobStatus
    from portfolio.models import EqaPack, EqaPackJob

    pack = session.get(EqaPack, world.eqa_pack_id)
    export_files(app.config).write("eqa/matrix-pack.zip", ZIP)
    done = EqaPackJob(pack_id=pack.id, requested_by_id=pack.eqa_id, content_key="0" * 64,
                      status=JobStatus.DONE, progress=100, message="Ready",
                      filename="matrix-pack.zip", sha256=hashlib.sha256(ZIP).hexdigest(),
                      size=len(ZIP), export_ids=[])
    other = create_pack(session, PackInput(
        eqa_id=pack.eqa_id, enrolment_ids=[world.enrolment.id], title="Another visit",
        note="", valid_from=pack.valid_from, valid_to=pack.valid_to), actor=world.admin,
        today=pack.valid_from)
    elsewhere = EqaPackJob(pack_id=other.id, requested_by_id=pack.eqa_id,
                           content_key="1" * 64, status=JobStatus.DONE, progress=100,
                           message="Ready", filename="matrix-pack.zip",
                           sha256=hashlib.sha256(ZIP).hexdigest(), size=len(ZIP),
                           export_ids=[])
    session.add_all([done, elsewhere])
    session.flush()
    world.eqa_pack_job_id = done.id
    world.other_pack_job_id = elsewhere.id


def cases(m) -> list:
    def at(tail: str, job: str = "eqa_pack_job_id"):
        return lambda w, t: f"/eqa/packs/{w.eqa_pack_id}/downloads/{getattr(w, job)}{tail}"

    cases = []
    for endpoint, tail in (("eqa.pack_job", ""), ("eqa.pack_job_status", ".json"),
                           ("eqa.pack_job_file", "/zip")):
        cases += [
            m.Case(endpoint, "GET", at(tail), m.only_eqa(m.OK)),
            m.Case(endpoint, "GET", at(tail, "other_pack_job_id"), m.only_eqa(m.MISSING),
                   label="another pack's job"),
            m.Case(endpoint, "GET",
                   lambda w, t, tail=tail: f"/eqa/packs/{w.eqa_pack_id}/downloads/999999{tail}",
                   m.only_eqa(m.MISSING), label="unknown id"),
        ]
    return cases
