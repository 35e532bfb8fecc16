"""gunicorn's settings for the portfolio (read from the working directory, or pass
`--config gunicorn.conf.py`). Every setting can be changed with an environment variable below,
and command-line flags override this file.

    .venv/bin/gunicorn 'portfolio.wsgi:app'
"""

import gc
import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
# Sync workers: a page is CPU work (SQL and templates), so about two per core. Uploads and
# exports do not hold a worker while the PDF is laid out (that happens in a render process or
# on the queue).
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count() * 2))
worker_class = "sync"
# A request that takes longer than this is killed and its worker restarted.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = 30
keepalive = 2
# Restart each worker now and then (with jitter, so they do not all restart at once), which
# bounds the memory a long-lived worker can collect.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "5000"))
max_requests_jitter = max_requests // 10
# The proxy in front keeps the access log; gunicorn's own would hold client addresses.
accesslog = None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "warning")


# Metrics: with PROMETHEUS_MULTIPROC_DIR set (an empty directory, emptied before each start),
# /metrics adds up every worker's figures instead of showing one worker's.


def child_exit(server, worker):  # noqa: ANN001, ARG001 - gunicorn's hook signature
    """Drop a finished worker's live gauges from the shared metrics."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def post_worker_init(worker):  # noqa: ANN001, ARG001 - gunicorn's hook signature
    """Once the app is loaded, move everything it made so far (modules, templates, the URL map)
    out of the garbage collector's way: full collections then only walk what requests make."""
    gc.collect()
    gc.freeze()
