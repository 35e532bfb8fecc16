"""Access cases for the self-service password reset: open to everyone, signed in or not (the
answer never says whether an account exists); a link that is not one we sent is 410."""

from __future__ import annotations

FORGED = "/reset/pwr_" + "A" * 43


def cases(m) -> list:
    return [
        m.Case("auth.forgot", "GET", lambda w, t: "/forgot", m.everyone(m.OK, anonymous=m.OK)),
        m.Case("auth.forgot", "POST", lambda w, t: "/forgot", m.everyone(m.OK, anonymous=m.OK),
               data={"email": "nobody@example.org"}),
        m.Case("auth.reset", "GET", lambda w, t: FORGED, m.everyone(m.GONE, anonymous=m.GONE),
               label="forged link"),
        m.Case("auth.reset", "POST", lambda w, t: FORGED, m.everyone(m.GONE, anonymous=m.GONE),
               data={"new_password": "a long enough password", "confirm_password":
                     "a long enough password"}, label="forged link"),
    ]
