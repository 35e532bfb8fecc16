"""Sixteen photo uploads at once on a threaded server: every one is stored, none waits on
another's image processing until the database gives up ("database is locked" on SQLite), and
each photo's print copy is made (issue 16: print copies are made after the commit)."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import requests
from PIL import Image
from sqlalchemy import func, select

from portfolio.auth.services import create_api_token
from portfolio.evidence.print_copy import print_copy_path
from portfolio.models import Evidence, EvidenceFile
from tests.factories import make_world

UPLOADS = 16


def _photo(n: int) -> bytes:
    out = io.BytesIO()
    # Large enough that making its print copy takes real time.
    Image.new("RGB", (2400, 1800), (20 + n * 10, 90, 160)).save(out, "JPEG", quality=90)
    return out.getvalue()


def test_sixteen_concurrent_photo_uploads(app, session, live_server):
    world = make_world(session)
    token = create_api_token(session, world.learner, "uploads")[1]
    session.commit()
    url = f"{live_server}/api/v1/enrolments/{world.enrolment.id}/evidence"
    photos = [_photo(n) for n in range(UPLOADS)]

    def upload(n: int) -> requests.Response:
        return requests.post(url, headers={"Authorization": f"Bearer {token}"}, data={
            "kind": "photo", "title": f"Display {n}", "activity_on": date.today().isoformat(),
            "personal_data_confirmed": "true"},
            files={"files": (f"display-{n}.jpg", photos[n], "image/jpeg")}, timeout=120)

    with ThreadPoolExecutor(UPLOADS) as pool:
        answers = list(pool.map(upload, range(UPLOADS)))
    problems = [(a.status_code, a.text[:200]) for a in answers if a.status_code != 201]
    assert not problems, problems

    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Evidence)) == UPLOADS
    digests = list(session.scalars(select(EvidenceFile.sha256)))
    assert len(set(digests)) == UPLOADS
    store = Path(app.config["STORAGE_DIR"])
    missing = [d for d in digests if not print_copy_path(store, d).exists()]
    assert not missing, f"{len(missing)} photos have no print copy"
