"""Loading unit files into the database (portfolio/criteria/services.py).

Each test starts from a fresh migrated database. Changed unit files are written into tmp_path
as edited copies of the shipped Unit 40 file; every edit must match exactly once, and every
edited file is checked to be valid, so the tests exercise the loader and not the validator.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Column, ForeignKey, Integer, Table, func, insert, select
from sqlalchemy.orm import Session

from portfolio.criteria import services
from portfolio.criteria.services import (
    LoadReport,
    content_hash,
    criterion_is_referenced,
    load_paths,
    load_unit_file,
)
from portfolio.criteria.unitfile import UnitFileInvalid, check_file, parse_file
from portfolio.db import Base
from portfolio.models import (
    AuditEvent,
    Criterion,
    CriterionMethod,
    CriterionRevision,
    GuidanceNote,
    LearningOutcome,
    Qualification,
    Unit,
)
from portfolio.models.qualifications import guidance_criteria

CRITERIA_DIR = Path(__file__).resolve().parent.parent / "criteria"
UNIT40_FILE = CRITERIA_DIR / "unit-40-resolve-customers-complaints.toml"
GOOD = UNIT40_FILE.read_text(encoding="utf-8")
REFERENCE = "R/506/2151"
LO1 = [f"1.{n}" for n in range(1, 9)]
LO2 = [f"2.{n}" for n in range(1, 10)]

TEXT_2_6 = "Keep customers informed of progress"
NEW_TEXT_2_6 = "Keep customers informed of progress at every stage"


# --------------------------------------------------------------------------- helpers


def replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"expected exactly one {old!r} in the text"
    return text.replace(old, new)


def without_criterion(text: str, number: str) -> str:
    """Remove criterion ``number``'s table, and every guidance reference to it."""
    start = text.index(f'[[learning_outcomes.criteria]]\nnumber = "{number}"\n')
    end = text.index("\n\n", start) + 2  # criterion tables contain no blank line
    text = text[:start] + text[end:]
    text = text.replace(f'"{number}", ', "").replace(f', "{number}"', "")
    return text.replace(f'criteria = ["{number}"]', "criteria = []")


def write_valid(tmp_path: Path, text: str, name: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    assert check_file(path) == [], "the edited file should be valid"
    return path


def load_text(
    session: Session, tmp_path: Path, text: str, name: str = "unit-40.toml"
) -> LoadReport:
    """Write ``text`` as a unit file, load it and commit, as `portfolio criteria load` does."""
    report = load_unit_file(session, parse_file(write_valid(tmp_path, text, name)))
    session.commit()
    session.expire_all()
    return report


def load_good(session: Session) -> LoadReport:
    report = load_unit_file(session, parse_file(UNIT40_FILE))
    session.commit()
    session.expire_all()
    return report


def counts(session: Session) -> dict[str, int]:
    """Row counts of every table the loader writes."""
    tables = {
        "qualifications": Qualification,
        "units": Unit,
        "learning_outcomes": LearningOutcome,
        "criteria": Criterion,
        "criterion_methods": CriterionMethod,
        "criterion_revisions": CriterionRevision,
        "guidance_notes": GuidanceNote,
        "audit_events": AuditEvent,
    }
    result = {
        name: session.scalar(select(func.count()).select_from(model))
        for name, model in tables.items()
    }
    result["guidance_criteria"] = session.scalar(
        select(func.count()).select_from(guidance_criteria)
    )
    return result


def get_unit(session: Session) -> Unit:
    unit = session.scalar(select(Unit).where(Unit.reference == REFERENCE))
    assert unit is not None
    return unit


def get_criterion(session: Session, number: str) -> Criterion | None:
    return session.scalar(
        select(Criterion)
        .join(Unit, Criterion.unit_id == Unit.id)
        .where(Unit.reference == REFERENCE, Criterion.number == number)
    )


def methods_of(criterion: Criterion) -> dict[str, bool]:
    return {m.method: m.preferred for m in criterion.methods}


def revisions_of(session: Session, criterion: Criterion) -> list[CriterionRevision]:
    return list(
        session.scalars(
            select(CriterionRevision)
            .where(CriterionRevision.criterion_id == criterion.id)
            .order_by(CriterionRevision.version)
        )
    )


def guidance_numbers(session: Session) -> dict[str, list[str]]:
    """Each guidance note's text -> the numbers of the criteria it is attached to."""
    notes = session.scalars(select(GuidanceNote).order_by(GuidanceNote.position))
    return {n.text: sorted(c.number for c in n.criteria) for n in notes}


def load_events(session: Session) -> list[AuditEvent]:
    return list(
        session.scalars(
            select(AuditEvent).where(AuditEvent.action == "unit.load").order_by(AuditEvent.seq)
        )
    )


# --------------------------------------------------------------------------- first load


def test_loading_creates_the_unit(session):
    report = load_good(session)
    assert report.outcome == "created"
    assert report.version == 1
    assert str(report) == f"{REFERENCE}: created (version 1)"

    unit = get_unit(session)
    spec = parse_file(UNIT40_FILE)
    assert unit.title == "Resolve Customers’ Complaints"
    assert (unit.number, unit.level, unit.credits, unit.guided_learning_hours) == ("40", 3, 4, 22)
    assert unit.unit_type == "Competence"
    assert unit.summary == spec.unit.summary
    assert unit.workplace_only is True
    assert unit.simulation_allowed is False
    assert unit.rpl_allowed is True
    assert unit.currency_months == 24
    assert unit.assessment_notes_md == spec.assessment.notes
    assert unit.version == 1
    assert unit.source_file == UNIT40_FILE.name
    assert unit.content_hash == content_hash(spec)
    assert unit.qualification.code == "CS-L3"
    assert unit.qualification.level == 3

    los = unit.learning_outcomes
    assert [(lo.number, lo.kind) for lo in los] == [(1, "knowledge"), (2, "performance")]
    assert [c.number for c in los[0].criteria] == LO1
    assert [c.number for c in los[1].criteria] == LO2

    assert counts(session) == {
        "qualifications": 1,
        "units": 1,
        "learning_outcomes": 2,
        "criteria": 17,
        "criterion_methods": sum(len(c.methods) for c in spec.criteria),
        "criterion_revisions": 0,
        "guidance_notes": len(spec.guidance),
        "guidance_criteria": sum(len(g.criteria) for g in spec.guidance),
        "audit_events": 1,
    }
    [event] = load_events(session)
    assert event.subject_type == "unit"
    assert event.subject_id == str(unit.id)
    assert event.detail["outcome"] == "created"
    assert event.detail["version"] == 1


def test_loaded_criteria_match_the_file(session):
    load_good(session)
    spec = parse_file(UNIT40_FILE)
    for position, c_spec in enumerate(spec.criteria, start=1):
        criterion = get_criterion(session, c_spec.number)
        assert criterion is not None, c_spec.number
        assert criterion.text == c_spec.text
        assert criterion.amplification_md == c_spec.amplification
        assert criterion.required_occurrences == 1
        assert criterion.version == 1
        assert criterion.is_retired is False
        assert criterion.position == position
        assert criterion.revisions == []
        assert methods_of(criterion) == {m: m in c_spec.preferred_methods for m in c_spec.methods}
    assert get_criterion(session, "2.7").text == (
        "Agree solutions with customers that address the complaint and which are within the "
        "limits of their own authority"
    )
    assert methods_of(get_criterion(session, "2.9"))["witness_testimony"] is True
    for number in LO2:
        assert "reflective_account" not in methods_of(get_criterion(session, number))


def test_guidance_is_attached_to_its_criteria(session):
    load_good(session)
    spec = parse_file(UNIT40_FILE)
    unit = get_unit(session)
    assert [g.position for g in unit.guidance] == list(range(1, len(spec.guidance) + 1))
    assert [(g.kind, g.text, g.source) for g in unit.guidance] == [
        (g.kind, g.text, g.source) for g in spec.guidance
    ]
    assert guidance_numbers(session) == {g.text: sorted(g.criteria) for g in spec.guidance}
    craft = next(g for g in unit.guidance if "CRAFT" in g.text)
    assert sorted(c.number for c in craft.criteria) == ["2.1", "2.6", "2.7"]
    assert any(g.criteria == [] for g in unit.guidance)


# --------------------------------------------------------------------------- reloading


def test_loading_again_changes_nothing(session, tmp_path):
    load_good(session)
    before = counts(session)
    unit = get_unit(session)
    loaded_at, digest = unit.loaded_at, unit.content_hash

    report = load_good(session)
    assert report.outcome == "unchanged"
    assert report.version == 1
    assert str(report) == f"{REFERENCE}: unchanged (version 1)"
    assert (report.reworded, report.added, report.deleted, report.retired) == ([], [], [], [])

    # Comments and layout are not content either.
    reformatted = GOOD.replace("\n\n", "\n\n# a comment\n\n").replace("credits = 4", "credits=4")
    assert load_text(session, tmp_path, reformatted).outcome == "unchanged"

    assert counts(session) == before  # no new rows, and no second audit event
    unit = get_unit(session)
    assert unit.version == 1
    assert unit.loaded_at == loaded_at
    assert unit.content_hash == digest
    assert len(load_events(session)) == 1


def test_rewording_a_criterion_keeps_the_old_wording(session, tmp_path):
    load_good(session)
    before = counts(session)
    report = load_text(
        session, tmp_path, replace_once(GOOD, f'text = "{TEXT_2_6}"', f'text = "{NEW_TEXT_2_6}"')
    )
    assert report.outcome == "updated"
    assert report.reworded == ["2.6"]
    assert report.version == 2
    assert str(report) == f"{REFERENCE}: updated (version 2); reworded 2.6"

    assert get_unit(session).version == 2
    criterion = get_criterion(session, "2.6")
    assert criterion.text == NEW_TEXT_2_6
    assert criterion.version == 2
    [revision] = revisions_of(session, criterion)
    assert (revision.version, revision.text, revision.amplification_md) == (1, TEXT_2_6, "")
    assert revision.superseded_at is not None
    for number in LO1 + LO2:
        if number != "2.6":
            assert get_criterion(session, number).version == 1, number
    after = counts(session)
    assert after["criterion_revisions"] == 1
    assert after["criteria"] == before["criteria"]
    assert after["audit_events"] == before["audit_events"] + 1
    assert load_events(session)[-1].detail["reworded"] == ["2.6"]
    # Guidance still points at the same (reworded) criterion.
    assert guidance_numbers(session) == {
        g.text: sorted(g.criteria) for g in parse_file(UNIT40_FILE).guidance
    }

    # A second rewording keeps both earlier wordings.
    report = load_text(
        session,
        tmp_path,
        replace_once(GOOD, f'text = "{TEXT_2_6}"', 'text = "Keep customers informed"'),
        "third.toml",
    )
    assert report.version == 3
    criterion = get_criterion(session, "2.6")
    assert criterion.version == 3
    assert [(r.version, r.text) for r in revisions_of(session, criterion)] == [
        (1, TEXT_2_6),
        (2, NEW_TEXT_2_6),
    ]


def test_several_rewordings_bump_the_unit_version_once(session, tmp_path):
    load_good(session)
    old_amplification = get_criterion(session, "1.6").amplification_md
    text = replace_once(GOOD, f'text = "{TEXT_2_6}"', f'text = "{NEW_TEXT_2_6}"')
    # An amplification change is a rewording too.
    text = replace_once(
        text, "level and speed of progress\n", "level and speed of progress, risk to the customer\n"
    )
    report = load_text(session, tmp_path, text)
    assert report.reworded == ["1.6", "2.6"]
    assert report.version == 2
    assert get_unit(session).version == 2
    criterion = get_criterion(session, "1.6")
    assert criterion.version == 2
    assert criterion.amplification_md.endswith("risk to the customer")
    [revision] = revisions_of(session, criterion)
    assert revision.amplification_md == old_amplification
    assert revision.text == criterion.text  # only the amplification changed


def test_changes_other_than_wording_apply_in_place_without_a_new_version(session, tmp_path):
    """README: methods, occurrences, rules, summary, notes and guidance change in place;
    neither the unit's nor any criterion's version goes up and no revision is made."""
    load_good(session)
    before = counts(session)
    text = replace_once(
        GOOD,
        'methods = ["product_evidence", "direct_observation", "rpl"]\n'
        'preferred_methods = ["product_evidence"]\n',
        'methods = ["product_evidence", "witness_testimony", "rpl"]\n'
        'preferred_methods = ["product_evidence", "witness_testimony"]\n'
        "required_occurrences = 2\n",
    )
    text = replace_once(text, "currency_months = 24", "currency_months = 18")
    text = replace_once(
        text,
        "A complaint log or incident record that is complete and accurate.",
        "A complete and accurate complaint log or incident record.",
    )
    report = load_text(session, tmp_path, text)

    assert report.outcome == "updated"
    assert report.version == 1
    assert (report.reworded, report.added, report.deleted, report.retired) == ([], [], [], [])
    unit = get_unit(session)
    assert unit.version == 1
    assert unit.currency_months == 18
    assert unit.content_hash == content_hash(parse_file(tmp_path / "unit-40.toml"))
    criterion = get_criterion(session, "2.8")
    assert criterion.required_occurrences == 2
    assert criterion.version == 1
    assert methods_of(criterion) == {
        "product_evidence": True,
        "witness_testimony": True,
        "rpl": False,
    }
    assert get_criterion(session, "2.7").required_occurrences == 1
    notes = guidance_numbers(session)
    assert notes["A complete and accurate complaint log or incident record."] == ["2.8"]
    assert "A complaint log or incident record that is complete and accurate." not in notes
    after = counts(session)
    assert after["criterion_revisions"] == 0
    assert after["criterion_methods"] == before["criterion_methods"]
    assert after["guidance_notes"] == before["guidance_notes"]
    assert after["guidance_criteria"] == before["guidance_criteria"]
    assert after["audit_events"] == before["audit_events"] + 1  # the change is recorded


def test_changing_a_learning_outcome_title_bumps_the_unit_version(session, tmp_path):
    load_good(session)
    report = load_text(
        session,
        tmp_path,
        replace_once(
            GOOD,
            'title = "Be able to deal with customers’ complaints"',
            'title = "Be able to deal with customers’ complaints and concerns"',
        ),
    )
    assert report.outcome == "updated"
    assert report.version == 2
    assert report.reworded == []
    assert counts(session)["criterion_revisions"] == 0
    lo = session.scalar(select(LearningOutcome).where(LearningOutcome.number == 2))
    assert lo.title == "Be able to deal with customers’ complaints and concerns"


def test_adding_a_criterion(session, tmp_path):
    load_good(session)
    text = replace_once(
        GOOD,
        'preferred_methods = ["witness_testimony", "direct_observation"]\n',
        'preferred_methods = ["witness_testimony", "direct_observation"]\n\n'
        '[[learning_outcomes.criteria]]\nnumber = "2.10"\ntext = "Thank the customer"\n'
        'methods = ["direct_observation"]\n',
    )
    report = load_text(session, tmp_path, text)
    assert report.added == ["2.10"]
    assert report.version == 2
    criterion = get_criterion(session, "2.10")
    assert (criterion.version, criterion.text, criterion.position) == (1, "Thank the customer", 18)
    assert criterion.learning_outcome.number == 2
    assert counts(session)["criteria"] == 18


# --------------------------------------------------------------------------- removing


def test_criterion_is_referenced_is_false_for_a_fresh_criterion(session):
    load_good(session)
    for number in LO1 + LO2:
        criterion = get_criterion(session, number)
        # Its own methods, guidance links and revisions do not count as references.
        assert criterion_is_referenced(session, criterion.id) is False, number


@pytest.fixture
def referencing_table(session):
    """A stand-in for a future table that refers to criteria (e.g. evidence mappings)."""
    table = Table(
        "test_criterion_references",
        Base.metadata,
        Column("id", Integer, primary_key=True),
        Column("criterion_id", Integer, ForeignKey("criteria.id")),
    )
    try:
        table.create(session.connection())
        session.commit()
        yield table
    finally:
        session.rollback()
        table.drop(session.connection(), checkfirst=True)
        session.commit()
        Base.metadata.remove(table)


def test_criterion_is_referenced_sees_rows_in_other_tables(session, tmp_path, referencing_table):
    load_good(session)
    target = get_criterion(session, "1.8").id
    other = get_criterion(session, "1.7").id
    session.execute(insert(referencing_table).values(criterion_id=target))
    session.commit()
    assert criterion_is_referenced(session, target) is True
    assert criterion_is_referenced(session, other) is False

    # End to end, without monkeypatching: the referenced criterion is retired, not deleted.
    report = load_text(session, tmp_path, without_criterion(without_criterion(GOOD, "1.8"), "1.7"))
    assert report.retired == ["1.8"]
    assert report.deleted == ["1.7"]
    assert get_criterion(session, "1.8").is_retired is True
    assert get_criterion(session, "1.7") is None


def test_removing_an_unreferenced_criterion_deletes_it(session, tmp_path):
    load_good(session)
    # Reword 1.8 first so it has a revision that must go with it.
    load_text(
        session,
        tmp_path,
        replace_once(GOOD, "customer retention, enhanced", "keeping customers, enhanced"),
        "reworded.toml",
    )
    criterion = get_criterion(session, "1.8")
    criterion_id, method_count = criterion.id, len(criterion.methods)
    assert len(revisions_of(session, criterion)) == 1
    before = counts(session)

    report = load_text(session, tmp_path, without_criterion(GOOD, "1.8"))
    assert report.deleted == ["1.8"]
    assert report.retired == []
    assert report.version == 3
    assert str(report) == f"{REFERENCE}: updated (version 3); deleted 1.8"
    assert get_criterion(session, "1.8") is None
    assert get_unit(session).version == 3
    assert (
        session.scalar(
            select(func.count())
            .select_from(CriterionMethod)
            .where(CriterionMethod.criterion_id == criterion_id)
        )
        == 0
    )
    assert (
        session.scalar(
            select(func.count())
            .select_from(guidance_criteria)
            .where(guidance_criteria.c.criterion_id == criterion_id)
        )
        == 0
    )
    after = counts(session)
    assert after["criteria"] == before["criteria"] - 1 == 16
    assert after["criterion_revisions"] == 0
    assert after["criterion_methods"] == before["criterion_methods"] - method_count
    assert all("1.8" not in numbers for numbers in guidance_numbers(session).values())
    assert [c.number for c in get_unit(session).learning_outcomes[0].criteria] == LO1[:-1]


def test_removing_a_referenced_criterion_retires_it(session, tmp_path, monkeypatch):
    load_good(session)
    criterion = get_criterion(session, "1.8")
    target, text, amplification = criterion.id, criterion.text, criterion.amplification_md
    methods = methods_of(criterion)
    calls: list[int] = []

    def referenced(_session, criterion_id):
        calls.append(criterion_id)
        return criterion_id == target

    monkeypatch.setattr(services, "criterion_is_referenced", referenced)
    report = load_text(session, tmp_path, without_criterion(GOOD, "1.8"))
    assert calls == [target]
    assert report.retired == ["1.8"]
    assert report.deleted == []
    assert report.version == 2
    assert str(report) == f"{REFERENCE}: updated (version 2); retired 1.8"

    criterion = get_criterion(session, "1.8")
    assert criterion is not None and criterion.id == target
    assert criterion.is_retired is True
    assert (criterion.text, criterion.amplification_md) == (text, amplification)
    assert criterion.version == 1
    assert methods_of(criterion) == methods
    assert get_unit(session).version == 2
    assert counts(session)["criteria"] == 17
    assert all("1.8" not in numbers for numbers in guidance_numbers(session).values())
    assert load_events(session)[-1].detail["retired"] == ["1.8"]

    # Loading the same file again is still a no-op, and the criterion stays retired.
    before = counts(session)
    assert (
        load_text(session, tmp_path, without_criterion(GOOD, "1.8"), "again.toml").outcome
        == "unchanged"
    )
    assert counts(session) == before
    assert get_criterion(session, "1.8").is_retired is True


def test_putting_a_retired_criterion_back_brings_it_back_into_use(session, tmp_path, monkeypatch):
    load_good(session)
    target = get_criterion(session, "1.8").id
    monkeypatch.setattr(
        services, "criterion_is_referenced", lambda _session, criterion_id: criterion_id == target
    )
    load_text(session, tmp_path, without_criterion(GOOD, "1.8"))
    assert get_criterion(session, "1.8").is_retired is True

    report = load_good(session)
    assert report.outcome == "updated"
    assert report.added == ["1.8"]
    assert report.retired == [] and report.deleted == []
    assert report.version == 3
    criterion = get_criterion(session, "1.8")
    assert criterion.id == target
    assert criterion.is_retired is False
    assert criterion.version == 1  # same wording: no new criterion version
    assert revisions_of(session, criterion) == []
    assert get_unit(session).version == 3
    assert counts(session)["criteria"] == 17
    spec = parse_file(UNIT40_FILE)
    assert guidance_numbers(session) == {g.text: sorted(g.criteria) for g in spec.guidance}
    assert get_unit(session).content_hash == content_hash(spec)


# --------------------------------------------------------------------------- several files


def second_unit_text() -> str:
    """A different, valid unit in the same qualification."""
    return replace_once(GOOD, 'reference = "R/506/2151"', 'reference = "T/506/2152"')


@pytest.mark.parametrize("broken_first", [False, True], ids=["good-then-broken", "broken-first"])
def test_load_paths_loads_nothing_when_any_file_is_broken(session, tmp_path, broken_first):
    good = tmp_path / "unit-40.toml"
    good.write_text(GOOD, encoding="utf-8")
    other = tmp_path / "unit-41.toml"
    other.write_text(second_unit_text(), encoding="utf-8")
    broken = tmp_path / "broken.toml"
    broken.write_text(replace_once(GOOD, "credits = 4", "credits = true"), encoding="utf-8")
    paths = [broken, good, other] if broken_first else [good, other, broken]

    with pytest.raises(UnitFileInvalid) as raised:
        load_paths(session, paths)
    assert [p.path for p in raised.value.problems] == [str(broken)]
    session.rollback()
    assert all(count == 0 for count in counts(session).values()), counts(session)


def test_load_paths_loads_every_file(session, tmp_path):
    other = tmp_path / "unit-41.toml"
    other.write_text(second_unit_text(), encoding="utf-8")
    reports = load_paths(session, [UNIT40_FILE, other])
    session.commit()
    assert [(r.reference, r.outcome, r.version) for r in reports] == [
        (REFERENCE, "created", 1),
        ("T/506/2152", "created", 1),
    ]
    assert counts(session)["units"] == 2
    assert counts(session)["qualifications"] == 1  # both name CS-L3
    assert counts(session)["criteria"] == 34
    reports = load_paths(session, [UNIT40_FILE, other])
    assert [r.outcome for r in reports] == ["unchanged", "unchanged"]
