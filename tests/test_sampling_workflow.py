"""IQA sampling workflow: strategy history, plans, snapshots bound by hash, outcomes, actions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from portfolio.assessment.readiness import readiness
from portfolio.assessment.signing import sha256_of, verify_signature
from portfolio.audit import verify_chain
from portfolio.errors import InvalidTransition, NotFound, PermissionDenied, ValidationFailed
from portfolio.evidence.coverage import compute_coverage
from portfolio.evidence.services import EvidenceInput, revise_evidence
from portfolio.models import (
    AuditEvent,
    CriterionDecision,
    Enrolment,
    IqaAction,
    IqaSample,
    SamplingPlanItem,
    Signature,
)
from portfolio.sampling import services as sampling
from tests.factories import (
    LIMITS,
    accept,
    decide,
    load_unit40,
    make_centre,
    make_enrolment,
    make_evidence,
    make_user,
    sign_as,
)

TODAY = date.today()


@dataclass
class Scene:
    unit: object
    iqa: object
    assessor: object
    admin: object
    learner: object
    enrolment: Enrolment
    decision: CriterionDecision
    evidence: object


def _scene(session) -> Scene:
    unit = load_unit40(session)
    centre = make_centre(session)
    iqa = make_user(session, centre, "iqa", name="Ivy Iqa")
    assessor = make_user(session, centre, "assessor", name="Asha Assessor",
                         assessor_status="qualified")
    admin = make_user(session, centre, "admin", name="Ada Admin")
    learner = make_user(session, centre, "learner", name="Lee Learner")
    enrolment = make_enrolment(session, learner, assessor, iqa, unit)
    evidence = make_evidence(session, enrolment, learner, maps=("1.2",), submit=True,
                             title="How I handle complaints")
    accept(session, evidence, assessor)
    decision = decide(session, enrolment, assessor, "1.2", [evidence])
    session.commit()
    return Scene(unit, iqa, assessor, admin, learner, enrolment, decision, evidence)


@pytest.fixture
def scene(session) -> Scene:
    return _scene(session)


def _plan(session, scene):
    plan = sampling.generate_plan(session, iqa=scene.iqa, unit=scene.unit,
                                  start=TODAY - timedelta(days=30), end=TODAY)
    session.commit()
    return plan


def _sample(session, scene):
    plan = _plan(session, scene)
    item = sampling.live_items(plan)[0]
    sample = sampling.start_sample(session, item, actor=scene.iqa)
    session.commit()
    return sample


def _outcome(session, scene, sample, outcome, actions=(), rationale="Checked the evidence."):
    signature = sampling.record_outcome(
        session, sample, actor=scene.iqa, outcome=outcome, rationale_md=rationale,
        actions=list(actions), confirmation=sign_as(scene.iqa), today=TODAY, **LIMITS)
    session.commit()
    return signature


def _act(desc="Add a note on how 1.2 was judged.", days=14):
    return sampling.ActionInput(desc, TODAY + timedelta(days=days))


# --- strategy -------------------------------------------------------------------------------

def test_strategy_defaults_then_each_change_is_a_new_row_with_who_and_why(session, scene):
    assert sampling.rates_of(sampling.current_strategy(session, scene.iqa.centre_id,
                                                       scene.unit.id)) == sampling.DEFAULT_RATES
    assert sampling.DEFAULT_RATES == {"trainee": 100, "newly_qualified": 100, "first_year": 25,
                                      "experienced": 10, "after_disagreement": 100, "rpl": 100}
    first = sampling.set_strategy(session, actor=scene.iqa, unit=scene.unit,
                                  rates=dict(sampling.DEFAULT_RATES, experienced=20),
                                  reason="New unit this year")
    second = sampling.set_strategy(session, actor=scene.admin, unit=scene.unit,
                                   rates=dict(sampling.DEFAULT_RATES, experienced=15),
                                   reason="EQA advice")
    session.commit()
    history = sampling.strategy_history(session, scene.iqa.centre_id, scene.unit.id)
    assert [h.id for h in history] == [second.id, first.id]
    assert sampling.current_strategy(session, scene.iqa.centre_id,
                                     scene.unit.id).experienced_pct == 15
    assert (history[1].changed_by_id, history[1].reason) == (scene.iqa.id, "New unit this year")
    actions = session.scalars(select(AuditEvent.action).where(
        AuditEvent.action == "sampling.strategy_changed")).all()
    assert len(actions) == 2


@pytest.mark.parametrize("raw, field", [
    ({"trainee": "101"}, "trainee"), ({"experienced": "-1"}, "experienced"),
    ({"rpl": "ten"}, "rpl"), ({"first_year": ""}, "first_year"),
])
def test_strategy_rates_must_be_whole_percentages(raw, field):
    data = {k: str(v) for k, v in sampling.DEFAULT_RATES.items()} | raw
    with pytest.raises(ValidationFailed) as caught:
        sampling.parse_rates(data)
    assert caught.value.field == field


def test_strategy_needs_a_reason_and_a_change_and_the_right_role(session, scene):
    with pytest.raises(ValidationFailed):
        sampling.set_strategy(session, actor=scene.iqa, unit=scene.unit,
                              rates=dict(sampling.DEFAULT_RATES, rpl=50), reason=" ")
    with pytest.raises(InvalidTransition):
        sampling.set_strategy(session, actor=scene.iqa, unit=scene.unit,
                              rates=dict(sampling.DEFAULT_RATES), reason="same")
    with pytest.raises(PermissionDenied):
        sampling.set_strategy(session, actor=scene.assessor, unit=scene.unit,
                              rates=dict(sampling.DEFAULT_RATES, rpl=50), reason="mine")


def test_only_an_iqa_lowers_an_assessor_rate(session, scene):
    sampling.set_profile(session, actor=scene.admin, assessor=scene.assessor,
                         status="experienced", override_pct=50, reason="New to this unit")
    with pytest.raises(PermissionDenied, match="Only an internal quality assurer"):
        sampling.set_profile(session, actor=scene.admin, assessor=scene.assessor,
                             status="experienced", override_pct=20, reason="Lower")
    sampling.set_profile(session, actor=scene.iqa, assessor=scene.assessor,
                         status="experienced", override_pct=None, reason="Back to the strategy")
    session.commit()
    rate = sampling.assessor_rate(session, scene.assessor)
    assert (rate.status, rate.override_pct) == ("experienced", None)
    assert len(sampling.profile_history(session, scene.iqa.centre_id)) == 2


# --- plans ----------------------------------------------------------------------------------

def test_plan_is_generated_stored_and_reproducible(session, scene):
    plan = _plan(session, scene)
    items = sampling.live_items(plan)
    # An assessor without a recorded status is sampled in full: the one decision is in.
    assert [i.decision_id for i in items] == [scene.decision.id]
    assert items[0].stage == "interim" and items[0].source == "generated"
    again = sampling.reproduce(session, plan)
    assert again.same_inputs and again.same_items
    coverage = sampling.plan_coverage(session, plan)
    assert coverage.assessors == {scene.assessor.id: (1, 1)}
    assert coverage.missed["employers"] == []


def test_items_are_added_and_removed_by_hand_with_reasons(session, scene):
    plan = _plan(session, scene)
    item = sampling.live_items(plan)[0]
    with pytest.raises(ValidationFailed):
        sampling.remove_item(session, item, actor=scene.iqa, reason="")
    sampling.remove_item(session, item, actor=scene.iqa, reason="Sampled last month")
    session.commit()
    assert sampling.live_items(plan) == []
    assert sampling.plan_coverage(session, plan).missed["assessors"] == [str(scene.assessor.id)]
    with pytest.raises(ValidationFailed):
        sampling.add_item(session, plan, actor=scene.iqa, decision_id=999999, reason="x")
    added = sampling.add_item(session, plan, actor=scene.iqa, decision_id=scene.decision.id,
                              reason="Complaint escalated by the employer")
    session.commit()
    assert added.source == "manual" and sampling.live_items(plan) == [added]
    removed = session.get(SamplingPlanItem, item.id)
    assert removed.removed_reason == "Sampled last month"


def test_an_iqa_never_samples_a_decision_they_made(session, scene):
    # The assessor became this learner's IQA after a hand-over: their own decision stays out.
    from portfolio.models import UserRole

    new_assessor = make_user(session, scene.iqa.centre, "assessor", assessor_status="qualified")
    session.add(UserRole(user_id=scene.assessor.id, role="iqa"))
    enrolment = session.get(Enrolment, scene.enrolment.id)
    enrolment.assessor_id, enrolment.iqa_id = new_assessor.id, scene.assessor.id
    session.commit()
    session.refresh(scene.assessor)
    plan = sampling.generate_plan(session, iqa=scene.assessor, unit=scene.unit,
                                  start=TODAY - timedelta(days=30), end=TODAY)
    assert sampling.live_items(plan) == []  # the generator leaves their own decision out
    assert sampling.addable_decisions(session, plan) == []
    item = SamplingPlanItem(plan_id=plan.id, decision_id=scene.decision.id,
                            enrolment_id=enrolment.id, reason="forced", stage="interim",
                            source="manual", added_by_id=scene.assessor.id)
    session.add(item)
    session.flush()
    with pytest.raises(PermissionDenied, match="never samples a decision they made"):
        sampling.start_sample(session, item, actor=scene.assessor)


# --- snapshot bound by hash -----------------------------------------------------------------

def test_snapshot_keeps_the_portfolio_as_it_was_and_is_bound_by_its_hash(session, scene):
    sample = _sample(session, scene)
    assert sample.snapshot_sha256 == sha256_of(sample.snapshot)
    evidence = sample.snapshot["evidence"][0]
    assert evidence["title"] == "How I handle complaints" and evidence["version"] == 1
    assert evidence["reviews"][0]["outcome"] == "accepted"
    assert sample.snapshot["signatures"][0]["state"] == "valid"
    # The evidence is referred back and revised: the decision ends, the snapshot does not.
    from portfolio.assessment.services import review_evidence

    review_evidence(session, scene.evidence, actor=scene.assessor, outcome="referred",
                    feedback_md="Say more about 1.2.", varcs={},
                    expected_version=scene.evidence.current_version)
    revise_evidence(session, scene.evidence, actor=scene.learner, data=EvidenceInput(
        title="Rewritten account", activity_on=TODAY, body_md="New text",
        personal_data_confirmed=True, change_note="rewrote"), keep_file_ids=[], files=[],
        today=TODAY, expected_version=scene.evidence.current_version)
    session.commit()
    fresh = session.get(IqaSample, sample.id)
    session.refresh(fresh)
    assert fresh.snapshot["evidence"][0]["title"] == "How I handle complaints"
    assert sampling.snapshot_intact(fresh)
    # Anyone editing the stored snapshot outside the app is caught by the hash.
    fresh.snapshot = dict(fresh.snapshot, decision=dict(fresh.snapshot["decision"],
                                                        note_md="edited"))
    session.commit()
    assert not sampling.snapshot_intact(fresh)
    with pytest.raises(InvalidTransition, match="altered"):
        _outcome(session, scene, fresh, "agree")


# --- outcomes -------------------------------------------------------------------------------

def test_agree_is_signed_over_the_snapshot_hash(session, scene):
    sample = _sample(session, scene)
    signature = _outcome(session, scene, sample, "agree")
    assert signature.purpose == "iqa_outcome" and signature.signer_role == "iqa"
    assert signature.content["snapshot_sha256"] == sample.snapshot_sha256
    assert sample.snapshot_sha256 in signature.statement
    assert verify_signature(session, signature).state == "valid"
    assert session.get(CriterionDecision, scene.decision.id).status == "met"
    with pytest.raises(InvalidTransition):
        _outcome(session, scene, sample, "disagree")


def test_disagree_reopens_the_criterion_and_raises_the_assessor_rate(app, session, scene):
    sample = _sample(session, scene)
    _outcome(session, scene, sample, "disagree", [_act()], rationale="Not sufficient for 1.2.")
    decision = session.get(CriterionDecision, scene.decision.id)
    assert decision.status == "reopened" and "disagreed" in decision.ended_reason
    assert session.get(Signature, decision.signature_id).invalidated_at is not None
    entry = next(c for c in compute_coverage(session, scene.enrolment, TODAY).criteria
                 if c.number == "1.2")
    assert entry.status != "met" and entry.reasons[0].code == "reopened"
    rate = sampling.assessor_rate(session, scene.assessor)
    assert rate.override_pct == 100 and rate.raised_after_disagreement and rate.risk == "High"
    assert session.scalar(select(AuditEvent).where(AuditEvent.action == "decision.reopened"))
    # The assessor can decide the criterion again.
    decide(session, scene.enrolment, scene.assessor, "1.2", [scene.evidence])
    session.commit()
    # Open IQA actions appear in the readiness report.
    with app.test_request_context():
        report = readiness(session, scene.enrolment, TODAY)
    # Named with who must act and how: the assessor owns it and responds on the sample page.
    line = next(line for line in report.iqa_actions if "Add a note" in line.text)
    assert line.actors == {scene.assessor.id} and f"/iqa/samples/{sample.id}" in line.url
    assert verify_chain(session)[1] == []


def test_raised_rate_is_kept_by_an_admin_and_lowered_by_an_iqa(session, scene):
    sample = _sample(session, scene)
    _outcome(session, scene, sample, "disagree")
    with pytest.raises(PermissionDenied):
        sampling.set_profile(session, actor=scene.admin, assessor=scene.assessor, status=None,
                             override_pct=None, reason="Lower")
    sampling.set_profile(session, actor=scene.iqa, assessor=scene.assessor,
                         status="experienced", override_pct=25, reason="Retrained")
    session.commit()
    rate = sampling.assessor_rate(session, scene.assessor)
    assert (rate.override_pct, rate.raised_after_disagreement) == (25, False)


@pytest.mark.parametrize("outcome, actions, message", [
    ("agree_with_actions", [], "needs at least one action"),
    ("agree", [_act()], "has no actions"),
    ("bogus", [], "Choose the outcome"),
    ("disagree", [_act(days=-1)], "in the past"),
    ("disagree", [sampling.ActionInput("", TODAY)], "say what"),
    ("disagree", [sampling.ActionInput("Do it", None)], "due date"),
])
def test_outcome_input_is_checked_and_nothing_is_half_written(session, scene, outcome,
                                                               actions, message):
    sample = _sample(session, scene)
    with pytest.raises(ValidationFailed, match=message):
        _outcome(session, scene, sample, outcome, actions)
    session.rollback()
    assert session.get(IqaSample, sample.id).status == "in_progress"
    assert session.scalars(select(IqaAction)).all() == []


def test_wrong_password_or_name_signs_nothing(session, scene):
    from portfolio.assessment.services import SignerConfirmation

    sample = _sample(session, scene)
    for confirmation in (SignerConfirmation("wrong", scene.iqa.full_name),
                         SignerConfirmation("correct horse battery staple", "Someone Else")):
        with pytest.raises(ValidationFailed):
            sampling.record_outcome(session, sample, actor=scene.iqa, outcome="agree",
                                    rationale_md="ok", actions=[], confirmation=confirmation,
                                    today=TODAY, **LIMITS)
        session.rollback()
    assert session.get(IqaSample, sample.id).status == "in_progress"


def test_only_the_sampling_iqa_records_the_outcome(session, scene):
    sample = _sample(session, scene)
    with pytest.raises(PermissionDenied):
        sampling.record_outcome(session, sample, actor=scene.assessor, outcome="agree",
                                rationale_md="ok", actions=[],
                                confirmation=sign_as(scene.assessor), today=TODAY, **LIMITS)


# --- actions: the transition table ----------------------------------------------------------

ACTION_TABLE = [
    # (status before, step, who, expected error or resulting status)
    ("open", "acknowledge", "owner", "acknowledged"),
    ("open", "acknowledge", "iqa", PermissionDenied),
    ("open", "respond", "owner", InvalidTransition),
    ("open", "close", "iqa", InvalidTransition),
    ("open", "close", "owner", PermissionDenied),
    ("acknowledged", "acknowledge", "owner", InvalidTransition),
    ("acknowledged", "respond", "owner", "responded"),
    ("acknowledged", "respond", "iqa", PermissionDenied),
    ("acknowledged", "close", "iqa", InvalidTransition),
    ("responded", "respond", "owner", "responded"),
    ("responded", "close", "iqa", "closed"),
    ("responded", "close", "owner", PermissionDenied),
    ("responded", "close", "learner", PermissionDenied),
    ("closed", "close", "iqa", InvalidTransition),
    ("closed", "respond", "owner", InvalidTransition),
    ("closed", "acknowledge", "owner", InvalidTransition),
]


def _bring_to(session, scene, action, status):
    steps = {"open": [], "acknowledged": ["acknowledge"],
             "responded": ["acknowledge", "respond"],
             "closed": ["acknowledge", "respond", "close"]}[status]
    for step in steps:
        who = scene.iqa if step == "close" else scene.assessor
        sampling.advance_action(session, action, actor=who, step=step, text_md="Done: noted.")


@pytest.mark.parametrize("before, step, who, expected", ACTION_TABLE,
                         ids=[f"{b}-{s}-{w}" for b, s, w, _ in ACTION_TABLE])
def test_action_transitions(session, scene, before, step, who, expected):
    sample = _sample(session, scene)
    _outcome(session, scene, sample, "agree_with_actions", [_act()])
    action = session.scalars(select(IqaAction)).one()
    assert (action.owner_id, action.status) == (scene.assessor.id, "open")
    _bring_to(session, scene, action, before)
    actor = {"owner": scene.assessor, "iqa": scene.iqa, "learner": scene.learner}[who]
    # The page offers exactly the steps the service would take.
    assert (step in sampling.action_steps(action, actor)) == isinstance(expected, str)
    if isinstance(expected, str):
        sampling.advance_action(session, action, actor=actor, step=step, text_md="Updated.")
        session.commit()
        assert action.status == expected
        assert session.scalar(select(AuditEvent).where(
            AuditEvent.action == f"iqa.action_{step}").order_by(AuditEvent.seq.desc()))
    else:
        with pytest.raises(expected):
            sampling.advance_action(session, action, actor=actor, step=step, text_md="x")


def test_a_response_needs_words(session, scene):
    sample = _sample(session, scene)
    _outcome(session, scene, sample, "agree_with_actions", [_act()])
    action = session.scalars(select(IqaAction)).one()
    sampling.advance_action(session, action, actor=scene.assessor, step="acknowledge")
    with pytest.raises(ValidationFailed):
        sampling.advance_action(session, action, actor=scene.assessor, step="respond",
                                text_md="  ")


def test_visibility_of_samples_and_actions(session, scene):
    sample = _sample(session, scene)
    _outcome(session, scene, sample, "agree_with_actions", [_act()])
    action = session.scalars(select(IqaAction)).one()
    assert sampling.get_sample(session, sample.id, scene.iqa) is sample
    assert sampling.get_sample(session, sample.id, scene.assessor) is sample
    for outsider in (scene.learner, scene.admin):
        with pytest.raises(NotFound):
            sampling.get_sample(session, sample.id, outsider)
        with pytest.raises(NotFound):
            sampling.get_action(session, action.id, outsider)
    assert sampling.open_actions_for_owner(session, scene.assessor) == [action]


def test_dashboard_and_export_records(session, scene):
    sample = _sample(session, scene)
    board = sampling.dashboard(session, scene.iqa, TODAY)
    assert board.in_progress == [sample] and board.ready == []
    assert board.assessors[0].decisions == 1 and board.assessors[0].sampled == 1
    assert board.stages == {"interim": 1, "summative": 0}
    _outcome(session, scene, sample, "agree_with_actions", [_act()])
    records = sampling.sample_records_for_enrolment(session, scene.enrolment.id)
    assert records[0]["outcome"] == "Agree with actions"
    assert records[0]["actions"][0]["status"] == "Open"
    assert records[0]["snapshot_sha256"] == sample.snapshot_sha256


def test_the_exported_portfolio_lists_its_sample_records(session, scene):
    from datetime import UTC, datetime

    from portfolio.export.content import gather

    sample = _sample(session, scene)
    _outcome(session, scene, sample, "agree_with_actions", [_act()])
    content = gather(session, scene.enrolment, now=datetime.now(UTC),
                     verify_url="http://example.test/verify/x", public_id="x")
    assert len(content.samples) == 1
    row = content.samples[0]
    assert (row["by"], row["outcome"]) == ("Ivy Iqa", "Agree with actions")
    assert row["scope"] == "Criterion 1.2 (decided by Asha Assessor)"
    assert "Add a note on how 1.2 was judged." in row["actions"][0]


# --- unit sign-off samples ------------------------------------------------------------------

def _signed_off(session, scene, *, cosign=True):
    from tests.sampling_setup import sign_off_whole_unit

    return sign_off_whole_unit(session, scene.enrolment, scene.learner, scene.assessor,
                               cosign=cosign)


def _unit_sample(session, scene):
    sample = sampling.start_unit_sample(session, scene.enrolment, actor=scene.iqa)
    session.commit()
    return sample


def test_a_unit_is_sampled_only_once_its_signoff_stands(session, scene):
    assert sampling.unit_sampling_ready(session, scene.iqa) == []
    with pytest.raises(InvalidTransition, match="no sign-off that stands"):
        sampling.start_unit_sample(session, scene.enrolment, actor=scene.iqa)
    session.rollback()
    signoff = _signed_off(session, scene, cosign=False)
    assert sampling.unit_sampling_ready(session, scene.iqa) == [(scene.enrolment, signoff)]
    with pytest.raises(PermissionDenied):  # only the enrolment's IQA
        sampling.start_unit_sample(session, scene.enrolment, actor=scene.assessor)
    sample = _unit_sample(session, scene)
    assert (sample.scope, sample.signoff_id, sample.decision_id, sample.plan_item_id) == (
        "unit", signoff.id, None, None)
    assert sampling.unit_sampling_ready(session, scene.iqa) == []
    with pytest.raises(InvalidTransition, match="already being sampled"):
        sampling.start_unit_sample(session, scene.enrolment, actor=scene.iqa)


def test_unit_snapshot_holds_the_whole_portfolio_and_stays_after_changes(session, scene):
    _signed_off(session, scene)
    sample = _unit_sample(session, scene)
    snap = sample.snapshot
    assert sample.snapshot_sha256 == sha256_of(snap) and sampling.snapshot_intact(sample)
    assert snap["scope"] == "unit" and snap["enrolment"]["status"] == "completed"
    assert len(snap["decisions"]) == 17
    assert {s["purpose"] for s in snap["signatures"]} == {
        "unit_signoff", "unit_declaration", "unit_cosign"}
    assert all(s["state"] == "valid" for s in snap["signatures"])
    first = next(d for d in snap["decisions"] if d["decision"]["criterion"] == "1.2")
    assert first["evidence"][0]["title"] == "How I handle complaints"
    assert first["signatures"][0]["purpose"] == "criterion_decision"
    # The evidence behind 1.2 is referred back and rewritten: the sign-off ends, the snapshot
    # does not move.
    from portfolio.assessment.services import review_evidence, unit_signoff

    review_evidence(session, scene.evidence, actor=scene.assessor, outcome="referred",
                    feedback_md="Say more about 1.2.", varcs={},
                    expected_version=scene.evidence.current_version)
    revise_evidence(session, scene.evidence, actor=scene.learner, data=EvidenceInput(
        title="Rewritten account", activity_on=TODAY, body_md="New text",
        personal_data_confirmed=True, change_note="rewrote"), keep_file_ids=[], files=[],
        today=TODAY, expected_version=scene.evidence.current_version)
    session.commit()
    assert unit_signoff(session, scene.enrolment) is None
    fresh = session.get(IqaSample, sample.id)
    session.refresh(fresh)
    assert fresh.snapshot == snap and sampling.snapshot_intact(fresh)
    # With the sign-off gone there is nothing to reopen, but the sample can still agree.
    with pytest.raises(InvalidTransition, match="no longer stands"):
        _outcome(session, scene, fresh, "disagree")
    session.rollback()
    fresh.snapshot = dict(fresh.snapshot, decisions=fresh.snapshot["decisions"][1:])
    session.commit()
    assert not sampling.snapshot_intact(fresh)


def test_unit_agree_is_signed_and_the_signoff_stands(session, scene):
    from portfolio.assessment.services import unit_cosign, unit_signoff

    signoff = _signed_off(session, scene)
    sample = _unit_sample(session, scene)
    signature = _outcome(session, scene, sample, "agree_with_actions",
                         [_act("Date each observation record.")])
    assert signature.purpose == "iqa_outcome" and verify_signature(session,
                                                                   signature).state == "valid"
    assert signature.content["scope"] == "unit"
    assert signature.content["signoff_id"] == signoff.id
    assert sample.snapshot_sha256 in signature.statement and "unit's sign-off" in \
        signature.statement
    assert unit_signoff(session, scene.enrolment).id == signoff.id
    assert unit_cosign(session, scene.enrolment) is not None
    assert session.get(Enrolment, scene.enrolment.id).status == "completed"
    assert [a.owner_id for a in sample.actions] == [scene.assessor.id]
    # The assessor whose sign-off it judged sees the sample; the learner does not.
    assert sampling.get_sample(session, sample.id, scene.assessor) is sample
    with pytest.raises(NotFound):
        sampling.get_sample(session, sample.id, scene.learner)
    records = sampling.sample_records_for_enrolment(session, scene.enrolment.id)
    assert [(r["scope"], r["criterion"], r["decided_by"]) for r in records] == [
        ("unit", "Unit", "Asha Assessor")]
    rows = sampling.sample_rows_for_export(session, scene.enrolment.id)
    assert rows[0]["scope"] == "Unit sign-off (signed off by Asha Assessor)"
    assert rows[0]["outcome"] == "Agree with actions"
    board = sampling.dashboard(session, scene.iqa, TODAY)
    assert board.stages == {"interim": 0, "summative": 1} and board.unit_ready == []
    assert board.assessors[0].sampled == 0  # a unit sample is not counted as a decision


def test_unit_disagree_ends_the_signoff_and_reopens_the_enrolment(app, session, scene):
    from portfolio.assessment.services import unit_cosign, unit_signoff

    signoff = _signed_off(session, scene)
    sample = _unit_sample(session, scene)
    _outcome(session, scene, sample, "disagree", [_act("Observe 2.3 again.")],
             rationale="The observation does not show 2.3.")
    assert unit_signoff(session, scene.enrolment) is None
    assert unit_cosign(session, scene.enrolment) is None
    ended = session.get(Signature, signoff.id)
    assert ended.invalidated_at is not None and "disagreed" in ended.invalidated_reason
    assert session.get(Enrolment, scene.enrolment.id).status == "active"
    # The decisions themselves stand; the unit needs signing off again.
    assert session.scalars(select(CriterionDecision.status).where(
        CriterionDecision.enrolment_id == scene.enrolment.id)).all() == ["met"] * 17
    rate = sampling.assessor_rate(session, scene.assessor)
    assert rate.override_pct == 100 and rate.raised_after_disagreement
    event = session.scalar(select(AuditEvent).where(
        AuditEvent.action == "unit.signoff_reopened"))
    assert event.detail["enrolment_reopened"] is True and signoff.id in event.detail["signatures"]
    assert sampling.dashboard(session, scene.iqa, TODAY).assessors[0].disagreements == 1
    with app.test_request_context():
        report = readiness(session, scene.enrolment, TODAY)
    assert any("Observe 2.3" in line.text for line in report.iqa_actions)
    assert verify_chain(session)[1] == []


def test_an_iqa_never_samples_a_unit_they_signed_off(session, scene):
    # The assessor signed the unit off, then became the learner's IQA at a hand-over.
    from portfolio.models import UserRole

    _signed_off(session, scene)
    new_assessor = make_user(session, scene.iqa.centre, "assessor", assessor_status="qualified")
    session.add(UserRole(user_id=scene.assessor.id, role="iqa"))
    enrolment = session.get(Enrolment, scene.enrolment.id)
    enrolment.assessor_id, enrolment.iqa_id = new_assessor.id, scene.assessor.id
    session.commit()
    session.refresh(scene.assessor)
    assert sampling.unit_sampling_ready(session, scene.assessor) == []
    with pytest.raises(PermissionDenied, match="never samples a unit they signed off"):
        sampling.start_unit_sample(session, enrolment, actor=scene.assessor)
    session.rollback()
    assert session.scalars(select(IqaSample)).all() == []


def test_a_unit_sample_needs_its_signoff_in_the_database(session, scene):
    from sqlalchemy.exc import IntegrityError

    session.add(IqaSample(scope="unit", enrolment_id=scene.enrolment.id, iqa_id=scene.iqa.id,
                          status="in_progress", snapshot={}, snapshot_sha256="0" * 64,
                          rationale_md=""))
    with pytest.raises(IntegrityError):
        session.flush()
    session.rollback()
    session.add(IqaSample(scope="criterion", enrolment_id=scene.enrolment.id,
                          iqa_id=scene.iqa.id, status="in_progress", snapshot={},
                          snapshot_sha256="0" * 64, rationale_md=""))
    with pytest.raises(IntegrityError):
        session.flush()
    session.rollback()
