"""Outbox pages: the .eml files `portfolio.notify` wrote, for demos and development.

An admin sees every message; anyone else sees only messages addressed to them. A message a person
may not see answers 404, exactly like a name that does not exist.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import UTC
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime
from pathlib import Path
from typing import Any

from flask import Blueprint, abort, current_app, render_template
from flask_login import current_user, login_required
from sqlalchemy import select

from portfolio import db
from portfolio.models import Role, User
from portfolio.notify import outbox_dir

bp = Blueprint("outbox", __name__, url_prefix="/outbox")

# Exactly the names notify writes: <UTC timestamp>-<random hex>.eml. Nothing else is served.
NAME_RE = re.compile(r"^[0-9TZ-]+-[0-9a-f]{8,}\.eml$")


@dataclass(frozen=True)
class OutboxMessage:
    name: str
    sender: str
    to: tuple[str, ...]
    recipients: frozenset[str]  # bare addresses, lower-case, for the visibility check
    date: str
    subject: str
    body: str


def _folder() -> Path:
    return outbox_dir(current_app.config)


def message_names(folder: Path) -> list[str]:
    """Names of the outbox's messages, newest first; only regular files with notify's names."""
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return []
    names = [e.name for e in entries
             if NAME_RE.fullmatch(e.name) and e.is_file(follow_symlinks=False)]
    return sorted(names, reverse=True)


def _format_date(value: str) -> str:
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return value
    if when.tzinfo is not None:
        when = when.astimezone(UTC)
    return f"{when.day} {when:%b %Y, %H:%M} UTC"


def _body(mail: EmailMessage) -> str:
    part = mail.get_body(preferencelist=("plain",))
    if part is None:
        return ""
    try:
        content = part.get_content()
    except (LookupError, ValueError):
        return ""
    return content.replace("\r\n", "\n") if isinstance(content, str) else ""


def read_message(folder: Path, name: str) -> OutboxMessage | None:
    """Parse one message; None when it cannot be read."""
    try:
        with open(folder / name, "rb") as handle:
            mail = BytesParser(policy=policy.default).parse(handle)
    except OSError:
        return None
    if not isinstance(mail, EmailMessage):
        return None
    to_headers = [str(v) for v in mail.get_all("To", [])]
    all_headers = to_headers + [str(v) for v in mail.get_all("Cc", [])]
    recipients = frozenset(addr.lower() for _name, addr in getaddresses(all_headers) if addr)
    to = tuple(addr for _name, addr in getaddresses(to_headers) if addr)
    return OutboxMessage(
        name=name,
        sender=str(mail.get("From", "")),
        to=to,
        recipients=recipients,
        date=_format_date(str(mail.get("Date", ""))),
        subject=str(mail.get("Subject", "")),
        body=_body(mail),
    )


def may_see(message: OutboxMessage, centre_emails: frozenset[str] = frozenset()) -> bool:
    """Admins see messages to people of their centre; anyone else only their own."""
    if current_user.email.lower() in message.recipients:
        return True
    return current_user.has_role(Role.ADMIN) and bool(set(message.recipients) & centre_emails)


def _centre_emails() -> frozenset[str]:
    if not current_user.has_role(Role.ADMIN):
        return frozenset()
    return frozenset(e.lower() for e in db.session().scalars(
        select(User.email).where(User.centre_id == current_user.centre_id)))


@bp.route("")
@login_required
def index() -> Any:
    folder = _folder()
    centre_emails = _centre_emails()
    messages = []
    for name in message_names(folder):
        message = read_message(folder, name)
        if message is not None and may_see(message, centre_emails):
            messages.append(message)
    return render_template("outbox/index.html", messages=messages,
                           smtp_configured=bool(current_app.config.get("SMTP_HOST")))


@bp.route("/<name>")
@login_required
def message(name: str) -> Any:
    folder = _folder()
    # Validated against the real file list: no other path can ever be opened.
    if not NAME_RE.fullmatch(name) or name not in message_names(folder):
        abort(404)
    found = read_message(folder, name)
    if found is None or not may_see(found, _centre_emails()):
        abort(404)
    return render_template("outbox/message.html", message=found)
