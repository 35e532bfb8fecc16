"""Benchmark the several-machines topology: one app instance against two, behind the same nginx.

Not a test: run it with `make bench-cluster`, or

    .venv/bin/python -m bench.cluster_bench [--learners 600] [--rounds 3]

It starts the cluster of tests/cluster.py (PostgreSQL, Redis, SeaweedFS, two gunicorn
instances of `--web-workers` sync workers, a worker, nginx in front), seeds a centre with the
page benchmark's seeder (bench/pages_bench.py), signs in through the proxy, then loads with wrk,
in alternating rounds: the learner's coverage page, the assessor's caseload and the API's
coverage, with nginx sending to both instances and then (reloaded) to one; and the bare Flask
page running one SQL query, behind the same nginx. It prints req/s and p95 of each, the ratio
two instances / one, and each page's ratio to the one-query page, and writes
bench-results/cluster.json. On one machine both instances share its cores, so two instances
can only be as fast as the cores allow: the figure to read is that adding an instance costs
nothing and spreads the load, not that it doubles it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.pages_bench import COOKIE, Target, _median, run_wrk, seed, sign_in
from portfolio import create_app
from portfolio.config import PROJECT_ROOT
from portfolio.db import get_database

RESULTS_FILE = PROJECT_ROOT / "bench-results" / "cluster.json"


def _step(message: str) -> None:
    print(f"· {message}", file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.cluster_bench",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--learners", type=int, default=600)
    parser.add_argument("--items", type=int, default=20, help="evidence items per learner")
    parser.add_argument("--caseload", type=int, default=60)
    parser.add_argument("--iqas", type=int, default=2)
    parser.add_argument("--seed", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=4)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--web-workers", type=int, default=2,
                        help="gunicorn sync workers per instance")
    parser.add_argument("--out", type=Path, default=RESULTS_FILE)
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> dict[str, Any]:
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed: `make bench-cluster` installs it.")
    sys.path.insert(0, str(PROJECT_ROOT))
    from tests.cluster import Cluster

    result: dict[str, Any] = {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": f"{os.cpu_count()} CPUs",
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "parameters": {k: v for k, v in vars(args).items() if k != "out"}}
    _step("starting PostgreSQL, Redis, SeaweedFS, two instances, a worker and nginx")
    subjects: dict[str, Any] = {}

    def seeded(cluster: Cluster) -> None:
        env = cluster.env
        app = create_app({"DATABASE_URL": cluster.database_url,
                          "SECRET_KEY": env["PORTFOLIO_SECRET_KEY"],
                          "SEAL_KEY_FILE": env["PORTFOLIO_SEAL_KEY_FILE"],
                          "STORAGE_DIR": str(cluster.folder / "bench-storage")})
        subjects.update(seed(app, args, result))
        get_database(app).engine.dispose()

    with Cluster(instances=2, web_workers=args.web_workers, proxy=True, demo=False,
                 bare_app=True, setup=seeded) as cluster:
        proxy, bare = cluster.ports["proxy"], cluster.ports["proxy-bare"]
        cookies = {role: sign_in(proxy, subjects["people"][role], subjects["password"])
                   for role in ("learner", "assessor")}
        e = subjects["enrolment"]
        api = {"Authorization": f"Bearer {subjects['token']}", "Accept": "application/json"}
        pages = [
            Target("learner: coverage", "proxy", f"/enrolments/{e}/coverage",
                   {"Cookie": f"{COOKIE}={cookies['learner']}"}),
            Target("assessor: caseload", "proxy", "/caseload",
                   {"Cookie": f"{COOKIE}={cookies['assessor']}"}),
            Target("API: coverage", "proxy", f"/api/v1/enrolments/{e}/coverage", api),
        ]
        one_query = Target("bare Flask: one query", "bare", "/one-query", {}, None)
        ports = {"proxy": proxy, "bare": bare}
        runs: dict[str, dict[str, list[dict[str, Any]]]] = {"two": {}, "one": {}}

        def load(target: Target, layout: str) -> None:
            figures = run_wrk(ports[target.port_key], target, seconds=args.seconds,
                              connections=args.connections, threads=args.threads)
            runs[layout].setdefault(target.name, []).append(figures)

        for target in [*pages, one_query]:  # warm-up, and every page answers through nginx
            run_wrk(ports[target.port_key], target, seconds=1, connections=args.connections,
                    threads=args.threads)
        for number in range(args.rounds):
            _step(f"round {number + 1} of {args.rounds}")
            for layout, instances in (("two", [0, 1]), ("one", [0])):
                cluster.reload_proxy(instances)
                for target in pages:
                    load(target, layout)
                load(one_query, layout)
        rows = []
        for target in pages:
            two = runs["two"][target.name]
            one = runs["one"][target.name]
            base = _median(runs["two"][one_query.name] + runs["one"][one_query.name], "rps")
            rows.append({
                "page": target.name,
                "two_instances": {"rps": round(_median(two, "rps"), 1),
                                  "p95_ms": round(_median(two, "p95_ms"), 1)},
                "one_instance": {"rps": round(_median(one, "rps"), 1),
                                 "p95_ms": round(_median(one, "p95_ms"), 1)},
                "two_over_one": round(_median(two, "rps") / max(_median(one, "rps"), 1e-9), 3),
                "two_x_one_query": round(_median(two, "rps") / base, 3),
                "errors": sum(r["errors"] for r in two + one)})
        yardstick = runs["two"][one_query.name] + runs["one"][one_query.name]
        result["one_query"] = {"rps": round(_median(yardstick, "rps"), 1),
                               "p95_ms": round(_median(yardstick, "p95_ms"), 1),
                               "errors": sum(r["errors"] for r in yardstick)}
        result["pages"] = rows
    result["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    failed = result["one_query"]["errors"] + sum(row["errors"] for row in result["pages"])
    if failed:  # a run with errors (a 502 from nginx, a 500) measures nothing worth reading
        raise SystemExit(f"{failed} requests failed during the load: the figures are not "
                         f"valid ({json.dumps(result)[:2000]})")
    return result


def report(result: dict[str, Any]) -> str:
    p = result["parameters"]
    lines = [f"{p['learners']:,} learners x {p['items']} items, PostgreSQL, nginx, "
             f"{p['web_workers']} sync workers per instance, {p['connections']} connections, "
             f"{result['machine']}",
             f"bare Flask one query behind nginx: {result['one_query']['rps']} req/s, "
             f"p95 {result['one_query']['p95_ms']} ms",
             "| page | two instances: req/s, p95 | one instance: req/s, p95 | two / one | "
             "x one-query |",
             "|---|---|---|---|---|"]
    for row in result["pages"]:
        two, one = row["two_instances"], row["one_instance"]
        lines.append(f"| {row['page']} | {two['rps']}, {two['p95_ms']} ms | {one['rps']}, "
                     f"{one['p95_ms']} ms | {row['two_over_one']} | {row['two_x_one_query']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for name in list(os.environ):
        if name.startswith("PORTFOLIO_") or name == "DATABASE_URL":
            del os.environ[name]
    instance = tempfile.mkdtemp(prefix="portfolio-cluster-bench-")
    os.environ["PORTFOLIO_INSTANCE_PATH"] = instance
    try:
        result = run(args)
    finally:
        shutil.rmtree(instance, ignore_errors=True)
    print(report(result))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"Results written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
