"""Access cases for retention: the centre's period and removal, and legal holds on an
enrolment. Admins only, each on their own centre (another centre's enrolment is a 404)."""

from __future__ import annotations


def cases(m) -> list:
    hold = lambda w, t: f"/admin/enrolments/{w.enrolment.id}/hold"  # noqa: E731
    return [
        m.Case("retention.page", "GET", lambda w, t: "/admin/retention", m.admins_only(m.OK)),
        m.Case("retention.page", "POST", lambda w, t: "/admin/retention",
               m.admins_only(m.REDIRECT), data={"work_keep_months": ""}),
        m.Case("retention.remove_due", "POST", lambda w, t: "/admin/retention/remove",
               m.admins_only(m.REDIRECT)),
        m.Case("retention.hold", "GET", hold, m.admins_only(m.OK, other_admin=m.MISSING)),
        m.Case("retention.hold", "POST", hold, m.admins_only(m.INVALID, other_admin=m.MISSING),
               data={"reason": ""}),
        m.Case("retention.lift_hold", "POST", lambda w, t: hold(w, t) + "/lift",
               m.admins_only(m.CONFLICT, other_admin=m.MISSING)),
    ]
