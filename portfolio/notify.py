"""Email notifications: sent by SMTP when a server is configured, else written to an outbox folder.

Callers inside a request use `queue(message)`: queued messages go out after the view has
committed, and only when the response is a success (status below 400). Nothing here ever logs an
address, a subject or a body: notifications carry personal data, logs must not.

Settings (read with defaults, so they work before `config.DEFAULTS` lists them):
SMTP_HOST (empty: write .eml files to OUTBOX_DIR instead), SMTP_PORT, SMTP_USERNAME,
SMTP_PASSWORD, SMTP_STARTTLS, SMTP_USE_SSL, SMTP_FROM, OUTBOX_DIR (empty: <instance>/outbox).
"""

from __future__ import annotations

import logging
import os
import secrets
import smtplib
import ssl
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from pathlib import Path
from typing import Any

from flask import Flask, Response, current_app, g, has_app_context

from portfolio import create_app
from portfolio.atomic import write_atomically
from portfolio.config import PROJECT_ROOT

logger = logging.getLogger(__name__)

DEFAULT_FROM = "Evidence Builder <no-reply@localhost>"
DEFAULT_PORT = 587
SMTP_TIMEOUT_SECONDS = 10
OUTBOX_SUBFOLDER = "outbox"
_QUEUE_KEY = "_notify_queue"
_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Message:
    """One plain-text email to one or more people."""

    to: tuple[str, ...]
    subject: str
    body: str


def default_outbox_dir(instance_path: str | os.PathLike[str]) -> str:
    """The outbox used when OUTBOX_DIR is empty: `<instance_path>/outbox`."""
    return str(Path(instance_path) / OUTBOX_SUBFOLDER)


def outbox_dir(config: Mapping[str, Any]) -> Path:
    """The folder .eml files are written to (and the Outbox page reads)."""
    configured = config.get("OUTBOX_DIR", "")
    if configured:
        return Path(configured)
    if has_app_context():
        instance = current_app.instance_path
    else:  # the same rule create_app uses
        instance = os.environ.get("PORTFOLIO_INSTANCE_PATH", str(PROJECT_ROOT / "instance"))
    return Path(default_outbox_dir(instance))


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in _TRUE
    return bool(value)


def build_email(message: Message, sender: str) -> EmailMessage:
    """The RFC 5322 message: From, To, Subject, Date, Message-ID and a plain-text body."""
    domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = ", ".join(message.to)
    # A subject is one line; stray line breaks would otherwise be refused as header injection.
    mail["Subject"] = " ".join(message.subject.split())
    mail["Date"] = formatdate(usegmt=True)
    # An explicit domain: without one make_msgid asks DNS for this host's name.
    mail["Message-ID"] = make_msgid(domain=domain)
    mail.set_content(message.body)
    return mail


def _recipients(message: Message) -> tuple[str, ...]:
    return tuple(dict.fromkeys(a.strip() for a in message.to if a and a.strip()))


def send(message: Message, *, config: Mapping[str, Any]) -> str:
    """Deliver one message; return its Message-ID (SMTP) or the path of the .eml written.

    Raises OSError (smtplib.SMTPException included) or ValueError when it cannot; `notify` and
    queued messages catch those so a request never fails because mail did.
    """
    to = _recipients(message)
    if not to:
        raise ValueError("a message needs at least one recipient")
    message = Message(to=to, subject=message.subject, body=message.body)
    mail = build_email(message, config.get("SMTP_FROM") or DEFAULT_FROM)
    if config.get("SMTP_HOST"):
        result = _send_smtp(mail, config)
    else:
        result = str(_write_outbox(mail, outbox_dir(config)))
    logger.info("notification sent to %d recipient(s)", len(to))
    return result


def _send_smtp(mail: EmailMessage, config: Mapping[str, Any]) -> str:
    host = str(config["SMTP_HOST"])
    port = int(config.get("SMTP_PORT") or DEFAULT_PORT)
    context = ssl.create_default_context()
    client: smtplib.SMTP
    if _flag(config.get("SMTP_USE_SSL", False)):
        client = smtplib.SMTP_SSL(host, port, timeout=SMTP_TIMEOUT_SECONDS, context=context)
    else:
        client = smtplib.SMTP(host, port, timeout=SMTP_TIMEOUT_SECONDS)
    with client:
        if _flag(config.get("SMTP_STARTTLS", True)) and not _flag(config.get("SMTP_USE_SSL")):
            client.starttls(context=context)
        username = config.get("SMTP_USERNAME") or ""
        if username:
            client.login(username, config.get("SMTP_PASSWORD") or "")
        refused = client.send_message(mail)
    if refused:
        logger.warning("notification refused for %d recipient(s)", len(refused))
    return str(mail["Message-ID"])


def _write_outbox(mail: EmailMessage, folder: Path) -> Path:
    """Write one message into the outbox folder, whole or not at all."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    target = folder / f"{stamp}-{secrets.token_hex(8)}.eml"
    write_atomically(target, mail.as_bytes(policy=mail.policy.clone(linesep="\r\n")))
    return target


def send_quietly(message: Message, config: Mapping[str, Any]) -> str | None:
    """Send, and on failure log a warning without personal data and return None."""
    try:
        return send(message, config=config)
    except (OSError, ValueError) as exc:  # smtplib.SMTPException and ssl.SSLError are OSErrors
        # Only the class name: SMTP errors can quote the addresses they refused.
        logger.warning("notification not sent: %s", type(exc).__name__)
        return None


def notify(user_emails: Iterable[str], subject: str, body: str) -> str | None:
    """Send one message now with the current app's settings; never raises for delivery failures."""
    message = Message(to=tuple(user_emails), subject=subject, body=body)
    if not _recipients(message):
        return None
    return send_quietly(message, current_app.config)


def queue(message: Message) -> None:
    """Send this message once the current request has finished successfully."""
    g.setdefault(_QUEUE_KEY, []).append(message)


def queued() -> list[Message]:
    """Messages waiting for the end of the current request."""
    return list(g.get(_QUEUE_KEY, []))


def flush_queued(response: Response) -> Response:
    """After-request hook: hand queued messages over for delivery after a success, drop them
    after an error. Delivery happens off the request path (see `dispatch`)."""
    messages: list[Message] = g.pop(_QUEUE_KEY, [])
    if messages and response.status_code < 400:
        dispatch(messages, current_app.config)
    return response


# --- delivery off the request path ------------------------------------------------------------

MAIL_QUEUE = "mail"
# Seconds before each new attempt at a message that could not be delivered.
RETRY_INTERVALS = (10, 60, 300, 900, 3600)
THREAD_RETRY_INTERVALS = (5, 30, 120)
_threads = threading.Semaphore(8)  # at most this many delivery threads at once


def dispatch(messages: list[Message], config: Mapping[str, Any]) -> None:
    """Deliver messages without keeping the request waiting for the mail server:

    - with REDIS_URL, each becomes a job on the "mail" queue that `portfolio worker` runs,
      retried after 10 s, 1 min, 5 min, 15 min and 1 h while the server refuses or is away;
    - without Redis (or while it does not answer), a background thread sends them, trying
      again after 5 s, 30 s and 2 min;
    - MAIL_SEND_INLINE (tests, or an operator who wants it) sends them before the response.
    """
    if config.get("MAIL_SEND_INLINE"):
        for message in messages:
            send_quietly(message, config)
        return
    if config.get("REDIS_URL"):
        from redis.exceptions import RedisError

        try:
            queue = mail_queue(str(config["REDIS_URL"]))
            from rq import Retry

            for message in messages:
                queue.enqueue(deliver, list(message.to), message.subject, message.body,
                              retry=Retry(max=len(RETRY_INTERVALS),
                                          interval=list(RETRY_INTERVALS)),
                              result_ttl=3600, failure_ttl=7 * 24 * 3600,
                              description="notification email")
            return
        except RedisError as exc:
            logger.warning("mail queue not reachable (%s): sending from this process",
                           type(exc).__name__)
    settings = dict(config)
    thread = threading.Thread(target=_send_with_retries, args=(messages, settings),
                              daemon=True, name=f"portfolio-mail-{secrets.token_hex(3)}")
    thread.start()


def _retry_seconds(config: Mapping[str, Any]) -> tuple[float, ...]:
    raw = str(config.get("MAIL_RETRY_SECONDS") or "")
    try:
        return tuple(float(x) for x in raw.split(",") if x.strip()) or THREAD_RETRY_INTERVALS
    except ValueError:
        return THREAD_RETRY_INTERVALS


def _send_with_retries(messages: list[Message], config: Mapping[str, Any]) -> None:
    waits = _retry_seconds(config)
    with _threads:
        for message in messages:
            for wait in (*waits, None):
                try:
                    send(message, config=config)
                    break
                except (OSError, ValueError) as exc:
                    if wait is None:
                        logger.warning("notification not sent after %d attempts: %s",
                                       len(waits) + 1, type(exc).__name__)
                        break
                    time.sleep(wait)


def mail_queue(redis_url: str) -> Any:
    """The RQ queue notification emails wait on."""
    from redis import Redis
    from rq import Queue

    return Queue(MAIL_QUEUE, connection=Redis.from_url(redis_url))


def deliver(to: list[str], subject: str, body: str) -> str:
    """The queued job: send one message with the worker's settings. Raises when the message
    cannot be delivered, so the queue tries again later."""
    message = Message(to=tuple(to), subject=subject, body=body)
    if has_app_context():
        return send(message, config=current_app.config)
    app = create_app()
    with app.app_context():
        return send(message, config=app.config)


def init_app(app: Flask) -> None:
    """Fill in the default outbox folder and send queued messages after successful requests."""
    if "portfolio.notify" in app.extensions:
        return
    app.extensions["portfolio.notify"] = True
    if not app.config.get("OUTBOX_DIR"):
        app.config["OUTBOX_DIR"] = default_outbox_dir(app.instance_path)
    app.after_request(flush_queued)
