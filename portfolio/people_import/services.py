"""Import learners and their enrolments from a CSV file a centre admin uploads.

- `read_file` decodes the upload (UTF-8, with or without Excel's byte-order mark), finds the
  separator (`,`, or `;` as Excel writes it in many locales, or a tab), maps the header row to
  our columns and counts the rows; what is wrong with the file as a whole refuses it.
- `check_rows` checks every row against the database and the rest of the file, and says what
  each row would do (a new person or an existing one, which units) or what is wrong with it.
  It writes nothing, so it runs for the preview and again when the admin confirms.
- `import_rows` writes the rows that passed: new people with an invitation (never a password),
  existing people reused, and the enrolments, each row in a savepoint of its own. It flushes and
  never commits.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from portfolio.audit import record_event
from portfolio.auth import resets
from portfolio.auth import services as accounts
from portfolio.db import utcnow
from portfolio.enrolments import services as enrolments
from portfolio.errors import DomainError, NotFound, PermissionDenied, ValidationFailed
from portfolio.job_states import MACHINE, JobStatus, is_active
from portfolio.models import Centre, Enrolment, PeopleImport, Role, Unit, User
from portfolio.permissions import can_manage_users

# The columns, in the template's order: (key, header, required).
COLUMNS: tuple[tuple[str, str, bool], ...] = (
    ("name", "Name", True),
    ("email", "Email", True),
    ("employer", "Employer", True),
    ("workplace", "Workplace", True),
    ("unit", "Unit or qualification", True),
    ("assessor", "Assessor email", True),
    ("iqa", "IQA email", False),
    ("start", "Start date", True),
    ("end", "Planned end date", True),
)
HEADERS = {key: header for key, header, _required in COLUMNS}
# Header spellings we accept, compared with case, spaces and punctuation removed.
ALIASES = {
    "name": ("name", "fullname", "learner", "learnername"),
    "email": ("email", "emailaddress", "learneremail"),
    "employer": ("employer",),
    "workplace": ("workplace", "site"),
    "unit": ("unitorqualification", "unit", "qualification", "unitreference",
             "qualificationcode"),
    "assessor": ("assessoremail", "assessor"),
    "iqa": ("iqaemail", "iqa", "internalqualityassurer", "internalqualityassureremail"),
    "start": ("startdate", "start"),
    "end": ("plannedenddate", "plannedend", "enddate", "end"),
}
_HEADER_KEYS = {alias: key for key, aliases in ALIASES.items() for alias in aliases}
SEPARATORS = (",", ";", "\t")
MAX_BYTES = 5 * 1024 * 1024  # far more than the largest allowed number of rows needs
MAX_TEXT = 200
PREVIEW_LIFETIME = timedelta(hours=24)
TOKEN_PREFIX = "imp_"  # noqa: S105 - a label, not a secret


class FileRefused(ValidationFailed):
    """The file cannot be read as a whole (not CSV, not UTF-8, missing columns, too long)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(problems[0], field="file")
        self.problems = problems


# --- reading the file --------------------------------------------------------------------------


@dataclass(frozen=True)
class CsvFile:
    """A readable upload: its rows as {column key: text}, each with its spreadsheet row number."""

    rows: list[tuple[int, dict[str, str]]]
    ignored_columns: list[str]
    separator: str


def _header_key(cell: str) -> str:
    return _HEADER_KEYS.get(re.sub(r"[^a-z]", "", cell.lower()), "")


def decode(raw: bytes) -> str:
    """The file's text: UTF-8, with Excel's byte-order mark (BOM) removed.

    :raises FileRefused: it is not UTF-8 text.
    """
    if b"\x00" in raw[:4096]:
        raise FileRefused(["This is not a CSV file. In your spreadsheet choose File, Save as, "
                           "and the type “CSV UTF-8 (comma delimited)”, then upload that."])
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FileRefused([
            "The file is not saved as UTF-8, so names with accents would come out wrong. "
            "In Excel choose File, Save as, and the type “CSV UTF-8 (comma delimited)”; "
            "in LibreOffice tick “Edit filter settings” and choose “Unicode (UTF-8)”. "
            f"(The first character we could not read is at byte {exc.start + 1}.)"]) from exc


def _separator(first_line: str) -> str:
    """The separator that splits the header row into the most columns we know."""
    def known(sep: str) -> int:
        cells = next(csv.reader([first_line], delimiter=sep), [])
        return sum(1 for cell in cells if _header_key(cell))
    return max(SEPARATORS, key=known)


def read_file(text: str, *, max_rows: int) -> CsvFile:
    """Parse the CSV text into rows keyed by our column names.

    :raises FileRefused: no header row, a required column missing or twice, a broken quote,
        or more rows than `max_rows`.
    """
    text = text.lstrip("\ufeff")
    first = re.split(r"\r\n|\r|\n", text, maxsplit=1)[0]
    if not first.strip():
        raise FileRefused(["The file is empty, or its first line is blank. The first line must "
                           "name the columns: download the template to see them."])
    sep = _separator(first)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep, strict=True)
    try:
        header = next(reader)
        keys = [_header_key(cell) for cell in header]
        problems = []
        for key, label, required in COLUMNS:
            count = keys.count(key)
            if count == 0 and required:
                problems.append(f"The file has no “{label}” column. Download the template to "
                                "see the columns and their order.")
            elif count > 1:
                problems.append(f"The file has the “{label}” column {count} times: keep one.")
        if problems:
            raise FileRefused(problems)
        ignored = [cell.strip() for cell, key in zip(header, keys, strict=True)
                   if not key and cell.strip()]
        rows: list[tuple[int, dict[str, str]]] = []
        for number, cells in enumerate(reader, start=2):
            if not any(cell.strip() for cell in cells):
                continue  # blank lines, and the empty rows spreadsheets leave at the end
            if len(rows) >= max_rows:
                raise FileRefused([f"The file has more than {max_rows} rows, the most one "
                                   "import takes. Split it into smaller files."])
            values = {key: "" for key in HEADERS}
            for key, cell in zip(keys, cells, strict=False):
                if key:
                    values[key] = " ".join(cell.split())
            if len(cells) > len(header) and any(c.strip() for c in cells[len(header):]):
                values["_extra"] = "1"
            rows.append((number, values))
    except csv.Error as exc:
        raise FileRefused([f"The file is not valid CSV near line {reader.line_num}: a quote "
                           "(\") is not closed. Save it from your spreadsheet again."]) from exc
    if not rows:
        raise FileRefused(["The file has the column names but no rows of people under them."])
    return CsvFile(rows, ignored, sep)


# --- checking rows ------------------------------------------------------------------------------


def parse_date(text: str) -> date | None:
    """A date written 2025-09-01 (ISO) or 01/09/2025 (day first, as UK centres write it)."""
    text = text.strip()
    for pattern in ("%Y-%m-%d", "%d/%m/%Y", "%d.%m.%Y", "%d-%m-%Y"):
        try:
            return datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    return None


@dataclass
class RowCheck:
    """What one row would do, or why it cannot."""

    number: int
    values: dict[str, str]
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    email: str = ""
    learner: User | None = None
    units: list[Unit] = field(default_factory=list)
    assessor: User | None = None
    iqa: User | None = None
    start_on: date | None = None
    planned_end_on: date | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def unit_labels(self) -> list[str]:
        return [f"Unit {u.number} ({u.reference})" for u in self.units]


@dataclass
class Checked:
    """Every row of a file, checked."""

    rows: list[RowCheck]
    ignored_columns: list[str]

    @property
    def good(self) -> list[RowCheck]:
        return [r for r in self.rows if r.ok]

    @property
    def bad(self) -> list[RowCheck]:
        return [r for r in self.rows if not r.ok]

    @property
    def new_people(self) -> int:
        return len({r.email for r in self.good if r.learner is None})

    @property
    def enrolments(self) -> int:
        return sum(len(r.units) for r in self.good)

    def fingerprint(self) -> str:
        """A digest of what confirming would write: the rows that pass, each with the person
        (new or which account), units, assessor, IQA and dates. The preview carries it, and a
        confirm whose preview no longer matches is shown the new one instead."""
        plan = [[r.number, r.email, r.learner.id if r.learner else None,
                 [u.id for u in r.units], r.assessor.id if r.assessor else None,
                 r.iqa.id if r.iqa else None, str(r.start_on), str(r.planned_end_on),
                 r.values["name"], r.values["employer"], r.values["workplace"]]
                for r in self.good]
        return hashlib.sha256(json.dumps(plan, sort_keys=True).encode()).hexdigest()


def _chunks(items: Sequence[str], size: int = 500) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _users_by_email(session: Session, emails: Iterable[str]) -> dict[str, User]:
    wanted = sorted(set(emails))
    found: dict[str, User] = {}
    for part in _chunks(wanted):
        for user in session.scalars(select(User).where(User.email.in_(part))):
            found[user.email] = user
    return found


def _clean_email(text: str) -> str | None:
    try:
        return accounts.normalise_email(text)
    except ValidationFailed:
        return None


def check_rows(session: Session, csv_file: CsvFile, centre: Centre) -> Checked:
    """Check every row; write nothing."""
    units = {u.reference.lower(): [u] for u in session.scalars(select(Unit))}
    by_code: dict[str, list[Unit]] = {}
    for unit_list in units.values():
        unit = unit_list[0]
        by_code.setdefault(unit.qualification.code.lower(), []).append(unit)
    emails = []
    for _number, values in csv_file.rows:
        for key in ("email", "assessor", "iqa"):
            cleaned = _clean_email(values[key])
            if cleaned:
                emails.append(cleaned)
    people = _users_by_email(session, emails)
    learner_ids = [u.id for u in people.values() if u.centre_id == centre.id]
    enrolled: set[tuple[int, int]] = set()
    for start in range(0, len(learner_ids), 500):
        enrolled.update((learner_id, unit_id) for learner_id, unit_id in session.execute(
            select(Enrolment.learner_id, Enrolment.unit_id)
            .where(Enrolment.learner_id.in_(learner_ids[start:start + 500]))))
    seen_pairs: dict[tuple[str, int], int] = {}
    seen_names: dict[str, tuple[int, str]] = {}
    checked = []
    for number, values in csv_file.rows:
        row = RowCheck(number, values)
        checked.append(row)
        _check_row(row, centre, units, by_code, people, enrolled)
        if values.get("_extra"):
            row.problems.append("This row has more cells than the header row: check for a "
                                "stray separator (a comma inside a name needs quotes).")
        if not row.email:
            continue
        first = seen_names.setdefault(row.email, (number, values["name"]))
        if first[0] != number and values["name"] and first[1] \
                and first[1].lower() != values["name"].lower():
            row.problems.append(f"Row {first[0]} gives this email the name “{first[1]}”: "
                                "one email is one person.")
        for unit in row.units:
            earlier = seen_pairs.setdefault((row.email, unit.id), number)
            if earlier != number:
                row.problems.append(f"Repeats row {earlier}: the same person on unit "
                                    f"{unit.number} again.")
    return Checked(checked, csv_file.ignored_columns)


def _staff(people: dict[str, User], text: str, centre: Centre, role: Role, label: str,
           problems: list[str]) -> User | None:
    cleaned = _clean_email(text)
    if cleaned is None:
        problems.append(f"The {label} email “{text}” is not an email address.")
        return None
    person = people.get(cleaned)
    if (person is None or person.centre_id != centre.id or not person.is_active
            or not person.has_role(role)):
        problems.append(f"Nobody with the {label} role at {centre.name} has the email "
                        f"{cleaned}. Check it on the People page.")
        return None
    return person


def _check_row(row: RowCheck, centre: Centre, units: dict[str, list[Unit]],
               by_code: dict[str, list[Unit]], people: dict[str, User],
               enrolled: set[tuple[int, int]]) -> None:
    values, problems = row.values, row.problems
    for key, label, required in COLUMNS:
        if required and not values[key]:
            problems.append(f"{label} is missing.")
        elif len(values[key]) > MAX_TEXT:
            problems.append(f"{label} is longer than {MAX_TEXT} characters.")
    if values["email"]:
        cleaned = _clean_email(values["email"])
        if cleaned is None:
            problems.append(f"“{values['email']}” is not an email address.")
        else:
            row.email = cleaned
            person = people.get(cleaned)
            if person is not None and person.centre_id != centre.id:
                problems.append("Someone outside this centre already has this email address: "
                                "use the learner's own address.")
            elif person is not None and not person.is_active:
                problems.append(f"{person.full_name}'s account is not active: activate it on "
                                "the People page, then check the file again.")
            elif person is not None:
                row.learner = person
                note = f"Already has an account as {person.full_name}: it is reused"
                if not person.has_role(Role.LEARNER):
                    note += ", and given the learner role"
                row.notes.append(note + ".")
    if values["unit"]:
        found = units.get(values["unit"].lower()) or by_code.get(values["unit"].lower())
        if not found:
            problems.append(f"No unit reference or qualification code here is "
                            f"“{values['unit']}”. Use the reference shown on the Units page, "
                            "such as R/506/2151.")
        else:
            row.units = sorted(found, key=lambda u: (u.number, u.id))
            if len(row.units) > 1:
                row.notes.append(f"Qualification {values['unit']}: enrolled on each of its "
                                 f"{len(row.units)} units.")
    if values["assessor"]:
        row.assessor = _staff(people, values["assessor"], centre, Role.ASSESSOR, "assessor",
                              problems)
    if values["iqa"]:
        row.iqa = _staff(people, values["iqa"], centre, Role.IQA, "IQA", problems)
    if row.assessor and row.email == row.assessor.email:
        problems.append("A learner cannot be their own assessor.")
    if row.iqa and row.email == row.iqa.email:
        problems.append("A learner cannot quality-assure their own work.")
    if row.iqa and row.assessor and row.iqa.id == row.assessor.id:
        problems.append("The IQA must be a different person from the assessor: nobody "
                        "samples their own assessment decisions.")
    for key, attr in (("start", "start_on"), ("end", "planned_end_on")):
        if values[key]:
            parsed = parse_date(values[key])
            if parsed is None:
                problems.append(f"{HEADERS[key]} “{values[key]}” is not a date we can read: "
                                "write 2025-09-01 or 01/09/2025.")
            setattr(row, attr, parsed)
    if row.start_on and row.planned_end_on and row.planned_end_on < row.start_on:
        problems.append("The planned end date is before the start date.")
    if row.learner is not None:
        for unit in row.units:
            if (row.learner.id, unit.id) in enrolled:
                problems.append(f"{row.learner.full_name} is already enrolled on unit "
                                f"{unit.number}.")


def check_file(session: Session, text: str, centre: Centre, *, max_rows: int) -> Checked:
    """Read and check a stored file (as the preview and the confirm both do)."""
    return check_rows(session, read_file(text, max_rows=max_rows), centre)


# --- the stored upload ------------------------------------------------------------------------


def _hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def stash_upload(session: Session, *, filename: str, text: str, row_count: int, actor: User
                 ) -> tuple[PeopleImport, str]:
    """Keep an upload that reads as a whole, for its preview; return it and its raw token.

    Previews of the centre's that were never confirmed and are past their lifetime lose their
    content here (their people are not kept for ever)."""
    if not can_manage_users(actor, actor.centre_id):
        raise PermissionDenied("Only a centre admin can import people.")
    expire_old_previews(session, actor.centre_id)
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    upload = PeopleImport(
        centre_id=actor.centre_id, created_by_id=actor.id, token_hash=_hash(raw),
        filename=(filename or "upload.csv")[-200:], content=text,
        sha256=hashlib.sha256(text.encode()).hexdigest(), row_count=row_count,
        status=JobStatus.PENDING, report={})
    session.add(upload)
    session.flush()
    return upload, raw


def expire_old_previews(session: Session, centre_id: int) -> None:
    cutoff = utcnow() - PREVIEW_LIFETIME
    for old in session.scalars(select(PeopleImport).where(
            PeopleImport.centre_id == centre_id, PeopleImport.status == JobStatus.PENDING,
            PeopleImport.created_at < cutoff)):
        MACHINE.move(old, "expire")
        old.content = ""
        old.message = "This preview expired before it was confirmed."


def get_import(session: Session, raw: str, actor: User) -> PeopleImport:
    """The import this token opens, for the admin who uploaded it (404 for anyone else)."""
    found = None
    if raw.startswith(TOKEN_PREFIX) and len(raw) < 100:
        found = session.scalar(select(PeopleImport).where(PeopleImport.token_hash == _hash(raw)))
    if (found is None or found.created_by_id != actor.id or found.centre_id != actor.centre_id
            or not can_manage_users(actor, found.centre_id)):
        raise NotFound("No such import. Upload the file again from the People page.")
    return found


def is_stale(upload: PeopleImport) -> bool:
    """A preview past its lifetime (it must be uploaded and checked again)."""
    return upload.status == JobStatus.PENDING and utcnow() - upload.created_at > PREVIEW_LIFETIME


# --- writing ----------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What importing some rows did, and the invitations to email (person, raw link token)."""

    people_created: int = 0
    people_reused: int = 0
    enrolments_created: int = 0
    skipped: list[tuple[int, str]] = field(default_factory=list)
    invitations: list[tuple[User, str]] = field(default_factory=list)
    rows_done: int = 0


def _learner_for(session: Session, row: RowCheck, centre: Centre, actor: User,
                 created: dict[str, User], outcome: Outcome, *, min_password_length: int,
                 invite_days: int) -> User:
    if row.learner is not None:
        person = row.learner
        if not person.has_role(Role.LEARNER):
            accounts.update_user(session, person, actor=actor, full_name=person.full_name,
                                 roles=[r.value for r in person.roles] + [Role.LEARNER.value],
                                 assessor_status=person.assessor_status,
                                 is_active=person.is_active)
        if person.email not in created:
            outcome.people_reused += 1
            created[person.email] = person
        return person
    if row.email in created:
        return created[row.email]
    person = accounts.create_user(
        session, centre=centre, email=row.email, full_name=row.values["name"],
        # No password: the person chooses theirs with the invitation.
        password=None, roles=[Role.LEARNER.value],
        min_password_length=min_password_length, actor=actor)
    outcome.invitations.append((person, resets.invite(session, person, actor=actor,
                                                      days=invite_days)))
    outcome.people_created += 1
    created[row.email] = person
    return person


def import_rows(session: Session, rows: Sequence[RowCheck], *, centre: Centre, actor: User,
                min_password_length: int, invite_days: int, all_or_nothing: bool,
                created: dict[str, User] | None = None,
                outcome: Outcome | None = None) -> Outcome:
    """Write rows that passed their checks, each in a savepoint. A row refused now (something
    changed since the check) is skipped with its reason, or, with `all_or_nothing`, stops the
    import by raising. `created` carries the people of earlier batches of the same file."""
    outcome = outcome or Outcome()
    created = {} if created is None else created
    for row in rows:
        try:
            with session.begin_nested():
                learner = _learner_for(session, row, centre, actor, created, outcome,
                                       min_password_length=min_password_length,
                                       invite_days=invite_days)
                if row.assessor is None or not row.start_on or not row.planned_end_on:
                    raise ValidationFailed("This row did not pass its checks.")
                for unit in row.units:
                    enrolments.enrol_learner(
                        session, learner=learner, unit=unit, assessor=row.assessor,
                        iqa=row.iqa, start_on=row.start_on,
                        planned_end_on=row.planned_end_on, employer=row.values["employer"],
                        workplace=row.values["workplace"], actor=actor)
                    outcome.enrolments_created += 1
        except DomainError as exc:
            if all_or_nothing:
                raise ValidationFailed(f"Row {row.number}: {exc.message}") from exc
            outcome.skipped.append((row.number, exc.message))
        outcome.rows_done += 1
    return outcome


def audit_import(session: Session, upload: PeopleImport, actor: User, *, action: str,
                 rows: int, good: int | None = None) -> None:
    """One audit event for the whole file: counts only, nobody's name or email."""
    record_event(session, action=action, subject_type="people_import", subject_id=upload.id,
                 actor=actor, actor_role=Role.ADMIN.value, centre_id=upload.centre_id,
                 detail={"rows": rows, "rows_passing": good, "mode": upload.mode,
                         "people_created": upload.people_created,
                         "people_reused": upload.people_reused,
                         "enrolments_created": upload.enrolments_created,
                         "rows_skipped": upload.rows_skipped, "file_sha256": upload.sha256})


def finish(upload: PeopleImport, outcome: Outcome) -> None:
    """Record the outcome on the import and forget the file's content."""
    upload.people_created = outcome.people_created
    upload.people_reused = outcome.people_reused
    upload.enrolments_created = outcome.enrolments_created
    upload.rows_skipped = len(outcome.skipped)
    upload.done_rows = upload.total_rows
    upload.report = {"skipped": [[n, reason] for n, reason in outcome.skipped]}
    MACHINE.move(upload, "finish")
    upload.finished_at, upload.content = utcnow(), ""
    upload.message = summary(upload)


def page_state(upload: PeopleImport) -> dict[str, bool]:
    """What an import's page shows, decided here rather than in its template."""
    return {"pending": upload.status == JobStatus.PENDING,
            "working": is_active(upload.status), "done": upload.status == JobStatus.DONE,
            "refused": upload.status in (JobStatus.DISCARDED, JobStatus.EXPIRED)}


def summary(upload: PeopleImport) -> str:
    """One sentence on what the import did."""
    def count(n: int, one: str, many: str) -> str:
        return f"{n} {one if n == 1 else many}"
    text = (f"Imported {count(upload.enrolments_created, 'enrolment', 'enrolments')}: "
            f"{count(upload.people_created, 'new person', 'new people')} invited, "
            f"{count(upload.people_reused, 'existing person', 'existing people')} reused.")
    if upload.rows_skipped:
        text += f" {count(upload.rows_skipped, 'row was', 'rows were')} skipped."
    return text


def template_csv(example: Callable[[], dict[str, str]]) -> str:
    """The template: the header row and one example row."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([header for _key, header, _required in COLUMNS])
    row = example()
    writer.writerow([row.get(key, "") for key, _header, _required in COLUMNS])
    return out.getvalue()


def example_row(session: Session, centre: Centre) -> dict[str, str]:
    """An example row that passes the checks at this centre where it can: a unit loaded here
    and the centre's own assessor and IQA."""
    staff = [u for u in accounts.list_users(session, centre.id) if u.is_active]
    assessor = next((u for u in staff if u.has_role(Role.ASSESSOR)
                     and not u.is_trainee_assessor), None) or next(
        (u for u in staff if u.has_role(Role.ASSESSOR)), None)
    iqa = next((u for u in staff if u.has_role(Role.IQA) and u is not assessor), None)
    unit = session.scalar(select(Unit).order_by(Unit.number, Unit.id))
    today = date.today()
    return {"name": "Sam Example", "email": "sam.example@example.org",
            "employer": "Brightwater Energy Ltd", "workplace": "Leeds contact centre",
            "unit": unit.reference if unit else "R/506/2151",
            "assessor": assessor.email if assessor else "assessor@your-centre.example",
            "iqa": iqa.email if iqa else "",
            "start": today.isoformat(),
            "end": today.replace(year=today.year + 1, day=min(today.day, 28)).isoformat()}


__all__ = ["COLUMNS", "Checked", "CsvFile", "FileRefused", "MAX_BYTES",
           "Outcome", "RowCheck", "audit_import", "check_file", "check_rows",
           "decode", "example_row", "finish", "get_import", "import_rows", "is_stale",
           "parse_date", "read_file", "stash_upload", "summary", "template_csv"]
