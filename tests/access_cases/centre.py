"""Access cases for a centre's own settings: its admins only, each on their own centre."""

from __future__ import annotations


def cases(m) -> list:
    return [
        m.Case("admin.centre", "GET", lambda w, t: "/admin/centre", m.admins_only(m.OK)),
        m.Case("admin.centre", "POST", lambda w, t: "/admin/centre",
               m.admins_only(m.REDIRECT), data={"timezone": "Europe/London"}),
    ]
