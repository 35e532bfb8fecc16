import pytest
from tests.browser.test_accessibility import Case, run_axe, axe_report, check_reflow, WIDTHS, page_for  # noqa
from tests.browser.conftest import DESKTOP
E = "/enrolments/{enrolment}"
CASES = [Case("caseload", "assessor", "/caseload"), Case("caseload", "trainee", "/caseload"),
         Case("countersign", "assessor", "/countersign"), Case("review", "assessor", E + "/review"),
         *(Case("sign-off", r, E + "/sign-off") for r in ("learner", "assessor", "iqa", "admin")),
         *(Case("history", r, E + "/audit") for r in ("assessor", "iqa", "admin")),
         *(Case("messages", r, "/outbox") for r in ("learner", "admin")),
         Case("enrolment", "assessor", E), Case("evidence-detail", "assessor", "/evidence/{evidence}")]

@pytest.mark.parametrize("viewport", WIDTHS)
@pytest.mark.parametrize("case", CASES, ids=str)
def test_probe(case, viewport, shared_site, page_for):
    page = page_for(case.role, viewport)
    r = page.goto(shared_site.base_url + case.path.format(**shared_site.ids))
    assert r.ok, r.status
    page.evaluate("document.querySelectorAll('details').forEach(d => { d.open = true; })")
    res = run_axe(page)
    assert not res["violations"], axe_report(res["violations"])
    if viewport["width"] < DESKTOP["width"]:
        check_reflow(page, viewport["width"])
