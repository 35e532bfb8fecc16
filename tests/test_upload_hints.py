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
