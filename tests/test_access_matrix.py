"""Role x endpoint access matrix: every registered route, every role, own and other people's ids.

A new route fails `test_every_route_is_in_the_matrix` until it is added here with its expectations.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from portfolio import notify
from portfolio.auth.services import create_api_token
from portfolio.auth.sessions import start_session
from portfolio.export.signing import init_centre_key
from portfolio.models import Export, ExportJob, LoginSession
from tests import access_cases
from tests.conftest import csrf_from
from tests.factories import (
    PASSWORD,
    World,
    criterion,
    make_eqa_pack,
    make_evidence,
    make_world,
)
from tests.sampling_setup import make_sampling

ROLES = ("anonymous", "learner", "other_learner", "assessor", "trainee", "iqa", "eqa", "admin",
         "other_admin")
STAFF = ROLES[1:]

# Outcomes
OK = "ok"  # 200 or 201
LOGIN = "login"  # redirected to the sign-in page
HOME = "home"  # redirected to the dashboard
REDIRECT = "redirect"  # any other redirect after a successful action
FORBIDDEN = "forbidden"  # 403
MISSING = "missing"  # 404: other people's ids look exactly like ids that do not exist
INVALID = "invalid"  # 422: allowed in, but the empty form was refused
UNAUTH = "unauth"  # 401 problem+json (API without a token)
NO_CONTENT = "no content"  # 204
GONE = "gone"  # 410: a witness link that cannot be used
CONFLICT = "conflict"  # 409: allowed in, but the form did not say which version it changes


@dataclass
class Case:
    endpoint: str
    method: str
    path: Callable[[World, dict], str]
    expect: dict[str, str]
    data: dict | Callable[[World], dict] = field(default_factory=dict)
    api: bool = False
    label: str = ""
    json: Callable[[World], dict] | None = None

    @property
    def id(self) -> str:
        return f"{self.method} {self.endpoint}{' ' + self.label if self.label else ''}"


def everyone(outcome: str, anonymous: str = LOGIN, **overrides: str) -> dict[str, str]:
    table = {role: outcome for role in STAFF}
    table["anonymous"] = anonymous
    table.update(overrides)
    return table


def admins_only(outcome: str, other_admin: str | None = None) -> dict[str, str]:
    table = everyone(FORBIDDEN)
    table["admin"] = outcome
    table["other_admin"] = other_admin or outcome
    return table


def only_eqa(outcome: str) -> dict[str, str]:
    return everyone(FORBIDDEN) | {"eqa": outcome}


def api(outcome: str, **overrides: str) -> dict[str, str]:
    return everyone(outcome, anonymous=UNAUTH, **overrides)


VIEWERS = {"learner", "assessor", "iqa", "admin"}


def seen_by(allowed: set[str], anonymous: str = LOGIN) -> dict[str, str]:
    table = {role: (OK if role in allowed else MISSING) for role in STAFF}
    table["anonymous"] = anonymous
    return table


CASES = [
    Case("dashboard.home", "GET", lambda w, t: "/", everyone(OK)),
    Case("auth.login", "GET", lambda w, t: "/login", everyone(HOME, anonymous=OK)),
    Case("auth.login", "POST", lambda w, t: "/login", everyone(HOME, anonymous=UNAUTH),
         data={"email": "nobody@example.org", "password": "wrong password"}),
    Case("auth.logout", "POST", lambda w, t: "/logout", everyone(LOGIN)),
    Case("auth.account", "GET", lambda w, t: "/account", everyone(OK)),
    Case("auth.change_password", "POST", lambda w, t: "/account/password", everyone(INVALID)),
    Case("auth.create_token", "POST", lambda w, t: "/account/tokens", everyone(OK),
         data={"tok-name": "matrix"}),
    Case("auth.revoke_token", "POST",
         lambda w, t: f"/account/tokens/{t['learner'].id}/revoke",
         everyone(MISSING, learner=REDIRECT)),
    # The learner's other browser: only the learner may sign it out; to others it does not exist.
    Case("auth.end_session", "POST",
         lambda w, t: f"/account/sessions/{w.learner_session_id}/end",
         everyone(MISSING, learner=REDIRECT)),
    Case("auth.end_all_sessions", "POST", lambda w, t: "/account/sessions/end-all",
         everyone(LOGIN)),
    Case("criteria.units", "GET", lambda w, t: "/units", everyone(OK)),
    Case("criteria.unit", "GET", lambda w, t: f"/units/{w.unit.id}", everyone(OK)),
    Case("criteria.unit", "GET", lambda w, t: "/units/999999", everyone(MISSING),
         label="unknown id"),
    Case("enrolments.detail", "GET", lambda w, t: f"/enrolments/{w.enrolment.id}",
         seen_by({"learner", "assessor", "iqa", "admin"})),
    Case("enrolments.detail", "GET", lambda w, t: f"/enrolments/{w.other_enrolment.id}",
         seen_by({"other_learner", "trainee", "admin"}), label="other learner"),
    Case("enrolments.detail", "GET", lambda w, t: f"/enrolments/{w.foreign_enrolment.id}",
         seen_by({"other_admin"}), label="other centre"),
    # Evidence: the learner's own portfolio; staff assigned to it read it; others see nothing.
    Case("evidence.index", "GET", lambda w, t: f"/enrolments/{w.enrolment.id}/evidence",
         seen_by(VIEWERS)),
    Case("evidence.index", "GET", lambda w, t: f"/enrolments/{w.foreign_enrolment.id}/evidence",
         seen_by({"other_admin"}), label="other centre"),
    Case("evidence.choose", "GET", lambda w, t: f"/enrolments/{w.enrolment.id}/evidence/new",
         seen_by(VIEWERS) | {"iqa": FORBIDDEN, "admin": FORBIDDEN}),
    Case("evidence.new", "GET",
         lambda w, t: f"/enrolments/{w.enrolment.id}/evidence/new/reflective_account",
         seen_by(VIEWERS) | {"assessor": FORBIDDEN, "iqa": FORBIDDEN, "admin": FORBIDDEN}),
    Case("evidence.new", "GET",
         lambda w, t: f"/enrolments/{w.enrolment.id}/evidence/new/observation",
         seen_by(VIEWERS) | {"learner": FORBIDDEN, "iqa": FORBIDDEN, "admin": FORBIDDEN},
         label="assessor-only kind"),
    Case("evidence.new", "POST",
         lambda w, t: f"/enrolments/{w.enrolment.id}/evidence/new/reflective_account",
         seen_by(VIEWERS) | {"learner": INVALID, "assessor": FORBIDDEN, "iqa": FORBIDDEN,
                             "admin": FORBIDDEN}),
    Case("evidence.detail", "GET", lambda w, t: f"/evidence/{w.evidence.id}", seen_by(VIEWERS)),
    Case("evidence.version", "GET", lambda w, t: f"/evidence/{w.evidence.id}/versions/1",
         seen_by(VIEWERS)),
    Case("evidence.edit", "GET", lambda w, t: f"/evidence/{w.evidence.id}/edit",
         seen_by(VIEWERS) | {"assessor": FORBIDDEN, "iqa": FORBIDDEN, "admin": FORBIDDEN}),
    Case("evidence.edit", "POST", lambda w, t: f"/evidence/{w.evidence.id}/edit",
         seen_by(VIEWERS) | {"learner": CONFLICT, "assessor": FORBIDDEN, "iqa": FORBIDDEN,
                             "admin": FORBIDDEN}),
    Case("evidence.mappings", "POST", lambda w, t: f"/evidence/{w.evidence.id}/mappings",
         seen_by(VIEWERS) | {"learner": REDIRECT, "assessor": REDIRECT, "iqa": FORBIDDEN,
                             "admin": FORBIDDEN}, data={"criteria": []}),
    Case("evidence.submit", "POST", lambda w, t: f"/evidence/{w.evidence_to_submit.id}/submit",
         seen_by(VIEWERS) | {"learner": REDIRECT, "assessor": FORBIDDEN, "iqa": FORBIDDEN,
                             "admin": FORBIDDEN},
         data=lambda w: {"typed_name": w.learner.full_name, "password": PASSWORD}),
    Case("evidence.withdraw", "POST",
         lambda w, t: f"/evidence/{w.evidence_to_withdraw.id}/withdraw",
         seen_by(VIEWERS) | {"learner": REDIRECT, "assessor": FORBIDDEN, "iqa": FORBIDDEN,
                             "admin": FORBIDDEN}),
    Case("evidence.criterion", "GET",
         lambda w, t: f"/enrolments/{w.enrolment.id}/criteria/{w.unit_criterion_id}",
         seen_by(VIEWERS)),
    Case("evidence.criterion", "POST",
         lambda w, t: f"/enrolments/{w.enrolment.id}/criteria/{w.unit_criterion_id}",
         seen_by(VIEWERS) | {"learner": REDIRECT, "assessor": REDIRECT, "iqa": FORBIDDEN,
                             "admin": FORBIDDEN},
         data=lambda w: {"evidence_id": str(w.evidence_to_submit.id)}),
    Case("evidence.coverage", "GET", lambda w, t: f"/enrolments/{w.enrolment.id}/coverage",
         seen_by(VIEWERS)),
    Case("evidence.coverage", "GET",
         lambda w, t: f"/enrolments/{w.other_enrolment.id}/coverage",
         seen_by({"other_learner", "trainee", "admin"}), label="other learner"),
    Case("evidence.file", "GET", lambda w, t: f"/files/{w.file_id}", seen_by(VIEWERS)),
    Case("evidence.file", "GET", lambda w, t: "/files/999999", everyone(MISSING),
         label="unknown id"),
    Case("evidence.markdown_preview", "POST", lambda w, t: "/markdown-preview", everyone(OK)),
    # Assessment: the assigned assessor reviews and decides; learners declare and co-sign.
    Case("assessment.caseload", "GET", lambda w, t: "/caseload",
         everyone(FORBIDDEN) | {"assessor": OK, "trainee": OK, "anonymous": LOGIN}),
    Case("assessment.queue", "GET", lambda w, t: f"/enrolments/{w.enrolment.id}/review",
         seen_by(VIEWERS) | {"learner": FORBIDDEN, "iqa": FORBIDDEN, "admin": FORBIDDEN}),
    Case("assessment.review", "POST", lambda w, t: f"/evidence/{w.evidence.id}/review",
         # The evidence is still a draft: the assessor is let in, and told it cannot be reviewed.
         seen_by(VIEWERS) | {"assessor": CONFLICT, "learner": FORBIDDEN, "iqa": FORBIDDEN,
                             "admin": FORBIDDEN}, data={"outcome": "accepted"}),
    Case("assessment.decide", "POST",
         lambda w, t: f"/enrolments/{w.enrolment.id}/criteria/{w.unit_criterion_id}/decide",
         seen_by(VIEWERS) | {"assessor": INVALID, "learner": FORBIDDEN, "iqa": FORBIDDEN,
                             "admin": FORBIDDEN}),
    Case("assessment.countersign_queue", "GET", lambda w, t: "/countersign",
         everyone(FORBIDDEN) | {"assessor": OK, "trainee": OK, "anonymous": LOGIN}),
    Case("assessment.countersign", "POST",
         lambda w, t: f"/decisions/{w.trainee_decision_id}/countersign",
         # The qualified assessor may countersign (refused here only for the missing password).
         everyone(FORBIDDEN) | {"assessor": INVALID, "anonymous": LOGIN}),
    Case("assessment.sign_off", "GET", lambda w, t: f"/enrolments/{w.enrolment.id}/sign-off",
         seen_by(VIEWERS)),
    Case("assessment.declare", "POST",
         lambda w, t: f"/enrolments/{w.enrolment.id}/declaration",
         seen_by(VIEWERS) | {"learner": INVALID, "assessor": FORBIDDEN, "iqa": FORBIDDEN,
                             "admin": FORBIDDEN}),
    Case("assessment.sign_off_unit", "POST",
         lambda w, t: f"/enrolments/{w.enrolment.id}/sign-off",
         seen_by(VIEWERS) | {"assessor": CONFLICT, "learner": FORBIDDEN, "iqa": FORBIDDEN,
                             "admin": FORBIDDEN}),
    Case("assessment.cosign", "POST", lambda w, t: f"/enrolments/{w.enrolment.id}/cosign",
         seen_by(VIEWERS) | {"learner": CONFLICT, "assessor": FORBIDDEN, "iqa": FORBIDDEN,
                             "admin": FORBIDDEN}),
    Case("assessment.readiness", "GET",
         lambda w, t: f"/enrolments/{w.enrolment.id}/readiness", seen_by(VIEWERS)),
    Case("assessment.audit", "GET", lambda w, t: f"/enrolments/{w.enrolment.id}/audit",
         seen_by(VIEWERS) | {"learner": FORBIDDEN}),
    Case("assessment.audit", "GET", lambda w, t: f"/enrolments/{w.foreign_enrolment.id}/audit",
         seen_by({"other_admin"}), label="other centre"),
    # Witness links are public pages: anyone with the link, signed in or not, and nothing else.
    Case("witness.respond", "GET", lambda w, t: f"/w/{w.witness_token}",
         everyone(OK, anonymous=OK)),
    Case("witness.respond", "POST", lambda w, t: f"/w/{w.witness_token}",
         everyone(INVALID, anonymous=INVALID)),
    Case("witness.respond", "GET", lambda w, t: "/w/forged-or-mistyped-link",
         everyone(GONE, anonymous=GONE), label="forged link"),
    Case("witness.decline", "POST", lambda w, t: f"/w/{w.witness_token_to_decline}/decline",
         everyone(OK, anonymous=OK)),
    Case("witness.index", "GET", lambda w, t: f"/enrolments/{w.enrolment.id}/witnesses",
         seen_by(VIEWERS)),
    Case("witness.index", "POST", lambda w, t: f"/enrolments/{w.enrolment.id}/witnesses",
         seen_by(VIEWERS) | {"learner": INVALID, "assessor": INVALID, "iqa": FORBIDDEN,
                             "admin": FORBIDDEN}),
    Case("witness.replace", "GET", lambda w, t: f"/witness-requests/{w.witness_request_id}/replace",
         seen_by(VIEWERS) | {"iqa": FORBIDDEN, "admin": FORBIDDEN}),
    Case("witness.replace", "POST",
         lambda w, t: f"/witness-requests/{w.witness_request_id}/replace",
         seen_by(VIEWERS) | {"learner": INVALID, "assessor": INVALID, "iqa": FORBIDDEN,
                             "admin": FORBIDDEN}),
    Case("witness.resend", "POST", lambda w, t: f"/witness-requests/{w.witness_request_id}/resend",
         seen_by(VIEWERS) | {"learner": REDIRECT, "assessor": REDIRECT, "iqa": FORBIDDEN,
                             "admin": FORBIDDEN}),
    Case("witness.cancel", "POST", lambda w, t: f"/witness-requests/{w.witness_request_id}/cancel",
         seen_by(VIEWERS) | {"learner": REDIRECT, "assessor": REDIRECT, "iqa": FORBIDDEN,
                             "admin": FORBIDDEN}),
    Case("export.index", "GET", lambda w, t: f"/enrolments/{w.enrolment.id}/exports",
         seen_by(VIEWERS)),
    Case("export.index", "POST", lambda w, t: f"/enrolments/{w.enrolment.id}/exports",
         seen_by(VIEWERS) | {r: REDIRECT for r in VIEWERS}),
    Case("export.job", "GET", lambda w, t: f"/export-jobs/{w.export_job_id}",
         seen_by({"learner"})),
    Case("export.job_status", "GET", lambda w, t: f"/export-jobs/{w.export_job_id}.json",
         seen_by({"learner"})),
    Case("export.download", "GET", lambda w, t: f"/exports/{w.export_id}/download",
         seen_by(VIEWERS)),
    Case("export.verify", "GET", lambda w, t: "/verify", everyone(OK, anonymous=OK)),
    Case("export.verify", "POST", lambda w, t: "/verify", everyone(INVALID, anonymous=INVALID)),
    Case("export.verify_link", "GET", lambda w, t: f"/verify/{w.export_public_id}",
         everyone(OK, anonymous=OK)),
    Case("export.verify_link", "GET", lambda w, t: "/verify/no-such-export",
         everyone(MISSING, anonymous=MISSING), label="unknown id"),
    Case("outbox.index", "GET", lambda w, t: "/outbox", everyone(OK)),
    Case("outbox.message", "GET", lambda w, t: f"/outbox/{w.outbox_name}",
         seen_by({"learner", "admin"})),
    Case("outbox.message", "GET",
         lambda w, t: "/outbox/20260101T000000000000Z-0123456789abcdef.eml", everyone(MISSING),
         label="unknown name"),
    Case("admin.people", "GET", lambda w, t: "/admin/people", admins_only(OK)),
    Case("admin.new_person", "GET", lambda w, t: "/admin/people/new", admins_only(OK)),
    Case("admin.new_person", "POST", lambda w, t: "/admin/people/new", admins_only(INVALID)),
    Case("admin.edit_person", "GET", lambda w, t: f"/admin/people/{w.learner.id}",
         admins_only(OK, other_admin=MISSING)),
    Case("admin.edit_person", "POST", lambda w, t: f"/admin/people/{w.learner.id}",
         admins_only(INVALID, other_admin=MISSING)),
    Case("admin.enrolments_list", "GET", lambda w, t: "/admin/enrolments", admins_only(OK)),
    Case("admin.new_enrolment", "GET", lambda w, t: "/admin/enrolments/new", admins_only(OK)),
    Case("admin.new_enrolment", "POST", lambda w, t: "/admin/enrolments/new",
         admins_only(INVALID)),
    Case("admin.edit_enrolment", "GET", lambda w, t: f"/admin/enrolments/{w.enrolment.id}",
         admins_only(OK, other_admin=MISSING)),
    # Fields left out of a POST keep their stored values, so an empty POST saves nothing new.
    Case("admin.edit_enrolment", "POST", lambda w, t: f"/admin/enrolments/{w.enrolment.id}",
         admins_only(REDIRECT, other_admin=MISSING)),
    Case("admin.edit_enrolment", "GET",
         lambda w, t: f"/admin/enrolments/{w.foreign_enrolment.id}",
         admins_only(MISSING, other_admin=OK), label="other centre"),
    Case("bundle.download", "POST", lambda w, t: f"/admin/enrolments/{w.enrolment.id}/bundle",
         admins_only(OK, other_admin=MISSING)),
    Case("bundle.download", "POST",
         lambda w, t: f"/admin/enrolments/{w.foreign_enrolment.id}/bundle",
         admins_only(MISSING, other_admin=OK), label="other centre"),
    Case("bundle.import_page", "GET", lambda w, t: "/admin/bundles/import", admins_only(OK)),
    Case("bundle.import_page", "POST", lambda w, t: "/admin/bundles/import",
         admins_only(INVALID)),
    # EQA access packs: the pack's EQA reads only what is in it; admins manage their centre's.
    Case("eqa.home", "GET", lambda w, t: "/eqa", only_eqa(OK)),
    Case("eqa.pack", "GET", lambda w, t: f"/eqa/packs/{w.eqa_pack_id}", only_eqa(OK)),
    Case("eqa.pack", "GET", lambda w, t: "/eqa/packs/999999", only_eqa(MISSING),
         label="unknown id"),
    Case("eqa.staff", "GET", lambda w, t: f"/eqa/packs/{w.eqa_pack_id}/staff", only_eqa(OK)),
    Case("eqa.sampling", "GET", lambda w, t: f"/eqa/packs/{w.eqa_pack_id}/sampling",
         only_eqa(OK)),
    Case("eqa.enrolment", "GET",
         lambda w, t: f"/eqa/packs/{w.eqa_pack_id}/enrolments/{w.enrolment.id}", only_eqa(OK)),
    Case("eqa.enrolment", "GET",
         lambda w, t: f"/eqa/packs/{w.eqa_pack_id}/enrolments/{w.other_enrolment.id}",
         only_eqa(MISSING), label="not in the pack"),
    Case("eqa.enrolment", "GET",
         lambda w, t: f"/eqa/packs/{w.eqa_pack_id}/enrolments/{w.foreign_enrolment.id}",
         only_eqa(MISSING), label="other centre"),
    Case("eqa.evidence", "GET",
         lambda w, t: f"/eqa/packs/{w.eqa_pack_id}/evidence/{w.evidence.id}", only_eqa(OK)),
    Case("eqa.evidence", "GET",
         lambda w, t: f"/eqa/packs/{w.eqa_pack_id}/evidence/{w.other_evidence_id}",
         only_eqa(MISSING), label="not in the pack"),
    Case("eqa.file", "GET", lambda w, t: f"/eqa/packs/{w.eqa_pack_id}/files/{w.file_id}",
         only_eqa(OK)),
    Case("eqa.file", "GET", lambda w, t: f"/eqa/packs/{w.eqa_pack_id}/files/999999",
         only_eqa(MISSING), label="unknown id"),
    Case("eqa.download", "POST", lambda w, t: f"/eqa/packs/{w.eqa_pack_id}/download",
         only_eqa(REDIRECT)),
    Case("eqa_admin.packs", "GET", lambda w, t: "/admin/eqa-packs", admins_only(OK)),
    Case("eqa_admin.new_pack", "GET", lambda w, t: "/admin/eqa-packs/new", admins_only(OK)),
    Case("eqa_admin.new_pack", "POST", lambda w, t: "/admin/eqa-packs/new",
         admins_only(INVALID)),
    Case("eqa_admin.pack", "GET", lambda w, t: f"/admin/eqa-packs/{w.eqa_pack_id}",
         admins_only(OK, other_admin=MISSING)),
    Case("eqa_admin.revoke", "POST", lambda w, t: f"/admin/eqa-packs/{w.eqa_pack_id}/revoke",
         admins_only(REDIRECT, other_admin=MISSING)),
    Case("api.openapi", "GET", lambda w, t: "/api/v1/openapi.json", everyone(OK, anonymous=OK),
         api=True),
    Case("api.me", "GET", lambda w, t: "/api/v1/me", api(OK), api=True),
    Case("api.enrolments", "GET", lambda w, t: "/api/v1/enrolments", api(OK), api=True),
    Case("api.enrolment", "GET", lambda w, t: f"/api/v1/enrolments/{w.enrolment.id}",
         seen_by({"learner", "assessor", "iqa", "admin"}, anonymous=UNAUTH), api=True),
    Case("api.enrolment", "GET", lambda w, t: f"/api/v1/enrolments/{w.foreign_enrolment.id}",
         seen_by({"other_admin"}, anonymous=UNAUTH), api=True, label="other centre"),
    Case("api.evidence_list", "GET", lambda w, t: f"/api/v1/enrolments/{w.enrolment.id}/evidence",
         seen_by(VIEWERS, anonymous=UNAUTH), api=True),
    Case("api.evidence_create", "POST",
         lambda w, t: f"/api/v1/enrolments/{w.enrolment.id}/evidence",
         seen_by(VIEWERS, anonymous=UNAUTH) | {"learner": INVALID, "assessor": FORBIDDEN,
                                               "iqa": FORBIDDEN, "admin": FORBIDDEN},
         data={"kind": "reflective_account"}, api=True),
    Case("api.evidence_create", "POST",
         lambda w, t: f"/api/v1/enrolments/{w.enrolment.id}/evidence",
         seen_by(VIEWERS, anonymous=UNAUTH) | {"learner": FORBIDDEN, "assessor": INVALID,
                                               "iqa": FORBIDDEN, "admin": FORBIDDEN},
         data={"kind": "observation"}, api=True, label="assessor's kind"),
    Case("api.evidence_read", "GET", lambda w, t: f"/api/v1/evidence/{w.evidence.id}",
         seen_by(VIEWERS, anonymous=UNAUTH), api=True),
    Case("api.evidence_update", "PATCH", lambda w, t: f"/api/v1/evidence/{w.evidence.id}",
         # Permission first: only the learner who added it gets as far as the empty body.
         seen_by(VIEWERS, anonymous=UNAUTH) | {"learner": INVALID, "assessor": FORBIDDEN,
                                               "iqa": FORBIDDEN, "admin": FORBIDDEN},
         api=True),
    Case("api.evidence_update", "PATCH", lambda w, t: f"/api/v1/evidence/{w.evidence.id}",
         seen_by(VIEWERS, anonymous=UNAUTH) | {"assessor": FORBIDDEN, "iqa": FORBIDDEN,
                                               "admin": FORBIDDEN, "learner": CONFLICT},
         data={"expected_version": "7"}, api=True, label="stale"),
    Case("api.mapping_add", "POST", lambda w, t: f"/api/v1/evidence/{w.evidence.id}/mappings",
         seen_by(VIEWERS, anonymous=UNAUTH) | {"learner": OK, "assessor": OK,
                                               "iqa": FORBIDDEN, "admin": FORBIDDEN},
         json=lambda w: {"criterion_id": w.unit_criterion_id}, api=True),
    Case("api.mapping_remove", "DELETE",
         lambda w, t: f"/api/v1/evidence/{w.evidence.id}/mappings/{w.unit_criterion_id}",
         seen_by(VIEWERS, anonymous=UNAUTH) | {"learner": NO_CONTENT, "assessor": NO_CONTENT,
                                               "iqa": FORBIDDEN, "admin": FORBIDDEN},
         api=True),
    Case("api.evidence_submit", "POST",
         lambda w, t: f"/api/v1/evidence/{w.evidence_to_submit.id}/submit",
         # The learner submitted it through the page earlier in this run: allowed, now a 409.
         seen_by(VIEWERS, anonymous=UNAUTH) | {"learner": CONFLICT, "assessor": FORBIDDEN,
                                               "iqa": FORBIDDEN, "admin": FORBIDDEN}, api=True),
    Case("api.evidence_withdraw", "POST",
         lambda w, t: f"/api/v1/evidence/{w.evidence_to_withdraw.id}/withdraw",
         seen_by(VIEWERS, anonymous=UNAUTH) | {"learner": CONFLICT, "assessor": FORBIDDEN,
                                               "iqa": FORBIDDEN, "admin": FORBIDDEN}, api=True),
    Case("api.enrolment_coverage", "GET",
         lambda w, t: f"/api/v1/enrolments/{w.enrolment.id}/coverage",
         seen_by(VIEWERS, anonymous=UNAUTH), api=True),
    Case("api.enrolment_coverage", "GET",
         lambda w, t: f"/api/v1/enrolments/{w.foreign_enrolment.id}/coverage",
         seen_by({"other_admin"}, anonymous=UNAUTH), api=True, label="other centre"),
    Case("api.evidence_file", "GET", lambda w, t: f"/api/v1/files/{w.file_id}",
         seen_by(VIEWERS, anonymous=UNAUTH), api=True),
    Case("api.evidence_review", "POST", lambda w, t: f"/api/v1/evidence/{w.evidence.id}/review",
         seen_by(VIEWERS, anonymous=UNAUTH) | {"assessor": CONFLICT, "learner": FORBIDDEN,
                                               "iqa": FORBIDDEN, "admin": FORBIDDEN},
         json=lambda w: {"outcome": "accepted", "expected_version": 1}, api=True),
    Case("api.evidence_declare_submit", "POST",
         lambda w, t: f"/api/v1/evidence/{w.evidence.id}/declaration",
         # The learner unmapped it earlier in this run, so submitting is refused with a 409.
         seen_by(VIEWERS, anonymous=UNAUTH) | {"learner": CONFLICT, "assessor": FORBIDDEN,
                                               "iqa": FORBIDDEN, "admin": FORBIDDEN},
         json=lambda w: {}, api=True),
    Case("api.decisions_list", "GET",
         lambda w, t: f"/api/v1/enrolments/{w.enrolment.id}/decisions",
         seen_by(VIEWERS, anonymous=UNAUTH), api=True),
    Case("api.decisions_create", "POST",
         lambda w, t: f"/api/v1/enrolments/{w.enrolment.id}/decisions",
         seen_by(VIEWERS, anonymous=UNAUTH) | {"assessor": INVALID, "learner": FORBIDDEN,
                                               "iqa": FORBIDDEN, "admin": FORBIDDEN},
         json=lambda w: {"criterion_id": w.unit_criterion_id, "evidence_ids": []}, api=True),
    Case("api.decision_state", "GET",
         lambda w, t: f"/api/v1/enrolments/{w.enrolment.id}/decision-state?evidence_ids=1,2",
         seen_by(VIEWERS, anonymous=UNAUTH), api=True),
    Case("api.decision_countersign", "POST",
         lambda w, t: f"/api/v1/decisions/{w.trainee_decision_id}/countersign",
         everyone(FORBIDDEN, anonymous=UNAUTH) | {"assessor": INVALID, "other_admin": MISSING},
         json=lambda w: {}, api=True),
    Case("api.unit_declare", "POST",
         lambda w, t: f"/api/v1/enrolments/{w.enrolment.id}/declaration",
         seen_by(VIEWERS, anonymous=UNAUTH) | {"learner": INVALID, "assessor": FORBIDDEN,
                                               "iqa": FORBIDDEN, "admin": FORBIDDEN},
         json=lambda w: {}, api=True),
    Case("api.unit_sign_off", "POST",
         lambda w, t: f"/api/v1/enrolments/{w.enrolment.id}/sign-off",
         seen_by(VIEWERS, anonymous=UNAUTH) | {"assessor": CONFLICT, "learner": FORBIDDEN,
                                               "iqa": FORBIDDEN, "admin": FORBIDDEN},
         json=lambda w: {}, api=True),
    Case("api.unit_cosign", "POST", lambda w, t: f"/api/v1/enrolments/{w.enrolment.id}/cosign",
         seen_by(VIEWERS, anonymous=UNAUTH) | {"learner": CONFLICT, "assessor": FORBIDDEN,
                                               "iqa": FORBIDDEN, "admin": FORBIDDEN},
         json=lambda w: {}, api=True),
    Case("api.signatures_list", "GET",
         lambda w, t: f"/api/v1/enrolments/{w.enrolment.id}/signatures",
         seen_by(VIEWERS, anonymous=UNAUTH), api=True),
    Case("api.units", "GET", lambda w, t: "/api/v1/units", api(OK), api=True),
    Case("api.unit", "GET", lambda w, t: f"/api/v1/units/{w.unit.id}", api(OK), api=True),
    Case("api.unit", "GET", lambda w, t: "/api/v1/units/999999", api(MISSING), api=True,
         label="unknown id"),
    # IQA sampling: the enrolment's IQA only; strategy also for admins; samples and actions
    # also for the assessor whose decision was sampled (the action's owner).
    Case("sampling.home", "GET", lambda w, t: "/iqa", everyone(FORBIDDEN) | {"iqa": OK}),
    Case("sampling.generate", "POST", lambda w, t: "/iqa/plans",
         everyone(FORBIDDEN) | {"iqa": INVALID}),
    Case("sampling.strategy", "GET", lambda w, t: "/iqa/strategy",
         everyone(FORBIDDEN) | {"iqa": OK, "admin": OK, "other_admin": OK}),
    Case("sampling.save_strategy", "POST", lambda w, t: f"/iqa/strategy/{w.unit.id}",
         everyone(FORBIDDEN) | {"iqa": INVALID, "admin": INVALID, "other_admin": INVALID}),
    Case("sampling.save_assessor_rate", "POST",
         lambda w, t: f"/iqa/assessors/{w.assessor.id}/rate",
         everyone(FORBIDDEN) | {"iqa": INVALID, "admin": INVALID, "other_admin": MISSING}),
    Case("sampling.plan", "GET", lambda w, t: f"/iqa/plans/{w.sampling.plan_id}",
         everyone(FORBIDDEN) | {"iqa": OK}),
    Case("sampling.plan", "GET", lambda w, t: "/iqa/plans/999999",
         everyone(FORBIDDEN) | {"iqa": MISSING}, label="unknown id"),
    Case("sampling.add_item", "POST", lambda w, t: f"/iqa/plans/{w.sampling.plan_id}/items",
         everyone(FORBIDDEN) | {"iqa": INVALID}),
    Case("sampling.remove_item", "POST",
         lambda w, t: f"/iqa/items/{w.sampling.spare_item_id}/remove",
         everyone(FORBIDDEN) | {"iqa": INVALID}),
    Case("sampling.start", "POST", lambda w, t: f"/iqa/items/{w.sampling.ready_item_id}/sample",
         everyone(FORBIDDEN) | {"iqa": REDIRECT}),
    # A unit is sampled as a whole once signed off; this one is not signed off yet.
    Case("sampling.start_unit", "POST",
         lambda w, t: f"/iqa/enrolments/{w.enrolment.id}/unit-sample",
         everyone(FORBIDDEN) | {"iqa": CONFLICT}),
    Case("sampling.start_unit", "POST",
         lambda w, t: f"/iqa/enrolments/{w.other_enrolment.id}/unit-sample",
         everyone(FORBIDDEN) | {"iqa": MISSING}, label="not their enrolment"),
    Case("sampling.sample", "GET",
         lambda w, t: f"/iqa/samples/{w.sampling.completed_sample_id}",
         seen_by({"iqa", "assessor"})),
    Case("sampling.outcome", "POST",
         lambda w, t: f"/iqa/samples/{w.sampling.open_sample_id}/outcome",
         everyone(FORBIDDEN) | {"iqa": INVALID}),
    Case("sampling.advance", "POST",
         lambda w, t: f"/iqa/actions/{w.sampling.action_id}/acknowledge",
         seen_by({"iqa", "assessor"}) | {"iqa": FORBIDDEN, "assessor": REDIRECT},
         label="acknowledge"),
    # Acknowledged by now: an empty response is refused, and it cannot be closed yet.
    Case("sampling.advance", "POST", lambda w, t: f"/iqa/actions/{w.sampling.action_id}/respond",
         seen_by({"iqa", "assessor"}) | {"iqa": FORBIDDEN, "assessor": INVALID},
         label="respond"),
    Case("sampling.advance", "POST", lambda w, t: f"/iqa/actions/{w.sampling.action_id}/close",
         seen_by({"iqa", "assessor"}) | {"iqa": CONFLICT, "assessor": FORBIDDEN},
         label="close"),
]

# Each domain's own cases (tests/access_cases/*.py), so new routes join the matrix.
for _module in access_cases.modules():
    CASES += _module.cases(sys.modules[__name__])


def _people(world: World) -> dict[str, object]:
    return {"learner": world.learner, "other_learner": world.other_learner,
            "assessor": world.assessor, "trainee": world.trainee, "iqa": world.iqa,
            "eqa": world.eqa, "admin": world.admin, "other_admin": world.other_admin}


def _outcome(response, api_call: bool) -> str:
    status = response.status_code
    if status in (301, 302, 303):
        location = response.headers["Location"]
        if "/login" in location:
            return LOGIN
        return HOME if urlsplit(location).path == "/" else REDIRECT
    if api_call and status >= 400:
        assert response.mimetype == "application/problem+json", response.get_data(True)
    return {200: OK, 201: OK, 204: NO_CONTENT, 401: UNAUTH, 403: FORBIDDEN, 404: MISSING,
            409: CONFLICT, 410: GONE, 422: INVALID}.get(status, f"status {status}")


def test_every_route_is_in_the_matrix(app):
    registered = {
        (rule.endpoint, method)
        for rule in app.url_map.iter_rules() if rule.endpoint != "static"
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    covered = {(case.endpoint, case.method) for case in CASES}
    assert registered - covered == set(), "routes missing from the access matrix"
    assert covered - registered == set(), "matrix lists routes that do not exist"


def _other_browser(session, user) -> int:
    """Sign the person in on another browser; return that session's id."""
    start_session(session, user, user_agent="Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0")
    return session.scalar(select(func.max(LoginSession.id))
                          .where(LoginSession.user_id == user.id))


@pytest.fixture
def matrix(app, session):
    world = make_world(session, app.config["STORAGE_DIR"])
    world.unit_criterion_id = criterion(session, "2.3").id
    with app.app_context():
        world.outbox_name = Path(notify.notify([world.learner.email], "Matrix", "Hello")).name
    job = ExportJob(enrolment_id=world.enrolment.id, requested_by_id=world.learner.id)
    exports_dir = Path(app.config["EXPORTS_DIR"])
    (exports_dir / "matrix.pdf").write_bytes(b"%PDF-1.4 matrix")
    export = Export(enrolment_id=world.enrolment.id, created_by_id=world.learner.id,
                    public_id="matrix-public-id", filename="matrix.pdf", sha256="0" * 64,
                    size=15, pages=1, manifest={"enrolment_id": world.enrolment.id})
    session.add_all([job, export])
    session.commit()
    world.export_job_id, world.export_id = job.id, export.id
    world.export_public_id = export.public_id
    with contextlib.suppress(FileExistsError):  # the EQA pack download signs its PDFs
        init_centre_key(Path(app.instance_path), "Main Centre")
    world.eqa_pack_id = make_eqa_pack(session, world).id
    world.sampling = make_sampling(session, world)
    world.other_evidence_id = make_evidence(session, world.other_enrolment,
                                            world.other_learner).id
    world.learner_session_id = _other_browser(session, world.learner)
    session.commit()
    for module in access_cases.modules():
        if hasattr(module, "setup"):
            module.setup(app, session, world)
    session.commit()
    tokens = {}
    api_tokens = {}
    for role, person in _people(world).items():
        tokens[role], _ = create_api_token(session, person, "matrix")
        api_tokens[role] = create_api_token(session, person, "api")[1]
    session.commit()
    return world, tokens, api_tokens


@pytest.mark.parametrize("role", ROLES)
def test_access_matrix(app, matrix, role):
    world, tokens, api_tokens = matrix
    people = _people(world)
    failures = []

    def signed_in():
        client = app.test_client()
        if role != "anonymous":
            login_page = client.get("/login")
            client.post("/login", data={"email": people[role].email, "password": PASSWORD,
                                        "csrf_token": csrf_from(login_page.get_data(True))})
        return client

    shared = signed_in()
    for case in CASES:
        # Signing out must not end the session the other cases use.
        client = signed_in() if case.endpoint == "auth.logout" else shared
        if case.api:
            client = app.test_client()
        headers = {}
        if case.api and role != "anonymous":
            headers["Authorization"] = f"Bearer {api_tokens[role]}"
        path = case.path(world, tokens)
        if case.method == "GET":
            response = client.get(path, headers=headers)
        elif case.api:
            if case.json is not None:
                response = client.open(path, method=case.method, headers=headers,
                                       json=case.json(world))
            else:
                response = client.open(path, method=case.method, headers=headers,
                                       data=dict(case.data))
        else:
            page = client.get("/login" if role == "anonymous" else "/account")
            data = dict(case.data(world) if callable(case.data) else case.data)
            data["csrf_token"] = csrf_from(page.get_data(True))
            data.setdefault("tok-csrf_token", data["csrf_token"])
            data.setdefault("pw-csrf_token", data["csrf_token"])
            response = client.open(path, method=case.method, data=data, headers=headers)
        got = _outcome(response, case.api)
        if case.endpoint == "auth.end_all_sessions":
            shared = signed_in()  # signing out everywhere ended the shared session too
        if got != case.expect[role]:
            failures.append(f"{case.id} {path}: expected {case.expect[role]}, got {got}")
    assert not failures, "\n".join(failures)
