"""Benchmark PDF export of a large portfolio against a naive single-pass render.

Not a test: run it with `make bench` (after the coverage benchmark) or on its own:

    .venv/bin/python -m bench.export_bench [--items 200] [--photos 40]

It builds one learner's portfolio (200 evidence items of every kind: long reflective accounts,
emails, complaint logs, camera photos as JPEG and screenshots as PNG, witness testimonies, all
reviewed, every criterion decided and signed off) in a fresh SQLite database, then runs, each in
a process of its own while the process tree's memory (RSS of the process and its children,
summed) is sampled every 100 ms:

1. naive: the whole portfolio in one WeasyPrint pass (`render_single_pass`), attached and
   signed, as the export did before;
2. full export with an empty render cache (`export_portfolio`: parts in parallel, merged with
   pypdf, numbered, attached, signed);
3. re-export after one evidence item changed (the learner revises its text), cache warm;
4. "prepared": the same change, then the parts laid out as the background does after each
   review or signature (timed apart), then the export: the time from the click to the
   signed PDF;
5. `portfolio verify` of the full export.

Steps 1-4 run three times each (`--repeat`), naive and full taking turns: the median time is
reported, with every run's time, and the highest peak memory of the runs.

Results are printed and written to bench-results/export.json.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from portfolio.config import PROJECT_ROOT

RESULTS_FILE = PROJECT_ROOT / "bench-results" / "export.json"
SAMPLE_SECONDS = 0.1  # reading every process's smaps costs CPU: sample at 10 Hz
PARAGRAPHS = (
    "The customer rang in upset because nobody had called them back after two promises. I "
    "let them explain the whole story before saying anything, then summarised it back so they "
    "knew I had understood: the boiler repair was booked twice and cancelled twice.",
    "I checked the account history and found two earlier contacts about the same issue, both "
    "closed without a resolution. That told me this was a repeat complaint, which our "
    "procedure says must be logged as stage two and flagged to the team leader the same day.",
    "I explained what I could do straight away (rebook the engineer with a fixed morning slot "
    "and apply the missed-appointment credit) and what needed my manager's approval (a "
    "goodwill payment above my limit). The customer agreed to the plan.",
    "I recorded the complaint, the cause and the agreed actions in the CRM, gave the customer "
    "the reference number, and sent a confirmation email that evening.",
    "Looking back, I should have asked sooner whether they needed the letter in large print. "
    "Next time I will check communication needs at the start of the call.",
    "The complaints policy says we acknowledge within two working days and resolve within "
    "eight weeks; I acknowledged on the day and the case closed after nine days.",
)


# --- memory sampling ---------------------------------------------------------------------------


def _pss(pid: int) -> int:
    """Proportional set size in bytes (shared pages split between the processes sharing them)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as handle:
            for line in handle:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _tree_memory(root: int) -> tuple[int, int]:
    """Resident memory (RSS) and proportional memory (PSS), in bytes, summed over a process and
    all its descendants."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(entry), int(fields[1])
        children.setdefault(ppid, []).append(pid)
        rss[pid] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    total, proportional, todo = 0, 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        proportional += _pss(pid)
        todo.extend(children.get(pid, []))
    return total, proportional


def _cpu_seconds() -> float:
    """CPU time (user + system) of this process and its finished children (render workers)."""
    import resource

    own, children = (resource.getrusage(resource.RUSAGE_SELF),
                     resource.getrusage(resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run_step(step: str, workdir: Path) -> dict[str, Any]:
    """Run one step in a child process; return its report plus the tree's peak memory."""
    child = subprocess.Popen([sys.executable, "-m", "bench.export_bench", "--step", step,
                              "--workdir", str(workdir)], cwd=PROJECT_ROOT,
                             stdout=subprocess.PIPE, text=True)
    peak, peak_pss = 0, 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak, peak_pss
        while not done.is_set():
            rss, pss = _tree_memory(child.pid)
            peak, peak_pss = max(peak, rss), max(peak_pss, pss)
            time.sleep(SAMPLE_SECONDS)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = child.communicate()
    done.set()
    sampler.join()
    if child.returncode != 0:
        raise SystemExit(f"step {step} failed with exit code {child.returncode}")
    report = json.loads(out.strip().splitlines()[-1])
    report["peak_memory_mb"] = round(peak / 1024 / 1024, 1)  # RSS summed: the strict measure
    report["peak_pss_mb"] = round(peak_pss / 1024 / 1024, 1)
    return report


# --- building the portfolio --------------------------------------------------------------------


def _app(workdir: Path) -> Any:
    from portfolio import create_app

    os.environ["PORTFOLIO_INSTANCE_PATH"] = str(workdir / "instance")
    seal = workdir / "seal.key"  # production settings need one; every step shares it
    if not seal.exists():
        import secrets

        seal.write_text(secrets.token_urlsafe(48) + "\n")
    return create_app({
        "SEAL_KEY_FILE": str(seal),
        "DATABASE_URL": f"sqlite:///{workdir / 'bench.sqlite3'}",
        "SECRET_KEY": (workdir / "secret").read_text(), "SESSION_COOKIE_SECURE": False,
        "EXPORTS_DIR": str(workdir / "exports"), "STORAGE_DIR": str(workdir / "storage"),
        "RENDER_CACHE_DIR": str(workdir / "render-cache"), "PUBLIC_URL": "https://bench.example",
        "LOGIN_MAX_FAILURES": 1000,
        # The "prepared" step lays the changed parts out itself, outside the timing, as the
        # background would have; no step may have a background thread rendering meanwhile.
        "EXPORT_PREPARE": False})


def _photo(rng: random.Random, n: int) -> tuple[bytes, str]:
    """A camera-sized photo (JPEG with EXIF date) or a screenshot (PNG), unique per n."""
    from PIL import Image, ImageDraw

    if n % 3 == 2:  # a screenshot of the CRM
        image = Image.new("RGB", (1600, 1000), (246, 248, 248))
        draw = ImageDraw.Draw(image)
        for row in range(24):
            y = 40 + row * 38
            draw.rectangle((40, y, 1560, y + 30), fill=(255, 255, 255) if row % 2 else
                           (227, 240, 239))
            draw.text((60, y + 8), f"Case {n}-{row}: {rng.choice(PARAGRAPHS)[:90]}",
                      fill=(29, 36, 36))
        out = io.BytesIO()
        image.save(out, "PNG")
        return out.getvalue(), f"crm-screen-{n}.png"
    base = Image.effect_noise((2400, 1800), 40 + n % 20).convert("RGB")
    tint = Image.new("RGB", base.size, (rng.randrange(60, 200), rng.randrange(60, 200),
                                        rng.randrange(60, 200)))
    image = Image.blend(base, tint, 0.6)
    draw = ImageDraw.Draw(image)
    draw.rectangle((300, 300, 2100, 1500), outline=(255, 255, 255), width=12)
    draw.text((340, 340), f"Complaints procedure poster #{n}", fill=(255, 255, 255))
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9003] = "2026:09:14 10:42:00"
    out = io.BytesIO()
    image.save(out, "JPEG", quality=88, exif=exif)
    return out.getvalue(), f"IMG_{4000 + n}.jpg"


def _eml(n: int) -> bytes:
    body = "\n\n".join(PARAGRAPHS + PARAGRAPHS[:3])
    # The addresses are masked, as the learner must before submitting: the app refuses
    # evidence that still holds a customer's email address.
    return (f"From: Customer [address removed]\r\nTo: Complaints team [address removed]"
            f"\r\nSubject: Complaint reference C-{1000 + n}\r\n"
            f"Date: Mon, 14 Sep 2026 09:{n % 60:02d}:00 +0100\r\nContent-Type: text/plain; "
            f"charset=utf-8\r\n\r\n{body}\r\n").encode()


def _csv(n: int) -> bytes:
    rows = ["Date,Reference,Customer type,Complaint,Action,Closed"]
    for i in range(70):
        rows.append(f"2026-09-{1 + i % 28:02d},C-{n}-{i},Residential,Missed repair visit "
                    f"number {i},Rebooked and credited,Yes")
    return ("\n".join(rows) + "\n").encode()


def build(workdir: Path, items: int, photos: int) -> dict[str, Any]:
    """Seed the database and storage; return what was built."""
    sys.path.insert(0, str(PROJECT_ROOT))
    from portfolio import schema
    from portfolio.db import get_database
    from portfolio.models import Criterion
    from tests.factories import (
        accept,
        decide,
        load_unit40,
        make_centre,
        make_enrolment,
        make_evidence,
        make_user,
        stage_bytes,
    )

    (workdir / "secret").write_text(secrets.token_urlsafe(32))
    app = _app(workdir)
    schema.upgrade(app)
    rng = random.Random(40)
    store = app.config["STORAGE_DIR"]
    with app.app_context(), get_database(app).sessionmaker() as s:
        load_unit40(s)
        centre = make_centre(s, "Brightwater Training")
        assessor = make_user(s, centre, "assessor", email="assessor@bench.example",
                             name="Daniel Okafor", assessor_status="qualified")
        learner = make_user(s, centre, "learner", email="learner@bench.example",
                            name="Aisha Khan")
        iqa = make_user(s, centre, "iqa", email="iqa@bench.example", name="Priya Shah")
        enrolment = make_enrolment(s, learner, assessor, iqa=iqa)
        numbers = [c.number for c in s.query(Criterion).order_by(Criterion.id)]
        made, photo_count, pages_of_text = [], 0, 0
        today = date.today()
        for n in range(items):
            maps = tuple(rng.sample(numbers, 2))
            when = today - timedelta(days=rng.randrange(5, 300))
            kind = ("photo" if photo_count < photos and n % (items // max(photos, 1)) == 0
                    else ("email", "log", "reflective_account", "witness_testimony",
                          "work_product")[n % 5])
            files = []
            body = "\n\n".join(rng.sample(PARAGRAPHS, 5) + rng.sample(PARAGRAPHS, 4))
            if kind == "photo":
                data, name = _photo(rng, photo_count)
                files = [stage_bytes(store, data, name)]
                photo_count += 1
                body = "Photo of the procedure on the team noticeboard, taken at work."
            elif kind == "email":
                files = [stage_bytes(store, _eml(n), f"complaint-{n}.eml")]
            elif kind == "log":
                files = [stage_bytes(store, _csv(n), f"complaint-log-{n}.csv")]
            elif kind == "work_product":
                letter = (f"Dear customer,\n\nThank you for your complaint C-{1000 + n}. "
                          + " ".join(PARAGRAPHS[2:4]) + "\n\nYours sincerely,\nAisha Khan\n")
                files = [stage_bytes(store, letter.encode(), f"reply-letter-{n}.txt")]
            elif kind == "reflective_account":
                body = ("## What happened\n\n" + "\n\n".join(PARAGRAPHS) + "\n\n"
                        + "\n\n".join(rng.sample(PARAGRAPHS, 4))
                        + "\n\n## What I learned\n\n" + "\n\n".join(rng.sample(PARAGRAPHS, 5))
                        + "\n\n## What I will do next time\n\n"
                        + "\n\n".join(rng.sample(PARAGRAPHS, 4)))
                pages_of_text += 1
            details = {}
            if kind == "witness_testimony":
                details = {"witness_name": "Rachel Osei", "witness_role": "Team leader",
                           "relationship": "Line manager",
                           "witness_contact": "rachel.osei@brightwater.example"}
            try:
                evidence = make_evidence(s, enrolment, learner, kind,
                                         title=f"E{n + 1}: {kind.replace('_', ' ')} about "
                                               f"complaint C-{1000 + n}",
                                         body=body, activity_on=when, details=details,
                                         files=files, maps=maps, submit=True)
            except Exception as exc:  # noqa: BLE001 - say which item failed to build
                raise SystemExit(f"could not build item {n} ({kind}): {exc}") from exc
            # Files are placed by the upload batch in the app; here stage_bytes placed them.
            accept(s, evidence, assessor)
            made.append(evidence)
        s.commit()
        from portfolio.evidence.coverage import compute_coverage

        by_id = {e.id: e for e in made}
        decided = 0
        for row in compute_coverage(s, enrolment, today).criteria:
            counting = [by_id[i.evidence_id] for i in row.items if i.counts][:3]
            if counting:
                decide(s, enrolment, assessor, row.number, counting)
                decided += 1
        s.commit()
        return {"evidence_items": items, "photos": photo_count,
                "enrolment_id": enrolment.id, "criteria_decided": decided}


# --- the steps, each in its own process --------------------------------------------------------


def _setup(workdir: Path) -> tuple[Any, Any, Any]:
    from portfolio.db import get_database
    from portfolio.export.signing import init_centre_key

    app = _app(workdir)
    ctx = app.test_request_context()
    ctx.push()
    key_dir = Path(app.instance_path)
    if not (key_dir / "signing").exists():
        init_centre_key(key_dir, "Brightwater Training")
    return app, ctx, get_database(app).sessionmaker()


def step_naive(workdir: Path) -> dict[str, Any]:
    from portfolio.export.content import gather
    from portfolio.export.render import render_single_pass
    from portfolio.export.signing import load_signer, sign_pdf
    from portfolio.models import Enrolment

    app, _ctx, s = _setup(workdir)
    enrolment = s.get(Enrolment, json.loads((workdir / "built.json").read_text())
                      ["enrolment_id"])
    from portfolio.evidence.views import file_store

    started, cpu = time.perf_counter(), _cpu_seconds()
    content = gather(s, enrolment, now=datetime.now(UTC), public_id="naive",
                     verify_url="https://bench.example/verify/naive")
    pdf, pages = render_single_pass(content, static_dir=Path(app.static_folder),
                                    store=file_store())
    signed = sign_pdf(pdf, load_signer(app.config, Path(app.instance_path)), reason="bench",
                      location="bench")
    seconds, cpu = time.perf_counter() - started, _cpu_seconds() - cpu
    (workdir / "naive.pdf").write_bytes(signed)
    return {"seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2), "pages": pages,
            "bytes": len(signed)}


def _export(workdir: Path) -> dict[str, Any]:
    from portfolio.evidence.views import file_store
    from portfolio.export.services import export_portfolio
    from portfolio.models import Enrolment

    app, _ctx, s = _setup(workdir)
    enrolment = s.get(Enrolment, json.loads((workdir / "built.json").read_text())
                      ["enrolment_id"])
    started, cpu = time.perf_counter(), _cpu_seconds()
    export = export_portfolio(s, enrolment, actor=None, config=app.config,
                              instance_path=Path(app.instance_path),
                              static_dir=Path(app.static_folder), store=file_store(),
                              verify_base="https://bench.example/verify")
    s.commit()
    seconds, cpu = time.perf_counter() - started, _cpu_seconds() - cpu
    path = Path(app.config["EXPORTS_DIR"]) / export.filename
    return {"seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2), "pages": export.pages,
            "bytes": export.size,
            "file": str(path), "render": getattr(export, "render_report", None)}


def step_full(workdir: Path) -> dict[str, Any]:
    shutil.rmtree(workdir / "render-cache", ignore_errors=True)
    report = _export(workdir)
    shutil.copyfile(report["file"], workdir / "full.pdf")
    return report


def step_change_only(workdir: Path) -> int:
    """Refer one evidence item back and have the learner revise it (as in real use); return
    its id."""
    from sqlalchemy import select

    from portfolio.evidence.services import EvidenceInput, current_version, revise_evidence
    from portfolio.models import Enrolment, Evidence, User

    app, ctx, s = _setup(workdir)
    enrolment = s.get(Enrolment, json.loads((workdir / "built.json").read_text())
                      ["enrolment_id"])
    built_items = s.scalars(select(Evidence.id).where(
        Evidence.enrolment_id == enrolment.id, Evidence.kind == "reflective_account")).all()
    item = s.scalars(select(Evidence).where(Evidence.enrolment_id == enrolment.id,
                                            Evidence.kind == "reflective_account")
                     .order_by(Evidence.id)).all()[len(built_items) // 2]
    learner = s.get(User, enrolment.learner_id)
    version = current_version(item)
    # Referred back so the learner may revise it, as happens in real use.
    from portfolio.assessment.services import review_evidence

    if item.status != "referred":  # a repeated run revises it again
        review_evidence(s, item, actor=s.get(User, enrolment.assessor_id), outcome="referred",
                        feedback_md="Say what the policy's time limits are.", varcs={
                            k: True for k in ("valid", "authentic", "reliable", "current",
                                              "sufficient")},
                        expected_version=item.current_version)
    revise_evidence(s, item, actor=learner, data=EvidenceInput(
        title=version.title, activity_on=version.activity_on,
        body_md=version.body_md + "\n\nThe policy gives us two working days to acknowledge.",
        details=version.details, is_simulated=False, personal_data_confirmed=True),
        keep_file_ids=[], files=[], today=date.today(), expected_version=item.current_version)
    s.commit()
    s.close()
    ctx.pop()
    return item.id


def step_change(workdir: Path) -> dict[str, Any]:
    """Revise one evidence item (outside the timing), then export again."""
    changed = step_change_only(workdir)
    report = _export(workdir)
    report["changed_item"] = changed
    return report


def step_prepared(workdir: Path) -> dict[str, Any]:
    """Revise one item, lay out the changed parts as the background preparation does after
    each review or signature (outside the timing), then time the click: the export."""
    report_change = step_change_only(workdir)
    from portfolio.export.prepare import run_prepare

    app, ctx, _s = _setup(workdir)
    started = time.perf_counter()
    run_prepare(app, json.loads((workdir / "built.json").read_text())["enrolment_id"])
    prepared_seconds = time.perf_counter() - started
    ctx.pop()
    report = _export(workdir)
    report["changed_item"] = report_change
    report["background_seconds"] = round(prepared_seconds, 2)
    return report


def step_verify(workdir: Path) -> dict[str, Any]:
    """`portfolio verify FILE.pdf`, run through the real command."""
    from portfolio.cli import cli

    app, _ctx, _s = _setup(workdir)
    runner = app.test_cli_runner()
    started = time.perf_counter()
    result = runner.invoke(cli, ["verify", str(workdir / "full.pdf")])
    seconds = time.perf_counter() - started
    return {"seconds": round(seconds, 2), "exit_code": result.exit_code,
            "said": result.output.strip().splitlines()[:3]}


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median time, with the highest peak memory of all runs and every time.

    One run on a shared machine can be a second off either way; the median of three is steady
    enough to compare with a target, and memory is reported at its worst.
    """
    ordered = sorted(runs, key=lambda run: run["seconds"])
    report = dict(ordered[(len(ordered) - 1) // 2])
    if len(runs) > 1:
        report["runs_seconds"] = [run["seconds"] for run in runs]
        for key in ("peak_memory_mb", "peak_pss_mb"):
            if key in report:
                report[key] = max(run[key] for run in runs)
    return report


STEPS = {"naive": step_naive, "full": step_full, "change": step_change,
         "prepared": step_prepared, "verify": step_verify}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--photos", type=int, default=40)
    parser.add_argument("--step", choices=sorted(STEPS))
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of each timed step: the median time is reported")
    args = parser.parse_args(argv)
    if args.step:
        report = STEPS[args.step](args.workdir)
        print(json.dumps(report))
        return 0
    for name in list(os.environ):
        if name.startswith("PORTFOLIO_"):
            del os.environ[name]
    workdir = Path(tempfile.mkdtemp(prefix="portfolio-export-bench-"))
    result: dict[str, Any] = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}
    try:
        print(f"· building a {args.items}-item portfolio", file=sys.stderr, flush=True)
        started = time.perf_counter()
        built = build(workdir, args.items, args.photos)
        (workdir / "built.json").write_text(json.dumps(built))
        result["portfolio"] = built | {"build_seconds": round(time.perf_counter() - started, 1)}
        # Naive and full runs take turns, so a machine that slows down or speeds up over the
        # minutes (a shared host) weighs on both alike.
        plan = [*(["naive", "full"] * args.repeat), *(["change"] * args.repeat),
                *(["prepared"] * args.repeat), "verify"]
        runs: dict[str, list[dict[str, Any]]] = {}
        for step in plan:
            runs.setdefault(step, [])
            print(f"· {step} ({len(runs[step]) + 1})", file=sys.stderr, flush=True)
            runs[step].append(run_step(step, workdir))
            print(f"  {runs[step][-1]}", file=sys.stderr, flush=True)
        for step, reports in runs.items():
            result[step] = summarise(reports)
        naive, full, change = result["naive"], result["full"], result["change"]
        prepared = result["prepared"]
        result["ratios"] = {
            "full_time": round(full["seconds"] / naive["seconds"], 3),
            "full_memory": round(full["peak_memory_mb"] / naive["peak_memory_mb"], 3),
            "reexport_time": round(change["seconds"] / naive["seconds"], 3),
            "reexport_memory": round(change["peak_memory_mb"] / naive["peak_memory_mb"], 3),
            "full_memory_pss": round(full["peak_pss_mb"] / naive["peak_pss_mb"], 3),
            "full_cpu": round(full["cpu_seconds"] / naive["cpu_seconds"], 3),
            "reexport_cpu": round(change["cpu_seconds"] / naive["cpu_seconds"], 3),
            "click_to_signed_pdf_prepared": round(prepared["seconds"] / naive["seconds"], 3)}
        result["targets"] = {"full_time": 0.5, "full_memory": 0.5, "reexport_time": 0.1,
                             "click_to_signed_pdf_prepared": 0.05, "full_cpu": 0.6}
        result["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"· kept {workdir}", file=sys.stderr)
    RESULTS_FILE.parent.mkdir(exist_ok=True)
    RESULTS_FILE.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    met = all(result["ratios"][k] <= v for k, v in result["targets"].items())
    print(f"targets {'met' if met else 'NOT met'}: {result['ratios']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
