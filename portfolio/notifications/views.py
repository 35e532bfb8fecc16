"""Notifications pages: each person's own list, opening one, marking all read, email settings.

Only the recipient ever sees a notification: anyone else's id answers 404, exactly like an id
that does not exist. The header's bell reads one COUNT through `unread_notifications()`.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from portfolio import db
from portfolio.errors import ValidationFailed
from portfolio.models import Notification
from portfolio.models.notifications import EMAIL_FREQUENCIES
from portfolio.notifications import services
from portfolio.paging import Page, paginate

bp = Blueprint("notifications", __name__)

FREQUENCY_LABELS = {
    "immediate": ("As it happens", "An email for each notification, within a minute or two."),
    "daily": ("Once a day", "One summary email each morning of anything you have not read."),
    "off": ("Never", "Nothing by email; notifications still appear here."),
}


@bp.app_context_processor
def _bell() -> dict[str, Any]:
    def unread_notifications() -> int:
        if not current_user.is_authenticated:
            return 0
        return services.unread_count(db.session(), current_user.id)

    return {"unread_notifications": unread_notifications}


def _page() -> Page:
    """The page of the person's notifications `?page=` names, newest first."""
    return paginate(db.session(), services.own_query(current_user.id), (Notification.id,),
                    size=services.PAGE_SIZE, descending=True)


@bp.route("/notifications")
@login_required
def index() -> Any:
    s = db.session()
    page = _page()
    rows = [services.Row(n, n.read_at is None) for n in page.items]
    services.mark_read(s, current_user.id, [n.id for n in page.items])
    s.commit()
    return render_template(
        "notifications/index.html", page=page, rows=rows,
        when=lambda n: services.when(n.created_at),
        frequency=current_user.email_notifications, frequencies=EMAIL_FREQUENCIES,
        labels=FREQUENCY_LABELS)


@bp.route("/notifications/<int:notification_id>")
@login_required
def open_one(notification_id: int) -> Any:
    s = db.session()
    notification = services.get_own(s, notification_id, current_user.id)
    services.mark_read(s, current_user.id, [notification.id])
    s.commit()
    link = notification.link
    if not link.startswith("/") or link.startswith("//"):
        abort(404)
    return redirect(link)


@bp.route("/notifications/read-all", methods=["POST"])
@login_required
def read_all() -> Any:
    s = db.session()
    count = services.mark_all_read(s, current_user.id)
    s.commit()
    flash(f"Marked {count} notification{'s' if count != 1 else ''} as read." if count
          else "You had no unread notifications.", "success")
    return redirect(url_for("notifications.index"))


@bp.route("/notifications/settings", methods=["POST"])
@login_required
def settings() -> Any:
    s = db.session()
    choice = request.form.get("email_notifications", "")
    try:
        services.set_frequency(s, current_user, choice)
    except ValidationFailed as exc:
        page = _page()
        return render_template(
            "notifications/index.html", page=page,
            rows=[services.Row(n, n.read_at is None) for n in page.items],
            when=lambda n: services.when(n.created_at), frequency=current_user.email_notifications,
            frequencies=EMAIL_FREQUENCIES, labels=FREQUENCY_LABELS,
            settings_error=str(exc)), 422
    s.commit()
    flash(f"Saved: you will be emailed about notifications "
          f"{FREQUENCY_LABELS[choice][0].lower()}.", "success")
    return redirect(url_for("notifications.index") + "#email")
