"""IQA sampling services: strategy and assessor rates, plans, samples, outcomes and actions.

The pure plan generator lives in :mod:`portfolio.sampling.plan`; this module loads what it
needs from the database, stores its result, and runs the sampling workflow:

- a **sample** starts by freezing the portfolio as it is (the decision, the evidence it cites at
  the versions cited, their mappings, the reviews, the signatures and the other decisions) into
  a canonical JSON snapshot and its SHA-256; the sample page is drawn from that snapshot only;
- the IQA records an **outcome** (agree, agree with actions, disagree) with a rationale and
  action points, signed like an assessor's decision (password again and typed full name,
  purpose ``iqa_outcome``, bound to the snapshot's hash);
- "disagree" **reopens** the criterion (the decision and what rested on it no longer stand) and
  **raises** the assessor's sampling rate until an IQA lowers it;
- a **unit sample** judges an assessor's live unit sign-off as a whole: its snapshot holds every
  standing decision with its evidence and signatures; "disagree" ends the sign-off and the
  learner's co-signature (a completed enrolment is active again) and raises the rate too;
- **actions** go open -> acknowledged -> responded (by their owner, the assessor) -> closed (by
  the IQA who set them). :mod:`portfolio.sampling.states` is the whole rule set.

Every change appends an audit event.
"""

from __future__ import annotations

from portfolio.sampling.actions import (  # noqa: F401
    action_steps,
    advance_action,
    get_action,
    open_actions_for_enrolment,
    open_actions_for_owner,
)
from portfolio.sampling.dashboard import (  # noqa: F401
    AssessorSummary,
    Dashboard,
    dashboard,
    iqa_units,
)
from portfolio.sampling.outcomes import (  # noqa: F401
    ActionInput,
    _check_actions,
    _check_may_sample,
    _check_may_sample_unit,
    _reopen,
    _reopen_unit,
    get_sample,
    record_outcome,
    start_sample,
    start_unit_sample,
    unit_sample_of,
    unit_sampling_ready,
)
from portfolio.sampling.plans import (  # noqa: F401
    Reproduction,
    _check_independent,
    _compute,
    _decision_methods,
    _in_words,
    _inputs,
    _period_key,
    _signed_off_enrolments,
    add_item,
    addable_decisions,
    candidates_of,
    generate_plan,
    get_item,
    get_plan,
    list_plans,
    live_items,
    plan_coverage,
    remove_item,
    reproduce,
    sampleable_decisions,
)
from portfolio.sampling.profiles import (  # noqa: F401
    AssessorRate,
    _raise_after_disagreement,
    assessor_rate,
    centre_assessors,
    current_profile,
    profile_history,
    risks_for,
    set_profile,
)
from portfolio.sampling.records import (  # noqa: F401
    sample_records_for_enrolment,
    sample_rows_for_export,
)
from portfolio.sampling.snapshots import (  # noqa: F401
    _decision_entry,
    _decision_signatures,
    _enrolment_entry,
    _evidence_entries,
    _signature_entry,
    _when,
    build_snapshot,
    build_unit_snapshot,
    snapshot_intact,
)
from portfolio.sampling.strategy import (  # noqa: F401
    ACTION_STATUS_LABELS,
    DEFAULT_RATES,
    MAX_ACTION_DAYS,
    OUTCOME_LABELS,
    OUTCOME_STATEMENT,
    RATE_FIELDS,
    RATE_LABELS,
    STATUS_LABELS,
    UNIT_OUTCOME_STATEMENT,
    _staff_role,
    can_manage_strategy,
    current_strategy,
    is_iqa,
    parse_rates,
    planner_rates,
    rates_of,
    set_strategy,
    strategy_history,
)
