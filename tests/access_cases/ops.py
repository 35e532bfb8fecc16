"""Access cases for the operator's endpoints: open to anyone (they say nothing about a person);
/metrics answers the machine itself (the test client's loopback address) unless a token is set,
which tests/test_ops.py covers."""

from __future__ import annotations


def cases(m) -> list:
    return [
        m.Case("ops.healthz", "GET", lambda w, t: "/healthz", m.everyone(m.OK, anonymous=m.OK)),
        m.Case("ops.readyz", "GET", lambda w, t: "/readyz", m.everyone(m.OK, anonymous=m.OK)),
        m.Case("ops.metrics", "GET", lambda w, t: "/metrics", m.everyone(m.OK, anonymous=m.OK)),
    ]
