"""Notification emails leave the request path: a background thread with retries, or the mail
queue that `portfolio worker` runs with retries when Redis is configured (issue 14)."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from aiosmtpd.controller import Controller
from flask import Response

from portfolio import notify
from portfolio.notify import Message
from tests.servers import free_port


class Server:
    """An SMTP server that can hold a message until told, and refuse the first attempts."""

    def __init__(self, refuse: int = 0) -> None:
        self.received: list = []
        self.release = threading.Event()
        self.release.set()
        self.refuse = refuse
        self.attempts = 0

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        self.attempts += 1
        while not self.release.is_set():
            await asyncio.sleep(0.01)
        if self.attempts <= self.refuse:
            return "451 Try again later"
        self.received.append(envelope)
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp():
    servers = []

    def start(refuse: int = 0) -> tuple[Server, dict]:
        handler = Server(refuse)
        controller = Controller(handler, hostname="127.0.0.1", port=free_port())
        controller.start()
        servers.append(controller)
        return handler, {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": controller.port,
                         "SMTP_STARTTLS": False}

    yield start
    for controller in servers:
        controller.stop()


def _wait_for(condition, seconds: float = 20) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def _queue_and_finish(app, subject: str = "Evidence accepted") -> None:
    with app.test_request_context("/"):
        notify.queue(Message(to=("lee@example.org",), subject=subject, body="Well done."))
        notify.flush_queued(Response(status=200))


def test_the_request_does_not_wait_for_the_mail_server(make_app, smtp):
    handler, settings = smtp()
    app = make_app(MAIL_SEND_INLINE=False, **settings)
    handler.release.clear()  # the server takes the message but does not answer yet
    _queue_and_finish(app)
    # The request is over while the message is still on its way.
    assert _wait_for(lambda: handler.attempts == 1)
    assert handler.received == []
    assert any(t.name.startswith("portfolio-mail-") and t.is_alive()
               for t in threading.enumerate())
    handler.release.set()
    assert _wait_for(lambda: len(handler.received) == 1)
    assert handler.received[0].rcpt_tos == ["lee@example.org"]


def test_the_thread_tries_again_when_the_server_refuses(make_app, smtp):
    handler, settings = smtp(refuse=2)
    app = make_app(MAIL_SEND_INLINE=False, MAIL_RETRY_SECONDS="0.05,0.05,0.05", **settings)
    _queue_and_finish(app)
    assert _wait_for(lambda: len(handler.received) == 1)
    assert handler.attempts == 3


def test_an_error_response_sends_nothing(make_app, smtp):
    handler, settings = smtp()
    app = make_app(MAIL_SEND_INLINE=False, **settings)
    with app.test_request_context("/"):
        notify.queue(Message(to=("lee@example.org",), subject="Never", body="Never."))
        notify.flush_queued(Response(status=422))
    time.sleep(0.2)
    assert handler.attempts == 0


def test_with_redis_emails_wait_on_the_queue_for_the_worker(make_app, smtp, redis_url):
    from portfolio.rqworker import PortfolioSimpleWorker

    handler, settings = smtp()
    app = make_app(MAIL_SEND_INLINE=False, REDIS_URL=redis_url, **settings)
    _queue_and_finish(app)
    queue = notify.mail_queue(redis_url)
    assert queue.count == 1
    time.sleep(0.1)
    assert handler.attempts == 0  # nothing is sent until a worker takes it
    with app.app_context():
        PortfolioSimpleWorker([queue], connection=queue.connection).work(burst=True)
    assert len(handler.received) == 1
    assert queue.count == 0


def test_a_refused_queued_email_is_tried_again_later(make_app, smtp, redis_url):
    from rq.job import Job

    from portfolio.rqworker import PortfolioSimpleWorker

    handler, settings = smtp(refuse=99)
    app = make_app(MAIL_SEND_INLINE=False, REDIS_URL=redis_url, **settings)
    _queue_and_finish(app)
    queue = notify.mail_queue(redis_url)
    job_id = queue.job_ids[0]
    with app.app_context():
        PortfolioSimpleWorker([queue], connection=queue.connection).work(burst=True)
    job = Job.fetch(job_id, connection=queue.connection)
    assert handler.attempts == 1 and handler.received == []
    assert job.get_status() == "scheduled"  # back in 10 s, then 1 min, 5 min, 15 min, 1 h
    assert job.retries_left == len(notify.RETRY_INTERVALS) - 1


def test_a_worker_stops_at_once_even_when_the_machine_is_busy(redis_url, monkeypatch):
    """RQ's pub/sub thread waits 60 s for a message. On a busy machine the reply to
    UNSUBSCRIBE could arrive before the thread was told to stop, and each burst run (and each
    shutdown) hung for a minute. Here the main thread is held up after UNSUBSCRIBE, as a busy
    machine does, and the worker must still stop within seconds."""
    from redis import Redis
    from redis.client import PubSub
    from rq import Queue

    from portfolio.rqworker import PortfolioSimpleWorker

    sent = PubSub.unsubscribe

    def slow_unsubscribe(self, *args, **kwargs):
        result = sent(self, *args, **kwargs)
        time.sleep(0.5)  # the reply arrives while this thread is descheduled
        return result

    monkeypatch.setattr(PubSub, "unsubscribe", slow_unsubscribe)
    connection = Redis.from_url(redis_url)
    worker = PortfolioSimpleWorker([Queue("idle", connection=connection)],
                                   connection=connection)
    started = time.monotonic()
    worker.work(burst=True)  # in the main thread: RQ installs signal handlers
    assert time.monotonic() - started < 15, "the worker hung on its pub/sub thread"
