"""A learner whose decisions were sampled by the IQA still moves with a bundle."""

from __future__ import annotations

from sqlalchemy import select

from portfolio.bundle.schema import schema_problems
from portfolio.models import Signature
from tests.factories import make_world
from tests.sampling_setup import make_sampling
from tests.test_bundle import (  # noqa: F401 - fixtures
    _target_template,
    enrolment_ids,
    export_to,
    prepare_target,
    run_import,
    target,
    target_app,
    verdicts,
)


def test_a_sampled_portfolio_round_trips_without_the_centres_iqa_records(
        app, session, target_app, target, tmp_path):  # noqa: F811
    world = make_world(session, app.config["STORAGE_DIR"])
    ids = make_sampling(session, world)
    # The second sample ends in "disagree": its decision is reopened, its signature invalidated.
    from datetime import date

    from portfolio.models import IqaSample
    from portfolio.sampling import services as sampling
    from tests.factories import LIMITS, sign_as

    sampling.record_outcome(session, session.get(IqaSample, ids.open_sample_id),
                            actor=world.iqa, outcome="disagree",
                            rationale_md="The account does not show this criterion.",
                            actions=[], confirmation=sign_as(world.iqa), today=date.today(),
                            **LIMITS)
    session.commit()
    assert session.scalars(select(Signature).where(Signature.purpose == "iqa_outcome")).all()
    bundle = export_to(app, session, world.learner, tmp_path / "sampled.zip")
    import json
    import zipfile

    with zipfile.ZipFile(bundle) as archive:
        manifest = json.loads(archive.read("manifest.json"))
    assert schema_problems(manifest) == []
    assert "iqa_outcome" not in {s["purpose"] for s in manifest["signatures"]}
    source = {k: v for k, v in verdicts(
        session, enrolment_ids(session, world.learner.email)).items()
        if session.get(Signature, k).purpose != "iqa_outcome"}

    assert "invalidated" in source.values() and "valid" in source.values()
    centre = prepare_target(target)
    run_import(target_app, target, bundle, centre)
    assert verdicts(target, enrolment_ids(target, world.learner.email)) == source
