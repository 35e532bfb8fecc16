"""Benchmark the coverage page and API on a centre-sized database.

Not a test (pytest only collects tests/): run it with `make bench` (SQLite) or
`make bench-postgres` (a private PostgreSQL server started from tests/pg.py), or directly:

    .venv/bin/python -m bench.coverage_bench [--db sqlite|postgresql] [--learners 2000] ...

It builds a fresh, migrated database with Unit 40, bulk-inserts a centre (2,000 learners with
40 evidence items each, ~60 assessors, a few IQAs and employers) with SQLAlchemy Core, then
times GET /enrolments/<id>/coverage and GET /api/v1/enrolments/<id>/coverage (when that route
exists) through the Flask test client, counts the SQL statements of each request, checks that
the count does not grow with the number of evidence items (1, 40 and 400), and times
compute_coverage() on its own. Results are printed and written to bench-results/coverage.json,
one key per database, so the SQLite and PostgreSQL runs sit side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any

import sqlalchemy
from sqlalchemy import event, func, select, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import joinedload

from portfolio import create_app, schema
from portfolio.auth.services import create_api_token, hash_password
from portfolio.config import PROJECT_ROOT
from portfolio.criteria.services import load_paths
from portfolio.db import get_database
from portfolio.evidence.coverage import compute_coverage
from portfolio.evidence.kinds import KINDS
from portfolio.models import (
    Centre,
    Criterion,
    CriterionMethod,
    Enrolment,
    Evidence,
    EvidenceMapping,
    EvidenceVersion,
    LearningOutcome,
    Unit,
    User,
    UserRole,
)

RESULTS_FILE = PROJECT_ROOT / "bench-results" / "coverage.json"
UNIT40_GLOB = "unit-40-*.toml"
CSRF_RE = re.compile(
    r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"'
)
# Unit 40 asks for one occurrence of every criterion, so "too few" could never show. The bench
# raises this one criterion to two (in its own throw-away database only) so every reason occurs.
TWO_OCCURRENCES = "2.4"

# ---------------------------------------------------------------------------------------------
# Seed data: a deterministic, realistic-looking centre.
# ---------------------------------------------------------------------------------------------

FIRST = ("Aisha", "Ben", "Chloe", "Dev", "Ella", "Femi", "Grace", "Hamza", "Isla", "Jack",
         "Kiran", "Leah", "Mo", "Niamh", "Owen", "Priya", "Quinn", "Rosa", "Sam", "Tariq",
         "Uma", "Vikram", "Wren", "Yusuf", "Zara")
LAST = ("Khan", "Carter", "Marin", "Okafor", "Lewis", "Patel", "Murphy", "Nowak", "Evans",
        "Hughes", "Ahmed", "Walsh", "Reid", "Singh", "Taylor", "Brown", "Osei", "Kowalski",
        "Jones", "Davies", "Wilson", "Campbell", "Ali", "Thomas", "Roberts")
EMPLOYERS = (("Brightwater Energy Ltd", "Contact centre, Leeds"),
             ("Harbour Home Stores", "Customer service desk, Hull"),
             ("Northgate Housing Association", "Tenant services, Bradford"),
             ("Pennine Rail", "Customer relations, York"),
             ("Castleford Council", "One-stop shop, Castleford"),
             ("Airedale Water", "Billing team, Keighley"))
KIND_WEIGHTS = {"reflective_account": 20, "witness_testimony": 10, "observation": 12,
                "professional_discussion": 10, "work_product": 12, "log": 4, "email": 10,
                "photo": 5, "questioning": 8, "rpl": 3, "descriptor": 6}
TOPICS = ("a billing complaint", "a late delivery", "a damaged parcel", "a repair that was "
          "missed", "a rude call handler", "a refund that never arrived", "a noisy neighbour",
          "a meter reading dispute", "a cancelled appointment", "a faulty boiler",
          "a lost booking", "a price-match request", "an accessibility complaint",
          "a complaint escalated to the manager", "a repeat complaint")
SENTENCES = ("The customer rang in upset because nobody had called them back.",
             "I listened without interrupting and summarised the problem back to them.",
             "I checked the account history and found two earlier contacts about the same issue.",
             "I explained what I could do straight away and what needed my manager's approval.",
             "I agreed a time to call back and logged the complaint in the CRM.",
             "I kept the customer informed by email until the repair was booked.",
             "Looking back, I should have asked sooner whether they needed the letter in print.",
             "The complaint policy says we must acknowledge within two working days, which I did.",
             "My team leader signed off the goodwill payment within my authority limit.",
             "I recorded the root cause so the service team could review the process.")
PLACES = ("Contact centre", "Customer's home", "Service desk", "Phone", "Video call", "")


@dataclass(frozen=True)
class CriterionInfo:
    id: int
    number: str
    lo: int
    version: int
    accepted: frozenset[str]


@dataclass
class Learner:
    user_id: int
    enrolment_id: int
    assessor_id: int
    start_on: date
    items: int
    open_criteria: list[CriterionInfo] = field(default_factory=list)
    # How much of their evidence goes to each criterion: some get plenty, some one item or none.
    attention: dict[int, float] = field(default_factory=dict)


@dataclass
class Seeded:
    seconds: float
    table_seconds: dict[str, float]
    rows: dict[str, int]
    password: str
    learners: list[Learner]
    tiny: Learner
    heavy: Learner
    assessor_ids: list[int]


class Ids:
    """Hand out primary keys ourselves, so rows can refer to each other without RETURNING."""

    def __init__(self, start: int) -> None:
        self.value = start

    def next(self) -> int:
        self.value += 1
        return self.value


def _utc(day: date, rng: random.Random, now: datetime) -> datetime:
    moment = datetime.combine(day, dtime(rng.randint(8, 17), rng.randint(0, 59)), tzinfo=UTC)
    return min(moment, now)


def _details(rng: random.Random, kind: str) -> dict[str, Any]:
    if kind == "witness_testimony":
        expert = rng.random() < 0.2
        return {"witness_name": f"{rng.choice(FIRST)} {rng.choice(LAST)}",
                "witness_role": "Team leader" if expert else "Colleague",
                "relationship": "Line manager" if expert else "Colleague",
                "witness_contact": "witness@employer.example", "is_expert": expert,
                "expert_competence": "Holds the unit and assesses in the team" if expert else ""}
    if kind == "rpl":
        return {"certificate_title": "Level 2 Certificate in Customer Service",
                "awarding_body": "City & Guilds"}
    if kind == "descriptor":
        return {"held_where": f"Complaints database, case {rng.randint(1000, 9999)}",
                "held_by": f"{rng.choice(FIRST)} {rng.choice(LAST)}"}
    if kind == "observation":
        return {"observer": "Assessor"}
    return {}


def _status(rng: random.Random, age_days: int) -> str:
    if age_days < 45:
        return rng.choices(("draft", "submitted", "referred", "withdrawn"), (45, 45, 6, 4))[0]
    return rng.choices(("draft", "submitted", "accepted", "referred", "withdrawn"),
                       (8, 27, 50, 11, 4))[0]


class Seeder:
    """Bulk-insert the centre with Core executemany, in batches, in one transaction."""

    def __init__(self, engine: Engine, unit_id: int, criteria: list[CriterionInfo],
                 rng: random.Random, batch: int = 10_000) -> None:
        self.engine = engine
        self.unit_id = unit_id
        self.criteria = criteria
        self.lo2 = [c for c in criteria if c.lo == 2]
        self.rng = rng
        self.batch = batch
        self.today = date.today()
        self.now = datetime.now(UTC)
        self.table_seconds: Counter[str] = Counter()
        self.rows: Counter[str] = Counter()
        self.kinds = list(KIND_WEIGHTS)
        self.weights = list(KIND_WEIGHTS.values())

    def _insert(self, conn: sqlalchemy.Connection, table: sqlalchemy.Table,
                rows: list[dict[str, Any]]) -> None:
        started = time.perf_counter()
        for i in range(0, len(rows), self.batch):
            conn.execute(table.insert(), rows[i:i + self.batch])
        self.table_seconds[table.name] += time.perf_counter() - started
        self.rows[table.name] += len(rows)

    def _next_id(self, conn: sqlalchemy.Connection, table: sqlalchemy.Table) -> Ids:
        return Ids(conn.scalar(select(func.coalesce(func.max(table.c.id), 0))))

    def run(self, learners: int, items: int, assessors: int, iqas: int) -> Seeded:
        started = time.perf_counter()
        rng = self.rng
        password = secrets.token_urlsafe(18)
        password_hash = hash_password(password)  # one real Argon2 hash, shared by everyone
        with self.engine.begin() as conn:
            centre_id = self._next_id(conn, Centre.__table__).next()
            self._insert(conn, Centre.__table__, [{
                "id": centre_id, "name": "Bench Centre", "created_at": self.now}])
            user_ids = self._next_id(conn, User.__table__)
            users: list[dict[str, Any]] = []
            roles: list[dict[str, Any]] = []

            def person(role: str, label: str, n: int, status: str | None = None) -> int:
                uid = user_ids.next()
                users.append({
                    "id": uid, "centre_id": centre_id,
                    "email": f"bench-{label}-{n:05d}@bench.example",
                    "full_name": f"{FIRST[uid % len(FIRST)]} {LAST[(uid // 7) % len(LAST)]}",
                    "password_hash": password_hash, "is_active": True,
                    "assessor_status": status, "login_id": secrets.token_urlsafe(32),
                    "created_at": self.now, "last_login_at": None})
                roles.append({"user_id": uid, "role": role})
                return uid

            person("admin", "admin", 1)
            assessor_ids = [person("assessor", "assessor", n,
                                   "trainee" if n % 10 == 0 else "qualified")
                            for n in range(assessors)]
            iqa_ids = [person("iqa", "iqa", n) for n in range(iqas)]
            plan = [(person("learner", "learner", n), items) for n in range(learners)]
            tiny_uid = person("learner", "learner-tiny", 1)
            heavy_uid = person("learner", "learner-heavy", 1)
            plan += [(tiny_uid, 1), (heavy_uid, 400)]
            self._insert(conn, User.__table__, users)
            self._insert(conn, UserRole.__table__, roles)

            enrolment_ids = self._next_id(conn, Enrolment.__table__)
            enrolments: list[dict[str, Any]] = []
            everyone: list[Learner] = []
            for n, (uid, count) in enumerate(plan):
                # The two extra learners share assessor 0 with a typical caseload.
                assessor = assessor_ids[0] if count != items else assessor_ids[n % assessors]
                employer, workplace = EMPLOYERS[n % len(EMPLOYERS)]
                start = self.today - timedelta(days=rng.randint(90, 34 * 30))
                eid = enrolment_ids.next()
                enrolments.append({
                    "id": eid, "learner_id": uid, "unit_id": self.unit_id,
                    "assessor_id": assessor, "iqa_id": iqa_ids[n % iqas], "start_on": start,
                    "planned_end_on": start + timedelta(days=365), "employer": employer,
                    "workplace": workplace, "status": "active", "created_at": self.now})
                # Some criteria not started yet: these show as "no evidence".
                untouched = rng.choices((0, 1, 2, 3, 4, 5), (35, 25, 20, 10, 6, 4))[0]
                skip = set(rng.sample(range(len(self.criteria)), untouched))
                learner = Learner(uid, eid, assessor, start, count,
                                  [c for i, c in enumerate(self.criteria) if i not in skip],
                                  {c.id: rng.expovariate(1.0) + 0.05 for c in self.criteria})
                everyone.append(learner)
            self._insert(conn, Enrolment.__table__, enrolments)

            evidence_ids = self._next_id(conn, Evidence.__table__)
            version_ids = self._next_id(conn, EvidenceVersion.__table__)
            mapping_ids = self._next_id(conn, EvidenceMapping.__table__)
            chunk: list[Learner] = []
            for learner in everyone:
                chunk.append(learner)
                if sum(c.items for c in chunk) >= self.batch:
                    self._evidence(conn, chunk, evidence_ids, version_ids, mapping_ids)
                    chunk = []
            if chunk:
                self._evidence(conn, chunk, evidence_ids, version_ids, mapping_ids)
        self._after_load()
        return Seeded(time.perf_counter() - started, dict(self.table_seconds), dict(self.rows),
                      password, everyone[:-2], everyone[-2], everyone[-1], assessor_ids)

    def _evidence(self, conn: sqlalchemy.Connection, chunk: list[Learner], evidence_ids: Ids,
                  version_ids: Ids, mapping_ids: Ids) -> None:
        rng = self.rng
        evidence: list[dict[str, Any]] = []
        versions: list[dict[str, Any]] = []
        mappings: list[dict[str, Any]] = []
        span_cache: dict[date, int] = {}
        for learner in chunk:
            span = span_cache.setdefault(learner.start_on, (self.today - learner.start_on).days)
            for _ in range(learner.items):
                kind = rng.choices(self.kinds, self.weights)[0]
                spec = KINDS[kind]
                details = _details(rng, kind)
                simulated = kind not in ("rpl", "observation") and rng.random() < 0.03
                if kind == "rpl":
                    activity = learner.start_on - timedelta(days=rng.randint(30, 5 * 365))
                else:
                    activity = learner.start_on + timedelta(days=rng.randint(0, span))
                status = _status(rng, (self.today - activity).days)
                by_assessor = kind in ("observation", "professional_discussion") or (
                    kind == "witness_testimony" and rng.random() < 0.5)
                author = learner.assessor_id if by_assessor else learner.user_id
                created = _utc(max(activity, learner.start_on)
                               + timedelta(days=rng.randint(0, 10)), rng, self.now)
                submitted = (None if status == "draft"
                             else min(created + timedelta(hours=rng.randint(1, 72)), self.now))
                eid = evidence_ids.next()
                evidence.append({
                    "id": eid, "enrolment_id": learner.enrolment_id, "kind": kind,
                    "status": status, "current_version": 1, "created_by_id": author,
                    "created_at": created, "updated_at": submitted or created,
                    "submitted_at": submitted})
                topic = rng.choice(TOPICS)
                versions.append({
                    "id": version_ids.next(), "evidence_id": eid, "version": 1,
                    "title": f"{spec.label}: {topic}"[:200], "activity_on": activity,
                    "activity_place": rng.choice(PLACES),
                    "body_md": " ".join(rng.sample(SENTENCES, rng.randint(2, 5))),
                    "details": details, "is_simulated": simulated,
                    "personal_data_confirmed": True, "change_note": "",
                    "created_by_id": author, "created_at": created})
                # What the learner maps it to: usually criteria that accept its method; now and
                # then a reflective account against LO2 (which needs real-work evidence).
                pool = learner.open_criteria or self.criteria
                if kind == "reflective_account" and rng.random() < 0.08:
                    candidates = [c for c in pool if c.lo == 2] or self.lo2
                else:
                    real = spec.method_for(details, False)
                    candidates = [c for c in pool if real in c.accepted] or pool
                wanted = min(len(candidates), rng.choices((1, 2, 3, 4), (40, 35, 20, 5))[0])
                weight = learner.attention
                targets = sorted(candidates, reverse=True,
                                 key=lambda c: rng.random() ** (1 / weight[c.id]))[:wanted]
                for c in targets:
                    mappings.append({
                        "id": mapping_ids.next(), "evidence_id": eid, "criterion_id": c.id,
                        "criterion_version": c.version,
                        "rationale": f"Shows {c.number}: {topic}.", "location":
                        rng.choice(("", "paragraph 2", "page 1", "00:04:30")),
                        "created_by_id": author, "created_at": created, "removed_at": None,
                        "removed_by_id": None})
                if rng.random() < 0.04:  # a mapping the learner later took off, kept as history
                    c = rng.choice(self.criteria)
                    mappings.append({
                        "id": mapping_ids.next(), "evidence_id": eid, "criterion_id": c.id,
                        "criterion_version": c.version, "rationale": "", "location": "",
                        "created_by_id": author, "created_at": created,
                        "removed_at": min(created + timedelta(days=1), self.now),
                        "removed_by_id": author})
        self._insert(conn, Evidence.__table__, evidence)
        self._insert(conn, EvidenceVersion.__table__, versions)
        self._insert(conn, EvidenceMapping.__table__, mappings)

    def _after_load(self) -> None:
        started = time.perf_counter()
        with self.engine.begin() as conn:
            if self.engine.dialect.name == "postgresql":
                # Ids were given explicitly: move the sequences past them.
                for table in ("centres", "users", "enrolments", "evidence", "evidence_versions",
                              "evidence_mappings"):
                    conn.execute(text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                        f"(SELECT max(id) FROM {table}))"))
        if self.engine.dialect.name == "postgresql":
            # What autovacuum does shortly after a bulk load; SQLite is left as the app leaves
            # it (the app never runs ANALYZE).
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("ANALYZE"))
        self.table_seconds["(sequences, analyze)"] += time.perf_counter() - started


def live_mapping_counts(engine: Engine, enrolment_ids: list[int]) -> dict[int, int]:
    with engine.connect() as conn:
        return dict(conn.execute(
            select(Evidence.enrolment_id, func.count(EvidenceMapping.id))
            .join(EvidenceMapping, EvidenceMapping.evidence_id == Evidence.id)
            .where(Evidence.enrolment_id.in_(enrolment_ids), EvidenceMapping.removed_at.is_(None))
            .group_by(Evidence.enrolment_id)).all())


# ---------------------------------------------------------------------------------------------
# Measuring
# ---------------------------------------------------------------------------------------------


class QueryCounter:
    """Count (and optionally keep) every statement sent through the engine."""

    def __init__(self, engine: Engine) -> None:
        self.count = 0
        # Connections taken from the pool: each costs one more round trip that the statement
        # count cannot see, as the engine pings on checkout (pool_pre_ping).
        self.checkouts = 0
        self.keep = False
        self.statements: list[tuple[str, Any]] = []
        event.listen(engine, "before_cursor_execute", self._seen)
        event.listen(engine, "checkout", self._checkout)

    def _checkout(self, *_args: Any) -> None:
        self.checkouts += 1

    def reset(self) -> None:
        self.count = self.checkouts = 0

    def _seen(self, _conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any,
              _executemany: bool) -> None:
        self.count += 1
        if self.keep:
            self.statements.append((statement, parameters))

    @contextmanager
    def recording(self) -> Iterator[list[tuple[str, Any]]]:
        self.statements, self.keep, self.count = [], True, 0
        try:
            yield self.statements
        finally:
            self.keep = False


def _summary(times_ms: list[float], counts: list[int], cpu_ms: list[float],
             checkouts: list[int]) -> dict[str, Any]:
    ordered = sorted(times_ms)
    return {
        "requests": len(times_ms),
        "median_ms": round(statistics.median(ordered), 2),
        "p95_ms": round(statistics.quantiles(ordered, n=100, method="inclusive")[94], 2)
        if len(ordered) > 1 else round(ordered[0], 2),
        "mean_ms": round(statistics.fmean(ordered), 2),
        "min_ms": round(ordered[0], 2),
        "max_ms": round(ordered[-1], 2),
        # This process's CPU time: steadier than wall time when the machine is busy.
        "cpu_median_ms": round(statistics.median(cpu_ms), 2),
        "queries_per_request": Counter(counts).most_common(1)[0][0],
        "queries_seen": sorted(set(counts)),
        "connection_checkouts_per_request": Counter(checkouts).most_common(1)[0][0],
    }


def time_get(client: Any, url: str, counter: QueryCounter, *, requests: int, warmup: int,
             headers: dict[str, str] | None = None) -> dict[str, Any]:
    """GET the URL warmup + requests times; return latency percentiles and queries per request."""
    size = 0
    for _ in range(warmup):
        response = client.get(url, headers=headers)
        if response.status_code != 200:
            raise RuntimeError(f"GET {url} answered {response.status_code}: "
                               f"{response.get_data(as_text=True)[:500]}")
    times, counts, cpu, checkouts = [], [], [], []
    for _ in range(requests):
        counter.reset()
        cpu_started = time.process_time()
        started = time.perf_counter()
        response = client.get(url, headers=headers)
        body = response.get_data()
        elapsed = time.perf_counter() - started
        cpu.append((time.process_time() - cpu_started) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"GET {url} answered {response.status_code}")
        times.append(elapsed * 1000)
        counts.append(counter.count)
        checkouts.append(counter.checkouts)
        size = len(body)
    result = _summary(times, counts, cpu, checkouts)
    result["response_bytes"] = size
    return result


def time_direct(engine_db: Any, enrolment_id: int, counter: QueryCounter, *, requests: int,
                warmup: int) -> dict[str, Any]:
    """Time compute_coverage alone: a fresh session each call, the enrolment loaded beforehand."""
    today = date.today()
    times, counts, cpu, checkouts = [], [], [], []
    result = None
    for i in range(warmup + requests):
        with engine_db.sessionmaker() as s:
            enrolment = s.scalar(select(Enrolment).options(joinedload(Enrolment.unit))
                                 .where(Enrolment.id == enrolment_id))
            counter.reset()
            cpu_started = time.process_time()
            started = time.perf_counter()
            result = compute_coverage(s, enrolment, today)
            elapsed = time.perf_counter() - started
            if i >= warmup:
                times.append(elapsed * 1000)
                cpu.append((time.process_time() - cpu_started) * 1000)
                counts.append(counter.count)
                checkouts.append(counter.checkouts)
    summary = _summary(times, counts, cpu, checkouts)
    summary["criteria"] = result.total if result else 0
    summary["evidenced"] = result.evidenced if result else 0
    summary["columns"] = len(result.columns) if result else 0
    return summary


def sign_in(app: Any, email: str, password: str) -> Any:
    client = app.test_client()
    page = client.get("/login")
    match = CSRF_RE.search(page.get_data(as_text=True))
    if not match:
        raise RuntimeError("the login page has no CSRF token")
    response = client.post("/login", data={"email": email, "password": password,
                                           "csrf_token": match.group(1) or match.group(2)})
    if response.status_code != 302:
        raise RuntimeError(f"could not sign in as {email}: {response.status_code}")
    return client


def api_coverage_rule(app: Any) -> str | None:
    """Return the API coverage route's pattern if the app has it (it is being added)."""
    for rule in app.url_map.iter_rules():
        if (rule.rule.startswith("/api/v1/enrolments/<") and rule.rule.endswith("/coverage")
                and "GET" in (rule.methods or ()) and len(rule.arguments) == 1):
            return rule.rule
    return None


def api_url(rule: str, enrolment_id: int) -> str:
    return re.sub(r"<[^>]+>", str(enrolment_id), rule)


def explain(engine: Engine, statements: list[tuple[str, Any]]) -> list[dict[str, Any]]:
    """Return the database's plan for each statement (as executed, with its parameters)."""
    plans = []
    prefix = "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN "
    with engine.connect() as conn:
        for statement, parameters in statements:
            try:
                rows = conn.exec_driver_sql(prefix + statement, parameters).all()
                plan = [" | ".join(str(v) for v in row) for row in rows]
            except Exception as exc:  # noqa: BLE001 - a plan is a nice-to-have
                plan = [f"(no plan: {exc.__class__.__name__})"]
                conn.rollback()
            plans.append({"sql": " ".join(statement.split()), "plan": plan})
    return plans


def reason_census(db: Any, enrolment_ids: list[int]) -> dict[str, Any]:
    """Compute coverage for a sample of portfolios; count statuses and gap reasons."""
    reasons: Counter[str] = Counter()
    statuses: Counter[str] = Counter()
    percents = []
    today = date.today()
    started = time.perf_counter()
    with db.sessionmaker() as s:
        for eid in enrolment_ids:
            enrolment = s.scalar(select(Enrolment).options(joinedload(Enrolment.unit))
                                 .where(Enrolment.id == eid))
            coverage = compute_coverage(s, enrolment, today)
            percents.append(coverage.percent)
            for c in coverage.criteria:
                statuses[c.status] += 1
                for r in c.reasons:
                    reasons[r.code] += 1
            s.expunge_all()
    return {"portfolios": len(enrolment_ids), "criterion_statuses": dict(statuses),
            "reasons": dict(sorted(reasons.items())),
            "median_percent_evidenced": statistics.median(percents) if percents else 0,
            "seconds": round(time.perf_counter() - started, 2)}


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------


def _isolate_environment(instance: str) -> None:
    """Ignore the developer's PORTFOLIO_* settings and instance folder, like the test suite."""
    for name in list(os.environ):
        if name.startswith("PORTFOLIO_") or name == "DATABASE_URL":
            del os.environ[name]
    os.environ["PORTFOLIO_INSTANCE_PATH"] = instance


@contextmanager
def database(kind: str, workdir: Path) -> Iterator[tuple[str, str]]:
    """Yield (SQLAlchemy URL, description) of a fresh, empty database."""
    if kind == "sqlite":
        path = workdir / "bench.sqlite3"
        import sqlite3

        yield f"sqlite:///{path}", f"SQLite {sqlite3.sqlite_version} (file, WAL)"
        return
    sys.path.insert(0, str(PROJECT_ROOT))
    from tests.pg import PostgresServer

    server = PostgresServer()
    try:
        url = server.start()
        import psycopg

        with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]
        yield url, f"PostgreSQL {version} (private server, fsync off)"
    finally:
        server.stop()


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT_ROOT,
                             capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=PROJECT_ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
        return out + ("+uncommitted" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return None


def run(args: argparse.Namespace) -> dict[str, Any]:
    total_started = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="portfolio-bench-"))
    _isolate_environment(str(workdir / "instance"))
    result: dict[str, Any] = {
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "database": args.db, "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "git": _git_commit(), "python": platform.python_version(),
        "sqlalchemy": sqlalchemy.__version__, "machine": f"{platform.machine()}, "
        f"{os.cpu_count()} CPUs", "parameters": {
            "learners": args.learners, "items_per_learner": args.items,
            "assessors": args.assessors, "iqas": args.iqas, "requests": args.requests,
            "warmup": args.warmup, "size_requests": args.size_requests, "seed": args.seed},
    }
    try:
        with database(args.db, workdir) as (url, description):
            result["server"] = description
            seal = workdir / "seal.key"  # production settings need one
            seal.write_text(secrets.token_urlsafe(48) + "\n")
            app = create_app({
                "SEAL_KEY_FILE": str(seal),
                "DATABASE_URL": url, "SECRET_KEY": secrets.token_urlsafe(32),
                "SESSION_COOKIE_SECURE": False, "PROPAGATE_EXCEPTIONS": True,
                "EXPORTS_DIR": str(workdir / "exports"),
                "STORAGE_DIR": str(workdir / "storage")})
            db = get_database(app)
            try:
                _measure(app, db, args, result)
            finally:
                db.engine.dispose()
    finally:
        if args.keep and args.db == "sqlite" and (workdir / "bench.sqlite3").exists():
            shutil.copyfile(workdir / "bench.sqlite3", args.keep)
            result["kept_database"] = str(args.keep)
        shutil.rmtree(workdir, ignore_errors=True)
    result["total_seconds"] = round(time.perf_counter() - total_started, 1)
    result["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    return result


def _step(message: str) -> None:
    print(f"· {message}", file=sys.stderr, flush=True)


def migrate_and_load_unit40(app: Any, db: Any) -> tuple[int, list[CriterionInfo]]:
    """Migrate the fresh database, load Unit 40 (with the bench's one adjustment, see
    TWO_OCCURRENCES) and return its id and criteria, in the order the unit lists them."""
    schema.upgrade(app)
    with db.sessionmaker() as s:
        load_paths(s, sorted((PROJECT_ROOT / "criteria").glob(UNIT40_GLOB)))
        unit = s.scalar(select(Unit).where(Unit.number == "40"))
        s.execute(update(Criterion).where(Criterion.unit_id == unit.id,
                                          Criterion.number == TWO_OCCURRENCES)
                  .values(required_occurrences=2))
        s.commit()
        methods: dict[int, set[str]] = {}
        for cid, method in s.execute(select(CriterionMethod.criterion_id,
                                            CriterionMethod.method)):
            methods.setdefault(cid, set()).add(method)
        criteria = [CriterionInfo(c.id, c.number, lo, c.version, frozenset(methods[c.id]))
                    for c, lo in s.execute(
                        select(Criterion, LearningOutcome.number)
                        .join(LearningOutcome, LearningOutcome.id == Criterion.learning_outcome_id)
                        .where(Criterion.unit_id == unit.id, Criterion.is_retired.is_(False))
                        .order_by(LearningOutcome.number, Criterion.position))]
        return unit.id, criteria


def _measure(app: Any, db: Any, args: argparse.Namespace, result: dict[str, Any]) -> None:
    engine = db.engine
    _step(f"migrating a fresh {args.db} database")
    started = time.perf_counter()
    unit_id, criteria = migrate_and_load_unit40(app, db)
    result["migrate_and_load_seconds"] = round(time.perf_counter() - started, 2)
    result["bench_adjustments"] = [f"criterion {TWO_OCCURRENCES} requires 2 occurrences "
                                   "(Unit 40 requires 1 everywhere) so 'too_few' occurs"]

    _step(f"seeding {args.learners:,} learners x {args.items} items (+1 with 1, +1 with 400)")
    seeder = Seeder(engine, unit_id, criteria, random.Random(args.seed))
    seeded = seeder.run(args.learners, args.items, args.assessors, args.iqas)
    result["seed"] = {"seconds": round(seeded.seconds, 1),
                      "table_seconds": {k: round(v, 2) for k, v in seeded.table_seconds.items()},
                      "rows": seeded.rows}
    live = {}
    with engine.connect() as conn:
        live["live_mappings"] = conn.scalar(select(func.count()).select_from(
            EvidenceMapping.__table__).where(EvidenceMapping.removed_at.is_(None)))
        live["removed_mappings"] = seeded.rows["evidence_mappings"] - live["live_mappings"]
        live["evidence_by_status"] = dict(conn.execute(
            select(Evidence.status, func.count()).group_by(Evidence.status)).all())
        live["simulated_versions"] = conn.scalar(select(func.count()).where(
            EvidenceVersion.is_simulated.is_(True)))
        window = date.today() - timedelta(days=24 * 30 + 15)
        live["versions_older_than_24_months"] = conn.scalar(select(func.count()).where(
            EvidenceVersion.activity_on < window))
    result["seed"].update(live)
    _step(f"seeded in {seeded.seconds:.1f} s: {seeded.rows}")

    # A typical learner: one of assessor 0's caseload, with the median number of mappings.
    caseload = [ln for ln in seeded.learners if ln.assessor_id == seeded.assessor_ids[0]]
    counts = live_mapping_counts(engine, [ln.enrolment_id for ln in caseload])
    caseload.sort(key=lambda ln: (counts.get(ln.enrolment_id, 0), ln.enrolment_id))
    typical = caseload[len(caseload) // 2]
    sizes = {1: seeded.tiny, args.items: typical, 400: seeded.heavy}
    size_counts = live_mapping_counts(engine, [ln.enrolment_id for ln in sizes.values()])
    result["typical"] = {"enrolment_id": typical.enrolment_id, "evidence_items": typical.items,
                         "live_mappings": counts.get(typical.enrolment_id, 0),
                         "assessor_caseload": len(caseload)}

    with db.sessionmaker() as s:
        emails = dict(s.execute(select(User.id, User.email).where(
            User.id.in_([ln.user_id for ln in sizes.values()]))).all())
    counter = QueryCounter(engine)
    api_rule = api_coverage_rule(app)
    # The page is read signed in; the API with a bearer token and no cookie, as a script would.
    clients, api_client, tokens = {}, app.test_client(), {}
    for n, learner in sizes.items():
        clients[n] = sign_in(app, emails[learner.user_id], seeded.password)
        if api_rule:
            with db.sessionmaker() as s:
                user = s.get(User, learner.user_id)
                _token, raw = create_api_token(s, user, "coverage benchmark")
                s.commit()
            tokens[n] = {"Authorization": f"Bearer {raw}"}

    page = f"/enrolments/{typical.enrolment_id}/coverage"
    _step(f"timing GET {page} ({args.requests} requests after {args.warmup} warm-up)")
    result["page"] = {"url": page, **time_get(clients[args.items], page, counter,
                                              requests=args.requests, warmup=args.warmup)}
    if api_rule:
        url = api_url(api_rule, typical.enrolment_id)
        _step(f"timing GET {url}")
        result["api"] = {"url": url, **time_get(api_client, url, counter,
                                                requests=args.requests, warmup=args.warmup,
                                                headers=tokens[args.items])}
    else:
        result["api"] = {"skipped": "GET /api/v1/enrolments/<id>/coverage is not registered yet"}
    _step("timing compute_coverage() directly")
    result["direct"] = time_direct(db, typical.enrolment_id, counter, requests=args.requests,
                                   warmup=args.warmup)

    _step("query counts and latency for 1, 40 and 400 evidence items")
    by_size: dict[str, Any] = {}
    for n, learner in sizes.items():
        entry: dict[str, Any] = {"enrolment_id": learner.enrolment_id, "evidence_items": n,
                                 "live_mappings": size_counts.get(learner.enrolment_id, 0)}
        url = f"/enrolments/{learner.enrolment_id}/coverage"
        entry["page"] = time_get(clients[n], url, counter, requests=args.size_requests,
                                 warmup=3)
        if api_rule:
            entry["api"] = time_get(api_client, api_url(api_rule, learner.enrolment_id),
                                    counter, requests=args.size_requests, warmup=3,
                                    headers=tokens[n])
        entry["direct"] = time_direct(db, learner.enrolment_id, counter,
                                      requests=args.size_requests, warmup=3)
        by_size[str(n)] = entry
    result["by_size"] = by_size
    constant = {}
    for what in ("page", "api", "direct"):
        seen = [e[what]["queries_per_request"] for e in by_size.values() if what in e]
        if seen:
            constant[what] = {"counts": seen, "constant": len(set(seen)) == 1}
    result["query_count_constant"] = constant

    # What one request runs, and the coverage queries' plans.
    with counter.recording() as statements:
        clients[args.items].get(page)
    result["page_statements"] = [" ".join(sql.split())[:300] for sql, _ in statements]
    if api_rule:
        with counter.recording() as statements:
            api_client.get(api_url(api_rule, typical.enrolment_id), headers=tokens[args.items])
        result["api_statements"] = [" ".join(sql.split())[:300] for sql, _ in statements]
    with db.sessionmaker() as s:
        enrolment = s.scalar(select(Enrolment).options(joinedload(Enrolment.unit))
                             .where(Enrolment.id == typical.enrolment_id))
        with counter.recording() as statements:
            compute_coverage(s, enrolment, date.today())
        recorded = list(statements)
    result["coverage_plans"] = explain(engine, recorded)

    _step(f"gap-reason census over {args.census} portfolios")
    sample = random.Random(args.seed + 1).sample(
        [ln.enrolment_id for ln in seeded.learners], min(args.census, len(seeded.learners)))
    result["census"] = reason_census(db, sample + [seeded.tiny.enrolment_id,
                                                   seeded.heavy.enrolment_id])


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------


def _fmt_stats(entry: dict[str, Any]) -> str:
    return (f"{entry['median_ms']:>9.2f} {entry['p95_ms']:>9.2f} {entry['mean_ms']:>9.2f}"
            f" {entry['cpu_median_ms']:>9.2f} {entry['queries_per_request']:>8}")


def report(result: dict[str, Any], explain_plans: bool) -> str:
    lines = []
    seed = result["seed"]
    rows = seed["rows"]
    lines.append(f"Coverage benchmark on {result['server']}  ({result['machine']}, "
                 f"Python {result['python']}, SQLAlchemy {result['sqlalchemy']}, "
                 f"git {result['git']})")
    lines.append("")
    lines.append(f"Seeding: {seed['seconds']:.1f} s for {rows.get('users', 0):,} users, "
                 f"{rows.get('enrolments', 0):,} enrolments, {rows.get('evidence', 0):,} "
                 f"evidence, {rows.get('evidence_versions', 0):,} versions, "
                 f"{seed['live_mappings']:,} live mappings (+{seed['removed_mappings']:,} "
                 "removed)")
    lines.append("  per table: " + ", ".join(f"{k} {v:.1f} s"
                                             for k, v in seed["table_seconds"].items()))
    lines.append(f"  evidence by status: {seed['evidence_by_status']}; simulated "
                 f"{seed['simulated_versions']:,}; older than 24 months "
                 f"{seed['versions_older_than_24_months']:,}")
    typical = result["typical"]
    lines.append(f"Typical learner: enrolment {typical['enrolment_id']}, "
                 f"{typical['evidence_items']} items, {typical['live_mappings']} live mappings "
                 f"(assessor caseload {typical['assessor_caseload']})")
    lines.append("")
    lines.append(f"{'':36} {'median ms':>9} {'p95 ms':>9} {'mean ms':>9} {'cpu ms':>9}"
                 f" {'queries':>8}")
    lines.append(f"{'GET ' + result['page']['url']:36} {_fmt_stats(result['page'])}")
    if "skipped" in result["api"]:
        lines.append(f"{'GET /api/v1/.../coverage':36} skipped: {result['api']['skipped']}")
    else:
        lines.append(f"{'GET ' + result['api']['url']:36} {_fmt_stats(result['api'])}")
    lines.append(f"{'compute_coverage() alone':36} {_fmt_stats(result['direct'])}")
    checkouts = ", ".join(f"{k} {result[k]['connection_checkouts_per_request']}"
                          for k in ("page", "api", "direct") if "skipped" not in result[k])
    lines.append(f"  connection checkouts per request: {checkouts} (each adds one pre-ping "
                 "round trip that the query count does not include)")
    lines.append(f"  ({result['page']['requests']} requests each after "
                 f"{result['parameters']['warmup']} warm-up; page "
                 f"{result['page']['response_bytes']:,} bytes)")
    lines.append("")
    sizes = result["by_size"]
    lines.append("By portfolio size       " + "".join(f"{k + ' items':>22}" for k in sizes))
    lines.append("  live mappings         " + "".join(f"{e['live_mappings']:>22}"
                                                     for e in sizes.values()))
    for what, label in (("page", "page"), ("api", "API"), ("direct", "compute_coverage")):
        if not all(what in e for e in sizes.values()):
            continue
        cells = "".join(f"{e[what]['queries_per_request']:>5} q {e[what]['median_ms']:>8.2f} ms"
                        f" med" for e in sizes.values())
        same = result["query_count_constant"][what]["constant"]
        lines.append(f"  {label:20}{cells}   queries constant: {'yes' if same else 'NO'}")
    lines.append("")
    census = result["census"]
    lines.append(f"Gap reasons over {census['portfolios']} portfolios "
                 f"({census['seconds']} s): {census['reasons']}")
    lines.append(f"  criterion statuses {census['criterion_statuses']}, median "
                 f"{census['median_percent_evidenced']}% evidenced")
    lines.append("")
    lines.append(f"Page request statements ({len(result['page_statements'])}):")
    for sql in result["page_statements"]:
        lines.append(f"  - {sql[:150]}")
    if result.get("api_statements"):
        lines.append(f"API request statements ({len(result['api_statements'])}):")
        for sql in result["api_statements"]:
            lines.append(f"  - {sql[:150]}")
    if explain_plans:
        lines.append("")
        lines.append("Coverage query plans:")
        for item in result["coverage_plans"]:
            lines.append(f"  {item['sql'][:150]}")
            for step in item["plan"]:
                lines.append(f"      {step}")
    lines.append("")
    lines.append(f"Total run time {result['total_seconds']} s; load average at start "
                 f"{result['load_average_at_start']}, at end {result['load_average_at_end']} "
                 "(wall times are unreliable when it exceeds the CPU count; cpu ms is steadier)")
    return "\n".join(lines)


def write_results(result: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    existing: dict[str, Any] = {}
    if path.exists():
        try:
            existing = json.loads(path.read_text())
        except ValueError:
            existing = {}
    existing[result["database"]] = result
    path.write_text(json.dumps(existing, indent=2, default=str) + "\n")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.coverage_bench",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--learners", type=int, default=2000)
    parser.add_argument("--items", type=int, default=40, help="evidence items per learner")
    parser.add_argument("--assessors", type=int, default=60)
    parser.add_argument("--iqas", type=int, default=4)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--size-requests", type=int, default=30,
                        help="requests per size for the 1/40/400-item comparison")
    parser.add_argument("--census", type=int, default=300,
                        help="portfolios sampled to count gap reasons")
    parser.add_argument("--seed", type=int, default=40)
    parser.add_argument("--out", type=Path, default=RESULTS_FILE)
    parser.add_argument("--explain", action="store_true", help="print the query plans too")
    parser.add_argument("--keep", type=Path, metavar="FILE",
                        help="SQLite only: copy the seeded database here for a closer look")
    args = parser.parse_args(argv)
    if args.items in (1, 400):
        parser.error("--items must differ from 1 and 400 (those sizes are added separately)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = run(args)
    print(report(result, args.explain))
    write_results(result, args.out)
    print(f"Results written to {args.out}")
    growing = [what for what, c in result["query_count_constant"].items() if not c["constant"]]
    if growing:
        print(f"FAIL: the number of queries grows with the evidence for: {', '.join(growing)}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
