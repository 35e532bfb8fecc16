"""The deployment files say what the app reads: compose.yaml's services and settings, and the
Dockerfile's contents. (Building images needs Docker and the registries, which the suite has
not; `make cluster` and tests/test_cluster.py run the same topology as local processes.)"""

from __future__ import annotations

from pathlib import Path

import yaml

from portfolio.config import DEFAULTS

ROOT = Path(__file__).resolve().parent.parent


def _compose() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def test_compose_has_two_web_instances_a_worker_a_proxy_and_the_shared_parts():
    services = _compose()["services"]
    assert {"web1", "web2", "worker", "proxy", "db", "redis", "s3", "setup"} <= set(services)
    assert services["worker"]["command"] == ["portfolio", "worker"]
    nginx = (ROOT / "deploy" / "nginx.conf").read_text()
    assert "server web1:8000;" in nginx and "server web2:8000;" in nginx


def test_every_setting_compose_gives_the_app_is_one_the_app_reads():
    compose = _compose()
    for name in ("web1", "web2", "worker", "setup"):
        env = compose["services"][name]["environment"]
        unknown = [key for key in env if key.startswith("PORTFOLIO_")
                   and key.removeprefix("PORTFOLIO_") not in DEFAULTS]
        assert unknown == [], (name, unknown)
        # Every machine shares the keys and the stores, read from secret files, not the file.
        assert env["PORTFOLIO_SECRET_KEY_FILE"].startswith("/run/secrets/")
        assert env["PORTFOLIO_SEAL_KEY_FILE"].startswith("/run/secrets/")
        assert env["PORTFOLIO_STORAGE_BACKEND"] == "s3" and env["PORTFOLIO_REDIS_URL"]
        assert not any("SECRET" in key and not key.endswith("_FILE") for key in env), name


def test_secrets_are_files_outside_the_repository():
    secrets = _compose()["secrets"]
    assert all(spec["file"].startswith("./secrets/") for spec in secrets.values())
    assert "secrets" in (ROOT / ".dockerignore").read_text().split()
    assert not (ROOT / "secrets").exists()


def test_the_image_holds_what_the_app_needs_at_run_time():
    dockerfile = (ROOT / "Dockerfile").read_text()
    for part in ("portfolio", "criteria", "templates", "static", "gunicorn.conf.py"):
        assert f"COPY {part}" in dockerfile, part
    assert "USER portfolio" in dockerfile and "portfolio.wsgi:app" in dockerfile
