"""Upload photos the way a busy centre does: many at once, to the embedded default.

Not a test (pytest only collects tests/): run it with `make bench-upload`, or directly:

    .venv/bin/python -m bench.upload_bench [--uploads 160] [--concurrency 16] [--threads 8]

It migrates a fresh SQLite database (the embedded default, files on disk), makes a centre with
one learner per concurrent client, serves the app with gunicorn (2 workers with threads, the
set-up where SQLite's single writer is most contended), and posts camera-sized JPEG photos
through the API from `--concurrency` clients at once. It prints uploads/s, the p50 and p95 of an
upload, every answer that was not 201 (a "database is locked" would show here), whether every
photo's print copy was made, and the peak memory (VmHWM) of each gunicorn worker; results are
also written to bench-results/upload.json.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any

import requests
from PIL import Image
from sqlalchemy import func, select

from bench.coverage_bench import _git_commit, _isolate_environment
from bench.pages_bench import BIN, _free_port, _wait_for
from portfolio import create_app, schema
from portfolio.auth.services import create_api_token
from portfolio.config import PROJECT_ROOT
from portfolio.db import get_database
from portfolio.evidence.print_copy import print_copy_path
from tests.factories import make_centre, make_enrolment, make_user

RESULTS_FILE = PROJECT_ROOT / "bench-results" / "upload.json"


def _photo(rng: random.Random, n: int) -> bytes:
    """A 12-megapixel-ish camera JPEG (4000 x 3000 is the common phone size), noisy enough
    that it does not compress to nothing."""
    small = Image.effect_noise((400, 300), 60).convert("RGB")
    tint = Image.new("RGB", small.size, (rng.randrange(256), rng.randrange(256), n % 256))
    image = Image.blend(small, tint, 0.4).resize((4000, 3000))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


def _peak_memory_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def _workers(master: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(master)], capture_output=True,
                         text=True, check=False).stdout
    return [int(pid) for pid in out.split()]


def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="portfolio-upload-bench-"))
    instance = workdir / "instance"
    _isolate_environment(str(instance))
    seal = workdir / "seal.key"
    seal.write_text(secrets.token_urlsafe(48) + "\n")
    secret = secrets.token_urlsafe(32)
    url = f"sqlite:///{workdir / 'portfolio.sqlite3'}"
    env = {**os.environ, "DATABASE_URL": url, "PORTFOLIO_ENV": "production",
           "PORTFOLIO_SECRET_KEY": secret, "PORTFOLIO_SEAL_KEY_FILE": str(seal),
           "PORTFOLIO_SIGNING_KEYS_DIR": str(workdir / "keys"),
           "PORTFOLIO_STORAGE_DIR": str(workdir / "storage"),
           "PORTFOLIO_EXPORTS_DIR": str(workdir / "exports"),
           "PORTFOLIO_INSTANCE_PATH": str(instance), "PORTFOLIO_NOTIFY_SEND_INTERVAL": "0",
           "PORTFOLIO_MAX_FILE_MB": "25"}
    result: dict[str, Any] = {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "git": _git_commit(), "machine": f"{os.cpu_count()} CPUs",
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "parameters": {"uploads": args.uploads, "concurrency": args.concurrency,
                       "workers": args.workers, "threads": args.threads}}
    master: subprocess.Popen[bytes] | None = None
    try:
        app = create_app({"DATABASE_URL": url, "SECRET_KEY": secret,
                          "SEAL_KEY_FILE": str(seal), "STORAGE_DIR": str(workdir / "storage")})
        schema.upgrade(app)
        db = get_database(app)
        with db.sessionmaker() as s:
            from tests.factories import load_unit40

            unit = load_unit40(s)
            centre = make_centre(s, "Upload Centre")
            assessor = make_user(s, centre, "assessor", assessor_status="qualified")
            clients = []
            for n in range(args.concurrency):
                learner = make_user(s, centre, "learner", email=f"uploader{n}@bench.example")
                enrolment = make_enrolment(s, learner, assessor, None, unit)
                clients.append((enrolment.id, create_api_token(s, learner, "bench")[1]))
            s.commit()
        db.engine.dispose()
        subprocess.run([str(BIN / "portfolio"), "keys", "init", "--all"], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        port = _free_port()
        log = workdir / "gunicorn.log"
        master = subprocess.Popen(
            [str(BIN / "gunicorn"), "--config", str(PROJECT_ROOT / "gunicorn.conf.py"),
             "--workers", str(args.workers), "--worker-class", "gthread",
             "--threads", str(args.threads), "--bind", f"127.0.0.1:{port}",
             "--max-requests", "0", "--timeout", "120", "portfolio.wsgi:app"],
            env=env, cwd=PROJECT_ROOT, stdout=log.open("wb"), stderr=subprocess.STDOUT)
        _wait_for(port, master, "gunicorn", log)
        rng = random.Random(16)
        photos = [_photo(rng, n) for n in range(args.distinct)]
        result["photo_mb"] = round(statistics.mean(len(p) for p in photos) / 1024 / 1024, 2)
        base = f"http://127.0.0.1:{port}"

        def upload(n: int) -> tuple[int, float, str]:
            enrolment_id, token = clients[n % len(clients)]
            # Each upload different bytes: a new object in the store and a new print copy.
            data = photos[n % len(photos)] + n.to_bytes(4, "big")
            started = time.perf_counter()
            answer = requests.post(
                f"{base}/api/v1/enrolments/{enrolment_id}/evidence",
                headers={"Authorization": f"Bearer {token}"},
                data={"kind": "photo", "title": f"Display {n}",
                      "activity_on": date.today().isoformat(), "personal_data_confirmed": "true"},
                files={"files": (f"display-{n}.jpg", data, "image/jpeg")}, timeout=300)
            return answer.status_code, time.perf_counter() - started, answer.text[:200]

        started = time.perf_counter()
        with ThreadPoolExecutor(args.concurrency) as pool:
            answers = list(pool.map(upload, range(args.uploads)))
        elapsed = time.perf_counter() - started
        times = sorted(t for _, t, _ in answers)
        failures = [(code, text) for code, _, text in answers if code != 201]
        workers = _workers(master.pid)
        result.update({
            "seconds": round(elapsed, 1), "uploads_per_second": round(args.uploads / elapsed, 2),
            "p50_ms": round(statistics.median(times) * 1000),
            "p95_ms": round(times[int(len(times) * 0.95) - 1] * 1000),
            "failures": len(failures), "failure_examples": failures[:5],
            "peak_memory_mb_per_worker": [_peak_memory_mb(pid) for pid in workers]})
        app = create_app({"DATABASE_URL": url, "SECRET_KEY": secret,
                          "SEAL_KEY_FILE": str(seal), "STORAGE_DIR": str(workdir / "storage")})
        from portfolio.models import Evidence, EvidenceFile

        with get_database(app).sessionmaker() as s:
            stored = s.scalar(select(func.count()).select_from(Evidence))
            digests = list(s.scalars(select(EvidenceFile.sha256)))
        store = workdir / "storage"
        result["stored"] = stored
        result["print_copies_missing"] = sum(
            not print_copy_path(store, d).exists() for d in digests)
        locked = log.read_text().count("database is locked")
        result["database_is_locked_in_log"] = locked
    finally:
        if master is not None:
            master.terminate()
            try:
                master.wait(timeout=30)
            except subprocess.TimeoutExpired:
                master.kill()
        shutil.rmtree(workdir, ignore_errors=True)
    result["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    return result


def report(result: dict[str, Any]) -> str:
    p = result["parameters"]
    return "\n".join([
        f"{p['uploads']} photo uploads ({result['photo_mb']} MB each) from {p['concurrency']} "
        f"clients at once, gunicorn {p['workers']} workers x {p['threads']} threads, SQLite:",
        f"  {result['uploads_per_second']} uploads/s ({result['seconds']} s), an upload p50 "
        f"{result['p50_ms']} ms, p95 {result['p95_ms']} ms",
        f"  {result['stored']} stored, {result['failures']} refused or failed, "
        f"{result['database_is_locked_in_log']} 'database is locked' in the server log, "
        f"{result['print_copies_missing']} print copies missing",
        f"  peak memory per worker (VmHWM): {result['peak_memory_mb_per_worker']} MB",
        *(f"  failure: {code} {text}" for code, text in result["failure_examples"])])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.upload_bench",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--uploads", type=int, default=160)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--distinct", type=int, default=8, help="different photos made")
    parser.add_argument("--out", type=Path, default=RESULTS_FILE)
    args = parser.parse_args(argv)
    result = run(args)
    print(report(result))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"Results written to {args.out}")
    return 1 if result["failures"] or result["print_copies_missing"] else 0


if __name__ == "__main__":
    sys.exit(main())
