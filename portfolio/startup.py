"""What a production process checks before it serves: the keys every machine must share."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from portfolio.config import is_production
from portfolio.db import get_database, session
from portfolio.export.keys import missing_signing_keys
from portfolio.storage import settings_from_config


class NotConfigured(RuntimeError):
    """Production is missing a key it must not make up by itself."""


def production_problems(app: Flask) -> list[str]:
    """List what production is missing; empty outside production or when all is set."""
    if not is_production(app.config):
        return []
    problems = []
    if not app.config.get("SECRET_KEY"):
        problems.append("No secret key: set PORTFOLIO_SECRET_KEY or PORTFOLIO_SECRET_KEY_FILE "
                        "(the same on every machine).")
    if get_database(app).sealer is None:
        problems.append("No seal key: set PORTFOLIO_SEAL_KEY_FILE to a file made by "
                        "`portfolio seal-key` (the same on every machine, kept outside the "
                        "database and its backups).")
    with app.app_context():
        try:
            missing = missing_signing_keys(app.config, Path(app.instance_path), session())
        except Exception as exc:  # noqa: BLE001 - an un-migrated database is reported elsewhere
            missing = []
            app.logger.debug("signing keys not checked: %s", type(exc).__name__)
    try:
        settings_from_config(app.config)
    except (ValueError, RuntimeError) as exc:
        problems.append(f"The file store is not configured: {exc} (see the README's "
                        "Object storage section).")
    if missing:
        problems.append("No signing key for " + ", ".join(missing) + ": run `portfolio keys "
                        "init --all` (or set PORTFOLIO_SIGNING_PKCS12 for a single centre), "
                        "with PORTFOLIO_SIGNING_KEYS_DIR shared by every machine.")
    return problems


def check_production(app: Flask) -> None:
    """Refuse to serve in production without the secret, seal and signing keys.

    :raises NotConfigured: naming each missing key and how to provide it.
    """
    problems = production_problems(app)
    if problems:
        raise NotConfigured("Refusing to start in production:\n- " + "\n- ".join(problems))
