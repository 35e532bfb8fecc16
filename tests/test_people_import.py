"""Importing learners and enrolments from a CSV file (issue 17): the file checks, the preview
of every row's problems, refusing the whole file or importing only the good rows, reusing
existing people, invitations, double confirms, other admins' tokens, stale previews and the
background import of a large file."""

from __future__ import annotations

import io
import re
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from portfolio.models import AuditEvent, Enrolment, PasswordReset, PeopleImport, User
from portfolio.people_import import services as imports
from tests.conftest import Browserless
from tests.factories import PASSWORD, make_user, make_world

HEADER = ("Name,Email,Employer,Workplace,Unit or qualification,Assessor email,IQA email,"
          "Start date,Planned end date\n")
GOOD_NEW = ("Nia Newcomer,nia@example.org,Acme Utilities,Leeds,R/506/2151,assessor@example.org,"
            "iqa@example.org,2025-09-01,2026-08-31\n")
GOOD_UK_DATES = ("Raj Patel,raj@example.org,Acme Utilities,York,CS-L3,assessor@example.org,,"
                 "01/09/2025,31/08/2026\n")
# Lee Learner exists (enrolled on unit 40 already); Ivy Iqa exists and has no learner role.
EXISTING_STAFF = ("Ivy Iqa,IQA@example.org,Acme Utilities,Hull,R/506/2151,"
                  "assessor@example.org,,2025-09-01,2026-08-31\n")
BAD_ROWS = (
    "Bob Bad,not-an-email,Acme,Leeds,R/506/2151,assessor@example.org,,2025-09-01,2026-08-31\n"
    "Una Unit,una@example.org,Acme,Leeds,Z/999/9999,assessor@example.org,,2025-09-01,2026-08-31\n"
    "Ann Assessor,ann@example.org,Acme,Leeds,R/506/2151,learner@example.org,,2025-09-01,"
    "2026-08-31\n"
    "Lee Learner,learner@example.org,Acme,Leeds,R/506/2151,assessor@example.org,,2025-09-01,"
    "2026-08-31\n"
    "Eve Early,eve@example.org,Acme,Leeds,R/506/2151,assessor@example.org,,2025-09-01,"
    "2024-08-31\n"
    ",,Acme,Leeds,R/506/2151,,,2025-09-01,2026-08-31\n"
    "Nia Newcomer,nia@example.org,Acme Utilities,Leeds,R/506/2151,assessor@example.org,"
    "iqa@example.org,2025-09-01,2026-08-31\n"
    "Far Person,far-learner@example.org,Acme,Leeds,R/506/2151,far-assessor@example.org,,"
    "2025-09-01,2026-08-31\n"
)
MIXED = HEADER + GOOD_NEW + GOOD_UK_DATES + EXISTING_STAFF + BAD_ROWS
TOKEN = re.compile(r"/admin/people/import/(imp_[A-Za-z0-9_-]+)")
CHECKED = re.compile(r'name="checked" value="([0-9a-f]{64})"')


def _admin(app, world, email: str | None = None) -> Browserless:
    web = Browserless(app.test_client())
    assert web.login(email or world.admin.email, PASSWORD).status_code == 302
    return web


def _upload(web: Browserless, text: str | bytes, name: str = "learners.csv"):
    raw = text.encode() if isinstance(text, str) else text
    return web.post("/admin/people/import", {"file": (io.BytesIO(raw), name)},
                    content_type="multipart/form-data")


def _uploaded(web: Browserless, text: str | bytes) -> tuple[str, str]:
    """Upload a file that reads as a whole; return its token and the preview's HTML."""
    response = _upload(web, text)
    assert response.status_code == 303, response.get_data(as_text=True)
    token = TOKEN.search(response.headers["Location"]).group(1)
    preview = web.client.get(f"/admin/people/import/{token}")
    assert preview.status_code == 200
    return token, preview.get_data(as_text=True)


def _confirm(web: Browserless, token: str, html: str, mode: str):
    checked = CHECKED.search(html)
    return web.post(f"/admin/people/import/{token}/confirm",
                    {"mode": mode, "checked": checked.group(1) if checked else ""})


def _count(session, model) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(model))


def _outbox(app) -> list[str]:
    return [p.read_text() for p in Path(app.config["OUTBOX_DIR"]).glob("*.eml")]


def test_the_preview_lists_every_rows_problems_and_writes_nothing(app, session):
    world = make_world(session)
    web = _admin(app, world)
    people, enrolments = _count(session, User), _count(session, Enrolment)
    token, html = _uploaded(web, MIXED)
    text = re.sub(r"\s+", " ", html.replace("&#34;", '"').replace("&#39;", "'"))
    assert "3</strong> pass" in text and "8</strong> with problems" in text
    for problem in ("“not-an-email” is not an email address.",
                    "No unit reference or qualification code here is “Z/999/9999”",
                    "Nobody with the assessor role at Main Centre has the email "
                    "learner@example.org",
                    "Lee Learner is already enrolled on unit 40.",
                    "The planned end date is before the start date.",
                    "Name is missing.", "Email is missing.", "Assessor email is missing.",
                    "Repeats row 2: the same person on unit 40 again.",
                    "Someone outside this centre already has this email address",
                    "Nobody with the assessor role at Main Centre has the email "
                    "far-assessor@example.org"):
        assert problem in text, problem
    # Rows are numbered as the spreadsheet shows them (the header is row 1).
    assert "Row 5" in text and "Row 12" in text
    assert "Already has an account as Ivy Iqa: it is reused, and given the learner role." in text
    assert "New, invited" in text
    assert _count(session, User) == people and _count(session, Enrolment) == enrolments
    assert not _outbox(app)
    # Two choices: refuse the whole file, or import only the good rows.
    assert "Import only the 3 good rows" in text and "Refuse the whole file" in text
    assert token


def test_refusing_the_whole_file_imports_nothing(app, session):
    world = make_world(session)
    web = _admin(app, world)
    people = _count(session, User)
    token, html = _uploaded(web, MIXED)
    # Asking for everything while rows are bad is refused as a whole.
    refused = _confirm(web, token, html, "all")
    assert refused.status_code == 422
    assert "The whole file was refused: 8 of 11 rows have problems" in refused.get_data(True)
    assert _count(session, User) == people
    discarded = web.post(f"/admin/people/import/{token}/discard")
    assert discarded.status_code == 303
    session.expire_all()
    upload = session.scalar(select(PeopleImport))
    assert upload.status == "discarded" and upload.content == ""  # the people are not kept
    assert _count(session, User) == people and not _outbox(app)
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "people_import.refused"))
    assert event.detail["rows"] == 11 and "nia@example.org" not in str(event.detail)
    # The refused file cannot be confirmed afterwards.
    late = _confirm(web, token, html, "good")
    assert late.status_code == 303 and _count(session, User) == people


def test_importing_the_good_rows_reuses_people_and_invites_new_ones(app, session):
    world = make_world(session)
    web = _admin(app, world)
    people, enrolments = _count(session, User), _count(session, Enrolment)
    token, html = _uploaded(web, MIXED)
    done = _confirm(web, token, html, "good")
    assert done.status_code == 303
    page = web.client.get(done.headers["Location"]).get_data(as_text=True)
    assert "Imported 3 enrolments: 2 new people invited, 1 existing person reused." in page
    session.expire_all()
    assert _count(session, User) == people + 2  # Nia and Raj; Ivy reused
    assert _count(session, Enrolment) == enrolments + 3
    ivy = session.scalar(select(User).where(User.email == "iqa@example.org"))
    assert {r.value for r in ivy.roles} == {"iqa", "learner"}
    raj = session.scalar(select(Enrolment).join(User, User.id == Enrolment.learner_id)
                         .where(User.email == "raj@example.org"))
    assert str(raj.start_on) == "2025-09-01" and str(raj.planned_end_on) == "2026-08-31"
    nia = session.scalar(select(Enrolment).join(User, User.id == Enrolment.learner_id)
                         .where(User.email == "nia@example.org"))
    assert nia.iqa_id == world.iqa.id and nia.employer == "Acme Utilities"
    # New people get the invitation "Add a person" sends; the existing person gets nothing.
    mails = _outbox(app)
    assert len(mails) == 2
    assert all("You are invited to Main Centre's Evidence Builder" in m for m in mails)
    assert any("Hello Nia Newcomer" in m for m in mails)
    assert _count(session, PasswordReset) == 2
    # Nobody can sign in before choosing a password.
    assert Browserless(app.test_client()).login("nia@example.org", PASSWORD).status_code == 401
    # One audit event for the file, with counts and no personal data.
    (event,) = session.scalars(select(AuditEvent).where(
        AuditEvent.action == "people_import.done"))
    assert event.detail["people_created"] == 2 and event.detail["people_reused"] == 1
    assert event.detail["enrolments_created"] == 3 and event.detail["rows"] == 11
    assert "nia" not in str(event.detail).lower()
    upload = session.scalar(select(PeopleImport))
    assert upload.status == "done" and upload.content == ""


def test_a_second_confirm_imports_nothing_twice(app, session):
    world = make_world(session)
    web = _admin(app, world)
    token, html = _uploaded(web, HEADER + GOOD_NEW)
    assert _confirm(web, token, html, "all").status_code == 303
    people, enrolments = _count(session, User), _count(session, Enrolment)
    again = _confirm(web, token, html, "all")
    assert again.status_code == 303
    page = web.client.get(again.headers["Location"]).get_data(as_text=True)
    assert "confirmed already" in page and "nothing was imported twice" in page
    assert _count(session, User) == people and _count(session, Enrolment) == enrolments
    assert len(_outbox(app)) == 1
    assert web.post(f"/admin/people/import/{token}/discard").status_code == 303
    session.expire_all()
    assert session.scalar(select(PeopleImport.status)) == "done"


def test_a_stale_preview_is_shown_again_before_anything_is_written(app, session):
    world = make_world(session)
    web = _admin(app, world)
    token, html = _uploaded(web, HEADER + GOOD_NEW + GOOD_UK_DATES)
    # Someone enrols Raj by hand after the preview was drawn.
    raj = make_user(session, world.admin.centre, "learner", email="raj@example.org",
                    name="Raj Patel")
    session.commit()
    from tests.factories import make_enrolment

    make_enrolment(session, raj, world.assessor, None, world.unit)
    session.commit()
    enrolments = _count(session, Enrolment)
    stale = _confirm(web, token, html, "all")
    assert stale.status_code == 409
    body = stale.get_data(as_text=True)
    assert "Something changed since this preview was drawn" in body
    assert "Raj Patel is already enrolled on unit 40." in body
    assert _count(session, Enrolment) == enrolments
    # The new preview can be confirmed for the rows that still pass.
    assert _confirm(web, token, body, "good").status_code == 303
    assert _count(session, Enrolment) == enrolments + 1


def test_an_old_preview_expires(app, session):
    world = make_world(session)
    web = _admin(app, world)
    token, html = _uploaded(web, HEADER + GOOD_NEW)
    from datetime import timedelta

    from portfolio.db import utcnow

    session.execute(update(PeopleImport).values(
        created_at=utcnow() - imports.PREVIEW_LIFETIME - timedelta(minutes=1)))
    session.commit()
    refused = _confirm(web, token, html, "all")
    assert refused.status_code == 410 and "This preview expired" in refused.get_data(True)
    session.expire_all()
    assert session.scalar(select(PeopleImport.content)) == ""
    assert session.scalar(select(func.count()).select_from(User).where(
        User.email == "nia@example.org")) == 0


def test_another_admin_cannot_see_or_confirm_a_token(app, session):
    world = make_world(session)
    web = _admin(app, world)
    token, html = _uploaded(web, HEADER + GOOD_NEW)
    far = _admin(app, world, world.other_admin.email)
    assert far.client.get(f"/admin/people/import/{token}").status_code == 404
    assert far.client.get(f"/admin/people/import/{token}/progress").status_code == 404
    assert _confirm(far, token, html, "all").status_code == 404
    assert far.post(f"/admin/people/import/{token}/discard").status_code == 404
    # A second admin of the same centre cannot use the uploader's token either.
    make_user(session, world.admin.centre, "admin", email="second-admin@example.org")
    session.commit()
    second = _admin(app, world, "second-admin@example.org")
    assert second.client.get(f"/admin/people/import/{token}").status_code == 404
    # Forged tokens look like unknown ones.
    assert web.client.get("/admin/people/import/imp_" + "A" * 43).status_code == 404
    assert web.client.get("/admin/people/import/42").status_code == 404
    # Staff who are not admins are refused.
    learner = _admin(app, world, world.learner.email)
    assert learner.client.get(f"/admin/people/import/{token}").status_code == 403
    assert _count(session, Enrolment) == 3
    assert _confirm(web, token, html, "all").status_code == 303  # the owner still can


def test_the_template_parses_back_through_the_importer(app, session):
    world = make_world(session)
    web = _admin(app, world)
    response = web.client.get("/admin/people/import/template.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    raw = response.get_data()
    assert raw.startswith("\ufeff".encode())  # Excel then opens it as UTF-8
    lines = raw.decode("utf-8-sig").splitlines()
    assert lines[0] == HEADER.strip() and len(lines) == 2
    token, html = _uploaded(web, raw)
    assert "1</strong> pass" in html and "0</strong> with problems" in html
    assert _confirm(web, token, html, "all").status_code == 303
    session.expire_all()
    assert session.scalar(select(User).where(User.email == "sam.example@example.org"))


@pytest.mark.parametrize("payload, expected", [
    (b"", "The file is empty"),
    ("Naïve,Email\n".encode("latin-1"), "not saved as UTF-8"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "not a CSV file"),
    (b"Name,Email,Employer\nA,a@example.org,B\n", "The file has no “Workplace” column"),
    (HEADER.encode(), "no rows of people"),
    ((HEADER + 'A,"a@example.org,B\n').encode(), "a quote"),
    ((HEADER.rstrip("\n") + ",Email\n").encode(), "the “Email” column 2 times"),
])
def test_files_that_cannot_be_read_are_refused_with_a_reason(app, session, payload, expected):
    world = make_world(session)
    web = _admin(app, world)
    response = _upload(web, payload)
    assert response.status_code == 422
    assert expected in response.get_data(as_text=True).replace("&#34;", '"')
    assert _count(session, PeopleImport) == 0


def test_too_many_rows_and_missing_file(make_app, session):
    app = make_app(IMPORT_MAX_ROWS=2)
    world = make_world(session)
    web = _admin(app, world)
    response = _upload(web, HEADER + GOOD_NEW * 3)
    assert response.status_code == 422
    assert "more than 2 rows" in response.get_data(as_text=True)
    assert web.post("/admin/people/import").status_code == 422
    assert _count(session, PeopleImport) == 0


def test_excel_semicolons_bom_crlf_and_uk_dates(app, session):
    world = make_world(session)
    web = _admin(app, world)
    text = (HEADER + GOOD_UK_DATES).replace(",", ";").replace("\n", "\r\n")
    token, html = _uploaded(web, "\ufeff".encode() + text.encode())
    assert "1</strong> pass" in html
    assert "01 Sep 2025 to 31 Aug 2026" in re.sub(r"<[^>]+>", "", html)
    assert _confirm(web, token, html, "all").status_code == 303
    assert _count(session, Enrolment) == 4


def test_header_spellings_and_extra_columns(app, session):
    csv_text = ("full name,E-mail address,EMPLOYER,Site,Unit,Assessor,IQA,Start,End,Notes\n"
                "Mo Salah,mo@example.org,Acme,Leeds,r/506/2151,assessor@example.org,,"
                "2025-09-01,2026-09-01,likes tea\n")
    parsed = imports.read_file(csv_text, max_rows=10)
    assert parsed.ignored_columns == ["Notes"]
    assert parsed.rows[0][1]["unit"] == "r/506/2151"
    world = make_world(session)
    checked = imports.check_rows(session, parsed, world.admin.centre)
    assert [r.problems for r in checked.rows] == [[]]


def test_parse_date_accepts_iso_and_uk_dates():
    assert str(imports.parse_date("2025-09-01")) == "2025-09-01"
    assert str(imports.parse_date("01/09/2025")) == "2025-09-01"
    assert str(imports.parse_date("1/9/2025")) == "2025-09-01"
    assert imports.parse_date("09/31/2025") is None  # American order is not guessed at
    assert imports.parse_date("next week") is None


def _wait_for(session, token_status: str, timeout: float = 60.0) -> PeopleImport:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        session.expire_all()
        upload = session.scalar(select(PeopleImport))
        if upload.status == token_status:
            return upload
        time.sleep(0.1)
    raise AssertionError(f"the import did not reach {token_status}")


def test_a_large_file_is_imported_in_the_background_with_progress(make_app, session):
    app = make_app(IMPORT_BACKGROUND_ROWS=5)
    world = make_world(session)
    web = _admin(app, world)
    rows = "".join(f"Person {n},person{n}@example.org,Acme,Leeds,R/506/2151,"
                   f"assessor@example.org,,2025-09-01,2026-08-31\n" for n in range(60))
    token, html = _uploaded(web, HEADER + rows + EXISTING_STAFF)
    assert "61 rows import in the background" in html
    started = _confirm(web, token, html, "all")
    assert started.status_code == 303
    # The page polls this; it answers while the job runs and after.
    progress = web.client.get(f"/admin/people/import/{token}/progress").get_json()
    assert progress["status"] in ("queued", "running", "done") and progress["total"] == 61
    upload = _wait_for(session, "done")
    assert upload.done_rows == upload.total_rows == 61
    assert upload.people_created == 60 and upload.people_reused == 1
    assert upload.enrolments_created == 61 and upload.content == ""
    final = web.client.get(f"/admin/people/import/{token}/progress").get_json()
    assert final == {"status": "done", "working": False, "done": 61, "total": 61,
                     "message": upload.message}
    page = web.client.get(f"/admin/people/import/{token}").get_data(as_text=True)
    assert "Imported 61 enrolments: 60 new people invited, 1 existing person reused." in page
    # The invitations are sent by the job after each batch is committed.
    deadline = time.monotonic() + 30
    while len(_outbox(app)) < 60 and time.monotonic() < deadline:
        time.sleep(0.1)
    mails = _outbox(app)
    assert len(mails) == 60
    assert all(re.search(r"http://localhost/reset/pwr_", m.replace("=\n", "")) for m in mails)
    assert session.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.action == "people_import.done")) == 1
    # A second confirm while or after it runs imports nothing again.
    assert _confirm(web, token, html, "all").status_code == 303
    assert _count(session, Enrolment) == 3 + 61


def test_a_background_import_whose_process_died_is_marked_failed(app, session):
    world = make_world(session)
    web = _admin(app, world)
    token, _html = _uploaded(web, HEADER + GOOD_NEW)
    from datetime import timedelta

    from portfolio.db import utcnow

    session.execute(update(PeopleImport).values(
        status="running", total_rows=1, started_at=utcnow() - timedelta(minutes=10),
        heartbeat_at=utcnow() - timedelta(minutes=10)))
    session.commit()
    progress = web.client.get(f"/admin/people/import/{token}/progress").get_json()
    assert progress["status"] == "failed" and "no longer running" in progress["message"]
    page = web.client.get(f"/admin/people/import/{token}")
    assert "was not imported" in page.get_data(as_text=True)


def test_two_confirms_at_once_import_once(app, session):
    import threading

    world = make_world(session)
    first = _admin(app, world)
    token, html = _uploaded(first, HEADER + GOOD_NEW + GOOD_UK_DATES)
    second = _admin(app, world)  # the same admin in another tab (another session)
    tokens = [first.token(), second.token()]
    checked = CHECKED.search(html).group(1)
    barrier = threading.Barrier(2)
    answers: list = [None, None]

    def press(i: int, web: Browserless) -> None:
        barrier.wait()
        answers[i] = web.client.post(f"/admin/people/import/{token}/confirm", data={
            "mode": "all", "checked": checked, "csrf_token": tokens[i]})

    threads = [threading.Thread(target=press, args=(i, w)) for i, w in enumerate((first,
                                                                                 second))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert [a.status_code for a in answers] == [303, 303]
    pages = [w.client.get(a.headers["Location"]).get_data(as_text=True)
             for w, a in zip((first, second), answers, strict=True)]
    assert sum("nothing was imported twice" in p for p in pages) == 1
    assert _count(session, Enrolment) == 3 + 2
    assert len(_outbox(app)) == 2


def test_an_invited_person_has_no_password_until_they_choose_one(app, session):
    world = make_world(session)
    web = _admin(app, world)
    token, html = _uploaded(web, HEADER + GOOD_NEW)
    assert _confirm(web, token, html, "all").status_code == 303
    session.expire_all()
    nia = session.scalar(select(User).where(User.email == "nia@example.org"))
    from portfolio.auth.services import NO_PASSWORD_YET, verify_password

    assert nia.password_hash == NO_PASSWORD_YET and not verify_password(nia, NO_PASSWORD_YET)
    assert Browserless(app.test_client()).login("nia@example.org", "").status_code in (400,
                                                                                       401)


def test_with_redis_a_large_import_waits_for_the_worker(own_instance, make_app, session,
                                                         redis_url):
    import subprocess
    import sys

    from portfolio.people_import.jobs import QUEUE_NAME, queue_for
    from tests.test_export_jobs import _centre_keys, _worker_env

    app = make_app(REDIS_URL=redis_url, IMPORT_BACKGROUND_ROWS=2)
    world = make_world(session)
    _centre_keys(app)  # a worker refuses to start without the centres' signing keys
    web = _admin(app, world)
    token, html = _uploaded(web, HEADER + GOOD_NEW + GOOD_UK_DATES + EXISTING_STAFF)
    assert _confirm(web, token, html, "all").status_code == 303
    queue = queue_for(redis_url)
    assert queue.name == QUEUE_NAME and queue.count == 1
    time.sleep(0.3)  # nothing runs it in the web process
    assert web.client.get(f"/admin/people/import/{token}/progress").get_json()["status"] \
        == "queued"
    root = Path(__file__).resolve().parent.parent
    env = _worker_env(app) | {"PYTHONPATH": str(root)}
    worker = subprocess.run(
        [sys.executable, "-c", "from portfolio.cli import cli; cli()", "worker", "--burst"],
        env=env, cwd=root, capture_output=True, text=True, timeout=300, check=False)
    assert worker.returncode == 0, worker.stdout + worker.stderr
    assert "'imports'" in worker.stdout
    progress = web.client.get(f"/admin/people/import/{token}/progress").get_json()
    assert progress["status"] == "done" and progress["done"] == 3, worker.stderr
    assert _count(session, Enrolment) == 3 + 3
    # The invitations went on the mail queue, which the same worker emptied.
    mails = _outbox(app)
    assert len(mails) == 2 and all("/reset/pwr_" in m.replace("=\n", "") for m in mails)


def test_old_mac_line_ends_and_tabs_are_read():
    text = (HEADER + GOOD_NEW).replace(",", "\t").replace("\n", "\r")
    parsed = imports.read_file(text, max_rows=10)
    assert parsed.separator == "\t" and parsed.rows[0][1]["email"] == "nia@example.org"


def _queued(session, world, text: str, mode: str) -> PeopleImport:
    upload, _token = imports.stash_upload(session, filename="queued.csv", text=text,
                                          row_count=text.count("\n") - 1, actor=world.admin)
    upload.status, upload.mode = "queued", mode
    session.commit()
    return upload


def test_a_background_import_of_all_rows_is_refused_if_a_row_went_bad(app, session):
    from portfolio.people_import.jobs import run_import
    from tests.factories import make_enrolment

    world = make_world(session)
    upload = _queued(session, world, HEADER + GOOD_NEW + GOOD_UK_DATES, "all")
    raj = make_user(session, world.admin.centre, "learner", email="raj@example.org")
    make_enrolment(session, raj, world.assessor, None, world.unit)
    session.commit()
    people = _count(session, User)
    run_import(app, upload.id, "http://localhost/")
    session.expire_all()
    assert upload.status == "failed"
    assert "Nothing was imported: 1 row no longer passes" in upload.message
    assert _count(session, User) == people and upload.content == ""
    assert session.scalar(select(AuditEvent.action).where(
        AuditEvent.subject_type == "people_import")) == "people_import.refused"
    run_import(app, upload.id, "http://localhost/")  # run again: it is not queued, nothing runs
    assert _count(session, User) == people


def test_a_background_import_that_breaks_keeps_its_finished_batches(app, session, monkeypatch):
    from portfolio.people_import import jobs

    world = make_world(session)
    rows = "".join(f"Person {n},person{n}@example.org,Acme,Leeds,R/506/2151,"
                   f"assessor@example.org,,2025-09-01,2026-08-31\n" for n in range(30))
    upload = _queued(session, world, HEADER + rows, "good")
    real = imports.import_rows
    calls = []

    def second_batch_breaks(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("the database went away")
        return real(*args, **kwargs)

    monkeypatch.setattr(jobs.services, "import_rows", second_batch_breaks)
    jobs.run_import(app, upload.id, "http://localhost/")
    session.expire_all()
    assert upload.status == "failed" and upload.content == ""
    assert upload.message.startswith(f"The import stopped after {jobs.BATCH} of 30 rows")
    assert _count(session, Enrolment) == 3 + jobs.BATCH  # the first batch is kept
    assert len(_outbox(app)) == jobs.BATCH  # and its people were invited
    assert session.scalar(select(AuditEvent.detail).where(
        AuditEvent.action == "people_import.failed"))["enrolments_created"] == jobs.BATCH


def test_a_long_preview_lists_every_problem_but_counts_the_rest_of_the_good_rows(
        app, session, monkeypatch):
    from portfolio.people_import import views

    monkeypatch.setattr(views, "GOOD_ROWS_SHOWN", 2)
    world = make_world(session)
    web = _admin(app, world)
    rows = "".join(f"Person {n},person{n}@example.org,Acme,Leeds,R/506/2151,"
                   f"assessor@example.org,,2025-09-01,2026-08-31\n" for n in range(5))
    _token, html = _uploaded(web, HEADER + rows + BAD_ROWS)
    # Nia's row passes here (nothing earlier repeats it): 6 good rows, 7 with problems.
    assert "And 4 more rows that pass." in html
    assert html.count("Person ") == 2 and html.count("class=\"import-problems\"") == 7
