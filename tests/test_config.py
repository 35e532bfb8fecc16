"""Configuration layering, the generated secret key, and the README documenting every setting."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from portfolio import create_app
from portfolio.config import DEFAULTS, from_environment, load_or_create_secret_key

README = Path(__file__).resolve().parent.parent / "README.md"


def test_environment_overrides_are_typed():
    found = from_environment({"PORTFOLIO_LOGIN_MAX_FAILURES": "9",
                              "PORTFOLIO_SESSION_COOKIE_SECURE": "false",
                              "DATABASE_URL": "postgresql://x/y", "UNRELATED": "1"})
    assert found == {"LOGIN_MAX_FAILURES": 9, "SESSION_COOKIE_SECURE": False,
                     "DATABASE_URL": "postgresql://x/y"}


def test_bad_environment_value_names_the_variable():
    with pytest.raises(RuntimeError, match="PORTFOLIO_SESSION_COOKIE_SECURE"):
        from_environment({"PORTFOLIO_SESSION_COOKIE_SECURE": "maybe"})


def test_secret_key_is_generated_once_with_private_mode(tmp_path):
    key = load_or_create_secret_key(str(tmp_path))
    assert len(key) >= 48
    assert load_or_create_secret_key(str(tmp_path)) == key
    mode = stat.S_IMODE(os.stat(tmp_path / "secret_key").st_mode)
    assert mode == 0o600


def test_default_database_is_sqlite_in_the_instance_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("PORTFOLIO_INSTANCE_PATH", str(tmp_path))
    app = create_app()
    assert app.config["DATABASE_URL"] == f"sqlite:///{tmp_path / 'portfolio.sqlite3'}"
    assert app.config["SECRET_KEY"] == (tmp_path / "secret_key").read_text()
    assert app.config["SESSION_COOKIE_SECURE"] is True  # production unless told otherwise


def test_development_relaxes_only_the_secure_cookie(tmp_path, monkeypatch):
    monkeypatch.setenv("PORTFOLIO_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("PORTFOLIO_ENV", "development")
    assert create_app().config["SESSION_COOKIE_SECURE"] is False


def test_instance_config_file_then_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("PORTFOLIO_INSTANCE_PATH", str(tmp_path))
    (tmp_path / "config.py").write_text('SITE_NAME = "From file"\nLOGIN_MAX_FAILURES = 7\n')
    monkeypatch.setenv("PORTFOLIO_LOGIN_MAX_FAILURES", "8")
    app = create_app()
    assert app.config["SITE_NAME"] == "From file"
    assert app.config["LOGIN_MAX_FAILURES"] == 8


def test_readme_documents_every_setting():
    text = README.read_text()
    missing = [key for key in DEFAULTS if f"PORTFOLIO_{key}" not in text]
    assert missing == []
