"""IQA pages: dashboard, sampling strategy, plans, samples with outcomes, and actions."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import select

from portfolio import db, notify
from portfolio.assessment.services import unit_signoff
from portfolio.criteria.unitfile import METHODS
from portfolio.errors import NotFound, ValidationFailed
from portfolio.ids import parse_id
from portfolio.models import Enrolment, Role, Unit, User
from portfolio.sampling import forms, services
from portfolio.sampling import states as sampling_states
from portfolio.security import roles_required
from portfolio.viewkit import confirmation_from, limits, run_action, run_signed

bp = Blueprint("sampling", __name__, url_prefix="/iqa")

MAX_TEXT = 20_000


def _today() -> date:
    return date.today()


def _sent(name: str, limit: int = MAX_TEXT) -> str:
    """What was typed in a field, to show the form again after a refusal."""
    return (request.form.get(name) or "")[:limit]


def _date(value: str | None) -> date | None:
    try:
        return datetime.strptime((value or "").strip(), "%Y-%m-%d").date()
    except ValueError:
        return None


# --- dashboard --------------------------------------------------------------------------------

@bp.route("")
@roles_required(Role.IQA)
def home() -> Any:
    return _render_home()


def _render_home(form: dict[str, str] | None = None) -> Any:
    s = db.session()
    today = _today()
    board = services.dashboard(s, current_user, today)
    defaults = {"unit_id": str(board.units[0].id) if board.units else "",
                "period_start": (today - timedelta(days=90)).isoformat(),
                "period_end": today.isoformat()}
    return render_template("sampling/home.html", board=board, today=today,
                           form=defaults | (form or {}),
                           outcome_labels=services.OUTCOME_LABELS,
                           status_labels=services.ACTION_STATUS_LABELS)


@bp.route("/plans", methods=["POST"])
@roles_required(Role.IQA)
def generate() -> Any:
    s = db.session()
    shown = {k: _sent(k, 40) for k in ("unit_id", "period_start", "period_end")}

    def action() -> Any:
        form = forms.read(forms.PlanForm)
        unit = {u.id: u for u in services.iqa_units(s, current_user)}.get(form.unit_id.data)
        if unit is None:
            raise ValidationFailed("Choose one of the units you quality-assure.",
                                   field="unit_id")
        return services.generate_plan(s, iqa=current_user, unit=unit,
                                      start=form.period_start.data, end=form.period_end.data)

    refused, plan = run_action(action, lambda: _render_home(shown))
    if refused:
        return refused
    count = len(services.live_items(plan))
    flash(f"Plan made: {count} decision{'s' if count != 1 else ''} to sample.", "success")
    return redirect(url_for("sampling.plan", plan_id=plan.id))


# --- strategy ---------------------------------------------------------------------------------

def _strategy_access() -> None:
    if not services.can_manage_strategy(current_user):
        abort(403)


def _strategy_units() -> list[Unit]:
    return list(db.session().scalars(select(Unit).order_by(Unit.reference)))


@bp.route("/strategy")
@login_required
def strategy() -> Any:
    _strategy_access()
    return _render_strategy()


def _render_strategy(unit_id: int | None = None, form: dict[str, str] | None = None) -> Any:
    s = db.session()
    units = _strategy_units()
    wanted = unit_id or parse_id(request.args.get("unit") or "")
    unit = next((u for u in units if u.id == wanted), units[0] if units else None)
    if unit is None:
        raise NotFound("No unit is loaded yet.")
    centre_id = current_user.centre_id
    current = services.current_strategy(s, centre_id, unit.id)
    rates = services.rates_of(current)
    assessors = [services.assessor_rate(s, a) for a in services.centre_assessors(s, centre_id)]
    return render_template(
        "sampling/strategy.html", units=units, unit=unit, current=current, rates=rates,
        form={k: str(v) for k, v in rates.items()} | (form or {}),
        history=services.strategy_history(s, centre_id, unit.id),
        assessors=assessors, profiles=services.profile_history(s, centre_id),
        rate_fields=services.RATE_FIELDS, rate_labels=services.RATE_LABELS,
        status_labels=services.STATUS_LABELS, is_iqa=current_user.has_role(Role.IQA))


@bp.route("/strategy/<int:unit_id>", methods=["POST"])
@login_required
def save_strategy(unit_id: int) -> Any:
    _strategy_access()
    s = db.session()
    unit = s.get(Unit, unit_id)
    if unit is None:
        raise NotFound("No such unit.")
    shown = {k: _sent(k, 10) for k in services.RATE_FIELDS}

    def action() -> Any:
        form = forms.read(forms.StrategyForm)
        return services.set_strategy(s, actor=current_user, unit=unit,
                                     rates=services.parse_rates(form.rates()),
                                     reason=form.reason.data or "")

    refused, _ = run_action(action, lambda: _render_strategy(unit.id, shown))
    if refused:
        return refused
    flash("Sampling strategy saved. The earlier version stays in the history below.", "success")
    return redirect(url_for("sampling.strategy", unit=unit.id))


@bp.route("/assessors/<int:user_id>/rate", methods=["POST"])
@login_required
def save_assessor_rate(user_id: int) -> Any:
    _strategy_access()
    s = db.session()
    assessor = s.get(User, user_id)
    if assessor is None or assessor.centre_id != current_user.centre_id or \
            not assessor.has_role(Role.ASSESSOR):
        raise NotFound("No such assessor at your centre.")
    unit_id = _sent("unit_id", 12)

    def action() -> Any:
        form = forms.read(forms.AssessorRateForm)
        return services.set_profile(s, actor=current_user, assessor=assessor,
                                    status=form.status.data or None,
                                    override_pct=form.override(), reason=form.reason.data or "")

    refused, _ = run_action(action, lambda: _render_strategy(parse_id(unit_id)))
    if refused:
        return refused
    flash(f"Saved {assessor.full_name}'s sampling status and rate.", "success")
    return redirect(url_for("sampling.strategy", unit=unit_id or None) + "#assessors")


# --- plans ------------------------------------------------------------------------------------

@bp.route("/plans/<int:plan_id>")
@roles_required(Role.IQA)
def plan(plan_id: int) -> Any:
    return _render_plan(plan_id)


def _render_plan(plan_id: int) -> Any:
    s = db.session()
    the_plan = services.get_plan(s, plan_id, current_user)
    names = {u.id: u.full_name for u in services.centre_assessors(s, current_user.centre_id)}
    return render_template(
        "sampling/plan.html", plan=the_plan, items=the_plan.items,
        coverage=services.plan_coverage(s, the_plan),
        reproduction=services.reproduce(s, the_plan),
        addable=services.addable_decisions(s, the_plan), names=names, methods=METHODS,
        outcome_labels=services.OUTCOME_LABELS)


@bp.route("/plans/<int:plan_id>/items", methods=["POST"])
@roles_required(Role.IQA)
def add_item(plan_id: int) -> Any:
    s = db.session()
    the_plan = services.get_plan(s, plan_id, current_user)

    def action() -> Any:
        form = forms.read(forms.AddItemForm)
        return services.add_item(s, the_plan, actor=current_user,
                                 decision_id=form.decision_id.data, reason=form.reason.data or "")

    refused, _ = run_action(action, lambda: _render_plan(plan_id))
    if refused:
        return refused
    flash("Added to the plan.", "success")
    return redirect(url_for("sampling.plan", plan_id=plan_id) + "#items")


@bp.route("/items/<int:item_id>/remove", methods=["POST"])
@roles_required(Role.IQA)
def remove_item(item_id: int) -> Any:
    s = db.session()
    item = services.get_item(s, item_id, current_user)
    refused, _ = run_action(lambda: services.remove_item(
        s, item, actor=current_user, reason=forms.read(forms.RemoveItemForm).reason.data or ""),
        lambda: _render_plan(item.plan_id))
    if refused:
        return refused
    flash("Taken out of the plan. It stays listed as removed, with your reason.", "success")
    return redirect(url_for("sampling.plan", plan_id=item.plan_id) + "#items")


@bp.route("/items/<int:item_id>/sample", methods=["POST"])
@roles_required(Role.IQA)
def start(item_id: int) -> Any:
    s = db.session()
    item = services.get_item(s, item_id, current_user)
    if item.sample is not None and item.sample.iqa_id == current_user.id:
        return redirect(url_for("sampling.sample", sample_id=item.sample.id))
    refused, sample = run_action(lambda: services.start_sample(s, item, actor=current_user),
                              lambda: _render_plan(item.plan_id))
    if refused:
        return refused
    flash("Sample started. What you see here is frozen as it is now.", "success")
    return redirect(url_for("sampling.sample", sample_id=sample.id))


@bp.route("/enrolments/<int:enrolment_id>/unit-sample", methods=["POST"])
@roles_required(Role.IQA)
def start_unit(enrolment_id: int) -> Any:
    """Sample a signed-off unit as a whole (from the dashboard's list)."""
    s = db.session()
    enrolment = s.get(Enrolment, enrolment_id)
    if enrolment is None or enrolment.iqa_id != current_user.id:
        raise NotFound("No such enrolment, or you are not its internal quality assurer.")
    signoff = unit_signoff(s, enrolment)
    existing = services.unit_sample_of(s, signoff.id) if signoff else None
    if existing is not None and existing.iqa_id == current_user.id:
        return redirect(url_for("sampling.sample", sample_id=existing.id))
    refused, sample = run_action(lambda: services.start_unit_sample(s, enrolment,
                                                                 actor=current_user),
                              _render_home)
    if refused:
        return refused
    flash("Unit sample started. The whole portfolio you see here is frozen as it is now.",
          "success")
    return redirect(url_for("sampling.sample", sample_id=sample.id))


# --- samples ----------------------------------------------------------------------------------

@bp.route("/samples/<int:sample_id>")
@login_required
def sample(sample_id: int) -> Any:
    return _render_sample(sample_id)


def _render_sample(sample_id: int, form: dict[str, Any] | None = None) -> Any:
    s = db.session()
    the_sample = services.get_sample(s, sample_id, current_user)
    is_iqa = the_sample.iqa_id == current_user.id
    template = services.UNIT_OUTCOME_STATEMENT if the_sample.is_unit else \
        services.OUTCOME_STATEMENT
    statement = template.format(hash=the_sample.snapshot_sha256,
                                outcome="(the outcome you choose)")
    return render_template(
        "sampling/sample.html", sample=the_sample, snap=the_sample.snapshot,
        intact=services.snapshot_intact(the_sample), is_iqa=is_iqa,
        outcome_labels=services.OUTCOME_LABELS, status_labels=services.ACTION_STATUS_LABELS,
        statement=statement, today=_today(), form=form or {}, methods=METHODS,
        action_rows=range(3),
        steps={a.id: services.action_steps(a, current_user) for a in the_sample.actions},
        open_states=sampling_states.NOT_CLOSED)


def _action_inputs(form: forms.OutcomeForm) -> list[services.ActionInput]:
    inputs = []
    for n, (text, raw) in enumerate(form.actions(), start=1):
        due = _date(raw)
        if raw.strip() and due is None:
            raise ValidationFailed(f"Action {n}: enter the due date as a date.",
                                   field="action_due_on")
        inputs.append(services.ActionInput(text, due))
    return inputs


@bp.route("/samples/<int:sample_id>/outcome", methods=["POST"])
@roles_required(Role.IQA)
def outcome(sample_id: int) -> Any:
    s = db.session()
    the_sample = services.get_sample(s, sample_id, current_user)
    shown = {"outcome": _sent("outcome", 30), "rationale_md": _sent("rationale_md"),
             "action_description": request.form.getlist("action_description"),
             "action_due_on": request.form.getlist("action_due_on")}

    def action() -> Any:
        form = forms.read(forms.OutcomeForm)
        return services.record_outcome(
            s, the_sample, actor=current_user, outcome=form.outcome.data or "",
            rationale_md=form.rationale_md.data or "", actions=_action_inputs(form),
            confirmation=confirmation_from(request.form), today=_today(), **limits())

    refused, _ = run_signed(action, lambda: _render_sample(sample_id, shown))
    if refused:
        return refused
    decision = the_sample.decision
    owner = the_sample.assessor
    label = services.OUTCOME_LABELS[the_sample.outcome]
    link = url_for("sampling.sample", sample_id=the_sample.id, _external=True)
    enrolment = the_sample.enrolment
    learner = enrolment.learner.full_name
    what = (f"your decision on criterion {decision.criterion.number}" if decision is not None
            else f"your sign-off of unit {enrolment.unit.reference}")
    lines = [f"{current_user.full_name} (internal quality assurer) sampled {what} for "
             f"{learner}.", "", f"Outcome: {label}."]
    if the_sample.outcome == "disagree" and decision is not None:
        lines.append(f"Criterion {decision.criterion.number} is reopened: it needs deciding "
                     "again, and more of your decisions will be sampled for a while.")
    elif the_sample.outcome == "disagree":
        lines.append("Your unit sign-off (and the learner's co-signature) no longer stands: "
                     "the unit needs signing off again, and more of your decisions will be "
                     "sampled for a while.")
    if the_sample.actions:
        lines += ["", "Actions for you (acknowledge each, then respond):"]
        lines += [f"- {a.description} (due {a.due_on:%d %b %Y})" for a in the_sample.actions]
    lines += ["", f"Read the rationale: {link}", ""]
    notify.queue(notify.Message((owner.email,), f"IQA sample outcome: {label}",
                                "\n".join(lines)))
    flash(f"Signed: {label}. {owner.full_name} has been told by email.", "success")
    return redirect(url_for("sampling.sample", sample_id=sample_id))


# --- actions ----------------------------------------------------------------------------------

@bp.route("/actions/<int:action_id>/<any(acknowledge, respond, close):step>",
          methods=["POST"])
@login_required
def advance(action_id: int, step: str) -> Any:
    s = db.session()
    action = services.get_action(s, action_id, current_user)
    sample_id = action.sample_id
    refused, _ = run_action(lambda: services.advance_action(
        s, action, actor=current_user, step=step,
        text_md=forms.read(forms.ActionStepForm).text_md.data or ""),
        lambda: _render_sample(sample_id))
    if refused:
        return refused
    if step == "respond":
        iqa = action.sample.iqa
        link = url_for("sampling.sample", sample_id=sample_id, _external=True)
        notify.queue(notify.Message(
            (iqa.email,), "IQA action responded to",
            f"{current_user.full_name} responded to the action “{action.description}”.\n\n"
            f"Read the response and close the action: {link}\n"))
    flash({"acknowledge": "Acknowledged.", "respond": "Response sent to the IQA.",
           "close": "Action closed."}[step], "success")
    return redirect(url_for("sampling.sample", sample_id=sample_id) + f"#action-{action.id}")
