"""Access cases for notifications: everyone has their own list; nobody opens anyone else's."""

from __future__ import annotations

from portfolio.models import Notification


def setup(app, session, world) -> None:
    row = Notification(recipient_id=world.learner.id, kind="enrolled",
                       title="You were enrolled", link=f"/enrolments/{world.enrolment.id}",
                       enrolment_id=world.enrolment.id, learner_id=world.learner.id)
    session.add(row)
    session.flush()
    world.learner_notification_id = row.id


def cases(m) -> list:
    return [
        m.Case("notifications.index", "GET", lambda w, t: "/notifications", m.everyone(m.OK)),
        # The learner's own notification: opening it takes them to its page; anyone else's
        # answers 404 like an id that does not exist.
        m.Case("notifications.open_one", "GET",
               lambda w, t: f"/notifications/{w.learner_notification_id}",
               m.everyone(m.MISSING, learner=m.REDIRECT)),
        m.Case("notifications.open_one", "GET", lambda w, t: "/notifications/999999",
               m.everyone(m.MISSING), label="unknown id"),
        m.Case("notifications.read_all", "POST", lambda w, t: "/notifications/read-all",
               m.everyone(m.REDIRECT)),
        m.Case("notifications.settings", "POST", lambda w, t: "/notifications/settings",
               m.everyone(m.INVALID), label="no choice"),
        m.Case("notifications.settings", "POST", lambda w, t: "/notifications/settings",
               m.everyone(m.REDIRECT), data={"email_notifications": "immediate"}),
    ]
