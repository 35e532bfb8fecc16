"""WSGI entry for gunicorn: `gunicorn 'portfolio.wsgi:app'`; refuses to start un-migrated."""

from portfolio import create_app
from portfolio.schema import ensure_up_to_date

app = create_app()
ensure_up_to_date(app)
