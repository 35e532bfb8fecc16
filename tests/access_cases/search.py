"""Access cases for staff search: assessors, IQAs and admins search (each within what they may
see, which tests/test_search.py checks); learners and EQAs may not; anonymous visitors sign in."""

from __future__ import annotations


def cases(m) -> list:
    staff = {"assessor": m.OK, "trainee": m.OK, "iqa": m.OK, "admin": m.OK, "other_admin": m.OK}
    return [
        m.Case("search.results", "GET", lambda w, t: "/search?q=complaint",
               m.everyone(m.FORBIDDEN, **staff)),
        m.Case("search.results", "GET", lambda w, t: "/search",
               m.everyone(m.FORBIDDEN, **staff)),
    ]
