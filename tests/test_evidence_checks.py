"""A second look on the evidence page: the same file in two items, and a photo taken far from
the activity date (issue 17). Shown to the learner and the assessor; nothing is blocked."""

from __future__ import annotations

import io
from datetime import date, timedelta

from PIL import Image

from tests.conftest import Browserless
from tests.factories import PASSWORD, TINY_PDF, make_evidence, make_world, stage_bytes


def _photo(taken: date) -> bytes:
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9003] = taken.strftime("%Y:%m:%d 10:42:00")
    out = io.BytesIO()
    Image.new("RGB", (64, 48), "green").save(out, "JPEG", exif=exif)
    return out.getvalue()


def _page(app, email: str, evidence_id: int) -> str:
    web = Browserless(app.test_client())
    web.login(email, PASSWORD)
    return web.client.get(f"/evidence/{evidence_id}").get_data(as_text=True)


def test_the_same_file_in_two_items_is_pointed_out(app, session):
    world = make_world(session)
    store = app.config["STORAGE_DIR"]
    first = make_evidence(session, world.enrolment, world.learner, "work_product",
                          title="Reply letter", files=[stage_bytes(store, TINY_PDF, "a.pdf")])
    second = make_evidence(session, world.enrolment, world.learner, "work_product",
                           title="Same letter again",
                           files=[stage_bytes(store, TINY_PDF, "copy.pdf")])
    other = make_evidence(session, world.enrolment, world.learner, "work_product",
                          title="Something else",
                          files=[stage_bytes(store, TINY_PDF + b"% other", "b.pdf")])
    session.commit()
    page = _page(app, world.learner.email, second.id)
    assert "Worth a second look" in page
    assert "The same file is also in “Reply letter”" in page
    assert f'href="/evidence/{first.id}"' in page
    assert "Worth a second look" in _page(app, world.assessor.email, first.id)
    assert "Worth a second look" not in _page(app, world.learner.email, other.id)
    # The IQA reads the page without this prompt (it is for the learner and the assessor).
    assert "Worth a second look" not in _page(app, world.iqa.email, second.id)


def test_a_photo_taken_far_from_the_activity_date_is_pointed_out(app, session):
    world = make_world(session)
    store = app.config["STORAGE_DIR"]
    activity = date.today() - timedelta(days=3)
    far = make_evidence(session, world.enrolment, world.learner, "photo", title="Display",
                        activity_on=activity,
                        files=[stage_bytes(store, _photo(activity - timedelta(days=60)),
                                           "display.jpg")])
    near = make_evidence(session, world.enrolment, world.learner, "photo", title="Notice",
                         activity_on=activity,
                         files=[stage_bytes(store, _photo(activity - timedelta(days=2)),
                                            "notice.jpg")])
    session.commit()
    page = _page(app, world.learner.email, far.id)
    assert "60 days from the activity date" in page
    assert "Worth a second look" not in _page(app, world.learner.email, near.id)
