"""WSGI entry for gunicorn: `gunicorn 'portfolio.wsgi:app'`; refuses to start un-migrated or
without the keys production needs."""

from portfolio import create_app
from portfolio.export.jobs import recover_dead_jobs
from portfolio.schema import ensure_up_to_date
from portfolio.startup import check_production

app = create_app()
ensure_up_to_date(app)
check_production(app)
recover_dead_jobs(app)  # exports whose worker died before this start are marked failed
