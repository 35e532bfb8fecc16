"""The file picker offers what a kind takes, so a phone offers its camera for a photo
(issue 17); kinds that take any allowed file are not narrowed."""

from __future__ import annotations

import re

from tests.conftest import Browserless
from tests.factories import PASSWORD, make_world


def _file_input(html: str) -> str:
    return re.search(r'<input[^>]*type="file"[^>]*>', html).group(0)


def test_pickers_offer_what_each_kind_takes(app, session):
    world = make_world(session)
    web = Browserless(app.test_client())
    web.login(world.learner.email, PASSWORD)
    base = f"/enrolments/{world.enrolment.id}/evidence/new"
    photo = _file_input(web.client.get(f"{base}/photo").get_data(True))
    # HEIC and HEIF are named too: an iPhone keeps its photos as HEIC (issue 17).
    assert 'accept="image/*,.heic,.heif,image/heic,image/heif"' in photo and "multiple" in photo
    witness = _file_input(web.client.get(f"{base}/witness_testimony").get_data(True))
    assert 'accept="image/*,.heic,.heif,image/heic,image/heif,application/pdf"' in witness
    assert 'accept=".eml,.msg' in _file_input(web.client.get(f"{base}/email").get_data(True))
    assert 'accept=".csv,.xlsx' in _file_input(web.client.get(f"{base}/log").get_data(True))
    assert "accept=" not in _file_input(web.client.get(f"{base}/work_product").get_data(True))


def test_the_upload_script_gets_its_redirect_as_json_and_the_message_is_kept(app, session):
    """static/js/uploads.js sends the form itself (for per-file progress) with X-Upload: 1; the
    redirect comes back as JSON, so the next page, opened by the script, still has its message.
    Without the header, the same post is a plain redirect."""
    import io

    from tests.conftest import csrf_from
    from tests.factories import TINY_PDF

    world = make_world(session)
    web = Browserless(app.test_client())
    web.login(world.learner.email, PASSWORD)
    url = f"/enrolments/{world.enrolment.id}/evidence/new/work_product"

    def post(headers: dict) -> object:
        token = csrf_from(web.client.get(url).get_data(True))
        return web.client.post(url, headers=headers, content_type="multipart/form-data", data={
            "csrf_token": token, "title": "Rota", "activity_on": "2026-11-20",
            "personal_data_confirmed": "y", "files": (io.BytesIO(TINY_PDF), "rota.pdf")})

    answer = post({"X-Upload": "1"})
    assert answer.status_code == 200 and answer.is_json
    target = answer.get_json()["redirect"]
    assert re.match(r"^/evidence/\d+", target)
    assert "Saved as a draft" in web.client.get(target).get_data(True)
    plain = post({})
    assert plain.status_code in (302, 303) and plain.location.startswith("/evidence/")
