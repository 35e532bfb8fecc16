"""What people read instead of codes: file sizes, audit actions, decision states, signatures."""

from __future__ import annotations

import pytest

from portfolio.display import ACTIONS, action_label, decision_state, filesize
from portfolio.models.assessment import DECISION_STATUSES, SIGNATURE_PURPOSES
from tests.factories import PASSWORD, make_evidence, make_world


@pytest.mark.parametrize(("size", "text"), [
    (0, "0 bytes"), (1, "1 byte"), (459, "459 bytes"), (1023, "1023 bytes"), (1024, "1 KB"),
    (1536, "1.5 KB"), (20 * 1024, "20 KB"), (int(1.5 * 1024 * 1024), "1.5 MB"),
    (3 * 1024 ** 3, "3 GB"),
])
def test_file_sizes_never_read_zero_kb(size, text):
    assert filesize(size) == text


def test_every_action_and_state_has_words():
    assert action_label("signature.unit_cosign") == (
        "Signed: Learner's co-signature of the sign-off")
    assert action_label("evidence.submit") == "Evidence submitted"
    assert action_label("something.new_here") == "Something new here"
    for code in ACTIONS:
        assert "." not in action_label(code) and "_" not in action_label(code)
    for purpose in SIGNATURE_PURPOSES:
        assert "_" not in action_label(f"signature.{purpose}")
    for status in DECISION_STATUSES:
        assert "_" not in decision_state(status)


def test_pages_show_words_not_codes(app, session, web):
    world = make_world(session)
    from portfolio.assessment.services import submit_with_declaration
    from tests.factories import LIMITS, sign_as

    item = make_evidence(session, world.enrolment, world.learner, title="Call notes",
                         maps=("1.1",))
    submit_with_declaration(session, item, actor=world.learner,
                            confirmation=sign_as(world.learner), **LIMITS)
    session.commit()
    web.login(world.assessor.email, PASSWORD)
    audit = web.client.get(f"/enrolments/{world.enrolment.id}/audit").get_data(True)
    assert "signature.evidence_declaration" not in audit and "evidence.submit" not in audit
    assert "Evidence submitted" in audit
    assert "signature #" not in audit
    page = web.client.get(f"/evidence/{item.id}").get_data(True)
    assert "Learner&#39;s declaration on evidence: “Call notes”, version 1" in page
