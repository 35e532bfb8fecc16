"""The `portfolio` command: database, criteria, users, enrolments, demo data and the server."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import click
from flask import current_app
from flask.cli import FlaskGroup, with_appcontext
from sqlalchemy import select

from portfolio import create_app, db, schema
from portfolio.assessment.signing import verify_all
from portfolio.audit import verify_chain
from portfolio.auth import services as accounts
from portfolio.criteria.services import load_paths, unit_files_in
from portfolio.criteria.unitfile import UnitFileInvalid, check_file
from portfolio.demo import PEOPLE, demo_password, seed_demo
from portfolio.enrolments.services import enrol_learner
from portfolio.errors import DomainError
from portfolio.evidence.integrity import StoredFileDamaged
from portfolio.models import ApiToken, Enrolment, Role, Unit, User
from portfolio.search.index import rebuild
from portfolio.viewkit import file_store


def main() -> None:
    """Run the portfolio command line."""
    cli(prog_name="portfolio")


@click.group(cls=FlaskGroup, create_app=create_app, add_default_commands=True,
             add_version_option=False, load_dotenv=False)
def cli() -> None:
    """NVQ e-portfolio evidence builder."""


def _fail(message: str) -> None:
    click.secho(message, fg="red", err=True)
    sys.exit(1)


def _user(email: str) -> User:
    user = db.session().scalar(select(User).where(User.email == email.strip().lower()))
    if user is None:
        _fail(f"No account with email {email}.")
    return user  # type: ignore[return-value]


def _ready_to_serve() -> None:
    """Stop unless the schema is current and production has every key it must share."""
    from portfolio.startup import NotConfigured, check_production

    try:
        schema.ensure_up_to_date(current_app)
        check_production(current_app)
    except (schema.SchemaOutOfDate, NotConfigured) as exc:
        _fail(str(exc))


# --- search ---------------------------------------------------------------------------------

@cli.group("search")
def search_group() -> None:
    """The staff search index."""


@search_group.command("rebuild")
@with_appcontext
def search_rebuild() -> None:
    """Rebuild every search entry from the evidence, feedback and comments (after a restore, or
    a bulk load that went round the app)."""
    session = db.session()
    counts = rebuild(session.connection())
    session.commit()
    click.echo("Search index rebuilt: " + ", ".join(f"{n} {kind}" for kind, n in counts.items())
               + ".")


# --- database -------------------------------------------------------------------------------

@cli.group("db")
def db_group() -> None:
    """Migrate the database schema (Alembic)."""


@db_group.command("upgrade")
@click.argument("revision", default="head")
@with_appcontext
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    schema.upgrade(current_app, revision)
    click.echo(f"Database is at revision {schema.current_revision(current_app)}.")


@db_group.command("downgrade")
@click.argument("revision")
@with_appcontext
def db_downgrade(revision: str) -> None:
    """Revert migrations down to REVISION ('base' empties the database)."""
    schema.downgrade(current_app, revision)
    click.echo(f"Database is at revision {schema.current_revision(current_app)}.")


@db_group.command("current")
@with_appcontext
def db_current() -> None:
    """Show the database's revision and the newest one."""
    click.echo(f"database: {schema.current_revision(current_app)}")
    click.echo(f"newest:   {schema.head_revision(current_app)}")


@db_group.command("check")
@with_appcontext
def db_check() -> None:
    """Fail if the models have changes that no migration describes."""
    schema.check(current_app)
    click.echo("No differences between the models and the migrations.")


# --- criteria -------------------------------------------------------------------------------

@cli.group("criteria")
def criteria_group() -> None:
    """Check and load unit files (criteria/*.toml)."""


@criteria_group.command("check")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
def criteria_check(files: tuple[str, ...]) -> None:
    """Validate unit files and report every problem with file and line."""
    problems = [p for f in files for p in check_file(f)]
    for problem in problems:
        click.echo(str(problem), err=True)
    if problems:
        _fail(f"{len(problems)} problem(s) in {len(files)} file(s).")
    click.echo(f"{len(files)} file(s) OK.")


@criteria_group.command("load")
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False))
@with_appcontext
def criteria_load(files: tuple[str, ...]) -> None:
    """Load unit files (default: every file in CRITERIA_DIR); safe to run again."""
    paths = [Path(f) for f in files] or unit_files_in(current_app.config["CRITERIA_DIR"])
    if not paths:
        _fail(f"No unit files in {current_app.config['CRITERIA_DIR']}.")
    s = db.session()
    try:
        reports = load_paths(s, paths)
    except UnitFileInvalid as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        _fail("Nothing was loaded.")
    s.commit()
    for report in reports:
        click.echo(str(report))


# --- people ---------------------------------------------------------------------------------

@cli.group("users")
def users_group() -> None:
    """Create people and manage their API tokens."""


@users_group.command("create")
@click.option("--email", required=True)
@click.option("--name", "full_name", required=True, help="Full name as it appears on records.")
@click.option("--role", "roles", multiple=True, required=True,
              type=click.Choice([r.value for r in Role]), help="Repeat for several roles.")
@click.option("--assessor-status", type=click.Choice(["qualified", "trainee"]))
@click.option("--centre", "centre_name", required=True, help="Centre name (created if new).")
@click.password_option(help="Prompted for when not given.")
@with_appcontext
def users_create(email: str, full_name: str, roles: tuple[str, ...], assessor_status: str | None,
                 centre_name: str, password: str) -> None:
    """Create a person with one or more roles."""
    s = db.session()
    try:
        centre = accounts.get_or_create_centre(s, centre_name)
        user = accounts.create_user(
            s, centre=centre, email=email, full_name=full_name, password=password, roles=roles,
            assessor_status=assessor_status,
            min_password_length=current_app.config["PASSWORD_MIN_LENGTH"])
    except DomainError as exc:
        _fail(exc.message)
    s.commit()
    click.echo(f"Created {user.full_name} <{user.email}> ({', '.join(sorted(roles))}).")


@users_group.command("list")
@with_appcontext
def users_list() -> None:
    """List everyone with their roles."""
    for user in db.session().scalars(select(User).order_by(User.centre_id, User.full_name)):
        state = "" if user.is_active else " [inactive]"
        roles = ", ".join(sorted(r.value for r in user.roles))
        click.echo(f"{user.email:32} {user.full_name:28} {roles}{state}")


@users_group.command("token")
@click.argument("email")
@click.option("--name", default="command line", show_default=True)
@with_appcontext
def users_token(email: str, name: str) -> None:
    """Create a personal API token for EMAIL and print it (shown only once)."""
    s = db.session()
    _token, raw = accounts.create_api_token(s, _user(email), name)
    s.commit()
    click.echo(raw)


@users_group.command("revoke-token")
@click.argument("email")
@click.option("--id", "token_id", type=int, help="Revoke one token; default: all of them.")
@with_appcontext
def users_revoke_token(email: str, token_id: int | None) -> None:
    """Revoke one or every API token of EMAIL."""
    s = db.session()
    user = _user(email)
    query = select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
    if token_id is not None:
        query = query.where(ApiToken.id == token_id)
    tokens = list(s.scalars(query))
    for token in tokens:
        accounts.revoke_api_token(s, token, actor=user)
    s.commit()
    click.echo(f"Revoked {len(tokens)} token(s).")


# --- enrolments ------------------------------------------------------------------------------

@cli.command("enrol")
@click.argument("learner_email")
@click.option("--unit", "unit_ref", required=True, help="Unit reference, e.g. R/506/2151.")
@click.option("--assessor", "assessor_email", required=True)
@click.option("--iqa", "iqa_email")
@click.option("--start", "start_on", type=click.DateTime(["%Y-%m-%d"]), required=True)
@click.option("--end", "planned_end_on", type=click.DateTime(["%Y-%m-%d"]), required=True)
@click.option("--employer", required=True)
@click.option("--workplace", required=True)
@with_appcontext
def enrol(learner_email: str, unit_ref: str, assessor_email: str, iqa_email: str | None,
          start_on, planned_end_on, employer: str, workplace: str) -> None:  # noqa: ANN001
    """Enrol a learner on a unit with their assessor and IQA."""
    s = db.session()
    unit = s.scalar(select(Unit).where(Unit.reference == unit_ref))
    if unit is None:
        _fail(f"No unit {unit_ref}; load it with `portfolio criteria load`.")
    try:
        enrolment = enrol_learner(
            s, learner=_user(learner_email), unit=unit, assessor=_user(assessor_email),
            iqa=_user(iqa_email) if iqa_email else None, start_on=start_on.date(),
            planned_end_on=planned_end_on.date(), employer=employer, workplace=workplace)
    except DomainError as exc:
        _fail(exc.message)
    s.commit()
    click.echo(f"Enrolment {enrolment.id}: {learner_email} on {unit_ref}.")


# --- demo, server, audit --------------------------------------------------------------------

@cli.command("demo")
@with_appcontext
def demo() -> None:
    """Create the demo centre (once) and print its logins."""
    s = db.session()
    password = demo_password(current_app.instance_path)
    try:
        with file_store().batch() as batch:
            seed_demo(s, password, today=date.today(), batch=batch)
            batch.commit(s)
    except DomainError as exc:
        _fail(exc.message)
    click.echo("Demo logins (every account uses the same password):")
    for person in PEOPLE:
        roles = ", ".join(Role(r).label for r in person.roles)
        if person.assessor_status == "trainee":
            roles += " (trainee)"
        click.echo(f"  {person.email:24} {person.full_name:18} {roles}")
    click.echo(f"  password: {password}")


@cli.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@with_appcontext
def serve(host: str, port: int) -> None:
    """Serve the app (development server; use gunicorn in production)."""
    _ready_to_serve()
    from portfolio.export.jobs import recover_dead_jobs

    # Exports whose worker died with the last run would otherwise show "running" for ever.
    if dead := recover_dead_jobs(current_app._get_current_object()):  # type: ignore[attr-defined]
        click.echo(f"Marked {dead} export job(s) failed: their worker had stopped.")
    from portfolio.notifications.sending import start_background_sender

    # Notification emails go out from this thread, never inside a request.
    start_background_sender(current_app._get_current_object())  # type: ignore[attr-defined]
    click.echo(f"Serving on http://{host}:{port}/ (Ctrl+C to stop)")
    from werkzeug.serving import run_simple

    run_simple(host, port, current_app._get_current_object(), threaded=True,  # type: ignore[attr-defined]
               use_reloader=False, use_debugger=False)


@cli.group("signatures")
def signatures_group() -> None:
    """Check signatures against the content they were made over."""


@signatures_group.command("verify")
@click.option("--learner", "learner_email", help="Only this learner's signatures.")
@with_appcontext
def signatures_verify(learner_email: str | None) -> None:
    """Recompute every signature's hashes; report valid, invalidated (why) or broken."""
    s = db.session()
    enrolment_ids = None
    if learner_email:
        learner = _user(learner_email)
        enrolment_ids = list(s.scalars(select(Enrolment.id).where(
            Enrolment.learner_id == learner.id)))
    verdicts = verify_all(s, enrolment_ids, store=file_store())
    for verdict in verdicts:
        click.echo(str(verdict), err=verdict.state == "broken")
    counts = {state: sum(1 for v in verdicts if v.state == state)
              for state in ("valid", "invalidated", "broken")}
    summary = (f"{len(verdicts)} signature(s): {counts['valid']} valid, "
               f"{counts['invalidated']} invalidated, {counts['broken']} broken.")
    if counts["broken"]:
        _fail(summary + " Broken signatures mean stored content was altered outside the app.")
    click.echo(summary)


@cli.group("witness")
def witness_group() -> None:
    """Witness testimony housekeeping."""


@witness_group.command("minimise")
@click.option("--days", type=int, help="Default: WITNESS_CONTACT_DAYS.")
@with_appcontext
def witness_minimise(days: int | None) -> None:
    """Remove witnesses' email addresses from finished requests older than the window."""
    from portfolio.witness.services import minimise_contacts

    s = db.session()
    count = minimise_contacts(s, older_than_days=days if days is not None
                              else int(current_app.config["WITNESS_CONTACT_DAYS"]))
    s.commit()
    click.echo(f"Removed the email address from {count} witness request(s).")


@cli.command("maintenance")
@with_appcontext
def maintenance() -> None:
    """Run the periodic upkeep once (from a timer or cron, e.g. hourly): witness contact
    minimisation, the sweep for export and EQA pack jobs whose worker died, removing old EQA
    pack ZIPs, removing learner work past its centre's retention period, an audit
    checkpoint, removing upload temp files a killed process left, and trimming the render
    cache. Each step runs even if another failed; exit 1 if any failed."""
    from pathlib import Path

    from portfolio.audit import current_checkpoint, write_checkpoint
    from portfolio.export.jobs import fail_stale_jobs
    from portfolio.export.pipeline import prune_cache
    from portfolio.export.services import render_cache_dir
    from portfolio.witness.services import minimise_contacts

    config = current_app.config
    database = db.get_database()

    def witnesses() -> str:
        with database.sessionmaker() as s:
            count = minimise_contacts(s, older_than_days=int(config["WITNESS_CONTACT_DAYS"]))
            s.commit()
        return f"removed the email address from {count} finished witness request(s)"

    def jobs() -> str:
        from portfolio.eqa import pack_jobs

        with database.sessionmaker() as s:
            count = fail_stale_jobs(s, config)
            packs = pack_jobs.fail_stale_jobs(s, config)
            s.commit()
        return (f"marked {count} export job(s) and {packs} EQA pack job(s) failed whose "
                "worker had stopped")

    def eqa_packs() -> str:
        from portfolio.eqa import pack_jobs

        with database.sessionmaker() as s:
            count = pack_jobs.expire_old_packs(s, config)
            s.commit()
        return f"removed {count} EQA pack ZIP(s) older than EQA_PACK_KEEP_HOURS"

    def checkpoint() -> str:
        sealer = database.sealer
        if sealer is None or sealer.checkpoint_dir is None:
            return "no seal key configured: no checkpoint written"
        with database.sessionmaker() as s:
            point = current_checkpoint(s)
        write_checkpoint(sealer.checkpoint_dir, point, keep=True)
        return f"audit checkpoint at event #{point.seq} written"

    def staging() -> str:
        from datetime import timedelta

        from portfolio.evidence.storage import sweep_staging

        hours = int(config["STAGING_MAX_AGE_HOURS"])
        count = sweep_staging(Path(config["STORAGE_DIR"]), older_than=timedelta(hours=hours))
        return (f"removed {count} upload temp file(s) untouched for {hours} hours (left by a "
                "process stopped mid-upload)")

    def cache() -> str:
        folder = render_cache_dir(config, Path(current_app.instance_path))
        removed = prune_cache(folder, int(config["RENDER_CACHE_MB"]) * 1024 * 1024)
        return f"removed {removed} cached PDF part(s) and image(s) beyond RENDER_CACHE_MB"

    def retention() -> str:
        from portfolio.evidence.storage import file_store_for
        from portfolio.export.files import export_files
        from portfolio.retention.services import run

        return str(run(database.sessionmaker, file_store_for(config), export_files(config),
                       cache_dir=render_cache_dir(config, Path(current_app.instance_path))))

    failed = 0
    for name, step in (("witnesses", witnesses), ("export jobs", jobs),
                       ("EQA packs", eqa_packs), ("retention", retention), ("audit", checkpoint),
                       ("upload temp files", staging),
                       ("render cache", cache)):
        try:
            click.echo(f"{name}: {step()}")
        except Exception as exc:  # noqa: BLE001 - report it, run the other steps
            failed += 1
            click.secho(f"{name}: FAILED ({type(exc).__name__}: {exc})", fg="red", err=True)
    if failed:
        sys.exit(1)


@cli.command("retention")
@click.option("--dry-run", is_flag=True, help="List what is due; remove nothing.")
@with_appcontext
def retention_command(dry_run: bool) -> None:
    """Remove learner work past its centre's retention period (also part of `maintenance`).

    Enrolments on legal hold are skipped. Assessment and IQA records are kept, and every
    removal is in the audit trail."""
    from pathlib import Path

    from portfolio.evidence.storage import file_store_for
    from portfolio.export.files import export_files
    from portfolio.export.services import render_cache_dir
    from portfolio.retention.services import run

    config = current_app.config
    report = run(db.get_database().sessionmaker, file_store_for(config), export_files(config),
                 cache_dir=render_cache_dir(config, Path(current_app.instance_path)),
                 dry_run=dry_run)
    if dry_run:
        ids = ", ".join(f"#{r.enrolment_id}" for r in report.removed) or "none"
        click.echo(f"due for removal: {len(report.removed)} enrolment(s) ({ids})")
    else:
        click.echo(str(report))


@cli.group("keys")
def keys_group() -> None:
    """Each centre's key for signing exported PDFs, and the certificates it trusts."""


def _key_centres(centre_name: str | None, *, allow_none: bool = False) -> list[tuple[int, str]]:
    """The centres a keys command acts on: the one named, else all of them."""
    from portfolio.models import Centre

    query = select(Centre.id, Centre.name).order_by(Centre.id)
    if centre_name:
        query = query.where(Centre.name == centre_name)
    centres = [(cid, name) for cid, name in db.session().execute(query)]
    if centre_name and not centres:
        _fail(f"No centre named {centre_name!r}; `portfolio keys list` shows the centres.")
    if not centres and not allow_none:
        _fail("There is no centre yet: run `portfolio demo` or `portfolio bundle import`, "
              "or add people with `portfolio users create --centre NAME` first.")
    return centres


@keys_group.command("init")
@click.option("--centre", "centre_name", help="Only this centre (default: every centre).")
@click.option("--all", "all_centres", is_flag=True, help="Every centre (the default).")
@click.option("--if-missing", is_flag=True, help="Skip centres that have a key already.")
@click.option("--overwrite", is_flag=True,
              help="Replace an existing key (its certificate stays trusted, as with rotate).")
@with_appcontext
def keys_init(centre_name: str | None, all_centres: bool, if_missing: bool,
              overwrite: bool) -> None:
    """Give each centre its own signing key (mode 0600) and self-signed certificate.

    Keys live in SIGNING_KEYS_DIR (default instance/signing) under centre-<id>/. An older
    single key (instance/signing/centre-key.pem) becomes the first centre's key, and its
    certificate stays trusted for every centre's older exports.
    """
    from portfolio.export import keys

    if centre_name and all_centres:
        _fail("Give either --centre NAME or --all, not both.")
    config, instance = current_app.config, Path(current_app.instance_path)
    every = _key_centres(None, allow_none=if_missing)
    if not every:
        click.echo("There is no centre yet, so no key to make.")
        return
    chosen = _key_centres(centre_name) if centre_name else every
    legacy = keys.legacy_key_paths(instance)
    has_legacy = legacy.key_path.is_file() and legacy.cert_path.is_file()
    for centre_id, name in chosen:
        if keys.has_own_key(config, instance, centre_id) and not overwrite:
            if if_missing:
                click.echo(f"{name}: has a signing key already.")
                continue
            _fail(f"{name} already has a signing key; use `portfolio keys rotate --centre "
                  f"{name!r}` to replace it (older exports keep verifying).")
        adopt = has_legacy and centre_id == every[0][0]
        if has_legacy and not adopt:
            keys.retire_legacy_certificate(config, instance, centre_id)
        paths = keys.init_centre_signing_key(config, instance, centre_id, name,
                                             overwrite=overwrite, adopt_legacy=adopt)
        cert = keys.trusted_certificates(config, instance, centre_id)[0]
        click.echo(f"{name}: {'adopted the existing' if adopt else 'new'} key {paths.key_path}\n"
                   f"  certificate SHA-256 {keys.format_fingerprint(cert.fingerprint)}")
    if has_legacy and all(keys.has_own_key(config, instance, cid) for cid, _ in every):
        keys.forget_legacy_key(instance)
        click.echo(f"The single key in {legacy.key_path.parent} now belongs to {every[0][1]}; "
                   "its certificate stays trusted for the other centres' older exports.")


@keys_group.command("rotate")
@click.option("--centre", "centre_name", help="Only this centre (default: every centre).")
@with_appcontext
def keys_rotate(centre_name: str | None) -> None:
    """Make a new key for a centre; the old certificate stays trusted for older exports."""
    from portfolio.export import keys

    config, instance = current_app.config, Path(current_app.instance_path)
    for centre_id, name in _key_centres(centre_name):
        try:
            old, new = keys.rotate_centre_key(config, instance, centre_id, name)
        except FileNotFoundError as exc:
            _fail(str(exc))
        click.echo(f"{name}: new key, certificate SHA-256 "
                   f"{keys.format_fingerprint(new.fingerprint)}\n"
                   f"  retired (still trusted): {keys.format_fingerprint(old.fingerprint)}")


@keys_group.command("list")
@with_appcontext
def keys_list() -> None:
    """Show each centre's current and retired certificates: fingerprint and validity."""
    from portfolio.export import keys

    config, instance = current_app.config, Path(current_app.instance_path)
    click.echo(f"Keys folder: {keys.keys_root(config, instance)}")
    labels = {"current": "current", "retired": "retired", "pkcs12": "SIGNING_PKCS12",
              "legacy": "single key (run `portfolio keys init`)"}
    for centre_id, name in _key_centres(None):
        certs = keys.trusted_certificates(config, instance, centre_id)
        click.echo(f"{name} (centre {centre_id}):" + ("" if certs else " NO SIGNING KEY"))
        for cert in certs:
            click.echo(f"  {labels.get(cert.status, cert.status):<8} {cert.subject}\n"
                       f"           SHA-256 {keys.format_fingerprint(cert.fingerprint)}\n"
                       f"           valid {cert.not_before:%Y-%m-%d} to "
                       f"{cert.not_after:%Y-%m-%d}")
    missing = keys.missing_signing_keys(config, instance, db.session())
    if missing:
        click.echo("Without a key of their own: " + ", ".join(missing)
                   + " (run `portfolio keys init`).")


def _verify_base() -> str:
    return current_app.config.get("PUBLIC_URL", "").rstrip("/") + "/verify"


@cli.command("export")
@click.argument("learner_email")
@click.option("--unit", "unit_ref", required=True, help="Unit reference, e.g. R/506/2151.")
@click.option("--out", "out", type=click.Path(dir_okay=False), help="Default: EXPORTS_DIR.")
@with_appcontext
def export_command(learner_email: str, unit_ref: str, out: str | None) -> None:
    """Write a learner's portfolio for a unit as a signed PDF."""
    from portfolio.export.services import export_portfolio
    from portfolio.viewkit import file_store

    s = db.session()
    learner = _user(learner_email)
    enrolment = s.scalar(select(Enrolment).join(Unit, Unit.id == Enrolment.unit_id).where(
        Enrolment.learner_id == learner.id, Unit.reference == unit_ref))
    if enrolment is None:
        _fail(f"{learner_email} is not enrolled on {unit_ref}.")
    try:
        export = export_portfolio(
            s, enrolment, actor=None, config=current_app.config,
            instance_path=Path(current_app.instance_path),
            static_dir=Path(current_app.static_folder or "static"), store=file_store(),
            verify_base=_verify_base(), out=Path(out) if out else None)
    except FileNotFoundError as exc:
        _fail(str(exc))
    except StoredFileDamaged as exc:
        from portfolio.evidence.storage import record_file_damaged

        s.rollback()
        record_file_damaged(s, exc.sha256, "portfolio export")
        s.commit()
        _fail(exc.message)
    s.commit()
    if out:
        target = out
    else:
        from portfolio.export.files import export_files

        files = export_files(current_app.config)
        target = str(files.local_path(export.filename)
                     or f"{files.backend.describe()}{files.key(export.filename)}")
    click.echo(f"Wrote {target}: {export.pages} pages, {export.size} bytes, "
               f"SHA-256 {export.sha256}")


VERIFY_EXIT_CODES = {"intact and current": 0, "intact but changed": 3, "altered": 4,
                     "not signed by this centre": 5, "not one of our exports": 6,
                     "not a signed PDF": 7}


@cli.command("verify")
@click.argument("pdf", type=click.Path(exists=True, dir_okay=False))
@with_appcontext
def verify_command(pdf: str) -> None:
    """Check an exported PDF: who signed it, that it is a recorded export, what changed since.

    Exit codes: 0 genuine and current; 3 genuine, but the portfolio changed since (listed);
    4 altered (what is said); 5 signed, but not by this centre (signer and certificate
    fingerprint named); 6 not one of our exports (a genuine centre signature over a file
    never exported here); 7 not a signed PDF.
    """
    from portfolio.export.keys import format_fingerprint
    from portfolio.export.services import verify_export

    verdict = verify_export(db.session(), Path(pdf), config=current_app.config,
                            instance_path=Path(current_app.instance_path))
    headline = {"intact and current": "GENUINE AND CURRENT",
                "intact but changed": "GENUINE, BUT THE PORTFOLIO HAS CHANGED SINCE THE EXPORT:",
                "altered": "ALTERED",
                "not signed by this centre": "SIGNED, BUT NOT BY THIS CENTRE",
                "not one of our exports": "NOT ONE OF OUR EXPORTS",
                "not a signed PDF": "NOT A SIGNED PDF"}[verdict.state]
    code = VERIFY_EXIT_CODES[verdict.state]
    echo = click.echo if verdict.ok else (lambda text: click.secho(text, fg="red", err=True))
    echo(headline + (f": {verdict.signature_problem}" if verdict.signature_problem else ""))
    for line in verdict.changes + verdict.problems:
        echo(f"  - {line}")
    if verdict.signer or verdict.fingerprint:
        who = verdict.signer + (f" ({verdict.signer_centre}, {verdict.certificate_status} key)"
                                if verdict.signer_centre else "")
        click.echo(f"Signed by: {who}")
        click.echo(f"Certificate SHA-256: {format_fingerprint(verdict.fingerprint)}")
    if verdict.signed_at:
        click.echo(f"Signed at: {verdict.signed_at:%Y-%m-%d %H:%M:%S} UTC")
    if verdict.export_id and verdict.ok:
        click.echo(f"Export #{verdict.export_id} of {verdict.exported_at:%Y-%m-%d %H:%M} UTC")
    sys.exit(code)


@cli.command("worker")
@click.option("--burst", is_flag=True, help="Exit when the queue is empty instead of waiting.")
@with_appcontext
def worker(burst: bool) -> None:
    """Run queued emails and PDF exports (needs REDIS_URL); each job runs in a process of its
    own, and an email that cannot be delivered is tried again later."""
    from redis.exceptions import RedisError

    from portfolio.db import get_database
    from portfolio.export.jobs import QUEUE_NAME, fail_stale_jobs, horse_killed, queue_for

    _ready_to_serve()
    redis_url = current_app.config["REDIS_URL"]
    if not redis_url:
        _fail("REDIS_URL is not set: set it (or PORTFOLIO_REDIS_URL) to the Redis server the "
              "web app queues exports on, e.g. redis://127.0.0.1:6379/0.")
    queue = queue_for(redis_url)
    try:
        queue.connection.ping()
    except RedisError as exc:
        _fail(f"Cannot reach Redis at REDIS_URL: {exc}")
    with get_database(current_app).sessionmaker() as s:
        # Jobs whose worker died (killed, machine restarted) would otherwise stay "running".
        from portfolio.eqa.pack_jobs import fail_stale_jobs as fail_stale_pack_jobs

        dead = fail_stale_jobs(s, current_app.config)
        dead += fail_stale_pack_jobs(s, current_app.config)
        s.commit()
    if dead:
        click.echo(f"Marked {dead} export job(s) failed: their worker had stopped.")
    if not burst:
        from portfolio.notifications.sending import start_background_sender

        # Notification emails are sent from a thread of this process, between and during jobs.
        start_background_sender(current_app._get_current_object())  # type: ignore[attr-defined]
    from portfolio.export.prepare import QUEUE_NAME as PREPARE_QUEUE
    from portfolio.export.prepare import queue_for as prepare_queue_for
    from portfolio.notify import MAIL_QUEUE, mail_queue
    from portfolio.people_import.jobs import QUEUE_NAME as IMPORT_QUEUE
    from portfolio.people_import.jobs import queue_for as import_queue_for

    click.echo(f"Worker on queues '{MAIL_QUEUE}', '{QUEUE_NAME}', '{IMPORT_QUEUE}' and "
               f"'{PREPARE_QUEUE}'" + (" (burst)" if burst else "") + "; Ctrl+C to stop.")
    # Emails first: they are quick, and should not wait behind a long export. Laying out
    # PDFs ahead of time comes last: it only saves time later.
    from portfolio.rqworker import PortfolioWorker

    PortfolioWorker([mail_queue(redis_url), queue, import_queue_for(redis_url),
                     prepare_queue_for(redis_url)],
                    connection=queue.connection,
                    work_horse_killed_handler=horse_killed).work(burst=burst)


@cli.group("notifications")
def notifications_group() -> None:
    """Email the notifications that are due."""


@notifications_group.command("send")
@with_appcontext
def notifications_send() -> None:
    """Send immediate emails, and the daily digests once the digest hour has passed (cron)."""
    from portfolio.notifications.sending import run_once

    try:
        schema.ensure_up_to_date(current_app)
    except schema.SchemaOutOfDate as exc:
        _fail(str(exc))
    result = run_once(current_app._get_current_object())  # type: ignore[attr-defined]
    click.echo(f"Notifications: {result}.")
    if result.failed:
        sys.exit(1)


@cli.group("audit")
def audit_group() -> None:
    """Check the audit trail."""


@audit_group.command("verify")
@click.option("--checkpoints", "checkpoint_dir", type=click.Path(file_okay=False),
              help="Folder of checkpoints to check against (default AUDIT_CHECKPOINT_DIR); "
                   "use the copy shipped off the machine.")
@click.option("--pdf", "pdfs", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="An exported portfolio PDF whose embedded checkpoint is checked too "
                   "(repeatable).")
@with_appcontext
def audit_verify(checkpoint_dir: str | None, pdfs: tuple[str, ...]) -> None:
    """Re-seal the chain and check it against the checkpoints; name every break.

    Exit codes: 0 intact; 1 broken (edited, deleted, reordered or rewritten events, a forged
    checkpoint, or a tail cut off); 2 no seal key.
    """
    from portfolio.audit import checkpoint_in_pdf, load_checkpoints
    from portfolio.seals import SealKeyMissing

    sealer = db.get_database().sealer
    folder = Path(checkpoint_dir) if checkpoint_dir else (sealer.checkpoint_dir if sealer
                                                          else None)
    checkpoints, unreadable = load_checkpoints(folder)
    for name in pdfs:
        found = checkpoint_in_pdf(Path(name).read_bytes(), name)
        (unreadable.append if isinstance(found, str) else checkpoints.append)(found)
    try:
        count, problems = verify_chain(db.session(), checkpoints)
    except SealKeyMissing as exc:
        click.secho(str(exc), fg="red", err=True)
        sys.exit(2)
    for message in unreadable:
        click.echo(f"note: {message}", err=True)
    shown = problems[:50]
    for problem in shown:
        click.echo(str(problem), err=True)
    if len(problems) > len(shown):
        click.echo(f"... and {len(problems) - len(shown)} more.", err=True)
    if problems:
        _fail(f"Audit trail is NOT intact: {len(problems)} problem(s) in {count} event(s), "
              f"checked against {len(checkpoints)} checkpoint(s).")
    click.echo(f"Audit trail intact: {count} event(s), sealed with key {sealer.key_id}, "
               f"consistent with {len(checkpoints)} checkpoint(s).")
    if not checkpoints:
        click.echo("No checkpoints were found: deleting the newest events could not be "
                   "detected. Ship AUDIT_CHECKPOINT_DIR off the machine and pass --checkpoints.")


@audit_group.command("checkpoint")
@with_appcontext
def audit_checkpoint() -> None:
    """Write a sealed checkpoint of the chain's head now (run it from cron, then copy the
    folder off the machine)."""
    from portfolio.audit import current_checkpoint, write_checkpoint

    sealer = db.get_database().sealer
    if sealer is None or sealer.checkpoint_dir is None:
        _fail("No seal key is configured: set PORTFOLIO_SEAL_KEY_FILE.")
    point = current_checkpoint(db.session())
    write_checkpoint(sealer.checkpoint_dir, point, keep=True)
    click.echo(f"Checkpoint written: event #{point.seq}, {point.hash[:16]}…, "
               f"in {sealer.checkpoint_dir}")


@cli.command("seal-key")
@click.option("--out", type=click.Path(dir_okay=False, writable=True),
              help="Write the new key to this file (created with mode 0600, never overwritten).")
def seal_key(out: str | None) -> None:
    """Make a new random seal key for PORTFOLIO_SEAL_KEY_FILE (printed, or written to --out)."""
    import os
    import secrets

    key = secrets.token_urlsafe(48)
    if not out:
        click.echo(key)
        return
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        _fail(f"{out} exists already; a seal key is never overwritten (seals made with it "
              "could no longer be checked).")
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    click.echo(f"Seal key written to {out}. Set PORTFOLIO_SEAL_KEY_FILE={out} on every machine.")


@cli.group("bundle")
def bundle_group() -> None:
    """Open portfolio bundles: a learner's whole portfolio as a ZIP, to move it elsewhere."""


@bundle_group.command("export")
@click.argument("learner_email")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False),
              help="The ZIP file to write.")
@with_appcontext
def bundle_export(learner_email: str, out: str) -> None:
    """Write a learner's portfolio (every unit, version, file and signature) as a bundle."""
    import os
    import tempfile

    from portfolio.bundle.export import export_bundle

    s = db.session()
    learner = _user(learner_email)
    target = Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Written beside the target and renamed into place: a failed export leaves no partial ZIP.
    fd, partial = tempfile.mkstemp(dir=target.parent, prefix=".partial-", suffix=".zip")
    try:
        with os.fdopen(fd, "w+b") as handle:
            summary = export_bundle(s, learner, store=file_store(), out=handle, actor=None)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, target)
    except (DomainError, FileNotFoundError) as exc:
        Path(partial).unlink(missing_ok=True)
        _fail(getattr(exc, "message", str(exc)))
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
    s.commit()
    click.echo(f"Wrote {out}: {summary.enrolments} enrolment(s), {summary.evidence} evidence "
               f"item(s) in {summary.versions} version(s), {summary.files} file(s), "
               f"{summary.signatures} signature(s), {summary.audit_events} audit event(s).")


@bundle_group.command("import")
@click.argument("bundle", type=click.Path(exists=True, dir_okay=False))
@click.option("--centre", "centre_name",
              help="Centre to import into (default: the centre named in the bundle).")
@with_appcontext
def bundle_import(bundle: str, centre_name: str | None) -> None:
    """Import a bundle: everything is checked first; any problem refuses it whole (exit 1)."""
    from portfolio.bundle.importer import BundleRefused, import_and_commit
    from portfolio.models import Centre

    s = db.session()
    centre = None
    if centre_name:
        centre = s.scalar(select(Centre).where(Centre.name == centre_name))
        if centre is None:
            _fail(f"No centre named {centre_name!r}.")
    try:
        report = import_and_commit(
            s, Path(bundle), store=file_store(), centre=centre, actor=None,
            max_bytes=int(current_app.config["BUNDLE_MAX_MB"]) * 1024 * 1024)
    except BundleRefused as exc:
        _fail(exc.report())
    for line in report.lines():
        click.echo(line)


@cli.group("files")
def files_group() -> None:
    """The content-addressed file store: check that every stored file is intact."""


@files_group.command("pictures")
@with_appcontext
def files_pictures() -> None:
    """Picture the PDFs and HEIC/HEIF photos stored before they could be shown.

    Their first page (a PDF) or a JPEG copy (a photo) is made as an upload makes it, and the
    file's preview rebuilt; files that still cannot be pictured keep a note saying why. Run it
    once after upgrading; running it again only retries those.
    """
    from portfolio.evidence.storage import refresh_pictures

    s = db.session()
    report = refresh_pictures(s, file_store())
    s.commit()
    for sha in report.unreadable:
        click.secho(f"SKIPPED  {sha}: damaged or missing (see `portfolio files verify`)",
                    fg="red")
    click.echo(f"{report.checked} stored PDF(s) or HEIC/HEIF photo(s) had no picture; "
               f"{report.pictured} have one now ({report.files} file record(s) updated).")
    if report.unreadable:
        sys.exit(1)


@files_group.command("verify")
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
@with_appcontext
def files_verify(as_json: bool) -> None:
    """Re-hash every stored file; name damaged, missing and unreferenced ones.

    Exits 1 when a file is damaged (its bytes no longer match its SHA-256) or missing (a
    file record points at it, the store does not hold it); unreferenced files are a note.
    Each damaged or missing file is recorded once in the audit trail.
    """
    import json
    import time

    from portfolio.evidence.storage import record_file_damaged, scrub_store
    from portfolio.models import EvidenceFile, EvidenceVersion

    s = db.session()
    started = time.perf_counter()
    report = scrub_store(s, file_store())
    seconds = time.perf_counter() - started
    bad = [*report.damaged, *report.missing]
    used_by: dict[str, list[dict[str, object]]] = {sha: [] for sha in bad}
    if bad:
        rows = s.execute(
            select(EvidenceFile.sha256, EvidenceVersion.evidence_id, EvidenceVersion.version,
                   EvidenceFile.filename)
            .join(EvidenceVersion, EvidenceVersion.id == EvidenceFile.version_id)
            .where(EvidenceFile.sha256.in_(bad))
            .order_by(EvidenceVersion.evidence_id, EvidenceVersion.version))
        for sha, evidence_id, version, filename in rows:
            used_by[sha].append({"evidence_id": evidence_id, "version": version,
                                 "filename": filename})
        for sha in bad:
            record_file_damaged(s, sha, "portfolio files verify")
        s.commit()
    if as_json:
        click.echo(json.dumps({**report.as_dict(), "seconds": round(seconds, 3),
                               "used_by": used_by}, indent=1, sort_keys=True))
    else:
        def uses(sha: str) -> str:
            named = [f"E{u['evidence_id']} v{u['version']} {u['filename']}"
                     for u in used_by.get(sha, [])]
            return f" (used by {', '.join(named)})" if named else ""

        for sha in report.damaged:
            click.secho(f"DAMAGED  {sha}: its bytes no longer match its SHA-256{uses(sha)}",
                        fg="red")
        for sha in report.missing:
            click.secho(f"MISSING  {sha}: a file record points at it, the store does not "
                        f"hold it{uses(sha)}", fg="red")
        for sha in report.unreferenced:
            click.echo(f"note: {sha} is in the store but no file record uses it")
        for path in report.stray:
            click.echo(f"note: {path} is not named like a stored file")
        click.echo(f"Checked {report.checked} stored file(s), "
                   f"{report.bytes_read / 1024 / 1024:.1f} MB, in {seconds:.1f} s: "
                   f"{len(report.damaged)} damaged, {len(report.missing)} missing, "
                   f"{len(report.unreferenced)} unreferenced.")
        if report.ok:
            click.echo("Every stored file is intact.")
    if not report.ok:
        sys.exit(1)


@cli.group("storage")
def storage_group() -> None:
    """Where evidence files are kept (STORAGE_BACKEND)."""


@storage_group.command("migrate")
@click.option("--to", "to", type=click.Choice(["s3"]), required=True,
              help="The backend to copy the local store into (configured by the S3_* keys).")
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
@with_appcontext
def storage_migrate(to: str, as_json: bool) -> None:
    """Copy the local store (STORAGE_DIR) and finished exports (EXPORTS_DIR) into the S3
    bucket, checking each file's SHA-256.

    Files already in the bucket with the right hash are skipped, so it can be run again.
    Exits 1 when a local file is damaged (not copied) or a file in the bucket does not match
    after the upload. Then set STORAGE_BACKEND=s3.
    """
    import json

    from portfolio.storage import open_backend, settings_from_config
    from portfolio.storage.local import LocalBackend
    from portfolio.storage.migrate import migrate_store

    try:
        settings = settings_from_config(current_app.config, backend=to)
    except (ValueError, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from None
    source = LocalBackend(Path(settings.root))
    target = open_backend(settings)
    problem = target.check()
    if problem:
        raise click.ClickException(problem)
    from portfolio.export.files import BUCKET_FOLDER

    exports = LocalBackend(Path(current_app.config["EXPORTS_DIR"]))
    report = migrate_store(source, target, exports=exports, exports_folder=BUCKET_FOLDER)
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=1, sort_keys=True))
    else:
        click.echo(f"From {source.describe()} to {target.describe()}:")
        click.echo(f"  files copied and checked: {report.copied} "
                   f"({report.bytes_copied} bytes)")
        click.echo(f"  files already there with the right hash: {report.already_there}")
        click.echo(f"  print copies copied: {report.print_copied}, "
                   f"already there: {report.print_already_there}")
        click.echo(f"  finished exports copied: {report.exports_copied}, "
                   f"already there: {report.exports_already_there}")
        for sha in report.damaged_locally:
            click.echo(f"  DAMAGED locally (its bytes no longer match; not copied): {sha}")
        for key in report.failed_after_upload:
            click.echo(f"  MISMATCH in the bucket after upload: {key}")
        for key in report.stray:
            click.echo(f"  not an object name, left alone: {key}")
    if not report.ok:
        raise SystemExit(1)
