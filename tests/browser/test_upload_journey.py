"""Uploads the way people make them (issue 17): a learner drags two files onto the evidence
form, pastes a screenshot, sees a file over the limit refused in the list before anything is
sent, removes it, and watches each file's own progress bar fill as the form is sent. The
saved item holds exactly the files that were listed, and the page's message survives the
script's redirect."""

from __future__ import annotations

import base64
import io

from PIL import Image

from portfolio.models import Evidence
from tests.browser.conftest import PHONE, login, serve
from tests.factories import TINY_PDF, make_world


def _png(colour: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), colour).save(out, "PNG")
    return out.getvalue()


# Build File objects in the page from base64, then drop them on the box (or paste them).
DROP = """([selector, files]) => {
  const transfer = new DataTransfer();
  for (const f of files) {
    const bytes = Uint8Array.from(atob(f.data), c => c.charCodeAt(0));
    transfer.items.add(new File([bytes], f.name, {type: f.type}));
  }
  const target = document.querySelector(selector);
  const init = {bubbles: true, cancelable: true, dataTransfer: transfer};
  target.dispatchEvent(new DragEvent('dragenter', init));
  target.dispatchEvent(new DragEvent('drop', init));
}"""
PASTE = """([files]) => {
  const transfer = new DataTransfer();
  for (const f of files) {
    const bytes = Uint8Array.from(atob(f.data), c => c.charCodeAt(0));
    transfer.items.add(new File([bytes], f.name, {type: f.type}));
  }
  const init = {bubbles: true, cancelable: true, clipboardData: transfer};
  document.activeElement.dispatchEvent(new ClipboardEvent('paste', init));
}"""
# When the script opens the next page, note what each progress bar showed.
NOTE_BARS = """() => window.addEventListener('pagehide', () => sessionStorage.setItem('bars',
  JSON.stringify([...document.querySelectorAll('.upload-item progress')].map(p => p.value))))"""


def _file(name: str, data: bytes, kind: str) -> dict:
    return {"name": name, "data": base64.b64encode(data).decode(), "type": kind}


def test_drop_two_files_paste_one_and_watch_them_upload(make_app, session, new_page):
    app = make_app(MAX_FILE_MB=1)
    world = make_world(session)
    session.commit()
    with serve(app) as base:
        page = new_page(viewport=PHONE)
        login(page, base, world.learner.email)
        page.goto(f"{base}/enrolments/{world.enrolment.id}/evidence/new/work_product")
        assert page.locator(".dropzone").is_visible()
        page.evaluate(DROP, [".dropzone", [
            _file("rota.pdf", TINY_PDF, "application/pdf"),
            _file("till.png", _png("green"), "image/png"),
            _file("huge.pdf", TINY_PDF + b"%" + b"x" * (1024 * 1024 + 10), "application/pdf"),
        ]])
        items = page.locator(".upload-item")
        assert items.count() == 3
        assert "Ready to upload" in items.nth(0).inner_text()
        refused = page.locator(".upload-refused")
        assert "Too large: the limit is 1.0 MB a file." in refused.inner_text()
        page.locator("#title").focus()
        page.evaluate(PASTE, [[_file("image.png", _png("red"), "image/png")]])
        assert items.count() == 4 and "pasted-1.png" in items.nth(3).inner_text()
        # Only the three good files are on the form; the refused one is removed from the list.
        assert page.evaluate("document.querySelector('input[type=file]').files.length") == 3
        refused.get_by_role("button", name="Remove huge.pdf").click()
        assert items.count() == 3

        page.fill("#title", "Rota and till photos")
        page.fill("#activity_on", "2026-11-20")
        page.check("#personal_data_confirmed")
        page.evaluate(NOTE_BARS)
        with page.expect_navigation(url=f"{base}/evidence/*"):
            page.get_by_role("button", name="Save draft").click()
        page.wait_for_load_state()
        assert page.evaluate("JSON.parse(sessionStorage.getItem('bars'))") == [100, 100, 100]
        assert page.locator(".flash").count() == 1  # the message was not used up by the script
        evidence_id = int(page.url.split("#")[0].rsplit("/", 1)[1])
    session.expire_all()
    files = session.get(Evidence, evidence_id).versions[-1].files
    assert sorted(f.filename for f in files) == ["pasted-1.png", "rota.pdf", "till.png"]


def test_a_form_with_errors_comes_back_as_a_page(make_app, session, new_page):
    """A refused form (no title) sent by the script shows the form's errors, as a post would."""
    app = make_app()
    world = make_world(session)
    session.commit()
    with serve(app) as base:
        page = new_page()
        login(page, base, world.learner.email)
        page.goto(f"{base}/enrolments/{world.enrolment.id}/evidence/new/work_product")
        page.evaluate(DROP, [".dropzone", [_file("rota.pdf", TINY_PDF, "application/pdf")]])
        page.check("#personal_data_confirmed")
        page.get_by_role("button", name="Save draft").click()
        page.wait_for_selector(".field-error")
        assert page.locator("#title-error").is_visible()
    assert session.query(Evidence).filter(Evidence.enrolment_id == world.enrolment.id).count() == 0


def test_a_phone_offers_its_camera_beside_the_picker(make_app, session, new_page):
    """On a touch screen the photo form has "Take a photo": a picker with `capture`, which opens
    the back camera at once; what it takes joins the list like any file. A desktop has no such
    button (its browser would only open the file picker again)."""
    app = make_app()
    world = make_world(session)
    session.commit()
    with serve(app) as base:
        phone = new_page(viewport=PHONE, has_touch=True, is_mobile=True)
        login(phone, base, world.learner.email)
        phone.goto(f"{base}/enrolments/{world.enrolment.id}/evidence/new/photo")
        camera = phone.locator("input[type=file][capture=environment]")
        assert camera.get_attribute("accept") == "image/*"
        assert phone.get_by_role("button", name="Take a photo").is_visible()
        camera.set_input_files([{"name": "IMG_2041.png", "mimeType": "image/png",
                                 "buffer": _png("blue")}])
        assert "IMG_2041.png" in phone.locator(".upload-item").inner_text()
        assert phone.evaluate("document.querySelector('[data-dropzone] input[name=files]')"
                              ".files.length") == 1
        # The recorder for a professional discussion (the assessor adds those).
        phone = new_page(viewport=PHONE, has_touch=True, is_mobile=True)
        login(phone, base, world.assessor.email)
        phone.goto(f"{base}/enrolments/{world.enrolment.id}/evidence/new/"
                   "professional_discussion")
        recorder = phone.locator("input[type=file][capture=user]")
        assert recorder.get_attribute("accept") == "audio/*"
        assert phone.get_by_role("button", name="Record the discussion").is_visible()

        desk = new_page()
        login(desk, base, world.learner.email)
        desk.goto(f"{base}/enrolments/{world.enrolment.id}/evidence/new/photo")
        assert desk.locator(".dropzone").is_visible()
        assert desk.get_by_role("button", name="Take a photo").count() == 0
