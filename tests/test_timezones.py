"""Times are stored in UTC and shown in the reader's centre's time zone, Europe/London unless
the centre or the installation says otherwise (issue 13, defect 13)."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import select

from portfolio.display import day, when
from portfolio.models import AuditEvent, Centre
from tests.conftest import Browserless
from tests.factories import PASSWORD, make_evidence, make_world


def test_a_utc_time_reads_in_london_time_by_default(app):
    with app.app_context():
        assert when(datetime(2025, 1, 14, 10, 5, tzinfo=UTC)) == "14 Jan 2025 10:05 GMT"
        assert when(datetime(2025, 7, 14, 10, 5, tzinfo=UTC)) == "14 Jul 2025 11:05 BST"
        assert when("2025-07-14T10:05:09+00:00", seconds=True) == "14 Jul 2025 11:05:09 BST"
        # Half past eleven at night in June, UTC, is already 1 July in London.
        assert day(datetime(2025, 6, 30, 23, 30, tzinfo=UTC)) == "01 Jul 2025"
        assert day(date(2025, 3, 14)) == "14 Mar 2025" and day("2025-03-14") == "14 Mar 2025"
        # A camera's clock time has no zone: shown as recorded.
        assert when("2025-07-14T10:05:00", as_is=True) == "14 Jul 2025 10:05"
        assert when(None) == "" and day("") == ""


def test_the_installation_default_can_be_changed(make_app):
    app = make_app(DEFAULT_TIMEZONE="Asia/Tokyo")
    with app.app_context():
        assert when(datetime(2025, 1, 14, 10, 5, tzinfo=UTC)) == "14 Jan 2025 19:05 JST"


def test_an_admin_sets_the_centre_time_zone_and_pages_follow(app, session):
    world = make_world(session)
    item = make_evidence(session, world.enrolment, world.learner)
    session.commit()
    learner = Browserless(app.test_client())
    learner.login(world.learner.email, PASSWORD)
    assert " UTC" not in learner.client.get(f"/evidence/{item.id}").get_data(True)

    admin = Browserless(app.test_client())
    admin.login(world.admin.email, PASSWORD)
    page = admin.client.get("/admin/centre").get_data(True)
    assert "The installation&#39;s default (Europe/London)" in page or \
        "The installation's default (Europe/London)" in page
    refused = admin.post("/admin/centre", {"timezone": "Mars/Olympus_Mons"})
    assert refused.status_code == 422 and "not a time zone we know" in refused.get_data(True)
    session.expire_all()
    assert session.get(Centre, world.learner.centre_id).timezone is None
    assert admin.post("/admin/centre", {"timezone": "Asia/Tokyo"}).status_code == 302
    session.expire_all()
    assert session.get(Centre, world.learner.centre_id).timezone == "Asia/Tokyo"
    assert session.scalar(select(AuditEvent).where(AuditEvent.action == "centre.settings"))
    history = learner.client.get(f"/evidence/{item.id}").get_data(True)
    assert " JST" in history
    # Another centre's people still read their own default.
    other = session.get(Centre, world.other_admin.centre_id)
    assert other.timezone is None


def test_notification_emails_read_in_the_recipients_zone(app, session):
    from portfolio.notifications.sending import _day

    world = make_world(session)
    moment = datetime(2025, 1, 14, 10, 5, tzinfo=UTC)
    assert _day(moment, app.config, world.learner) == "14 Jan 2025, 10:05 GMT"
    session.get(Centre, world.learner.centre_id).timezone = "Asia/Tokyo"
    session.flush()
    assert _day(moment, app.config, world.learner) == "14 Jan 2025, 19:05 JST"
