"""Comments pages: post on an evidence item; the EQA's read-only view inside an open pack.

The thread itself is drawn by templates/comments/_thread.html on the evidence page, through the
template function `comment_thread(evidence)` registered below, so the evidence view needs no
change. Opening that page records when the person last saw the conversation ("Seen by").
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, Flask, g, redirect, render_template, request, url_for
from flask.blueprints import BlueprintSetupState
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import HiddenField, TextAreaField

from portfolio import db
from portfolio.comments import services
from portfolio.db import utcnow
from portfolio.eqa import services as eqa_services
from portfolio.eqa.access import pack_page
from portfolio.errors import ValidationFailed
from portfolio.evidence.pages import render_evidence
from portfolio.evidence.queries import get_evidence
from portfolio.models import EqaPack, Evidence

bp = Blueprint("comments", __name__)
log = logging.getLogger(__name__)

ROLE_NAMES = {"learner": "Learner", "assessor": "Assessor", "iqa": "IQA", "admin": "Centre admin"}


class CommentForm(FlaskForm):
    body = TextAreaField(
        "Add a comment", render_kw={"rows": 4},
        description=f"Markdown works: **bold**, lists and links. Up to "
                    f"{services.MAX_CHARS:,} characters. Comments are kept and cannot be "
                    "changed once sent.")
    nonce = HiddenField()


def when(value: datetime) -> str:
    """"14 Mar 2025, 09:30" in UK time."""
    local = value.astimezone(ZoneInfo("Europe/London"))
    return f"{local.day} {local:%b %Y, %H:%M}"


def names(people: list[Any]) -> str:
    """"Ben Learner", "Ben Learner and Ann Assessor", "A, B and C"."""
    full = [p.full_name for p in people]
    return full[0] if len(full) == 1 else ", ".join(full[:-1]) + " and " + full[-1]


def comment_thread(evidence: Evidence, *, read_only: bool = False) -> services.Thread:
    """The conversation for the evidence page; remembers to record that the viewer saw it."""
    s = db.session()
    user = current_user._get_current_object()  # type: ignore[attr-defined]
    thread = services.build_thread(s, evidence, user, allow_post=not read_only)
    form = g.pop("comment_form", None) or CommentForm(formdata=None, prefix="comment")
    form.nonce.data = thread.nonce
    thread.form = form
    if not read_only and services.can_read(user, evidence.enrolment):
        g.comments_seen = (user.id, evidence.id)
    return thread


@bp.record_once
def _install(state: BlueprintSetupState) -> None:
    app: Flask = state.app
    app.jinja_env.globals.update(comment_thread=comment_thread, comment_when=when,
                                 comment_names=names, COMMENT_ROLES=ROLE_NAMES)

    @app.after_request
    def _record_seen(response: Any) -> Any:
        seen = g.pop("comments_seen", None)
        if seen is None or request.method != "GET" or response.status_code != 200:
            return response
        s = db.session()
        try:
            services.mark_seen(s, current_user._get_current_object(),  # type: ignore[attr-defined]
                               seen[1], utcnow())
            s.commit()
        except Exception:  # a lost "seen" time must never cost the page
            s.rollback()
            log.warning("could not record that a comment thread was seen", exc_info=True)
        return response


def _back(evidence_id: int, comment_id: int | None = None) -> Any:
    anchor = f"#comment-{comment_id}" if comment_id else "#comments"
    return redirect(url_for("evidence.detail", evidence_id=evidence_id) + anchor, code=303)


@bp.route("/evidence/<int:evidence_id>/comments", methods=["POST"])
@login_required
def add(evidence_id: int) -> Any:
    s = db.session()
    evidence = get_evidence(s, evidence_id, current_user)  # cannot see it: 404
    form = CommentForm(prefix="comment")
    try:
        comment, _new = services.add_comment(
            s, evidence, actor=current_user, body=form.body.data or "",
            nonce=form.nonce.data or "", now=utcnow())
    except ValidationFailed as exc:
        s.rollback()
        form.body.errors = [*form.body.errors, exc.message]
        g.comment_form = form
        return render_evidence(evidence_id), 422
    s.commit()
    return _back(evidence.id, comment.id)


@bp.route("/eqa/packs/<int:pack_id>/evidence/<int:evidence_id>/comments")
@pack_page
def eqa_thread(pack: EqaPack, evidence_id: int) -> Any:
    item = eqa_services.pack_evidence(db.session(), pack, evidence_id)
    return render_template("comments/eqa_thread.html", pack=pack, evidence=item,
                           enrolment=item.enrolment,
                           version=next(v for v in item.versions
                                        if v.version == item.current_version))
