"""Read enrolments, limited in SQL to what the caller may see (mirrors permissions.py)."""

from __future__ import annotations

from sqlalchemy import Select, false, func, or_, select
from sqlalchemy.orm import Session, aliased, joinedload

from portfolio.errors import NotFound
from portfolio.models import Enrolment, Role, Unit, User
from portfolio.paging import contains
from portfolio.permissions import can_view_enrolment


def _visible(query: Select, user: User) -> Select:
    if not user.is_active:
        return query.where(false())
    clauses = []
    if user.has_role(Role.LEARNER):
        clauses.append(Enrolment.learner_id == user.id)
    if user.has_role(Role.ASSESSOR):
        clauses.append(Enrolment.assessor_id == user.id)
    if user.has_role(Role.IQA):
        clauses.append(Enrolment.iqa_id == user.id)
    if user.has_role(Role.ADMIN):
        learner = aliased(User)
        centre_learners = select(learner.id).where(learner.centre_id == user.centre_id)
        clauses.append(Enrolment.learner_id.in_(centre_learners))
    return query.where(or_(*clauses)) if clauses else query.where(false())


def _with_people(query: Select) -> Select:
    return query.options(
        joinedload(Enrolment.learner),
        joinedload(Enrolment.assessor),
        joinedload(Enrolment.iqa),
        joinedload(Enrolment.unit),
    )


def list_visible_enrolments(
    session: Session, user: User, *, role: Role | None = None
) -> list[Enrolment]:
    """Return the enrolments the user may see, optionally only those seen through one role."""
    return list(session.scalars(visible_enrolments_query(user, role=role)).unique())


def get_enrolment(session: Session, enrolment_id: int, user: User) -> Enrolment:
    """Return one enrolment the user may see; NotFound otherwise (never reveals existence)."""
    enrolment = session.scalar(_with_people(select(Enrolment)).where(Enrolment.id == enrolment_id))
    if enrolment is None or not can_view_enrolment(user, enrolment):
        raise NotFound("No such enrolment, or it is not one you can see.")
    return enrolment


def get_centre_enrolment(session: Session, enrolment_id: int, user: User) -> Enrolment:
    """An enrolment of the user's own centre (for its admins); NotFound otherwise."""
    enrolment = session.get(Enrolment, enrolment_id)
    if enrolment is None or enrolment.centre_id != user.centre_id:
        raise NotFound("No such enrolment in your centre.")
    return enrolment


def centre_enrolment_ids(centre_id: int, search: str = "") -> Select:
    """The ids of a centre's enrolments by learner name (to page; `load_enrolments` then reads
    one page); with `search`, those whose learner's name or email, or employer, contains it."""
    query = (
        select(Enrolment.id)
        .join(User, User.id == Enrolment.learner_id)
        .where(User.centre_id == centre_id)
        .order_by(User.full_name, Enrolment.id)
    )
    like = contains(search)
    if like:
        query = query.where(func.lower(User.full_name).like(like, escape="\\")
                            | func.lower(User.email).like(like, escape="\\")
                            | func.lower(Enrolment.employer).like(like, escape="\\"))
    return query


def load_enrolments(session: Session, ids: list[int]) -> list[Enrolment]:
    """The enrolments with these ids, with their people and unit, in the order given."""
    found = {e.id: e for e in session.scalars(
        _with_people(select(Enrolment)).where(Enrolment.id.in_(ids))).unique()}
    return [found[i] for i in ids if i in found]


def visible_enrolment_ids(user: User, *, role: Role | None = None) -> Select:
    """The ids of what `list_visible_enrolments` lists, in its order, to page."""
    return _visible_query(select(Enrolment.id), user, role)


def visible_enrolments_query(user: User, *, role: Role | None = None) -> Select:
    """What `list_visible_enrolments` lists, as a query."""
    return _visible_query(_with_people(select(Enrolment)), user, role)


def _visible_query(query: Select, user: User, role: Role | None) -> Select:
    query = _visible(query, user)
    if role is Role.LEARNER:
        query = query.where(Enrolment.learner_id == user.id)
    elif role is Role.ASSESSOR:
        query = query.where(Enrolment.assessor_id == user.id)
    elif role is Role.IQA:
        query = query.where(Enrolment.iqa_id == user.id)
    return query.join(User, User.id == Enrolment.learner_id).order_by(
        User.full_name, Enrolment.id)


def list_centre_enrolments(session: Session, centre_id: int) -> list[Enrolment]:
    """Return every enrolment of a centre's learners (for its admins)."""
    query = (
        _with_people(select(Enrolment))
        .join(User, User.id == Enrolment.learner_id)
        .where(User.centre_id == centre_id)
        .order_by(User.full_name, Enrolment.id)
    )
    return list(session.scalars(query).unique())


def list_units(session: Session) -> list[Unit]:
    """Return every unit, by reference."""
    return list(session.scalars(select(Unit).order_by(Unit.number, Unit.reference)))
