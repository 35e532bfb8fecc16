"""Load every main page of every role, and the API, the way a provider would serve them.

Not a test (pytest only collects tests/): run it with `make bench-pages`, or directly:

    .venv/bin/python -m bench.pages_bench [--learners 2000|10000] [--rounds 3] [--seconds 4]

What it does, in one run:
1. starts a private PostgreSQL server, migrates it, loads Unit 40 and seeds a centre
   (2,000 learners x 40 evidence items by default, an assessor caseload of about 60 learners,
   4 IQAs) with the seeder of `bench.coverage_bench`;
2. serves the app with gunicorn (2 sync workers, production settings and keys), and serves the
   two yardsticks with gunicorn the same way (`bench.bare_app`: a bare Flask hello page and a
   bare Flask page running one indexed query on the same database);
3. signs in as a learner, an assessor, an IQA and an admin over HTTP, and makes an API token;
4. loads each page with wrk at 16 connections, in rounds: every round visits every page and
   both yardsticks, starting at a different place each time, so a noisy neighbour slows all
   of them alike;
5. prints req/s, p50, p95 and p99 (the median over the rounds) and each page's ratio to the
   one-query page, with the issue's targets, and writes bench-results/pages.json.

The load generator runs on the same machine as the servers, as it did when the figures in the
issue were taken; the ratios, not the absolute figures, are what carry over to other machines.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bench.coverage_bench import (
    Seeder,
    _git_commit,
    _isolate_environment,
    live_mapping_counts,
    migrate_and_load_unit40,
)
from portfolio import create_app
from portfolio.auth.services import create_api_token
from portfolio.config import PROJECT_ROOT
from portfolio.db import get_database
from portfolio.models import Enrolment, Evidence, User

RESULTS_FILE = PROJECT_ROOT / "bench-results" / "pages.json"
LUA = Path(__file__).resolve().parent / "wrk_report.lua"
BIN = Path(sys.executable).parent
CSRF_RE = re.compile(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"')
COOKIE = "portfolio_session"
# The targets: the ratio to the one-query page, and the p95 at 16 connections.
RATIO_TARGET = 0.2
IQA_RATIO_TARGET = 0.1
P95_TARGET_MS = 150.0


@dataclass
class Target:
    name: str
    port_key: str  # "app" or "bare"
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    ratio_target: float | None = RATIO_TARGET
    runs: list[dict[str, Any]] = field(default_factory=list)


def _step(message: str) -> None:
    print(f"· {message}", file=sys.stderr, flush=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(port: int, process: subprocess.Popen[bytes], what: str, log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}:\n{log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{what} did not start listening on {port}:\n{log.read_text()}")


def _gunicorn(app_path: str, port: int, env: dict[str, str], workers: int,
              log: Path) -> subprocess.Popen[bytes]:
    handle = log.open("wb")
    process = subprocess.Popen(
        [str(BIN / "gunicorn"), "--config", str(PROJECT_ROOT / "gunicorn.conf.py"),
         "--workers", str(workers), "--worker-class", "sync", "--max-requests", "0",
         "--bind", f"127.0.0.1:{port}", "--log-level", "warning", "--timeout", "120",
         app_path],
        env=env, cwd=PROJECT_ROOT, stdout=handle, stderr=subprocess.STDOUT)
    _wait_for(port, process, app_path, log)
    return process


def _request(port: int, method: str, path: str, *, headers: dict[str, str] | None = None,
             body: str | None = None) -> tuple[int, dict[str, str], str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        cookies = {}
        for name, value in response.getheaders():
            if name.lower() == "set-cookie":
                key, _, rest = value.partition("=")
                cookies[key] = rest.split(";", 1)[0]
        return response.status, cookies, response.read().decode("utf-8", "replace")
    finally:
        conn.close()


def sign_in(port: int, email: str, password: str) -> str:
    """Sign in through the real login form; return the session cookie's value."""
    status, cookies, page = _request(port, "GET", "/login")
    match = CSRF_RE.search(page)
    if status != 200 or not match or COOKIE not in cookies:
        raise RuntimeError(f"the login page answered {status} without a form or a cookie")
    from urllib.parse import urlencode

    status, after, _ = _request(
        port, "POST", "/login",
        headers={"Cookie": f"{COOKIE}={cookies[COOKIE]}",
                 "Content-Type": "application/x-www-form-urlencoded"},
        body=urlencode({"email": email, "password": password, "csrf_token": match.group(1)}))
    if status != 302 or COOKIE not in after:
        raise RuntimeError(f"could not sign in as {email}: {status}")
    return after[COOKIE]


def run_wrk(port: int, target: Target, *, seconds: int, connections: int,
            threads: int) -> dict[str, Any]:
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s",
               "-s", str(LUA)]
    for name, value in target.headers.items():
        command += ["-H", f"{name}: {value}"]
    command.append(f"http://127.0.0.1:{port}{target.path}")
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    line = next(line for line in output.splitlines() if line.startswith("WRK_JSON "))
    figures = json.loads(line[len("WRK_JSON "):])
    seconds_run = figures["duration_us"] / 1e6
    errors = sum(figures[k] for k in ("connect_errors", "read_errors", "write_errors",
                                      "status_errors", "timeouts"))
    return {"rps": figures["requests"] / seconds_run, "p50_ms": figures["p50_us"] / 1000,
            "p95_ms": figures["p95_us"] / 1000, "p99_ms": figures["p99_us"] / 1000,
            "requests": figures["requests"], "errors": errors,
            "kb_per_response": figures["bytes"] / max(figures["requests"], 1) / 1024}


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(run[key] for run in runs))


def seed(app: Any, args: argparse.Namespace, result: dict[str, Any]) -> dict[str, Any]:
    """Build the centre; return who to sign in as and which objects their pages show."""
    db = get_database(app)
    started = time.perf_counter()
    unit_id, criteria = migrate_and_load_unit40(app, db)
    assessors = max(1, round(args.learners / args.caseload))
    _step(f"seeding {args.learners:,} learners x {args.items} items, {assessors} assessors, "
          f"{args.iqas} IQAs")
    seeded = Seeder(db.engine, unit_id, criteria, random.Random(args.seed)).run(
        args.learners, args.items, assessors, args.iqas)
    result["seed"] = {"seconds": round(time.perf_counter() - started, 1), "rows": seeded.rows,
                      "assessors": assessors, "iqas": args.iqas}
    assessor_id = seeded.assessor_ids[1 % len(seeded.assessor_ids)]
    caseload = [ln for ln in seeded.learners if ln.assessor_id == assessor_id]
    counts = live_mapping_counts(db.engine, [ln.enrolment_id for ln in caseload])
    caseload.sort(key=lambda ln: (counts.get(ln.enrolment_id, 0), ln.enrolment_id))
    typical = caseload[len(caseload) // 2]
    with db.sessionmaker() as s:
        def email_of(user_id: int) -> str:
            return str(s.scalar(select(User.email).where(User.id == user_id)))

        iqa_email = "bench-iqa-00000@bench.example"
        admin_email = "bench-admin-00001@bench.example"
        item = s.scalar(select(Evidence.id).where(
            Evidence.enrolment_id == typical.enrolment_id, Evidence.status == "accepted")
            .order_by(Evidence.id).limit(1))
        assessor = s.scalar(select(User).where(User.id == assessor_id))
        _, token = create_api_token(s, assessor, "bench")
        iqa_covers = s.scalar(select(func.count()).select_from(Enrolment).join(
            User, User.id == Enrolment.iqa_id).where(User.email == iqa_email))
        s.commit()
        people = {"learner": email_of(typical.user_id), "assessor": email_of(assessor_id),
                  "iqa": iqa_email, "admin": admin_email}
        highest_user = s.scalar(select(func.max(User.id)))
    result["subjects"] = {"enrolment_id": typical.enrolment_id, "evidence_items": typical.items,
                          "live_mappings": counts.get(typical.enrolment_id, 0),
                          "assessor_caseload": len(caseload),
                          "iqa_enrolments": iqa_covers,
                          "evidence_id": item}
    return {"people": people, "password": seeded.password, "enrolment": typical.enrolment_id,
            "evidence": item, "token": token, "highest_user": highest_user}


def targets_for(subjects: dict[str, Any], cookies: dict[str, str]) -> list[Target]:
    e, item = subjects["enrolment"], subjects["evidence"]

    def page(role: str, name: str, path: str, ratio: float | None = RATIO_TARGET) -> Target:
        return Target(f"{role}: {name}", "app", path, {"Cookie": f"{COOKIE}={cookies[role]}"},
                      ratio)

    api = {"Authorization": f"Bearer {subjects['token']}", "Accept": "application/json"}
    return [
        Target("bare Flask: hello", "bare", "/hello", {}, None),
        Target("bare Flask: one query", "bare", "/one-query", {}, None),
        page("learner", "home", "/"),
        page("learner", "coverage", f"/enrolments/{e}/coverage"),
        page("learner", "evidence list", f"/enrolments/{e}/evidence"),
        page("learner", "evidence item", f"/evidence/{item}"),
        page("learner", "readiness", f"/enrolments/{e}/readiness"),
        page("learner", "notifications", "/notifications"),
        page("assessor", "home (to-do)", "/"),
        page("assessor", "caseload", "/caseload"),
        page("assessor", "learner's review queue", f"/enrolments/{e}/review"),
        page("assessor", "learner's coverage", f"/enrolments/{e}/coverage"),
        page("iqa", "home", "/"),
        page("iqa", "IQA dashboard", "/iqa", IQA_RATIO_TARGET),
        page("admin", "home", "/"),
        page("admin", "people", "/admin/people"),
        page("admin", "enrolments", "/admin/enrolments"),
        Target("API: enrolments", "app", "/api/v1/enrolments", api),
        Target("API: coverage", "app", f"/api/v1/enrolments/{e}/coverage", api),
        Target("API: evidence list", "app", f"/api/v1/enrolments/{e}/evidence", api),
        Target("API: evidence item", "app", f"/api/v1/evidence/{item}", api),
    ]


def _drain(port: int, workers: int) -> None:
    """Wait until the server has answered what wrk left queued when it stopped: a sync worker
    still serves requests whose connection has closed, and a slow page would otherwise leave
    seconds of work that the next page's run pays for."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(workers) as pool:  # one at a time per worker, all workers at once
        list(pool.map(lambda _: _request(port, "GET", "/static/css/app.css"), range(workers)))


def slowest_statements(app: Any, subjects: dict[str, Any], targets: list[Target],
                       show: int = 3) -> dict[str, list[dict[str, Any]]]:
    """Load each page once in this process and time every SQL statement it sends: the
    statement count and the slowest few, to see where a page's database time goes."""
    from sqlalchemy import event

    from bench.coverage_bench import sign_in as sign_in_client

    engine = get_database(app).engine
    timings: list[tuple[float, str]] = []
    started: list[float] = []

    def before(*_args: Any) -> None:
        started.append(time.perf_counter())

    def after(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        timings.append((time.perf_counter() - started.pop(), " ".join(statement.split())))

    clients = {role: sign_in_client(app, email, subjects["password"])
               for role, email in subjects["people"].items()}
    found: dict[str, list[dict[str, Any]]] = {}
    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    try:
        for target in targets:
            if target.port_key != "app":
                continue
            role = target.name.split(":", 1)[0]
            client = clients.get(role, clients["assessor"])
            headers = {k: v for k, v in target.headers.items() if k != "Cookie"}
            client.get(target.path, headers=headers)  # warm
            timings.clear()
            client.get(target.path, headers=headers)
            total = sum(t for t, _ in timings)
            found[target.name] = [{"statements": len(timings), "sql_ms": round(total * 1000, 1)}]
            for seconds, sql in sorted(timings, reverse=True)[:show]:
                found[target.name].append({"ms": round(seconds * 1000, 1), "sql": sql[:4000]})
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)
    return found


def measure(targets: list[Target], ports: dict[str, int], args: argparse.Namespace) -> None:
    for target in targets:  # every page must answer 200 before it is timed
        status, _, body = _request(ports[target.port_key], "GET", target.path,
                                   headers=target.headers)
        if status != 200:
            raise RuntimeError(f"{target.name} ({target.path}) answered {status}: {body[:300]}")
        run_wrk(ports[target.port_key], target, seconds=1, connections=args.connections,
                threads=args.threads)  # warm-up: templates compiled, caches and pools filled
    for number in range(args.rounds):
        shift = number * len(targets) // max(args.rounds, 1)
        order = targets[shift:] + targets[:shift]
        _step(f"round {number + 1} of {args.rounds}")
        for target in order:
            target.runs.append(run_wrk(ports[target.port_key], target, seconds=args.seconds,
                                       connections=args.connections, threads=args.threads))
            _drain(ports[target.port_key], args.workers)


def summarise(targets: list[Target]) -> list[dict[str, Any]]:
    one_query = next(t for t in targets if t.path == "/one-query")
    base = _median(one_query.runs, "rps")
    rows = []
    for target in targets:
        rps = _median(target.runs, "rps")
        p95 = _median(target.runs, "p95_ms")
        ratio = rps / base if base else 0.0
        row = {"page": target.name, "path": target.path, "rps": round(rps, 1),
               "p50_ms": round(_median(target.runs, "p50_ms"), 1), "p95_ms": round(p95, 1),
               "p99_ms": round(_median(target.runs, "p99_ms"), 1),
               "ratio_to_one_query": round(ratio, 3),
               "kb_per_response": round(_median(target.runs, "kb_per_response"), 1),
               "errors": sum(run["errors"] for run in target.runs),
               "rounds": [round(run["rps"], 1) for run in target.runs]}
        if target.ratio_target is not None:
            row["ratio_target"] = target.ratio_target
            row["meets_targets"] = (ratio >= target.ratio_target and p95 <= P95_TARGET_MS
                                    and row["errors"] == 0)
        rows.append(row)
    return rows


def report(result: dict[str, Any]) -> str:
    rows = result["pages"]
    lines = [f"Pages at {result['parameters']['connections']} connections, gunicorn "
             f"{result['parameters']['workers']} sync workers, {result['server']}, "
             f"{result['parameters']['learners']:,} learners "
             f"(median of {result['parameters']['rounds']} rounds of "
             f"{result['parameters']['seconds']} s each)", "",
             f"{'page':40} {'req/s':>8} {'p50':>8} {'p95':>8} {'p99':>8} {'x 1-query':>10}"
             f" {'KB':>6}  target"]
    for row in rows:
        verdict = ""
        if "meets_targets" in row:
            verdict = (f"{'ok ' if row['meets_targets'] else 'MISS'} (>= {row['ratio_target']}x,"
                       f" p95 <= {P95_TARGET_MS:.0f} ms)")
        if row["errors"]:
            verdict += f" {row['errors']} errors"
        lines.append(f"{row['page'][:40]:40} {row['rps']:8.1f} {row['p50_ms']:7.1f}ms "
                     f"{row['p95_ms']:7.1f}ms {row['p99_ms']:7.1f}ms "
                     f"{row['ratio_to_one_query']:10.3f} {row['kb_per_response']:6.1f}  {verdict}")
    missed = [r["page"] for r in rows if r.get("meets_targets") is False]
    lines += ["", f"{len(missed)} of {sum('meets_targets' in r for r in rows)} pages miss "
              "their target" + (f": {', '.join(missed)}" if missed else "")]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> dict[str, Any]:
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed: `make bench-pages` installs it.")
    workdir = Path(tempfile.mkdtemp(prefix="portfolio-pages-bench-"))
    instance = workdir / "instance"
    _isolate_environment(str(instance))
    sys.path.insert(0, str(PROJECT_ROOT))
    from tests.pg import PostgresServer

    result: dict[str, Any] = {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "git": _git_commit(), "machine": f"{os.cpu_count()} CPUs",
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "parameters": {"learners": args.learners, "items_per_learner": args.items,
                       "caseload": args.caseload, "iqas": args.iqas, "rounds": args.rounds,
                       "seconds": args.seconds, "connections": args.connections,
                       "threads": args.threads, "workers": args.workers, "seed": args.seed}}
    server = PostgresServer()
    processes: list[subprocess.Popen[bytes]] = []
    try:
        url = server.start()
        result["server"] = "PostgreSQL (private server)"
        secret = secrets.token_urlsafe(32)
        seal_file = workdir / "seal.key"
        seal_file.write_text(secrets.token_urlsafe(48) + "\n")
        env = {**os.environ, "DATABASE_URL": url, "PORTFOLIO_ENV": "production",
               "PORTFOLIO_SECRET_KEY": secret, "PORTFOLIO_SEAL_KEY_FILE": str(seal_file),
               "PORTFOLIO_SIGNING_KEYS_DIR": str(workdir / "keys"),
               "PORTFOLIO_STORAGE_DIR": str(workdir / "storage"),
               "PORTFOLIO_EXPORTS_DIR": str(workdir / "exports"),
               "PORTFOLIO_INSTANCE_PATH": str(instance),
               "PORTFOLIO_NOTIFY_SEND_INTERVAL": "0"}
        app = create_app({"DATABASE_URL": url, "SECRET_KEY": secret,
                          "SEAL_KEY_FILE": str(seal_file),
                          "STORAGE_DIR": str(workdir / "storage"),
                          "EXPORTS_DIR": str(workdir / "exports")})
        subjects = seed(app, args, result)
        subprocess.run([str(BIN / "portfolio"), "keys", "init", "--all"], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        ports = {"app": _free_port(), "bare": _free_port()}
        _step(f"serving the app on :{ports['app']} and the yardsticks on :{ports['bare']}")
        processes.append(_gunicorn("portfolio.wsgi:app", ports["app"], env, args.workers,
                                   workdir / "app.log"))
        processes.append(_gunicorn(
            "bench.bare_app:app", ports["bare"],
            {**env, "BARE_DATABASE_URL": url,
             "BARE_HIGHEST_USER_ID": str(subjects["highest_user"])},
            args.workers, workdir / "bare.log"))
        cookies = {role: sign_in(ports["app"], email, subjects["password"])
                   for role, email in subjects["people"].items()}
        targets = [t for t in targets_for(subjects, cookies)
                   if t.port_key == "bare" or not args.only
                   or any(word.lower() in t.name.lower() for word in args.only)]
        if args.statements:
            result["statements"] = slowest_statements(app, subjects, targets)
            for name, rows in result["statements"].items():
                print(f"{name}: {rows[0]['statements']} statements, {rows[0]['sql_ms']} ms SQL",
                      file=sys.stderr)
                for row in rows[1:]:
                    shown = row["sql"] if args.only else row["sql"][:160]
                    print(f"    {row['ms']:7.1f} ms  {shown}", file=sys.stderr)
        get_database(app).engine.dispose()
        if args.statements_only:
            return result
        measure(targets, ports, args)
        result["pages"] = summarise(targets)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    result["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    return result


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.pages_bench",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--learners", type=int, default=2000, help="2000, or 10000 for a "
                        "provider of several centres")
    parser.add_argument("--items", type=int, default=40, help="evidence items per learner")
    parser.add_argument("--caseload", type=int, default=60, help="learners per assessor")
    parser.add_argument("--iqas", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=4, help="length of each wrk run")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers")
    parser.add_argument("--seed", type=int, default=40)
    parser.add_argument("--only", action="append", metavar="WORDS",
                        help="only the pages whose name contains these words (repeatable); "
                        "the two yardsticks always run")
    parser.add_argument("--statements", action="store_true",
                        help="also time each page's SQL statements once, in process, and print "
                        "the slowest")
    parser.add_argument("--statements-only", action="store_true",
                        help="only that (no load)")
    parser.add_argument("--out", type=Path, default=RESULTS_FILE)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.statements = args.statements or args.statements_only
    result = run(args)
    if args.statements_only:
        return 0
    print(report(result))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"Results written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
