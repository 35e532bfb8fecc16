# The app's image: the web app (gunicorn), the worker (`portfolio worker`) and the one-off
# commands (`portfolio db upgrade`, ...) all run from it. See compose.yaml and the README's
# "Running on several machines".
FROM python:3.11-slim-bookworm

# Pango and Noto fonts for the PDF export (WeasyPrint), so names in any script print.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 \
      libharfbuzz-subset0 fonts-noto-core fonts-noto-cjk \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
COPY portfolio ./portfolio
COPY criteria ./criteria
COPY templates ./templates
COPY static ./static
COPY gunicorn.conf.py ./
RUN pip install --no-cache-dir . \
 && useradd --system --home /app --uid 10001 portfolio \
 && mkdir -p /var/lib/portfolio && chown portfolio /var/lib/portfolio

USER portfolio
ENV PORTFOLIO_ENV=production \
    PORTFOLIO_INSTANCE_PATH=/var/lib/portfolio \
    GUNICORN_BIND=0.0.0.0:8000 \
    PYTHONUNBUFFERED=1
EXPOSE 8000
CMD ["gunicorn", "--config", "/app/gunicorn.conf.py", "portfolio.wsgi:app"]
