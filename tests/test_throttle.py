"""Password throttles under attack: concurrent guesses never reach the hash more than the limit.

Every attempt runs in its own thread with its own client or database session against the real
database, released together by a barrier, as a script firing requests in parallel would. Each
test runs twice: with the counters in the database (one machine), and in a real Redis server
(REDIS_URL, shared by several machines).
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from datetime import timedelta

import pytest

from portfolio.assessment.services import SignerConfirmation, confirm_signer
from portfolio.auth import services, throttle
from portfolio.db import get_database, utcnow
from portfolio.errors import Throttled, ValidationFailed
from portfolio.models import User
from tests.conftest import Browserless, csrf_from
from tests.factories import PASSWORD, make_centre, make_user

LIMIT = 5
WINDOW = 15
ATTEMPTS = 20


class CountingHasher:
    """Wraps the real Argon2 hasher and counts password checks, safely across threads."""

    def __init__(self, inner) -> None:
        self._inner = inner
        self._lock = threading.Lock()
        self.verifies = 0

    def verify(self, hashed, password):
        with self._lock:
            self.verifies += 1
        return self._inner.verify(hashed, password)

    def __getattr__(self, name):
        return getattr(self._inner, name)


@pytest.fixture
def hasher(monkeypatch) -> CountingHasher:
    counting = CountingHasher(services._hasher)
    monkeypatch.setattr(services, "_hasher", counting)
    return counting


@pytest.fixture(params=["database", "redis"])
def throttled_app(request, make_app):
    extra = {"REDIS_URL": request.getfixturevalue("redis_url")} if request.param == "redis" else {}
    return make_app(LOGIN_MAX_FAILURES=LIMIT, LOGIN_LOCKOUT_MINUTES=WINDOW, **extra)


@pytest.fixture
def person(throttled_app) -> User:
    s = get_database(throttled_app).sessionmaker()
    user = make_user(s, make_centre(s), "assessor", name="Dana Target")
    s.commit()
    s.close()
    return user


def _all_at_once(jobs) -> list:
    """Run each job in its own thread, started together; return their results in order."""
    barrier = threading.Barrier(len(jobs))
    results: list = [None] * len(jobs)

    def run(i, job):
        prepared = job.prepare() if hasattr(job, "prepare") else None
        barrier.wait(timeout=60)
        try:
            results[i] = job(prepared)
        except Exception as exc:  # noqa: BLE001 - reported to the test as a result
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i, job)) for i, job in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "an attempt hung"
    return results


class SignIn:
    """One sign-in from a fresh browser; the form is fetched before the barrier."""

    def __init__(self, app, email: str, password: str, address: str = "198.51.100.7") -> None:
        self.client = app.test_client()
        self.email, self.password = email, password
        self.environ = {"REMOTE_ADDR": address}

    def prepare(self):
        return csrf_from(self.client.get("/login", environ_base=self.environ).get_data(True))

    def __call__(self, token) -> int:
        return self.client.post("/login", environ_base=self.environ, data={
            "email": self.email, "password": self.password, "csrf_token": token}).status_code


def _sign_in(app, email: str, password: str = PASSWORD, address: str = "198.51.100.7") -> int:
    attempt = SignIn(app, email, password, address)
    return attempt(attempt.prepare())


def test_concurrent_wrong_sign_ins_check_the_password_at_most_the_limit(throttled_app, person,
                                                                        hasher):
    jobs = [SignIn(throttled_app, person.email, f"guess number {i}") for i in range(ATTEMPTS)]
    statuses = Counter(_all_at_once(jobs))
    assert hasher.verifies == LIMIT, statuses
    assert statuses == {401: LIMIT, 429: ATTEMPTS - LIMIT}
    # The right password is refused too while the account is locked, and never checked.
    assert _sign_in(throttled_app, person.email) == 429
    assert hasher.verifies == LIMIT


def test_locked_out_answer_says_when_to_try_again(throttled_app, person):
    for _ in range(LIMIT):
        assert _sign_in(throttled_app, person.email, "wrong") == 401
    attempt = SignIn(throttled_app, person.email, PASSWORD)
    response = attempt.client.post("/login", environ_base=attempt.environ, data={
        "email": person.email, "password": PASSWORD, "csrf_token": attempt.prepare()})
    assert response.status_code == 429
    page = response.get_data(True)
    assert "Too many failed sign-in attempts" in page
    assert f"Try again in {WINDOW} minutes" in page, re.findall(r"Try again in [^.]*", page)
    assert response.headers["Retry-After"] == str(WINDOW * 60)


def test_the_right_person_gets_in_once_the_window_has_passed(throttled_app, person, hasher,
                                                             monkeypatch):
    statuses = Counter(_all_at_once(
        [SignIn(throttled_app, person.email, "wrong") for _ in range(ATTEMPTS)]))
    assert statuses[429] == ATTEMPTS - LIMIT
    assert _sign_in(throttled_app, person.email) == 429
    url = throttled_app.config["REDIS_URL"]
    if url:
        # In Redis the window is the counter's expiry, set by its first count.
        from redis import Redis

        with Redis.from_url(url) as redis:
            keys = redis.keys("portfolio-throttle*")
            assert len(keys) == 2  # the account and the address, hashed: no email, no IP
            assert all(b"@" not in k and b"198.51" not in k for k in keys)
            assert all(WINDOW * 60 - 30 <= redis.ttl(k) <= WINDOW * 60 for k in keys)
            redis.delete(*keys)  # what expiry does when the window ends
    else:
        later = utcnow() + timedelta(minutes=WINDOW, seconds=1)
        monkeypatch.setattr(throttle, "utcnow", lambda: later)
    assert _sign_in(throttled_app, person.email) == 302


def test_a_right_password_clears_the_accounts_count(throttled_app, person):
    for _ in range(LIMIT - 1):
        assert _sign_in(throttled_app, person.email, "wrong") == 401
    assert _sign_in(throttled_app, person.email) == 302
    for _ in range(LIMIT - 1):
        assert _sign_in(throttled_app, person.email, "wrong") == 401
    assert _sign_in(throttled_app, person.email) == 302


def test_the_address_limit_holds_across_different_emails(throttled_app, person, hasher):
    address_limit = LIMIT * throttle.ADDRESS_FACTOR
    jobs = [SignIn(throttled_app, f"someone{i}@example.org", "guess", address="203.0.113.66")
            for i in range(address_limit + 10)]
    statuses = Counter(_all_at_once(jobs))
    assert hasher.verifies == address_limit, statuses
    assert statuses == {401: address_limit, 429: 10}
    # From that address even the right person is refused; from another they get in.
    assert _sign_in(throttled_app, person.email, address="203.0.113.66") == 429
    assert _sign_in(throttled_app, person.email, address="192.0.2.10") == 302


class Sign:
    """One signing re-ask of the password, in its own database session."""

    def __init__(self, app, user_id: int, password: str) -> None:
        self.app, self.user_id, self.password = app, user_id, password

    def prepare(self):
        s = get_database(self.app).sessionmaker()
        user = s.get(User, self.user_id)
        s.commit()  # hand the connection back to the pool while waiting at the barrier
        return s, user

    def __call__(self, prepared) -> str:
        with self.app.app_context():  # as in a request: the app's counter store is used
            return self._sign(prepared)

    def _sign(self, prepared) -> str:
        s, user = prepared
        try:
            confirm_signer(s, user, SignerConfirmation(
                password=self.password, typed_name=user.full_name, client="198.51.100.8"),
                max_failures=LIMIT, lockout_minutes=WINDOW)
            return "signed"
        except ValidationFailed:
            s.commit()  # as the signing pages do
            return "wrong"
        except Throttled:
            return "throttled"
        finally:
            s.close()


def test_concurrent_wrong_signing_passwords_check_at_most_the_limit(throttled_app, person,
                                                                    hasher):
    jobs = [Sign(throttled_app, person.id, f"not it {i}") for i in range(ATTEMPTS)]
    outcomes = Counter(_all_at_once(jobs))
    assert hasher.verifies == LIMIT, outcomes
    assert outcomes == {"wrong": LIMIT, "throttled": ATTEMPTS - LIMIT}
    # Signing and sign-in share the account's count.
    right = Sign(throttled_app, person.id, PASSWORD)
    assert right(right.prepare()) == "throttled"
    assert _sign_in(throttled_app, person.email) == 429
    assert hasher.verifies == LIMIT


class ChangePassword:
    """One password change from a separately signed-in browser."""

    def __init__(self, app, email: str, current: str) -> None:
        self.web = Browserless(app.test_client())
        assert self.web.login(email, PASSWORD).status_code == 302
        self.current = current

    def prepare(self):
        return self.web.token()

    def __call__(self, token) -> int:
        new = "a completely new passphrase"
        return self.web.client.post("/account/password", data={
            "csrf_token": token, "pw-current_password": self.current,
            "pw-new_password": new, "pw-confirm_password": new}).status_code


def test_concurrent_wrong_current_passwords_check_at_most_the_limit(throttled_app, person,
                                                                    hasher):
    jobs = [ChangePassword(throttled_app, person.email, f"guess {i}") for i in range(ATTEMPTS)]
    hasher.verifies = 0  # the sign-ins above do not count
    statuses = Counter(_all_at_once(jobs))
    assert hasher.verifies == LIMIT, statuses
    assert statuses == {422: LIMIT, 429: ATTEMPTS - LIMIT}
    # The right current password is refused too, and the password is unchanged.
    new = "a completely new passphrase"
    refused = jobs[0].web.post("/account/password", {
        "pw-current_password": PASSWORD, "pw-new_password": new, "pw-confirm_password": new})
    assert refused.status_code == 429
    assert "Too many wrong passwords. Try again in" in refused.get_data(True)
    assert refused.headers["Retry-After"].isdigit()
    s = get_database(throttled_app).sessionmaker()
    assert services.verify_password(s.get(User, person.id), PASSWORD)
    s.close()


def test_with_redis_a_failed_sign_in_writes_nothing_to_the_database(make_app, redis_url):
    """The counters live in Redis, so a guess costs no database write, and a second app (a
    second machine) sees the same counts."""
    from sqlalchemy import func, select

    from portfolio.models import AuthThrottle

    one = make_app(LOGIN_MAX_FAILURES=LIMIT, LOGIN_LOCKOUT_MINUTES=WINDOW, REDIS_URL=redis_url)
    two = make_app(LOGIN_MAX_FAILURES=LIMIT, LOGIN_LOCKOUT_MINUTES=WINDOW, REDIS_URL=redis_url)
    s = get_database(one).sessionmaker()
    user = make_user(s, make_centre(s), "assessor")
    s.commit()
    for i in range(LIMIT):
        assert _sign_in(one if i % 2 else two, user.email, "wrong") == 401
    assert _sign_in(two, user.email) == 429
    assert _sign_in(one, user.email) == 429
    assert s.scalar(select(func.count()).select_from(AuthThrottle)) == 0
    s.close()


def test_when_redis_is_down_the_database_counts(make_app):
    """Redis configured but unreachable: the throttle still holds, counted in the database."""
    app = make_app(LOGIN_MAX_FAILURES=LIMIT, LOGIN_LOCKOUT_MINUTES=WINDOW,
                   REDIS_URL="redis://127.0.0.1:9/0")
    s = get_database(app).sessionmaker()
    user = make_user(s, make_centre(s), "assessor")
    s.commit()
    for _ in range(LIMIT):
        assert _sign_in(app, user.email, "wrong") == 401
    assert _sign_in(app, user.email) == 429
    s.close()
