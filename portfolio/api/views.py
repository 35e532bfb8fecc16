"""JSON API v1: personal access tokens, problem+json errors, described by OpenAPI 3.1."""

from __future__ import annotations

from functools import partial
from typing import Any

from flask import Blueprint, g, jsonify, request

from portfolio import db
from portfolio.api import schemas
from portfolio.api.inputs import keyset_page, keyset_query, paged
from portfolio.api.openapi import BAD_PAGE, PAGE_PARAMS, build_openapi, operation
from portfolio.auth.services import user_for_token
from portfolio.criteria.queries import get_unit_view
from portfolio.enrolments.queries import get_enrolment, list_units, visible_enrolments_query
from portfolio.models import Enrolment, User
from portfolio.permissions import can_view_unit
from portfolio.security import csrf
from portfolio.viewkit import loads
from portfolio.web import problem

bp = Blueprint("api", __name__, url_prefix="/api/v1")
# The API authenticates by bearer token only, never by cookie, so cross-site forgery cannot apply.
csrf.exempt(bp)

PUBLIC_ENDPOINTS = {"api.openapi"}
# `loads` for the API: the object is loaded and authorised for the token's holder.
api_loads = partial(loads, user=lambda: g.api_user)


@bp.before_request
def _authenticate() -> Any:
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    header = request.headers.get("Authorization", "")
    scheme, _, raw = header.partition(" ")
    user = None
    if scheme.lower() == "bearer" and raw.strip():
        s = db.session()
        user = user_for_token(s, raw.strip())
        if s.dirty:
            s.commit()  # the token's last use; nothing else is pending this early
    if user is None:
        response = problem(401, "Authentication needed",
                           "Send a valid personal access token as 'Authorization: Bearer <token>'."
                           " Create one on your account page or with `portfolio users token`.")
        response.headers["WWW-Authenticate"] = 'Bearer realm="portfolio"'
        return response
    g.api_user = user
    return None


def _user_json(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "email": user.email,
        "full_name": user.full_name,
        "roles": sorted(r.value for r in user.roles),
        "assessor_status": user.assessor_status,
        "centre": {"id": user.centre.id, "name": user.centre.name},
    }


def _person_ref(user: User | None) -> dict[str, Any] | None:
    return None if user is None else {"id": user.id, "full_name": user.full_name}


def _enrolment_json(enrolment: Enrolment) -> dict[str, Any]:
    return {
        "id": enrolment.id,
        "learner": _person_ref(enrolment.learner),
        "assessor": _person_ref(enrolment.assessor),
        "iqa": _person_ref(enrolment.iqa),
        "unit": {"id": enrolment.unit.id, "reference": enrolment.unit.reference,
                 "title": enrolment.unit.title},
        "start_on": enrolment.start_on.isoformat(),
        "planned_end_on": enrolment.planned_end_on.isoformat(),
        "employer": enrolment.employer,
        "workplace": enrolment.workplace,
        "status": enrolment.status,
    }


@operation(bp, "GET", "/openapi.json", summary="This document", public=True,
           ok=("200", {"application/json": {"schema": {"type": "object"}}},
               "OpenAPI 3.1 document"))
def openapi() -> Any:
    return jsonify(build_openapi())


@operation(bp, "GET", "/me", summary="The person the token belongs to",
           ok=("200", schemas.Me, "The caller"))
def me() -> Any:
    return jsonify(_user_json(g.api_user))


@operation(bp, "GET", "/enrolments", summary="Enrolments the caller may see",
           description="A learner sees their own; an assessor or IQA those assigned to them; "
                       "an admin every enrolment of their centre.",
           query=PAGE_PARAMS, errors=[BAD_PAGE],
           ok=("200", schemas.EnrolmentList, "Visible enrolments, in id order"))
def enrolments() -> Any:
    items, following = keyset_query(db.session(), visible_enrolments_query(g.api_user),
                                    Enrolment.id, unique=True)
    return paged([_enrolment_json(e) for e in items], following)


@operation(bp, "GET", "/enrolments/<int:enrolment_id>", summary="One enrolment",
           ok=("200", schemas.Enrolment, "The enrolment"))
def enrolment(enrolment_id: int) -> Any:
    return jsonify(_enrolment_json(get_enrolment(db.session(), enrolment_id, g.api_user)))


def _unit_summary(unit: Any) -> dict[str, Any]:
    return {"id": unit.id, "reference": unit.reference, "number": unit.number,
            "title": unit.title, "level": unit.level, "credits": unit.credits,
            "guided_learning_hours": unit.guided_learning_hours, "version": unit.version}


@operation(bp, "GET", "/units", summary="Units loaded from the criteria files",
           query=PAGE_PARAMS, errors=[BAD_PAGE], ok=("200", schemas.UnitList, "Units, in id order"))
def units() -> Any:
    if not can_view_unit(g.api_user):
        return problem(403, "Not allowed", "Your account cannot read units.")
    items, following = keyset_page(list_units(db.session()))
    return paged([_unit_summary(u) for u in items], following)


@operation(bp, "GET", "/units/<int:unit_id>",
           summary="A unit with its learning outcomes, criteria, assessment rules and guidance",
           ok=("200", schemas.Unit, "The unit"))
def unit(unit_id: int) -> Any:
    if not can_view_unit(g.api_user):
        return problem(403, "Not allowed", "Your account cannot read units.")
    view = get_unit_view(db.session(), unit_id)
    body = _unit_summary(view)
    body.update({
        "unit_type": view.unit_type,
        "summary": view.summary,
        "assessment": {"workplace_only": view.workplace_only,
                       "simulation_allowed": view.simulation_allowed,
                       "rpl_allowed": view.rpl_allowed,
                       "currency_months": view.currency_months},
        "learning_outcomes": [
            {"number": lo.number, "title": lo.title, "kind": lo.kind,
             "criteria": [
                 {"id": c.id, "number": c.number, "text": c.text,
                  "amplification_md": c.amplification_md,
                  "required_occurrences": c.required_occurrences, "version": c.version,
                  "methods": [{"method": key, "label": label, "preferred": preferred}
                              for key, label, preferred in c.methods],
                  "guidance": [{"kind": gv.kind, "text": gv.text} for gv in c.guidance]}
                 for c in lo.criteria]}
            for lo in view.outcomes
        ],
        "guidance": [{"kind": gv.kind, "text": gv.text} for gv in view.unit_guidance],
    })
    return jsonify(body)
