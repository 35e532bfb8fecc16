"""axe-core on every page, for every role that can see it, at desktop and phone widths.

Each page is checked with all its <details> open, and at phone width for sideways scrolling.
All tests here share one site (see `shared_site`), so none of them may change data: the
form-error cases submit forms that fail validation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from axe_playwright_python.base import AXE_SCRIPT
from playwright.sync_api import Browser, BrowserContext, Page, ViewportSize

from tests.browser.conftest import DEFAULT_TIMEOUT_MS, DESKTOP, PHONE, SharedSite

# What axe checks (the HTML) does not depend on the database: these run in the SQLite run only.
pytestmark = pytest.mark.one_database

# WCAG 2.0, 2.1 and 2.2 at levels A and AA, plus Deque's best practices. (axe 4.12 has no
# rule tagged wcag22a yet; the tag is listed so rules added later are picked up.)
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa", "best-practice"]
AXE_OPTIONS = {"runOnly": {"type": "tag", "values": AXE_TAGS}, "resultTypes": ["violations"]}

ALL_ROLES = ("learner", "assessor", "iqa", "eqa", "admin")
ENROLMENT_ROLES = ("learner", "assessor", "iqa", "admin")
PORTFOLIO = "/enrolments/{enrolment}"


def _submit(page: Page, button: str) -> None:
    """Send the form as it is (by default empty); expect it back with an error summary."""
    page.get_by_role("button", name=button).click()
    page.wait_for_load_state()
    assert page.get_by_role("alert").count() == 1, "expected an error summary"


def _wrong_password(page: Page) -> None:
    page.fill("#email", "nobody@example.org")
    page.fill("#password", "not a password")
    _submit(page, "Sign in")


def _clear_employer(page: Page) -> None:
    page.get_by_label("Employer").fill("")
    _submit(page, "Save changes")


def _drop_files(page: Page) -> None:
    """Two files in the drop box's list, one of them refused (empty), as uploads.js shows them."""
    page.evaluate("""() => {
      const transfer = new DataTransfer();
      transfer.items.add(new File(["%PDF-1.4 rota"], "rota.pdf", {type: "application/pdf"}));
      transfer.items.add(new File([], "empty.txt", {type: "text/plain"}));
      document.querySelector(".dropzone").dispatchEvent(
        new DragEvent("drop", {bubbles: true, cancelable: true, dataTransfer: transfer}));
    }""")
    assert page.locator(".upload-item").count() == 2


@dataclass(frozen=True)
class Case:
    name: str
    role: str | None
    path: str  # formatted with SharedSite.ids
    then: Callable[[Page], None] | None = None  # what to do on the page before checking it

    def __str__(self) -> str:
        return f"{self.role or 'anonymous'}-{self.name}"


def _ask_for_link(page: Page) -> None:
    page.fill("#email", "someone@example.org")
    page.get_by_role("button", name="Email me a link").click()
    page.wait_for_load_state()


CASES = [
    Case("login", None, "/login"),
    Case("login-empty-form", None, "/login", lambda p: _submit(p, "Sign in")),
    Case("login-wrong-password", None, "/login", _wrong_password),
    Case("404", None, "/no-such-page"),
    Case("forgot", None, "/forgot"),
    Case("forgot-sent", None, "/forgot", _ask_for_link),
    Case("reset-refused", None, "/reset/pwr_not-a-link-we-sent"),
    *(Case("dashboard", role, "/") for role in (*ALL_ROLES, "trainee")),
    *(Case("units", role, "/units") for role in ALL_ROLES),
    *(Case("unit", role, "/units/{unit}") for role in ALL_ROLES),
    *(Case("enrolment", role, PORTFOLIO) for role in ENROLMENT_ROLES),
    *(Case("account", role, "/account") for role in ALL_ROLES),
    Case("account-password-errors", "learner", "/account",
         lambda p: _submit(p, "Change password")),
    Case("people", "admin", "/admin/people"),
    Case("people-new", "admin", "/admin/people/new"),
    Case("people-new-errors", "admin", "/admin/people/new",
         lambda p: _submit(p, "Add and invite")),
    Case("people-edit", "admin", "/admin/people/{learner}"),
    Case("enrolments", "admin", "/admin/enrolments"),
    Case("enrolments-new", "admin", "/admin/enrolments/new"),
    Case("enrolments-new-errors", "admin", "/admin/enrolments/new",
         lambda p: _submit(p, "Enrol")),
    Case("enrolments-edit", "admin", "/admin/enrolments/{enrolment}"),
    Case("enrolments-edit-errors", "admin", "/admin/enrolments/{enrolment}", _clear_employer),
    Case("people-import", "admin", "/admin/people/import"),
    Case("people-import-errors", "admin", "/admin/people/import",
         lambda p: _submit(p, "Check the file")),
    Case("people-import-preview", "admin", "/admin/people/import/{people_import_preview}"),
    Case("people-import-done", "admin", "/admin/people/import/{people_import_done}"),
    Case("bundle-import", "admin", "/admin/bundles/import"),
    Case("bundle-import-errors", "admin", "/admin/bundles/import",
         lambda p: _submit(p, "Check and import")),
    Case("403", "learner", "/admin/people"),
    Case("search", "assessor", "/search"),
    *(Case("search-results", role, "/search?q=complaint") for role in ("assessor", "iqa", "admin")),
    Case("search-nothing", "assessor", "/search?q=zzzqqqxx"),
    # The portfolio, its assessment and messages: each page for the roles whose view of it
    # differs (the learner's and the assessor's mostly; the IQA's and admin's are read-only).
    *(Case(name, "learner", path) for name, path in [
        ("evidence", PORTFOLIO + "/evidence"),
        ("evidence-choose", PORTFOLIO + "/evidence/new"),
        ("evidence-new-reflective-account", PORTFOLIO + "/evidence/new/reflective_account"),
        ("evidence-new-witness-testimony", PORTFOLIO + "/evidence/new/witness_testimony"),
        ("evidence-detail", "/evidence/{evidence}"),
        ("evidence-version", "/evidence/{evidence}/versions/1"),
        ("evidence-edit", "/evidence/{evidence}/edit"),
    ]),
    Case("evidence-new-errors", "learner", PORTFOLIO + "/evidence/new/reflective_account",
         lambda p: _submit(p, "Save draft")),
    Case("evidence-new-observation", "assessor", PORTFOLIO + "/evidence/new/observation"),
    Case("evidence-new-files-listed", "learner", PORTFOLIO + "/evidence/new/work_product",
         _drop_files),
    Case("evidence-detail", "assessor", "/evidence/{evidence}"),
    # A PDF's first page and a HEIC photo, each shown as a picture made from the file.
    *(Case("evidence-pictures", role, "/evidence/{evidence_pictures}")
      for role in ("learner", "assessor", "iqa")),
    *(Case("coverage", role, PORTFOLIO + "/coverage") for role in ("learner", "assessor")),
    *(Case("criterion", role, PORTFOLIO + "/criteria/{criterion}") for role in ("learner",
                                                                               "assessor")),
    Case("caseload", "assessor", "/caseload"),
    Case("countersign", "assessor", "/countersign"),
    Case("review", "assessor", PORTFOLIO + "/review"),
    *(Case("sign-off", role, PORTFOLIO + "/sign-off") for role in ("learner", "assessor", "iqa")),
    Case("history", "assessor", PORTFOLIO + "/audit"),
    *(Case("outbox", role, "/outbox") for role in ("learner", "admin")),
    *(Case("witnesses", role, PORTFOLIO + "/witnesses") for role in ("learner", "assessor",
                                                                     "iqa")),
    Case("witness-link", None, "/w/{witness_token}"),
    *(Case("exports", role, PORTFOLIO + "/exports") for role in ("learner", "admin")),
    Case("verify", None, "/verify"),
    *(Case("readiness", role, PORTFOLIO + "/readiness") for role in ("learner", "iqa")),
    Case("witness-link-unusable", None, "/w/not-a-real-link"),
    # EQA access packs: the EQA's read-only pages, and the admin's.
    *(Case(name, "eqa", "/eqa/packs/{eqa_pack}" + path) for name, path in [
        ("eqa-pack", ""), ("eqa-staff", "/staff"), ("eqa-sampling", "/sampling"),
        ("eqa-enrolment", "/enrolments/{enrolment}"), ("eqa-evidence", "/evidence/{evidence}"),
        ("eqa-evidence-pictures", "/evidence/{evidence_pictures}"),
    ]),
    *(Case(f"eqa-pack-job-{state}", "eqa",
           "/eqa/packs/{eqa_pack}/downloads/{eqa_pack_job_" + state + "}")
      for state in ("running", "failed", "ready")),
    Case("eqa-packs", "eqa", "/eqa"),
    Case("eqa-pack-expired", "eqa", "/eqa/packs/{eqa_pack_expired}"),
    Case("eqa-admin-packs", "admin", "/admin/eqa-packs"),
    Case("centre-settings", "admin", "/admin/centre"),
    Case("retention", "admin", "/admin/retention"),
    Case("legal-hold", "admin", "/admin/enrolments/{enrolment}/hold"),
    Case("legal-hold-errors", "admin", "/admin/enrolments/{enrolment}/hold",
         lambda p: _submit(p, "Put on hold")),
    Case("eqa-admin-new", "admin", "/admin/eqa-packs/new"),
    Case("eqa-admin-new-errors", "admin", "/admin/eqa-packs/new",
         lambda p: _submit(p, "Create the pack")),
    Case("eqa-admin-pack", "admin", "/admin/eqa-packs/{eqa_pack}"),
    # IQA sampling: dashboard, strategy (IQA and admin), plan, a sample before and after its
    # outcome (the assessor sees the sample with the action to acknowledge).
    Case("iqa-home", "iqa", "/iqa"),
    *(Case("sampling-strategy", role, "/iqa/strategy") for role in ("iqa", "admin")),
    Case("sampling-plan", "iqa", "/iqa/plans/{plan}"),
    Case("sample-open", "iqa", "/iqa/samples/{sample_open}"),
    *(Case("sample-done", role, "/iqa/samples/{sample_done}") for role in ("iqa", "assessor")),
    # A whole unit's sign-off being sampled (the dashboard also lists one waiting).
    Case("unit-sample-open", "iqa", "/iqa/samples/{unit_sample}"),
]
WIDTHS = [pytest.param(DESKTOP, id="desktop"), pytest.param(PHONE, id="phone")]


def axe_report(violations: list[dict]) -> str:
    """Say what to fix: rule, impact, help and the failing elements."""
    lines = [f"{len(violations)} accessibility violation(s):"]
    for v in violations:
        lines.append(f"- {v['id']} ({v['impact']}): {v['help']} <{v['helpUrl']}>")
        for node in v["nodes"]:
            summary = (node.get("failureSummary") or "").replace("\n", " ")
            lines.append(f"    at {' '.join(map(str, node['target']))}: {summary}")
    return "\n".join(lines)


# Elements other than .table-scroll (and what is inside one) that scroll sideways.
SIDEWAYS_SCROLLERS = """() => [...document.querySelectorAll('body *')]
    .filter(el => !el.closest('.table-scroll'))
    .filter(el => ['auto', 'scroll'].includes(getComputedStyle(el).overflowX))
    .filter(el => el.scrollWidth > el.clientWidth + 1)
    .map(el => el.tagName.toLowerCase() + (el.className ? '.' + el.className : '')
               + ` (${el.scrollWidth}px in ${el.clientWidth}px)`)"""


def check_reflow(page: Page, width: int) -> None:
    """No sideways scrolling at phone width, except inside .table-scroll containers."""
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    if scroll_width > width + 1:
        # Name the outermost elements that stick out, to make the failure easy to fix.
        widest = page.evaluate("""() => [...document.querySelectorAll('body *')]
            .filter(el => el.getBoundingClientRect().right > window.innerWidth + 1)
            .slice(0, 3).map(el => el.tagName.toLowerCase() + '.' + el.className)""")
        raise AssertionError(f"the page scrolls sideways at {width}px: it is {scroll_width}px "
                             f"wide; too wide: {widest}")
    scrollers = page.evaluate(SIDEWAYS_SCROLLERS)
    assert not scrollers, f"content scrolls sideways at {width}px in: {', '.join(scrollers)}"


@pytest.fixture(scope="module")
def page_for(shared_site: SharedSite, browser: Browser
             ) -> Iterator[Callable[[str | None, ViewportSize], Page]]:
    """One signed-in page per role and width, reused by every test of that role and width.

    The tests here only read, so a page can go from one to the next like a person browsing;
    a new context per test would make the module much slower. axe-core, as
    bundled with axe-playwright-python, is an init script of each context: Chromium runs it
    in every new document, which is quicker than sending its 570 kB in after each load.
    """
    pages: dict[tuple[str | None, int], Page] = {}
    contexts: list[BrowserContext] = []

    def get(role: str | None, viewport: ViewportSize) -> Page:
        key = (role, viewport["width"])
        if key not in pages:
            context = browser.new_context(viewport=viewport,
                                          storage_state=shared_site.storage_state(role))
            context.set_default_timeout(DEFAULT_TIMEOUT_MS)
            context.add_init_script(script=AXE_SCRIPT)
            contexts.append(context)
            pages[key] = context.new_page()
        return pages[key]

    yield get
    for context in contexts:
        context.close()


def assert_accessible(page: Page, width: int) -> None:
    """axe-core finds nothing on the page, and below desktop width nothing needs sideways
    scrolling (for the journeys, which check their own pages at both widths)."""
    from tests.browser.conftest import DESKTOP

    results = run_axe(page)
    assert results["passes"], "axe ran no rules"
    assert not results["violations"], axe_report(results["violations"])
    if width < DESKTOP["width"]:
        check_reflow(page, width)


def run_axe(page: Page) -> dict:
    """Run axe-core on the page as it is now: its violations and the number of rules passed.

    This is what axe-playwright-python's Axe.run() does, minus re-sending the script. Neither
    init scripts nor page.evaluate are subject to the page's Content-Security-Policy
    (script-src 'self'), so no script tag is needed.
    """
    if not page.evaluate("typeof axe !== 'undefined'"):
        page.evaluate(AXE_SCRIPT)
    return page.evaluate("""async options => {
        const results = await axe.run(document, options);
        return {violations: results.violations, passes: results.passes.length};
    }""", AXE_OPTIONS)


@pytest.mark.parametrize("viewport", WIDTHS)
@pytest.mark.parametrize("case", CASES, ids=str)
def test_page_is_accessible(case: Case, viewport: ViewportSize, shared_site: SharedSite,
                            page_for: Callable[[str | None, ViewportSize], Page]) -> None:
    page = page_for(case.role, viewport)
    response = page.goto(shared_site.base_url + case.path.format(**shared_site.ids))
    assert response is not None
    if case.name in ("404", "403"):
        assert response.status == int(case.name)
    elif case.name in ("witness-link-unusable", "eqa-pack-expired", "reset-refused"):
        assert response.status == 410
    else:
        assert response.ok, f"{case.path} answered {response.status}"
    if case.role:
        assert "/login" not in page.url, f"{case.role} is not signed in"
    if case.then:
        case.then(page)
    # Check folded content too: open every <details>.
    page.evaluate("document.querySelectorAll('details').forEach(d => { d.open = true; })")

    results = run_axe(page)
    assert results["passes"], "axe ran no rules: check AXE_TAGS"
    assert not results["violations"], axe_report(results["violations"])
    if viewport["width"] < DESKTOP["width"]:
        check_reflow(page, viewport["width"])
