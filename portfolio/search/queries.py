"""Staff search: learners by name or email, and evidence, feedback and comments by their words.

Every query is limited in SQL to the enrolments the person may see (the same rule as
`portfolio.enrolments.queries`), so a result outside them is never read, counted or ranked.
The words are matched by PostgreSQL's full-text search or SQLite's FTS5, whichever holds the
data; matched words come back between two private-use characters, which `marked` turns into
<mark> after escaping everything else.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup, escape
from sqlalchemy import Select, and_, column, func, literal_column, select, table
from sqlalchemy.orm import Session

from portfolio.enrolments.queries import visible_enrolment_ids
from portfolio.models import Enrolment, Evidence, EvidenceVersion, Role, SearchEntry, Unit, User
from portfolio.paging import contains
from portfolio.search.index import START, STOP

MAX_QUERY_CHARS = 200
PEOPLE_SHOWN = 20
HITS_PER_PAGE = 20
STAFF = (Role.ASSESSOR, Role.IQA, Role.ADMIN)
# Words too common to narrow a search. PostgreSQL's English configuration drops its own list;
# FTS5 has none, and would otherwise require "in" and "the" to appear.
_STOP_WORDS_TEXT = (
    "a an and are as at be but by for from had has have he her his i if in into is it its me my "
    "no not of on or our she so than that the their them then there these they this to was we "
    "were what when which who will with you your")
STOP_WORDS = frozenset(_STOP_WORDS_TEXT.split())


def may_search(user: User) -> bool:
    """Staff of a centre search; learners, witnesses and external QAs do not."""
    return user.is_active and any(user.has_role(role) for role in STAFF)


def marked(text: str) -> Markup:
    """Escape text from the index and mark the words that matched."""
    # Safe: everything is escaped first; only the two markers become tags.
    return Markup(str(escape(text)).replace(START, "<mark>").replace(STOP, "</mark>"))  # noqa: S704


def clean_query(raw: str | None) -> str:
    """The search as typed, trimmed to a sane length, with the marker characters removed."""
    text = "".join(" " if c in (START, STOP) or unicodedata.category(c) == "Cc" else c
                   for c in (raw or "")[:MAX_QUERY_CHARS * 4])
    return " ".join(text.split())[:MAX_QUERY_CHARS]


def fts5_query(query: str) -> str | None:
    """An FTS5 MATCH expression for what was typed: every word (quoted, so no word is read as
    an operator) must appear. None when no word is left to look for."""
    words = [w for w in re.findall(r"\w+", query.lower()) if w not in STOP_WORDS]
    return " ".join(f'"{w}"' for w in words) or None


@dataclass(frozen=True)
class LearnerHit:
    enrolment_id: int
    name: Markup
    email: Markup
    unit: str
    employer: str


@dataclass(frozen=True)
class TextHit:
    kind: str
    evidence_id: int
    enrolment_id: int
    title: Markup
    snippet: Markup
    learner: str
    unit: str


@dataclass(frozen=True)
class Results:
    query: str
    learners: list[LearnerHit]
    hits: list[TextHit]
    page: int
    more: bool

    @property
    def empty(self) -> bool:
        return not self.learners and not self.hits


def _visible(user: User) -> Select:
    return visible_enrolment_ids(user).order_by(None)


def find_learners(session: Session, user: User, query: str) -> list[LearnerHit]:
    """Enrolments whose learner's name or email contains the words (as typed), best first."""
    like = contains(query)
    if like is None:
        return []
    rows = session.execute(
        select(Enrolment.id, User.full_name, User.email, Unit.reference, Enrolment.employer)
        .join(User, User.id == Enrolment.learner_id)
        .join(Unit, Unit.id == Enrolment.unit_id)
        .where(Enrolment.id.in_(_visible(user)),
               func.lower(User.full_name).like(like, escape="\\")
               | func.lower(User.email).like(like, escape="\\"))
        .order_by(User.full_name, Enrolment.id)
        .limit(PEOPLE_SHOWN)
    ).all()
    words = query.lower()
    return [LearnerHit(e, _mark_plain(name, words), _mark_plain(email, words), unit,
                       employer or "") for e, name, email, unit, employer in rows]


def _mark_plain(text: str, words: str) -> Markup:
    at = text.lower().find(words)
    if at < 0 or not words:
        return marked(text)
    return marked(text[:at] + START + text[at:at + len(words)] + STOP + text[at + len(words):])


def find_text(session: Session, user: User, query: str,
              page: int = 1) -> tuple[list[TextHit], bool]:
    """Evidence, feedback and comments matching the words, best match first, one page of them;
    and whether there is a further page."""
    if session.get_bind().dialect.name == "postgresql":
        base, title_col, snippet_col, rank = _postgres(query)
    else:
        expression = fts5_query(query)
        if expression is None:
            return [], False
        base, title_col, snippet_col, rank = _sqlite(expression)
    current = and_(EvidenceVersion.evidence_id == SearchEntry.evidence_id,
                   EvidenceVersion.version == Evidence.current_version)
    rows = session.execute(
        base.add_columns(SearchEntry.kind, SearchEntry.evidence_id, SearchEntry.enrolment_id,
                         title_col, snippet_col, EvidenceVersion.title, User.full_name,
                         Unit.reference)
        .join(Evidence, Evidence.id == SearchEntry.evidence_id)
        .join(EvidenceVersion, current)
        .join(Enrolment, Enrolment.id == SearchEntry.enrolment_id)
        .join(User, User.id == Enrolment.learner_id)
        .join(Unit, Unit.id == Enrolment.unit_id)
        .where(SearchEntry.enrolment_id.in_(_visible(user)))
        .order_by(rank, SearchEntry.id.desc())
        .limit(HITS_PER_PAGE + 1).offset((page - 1) * HITS_PER_PAGE)
    ).all()
    hits = [
        TextHit(kind, evidence_id, enrolment_id,
                marked(entry_title) if kind == "evidence" and entry_title else marked(title),
                marked(snippet or ""), learner, unit)
        for kind, evidence_id, enrolment_id, entry_title, snippet, title, learner, unit
        in (row[-8:] for row in rows[:HITS_PER_PAGE])
    ]
    return hits, len(rows) > HITS_PER_PAGE


def _postgres(query: str) -> tuple[Select, Any, Any, Any]:
    config: Any = literal_column("'english'::regconfig")
    tsquery = func.websearch_to_tsquery(config, query)
    document: Any = literal_column("search_entries.document")
    title = func.ts_headline(config, SearchEntry.title, tsquery,
                             f"StartSel={START}, StopSel={STOP}, HighlightAll=true")
    snippet = func.ts_headline(config, SearchEntry.body, tsquery,
                               f"StartSel={START}, StopSel={STOP}, MaxWords=30, MinWords=12, "
                               "MaxFragments=2, FragmentDelimiter=\" … \"")
    base = select().select_from(SearchEntry).where(document.op("@@")(tsquery))
    return base, title, snippet, func.ts_rank_cd(document, tsquery).desc()


FTS = table("search_fts", column("rowid"))


def _sqlite(expression: str) -> tuple[Select, Any, Any, Any]:
    fts: Any = literal_column("search_fts")
    base = (select().select_from(FTS).join(SearchEntry, SearchEntry.id == FTS.c.rowid)
            .where(fts.op("MATCH")(expression)))
    title = func.highlight(fts, 0, START, STOP)
    snippet = func.snippet(fts, 1, START, STOP, " … ", 24)
    # bm25 is lower for a better match; the title counts five times as much as the body.
    return base, title, snippet, func.bm25(fts, 5.0, 1.0)


def search(session: Session, user: User, raw_query: str | None, page: int = 1) -> Results:
    """Everything the person may see that matches: learners, then text hits by relevance."""
    query = clean_query(raw_query)
    if not query:
        return Results("", [], [], 1, False)
    learners = find_learners(session, user, query) if page == 1 else []
    hits, more = find_text(session, user, query, page)
    return Results(query, learners, hits, page, more)
