"""Configuration layering, the generated secret key, and the README documenting every setting."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from portfolio import create_app
from portfolio.config import DEFAULTS, from_environment, load_or_create_secret_key
from portfolio.db import get_database
from portfolio.seals import SealKeyMissing, sealer_for
from portfolio.startup import NotConfigured, check_production, production_problems

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
    assert app.config["SESSION_COOKIE_SECURE"] is True  # production unless told otherwise


def test_production_makes_up_no_keys_and_refuses_to_serve(tmp_path, monkeypatch):
    monkeypatch.setenv("PORTFOLIO_INSTANCE_PATH", str(tmp_path))
    app = create_app()
    # No silent per-machine keys: several machines would each make their own.
    assert not app.config["SECRET_KEY"]
    assert not (tmp_path / "secret_key").exists() and not (tmp_path / "seal_key").exists()
    with pytest.raises(NotConfigured) as refused:
        check_production(app)
    assert "PORTFOLIO_SECRET_KEY" in str(refused.value)
    assert "PORTFOLIO_SEAL_KEY_FILE" in str(refused.value)
    with app.app_context(), pytest.raises(SealKeyMissing):
        sealer_for(get_database(app).sessionmaker())


def test_production_reads_both_keys_from_secret_files(tmp_path, monkeypatch):
    monkeypatch.setenv("PORTFOLIO_INSTANCE_PATH", str(tmp_path))
    (tmp_path / "secret").write_text("s" * 40 + "\n")
    (tmp_path / "seal").write_text("k" * 48 + "\n")
    monkeypatch.setenv("PORTFOLIO_SECRET_KEY_FILE", str(tmp_path / "secret"))
    monkeypatch.setenv("PORTFOLIO_SEAL_KEY_FILE", str(tmp_path / "seal"))
    first, second = create_app(), create_app()
    assert first.config["SECRET_KEY"] == "s" * 40
    assert production_problems(first) == []
    # Two machines given the same file seal alike.
    assert get_database(first).sealer.key_id == get_database(second).sealer.key_id
    (tmp_path / "short").write_text("too short")
    monkeypatch.setenv("PORTFOLIO_SEAL_KEY_FILE", str(tmp_path / "short"))
    with pytest.raises(SealKeyMissing, match="at least 32"):
        create_app()


def test_development_generates_its_keys_once(tmp_path, monkeypatch):
    monkeypatch.setenv("PORTFOLIO_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("PORTFOLIO_ENV", "development")
    app = create_app()
    assert app.config["SECRET_KEY"] == (tmp_path / "secret_key").read_text()
    assert stat.S_IMODE(os.stat(tmp_path / "seal_key").st_mode) == 0o600
    assert get_database(create_app()).sealer.key_id == get_database(app).sealer.key_id
    assert production_problems(app) == []


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


def test_production_refuses_to_serve_a_centre_without_a_signing_key(make_app, tmp_path,
                                                                      monkeypatch):
    from portfolio.db import get_database as database

    # A private instance folder: the suite's shared one may hold an old single centre key.
    monkeypatch.setenv("PORTFOLIO_INSTANCE_PATH", str(tmp_path))
    from portfolio.export.keys import init_centre_signing_key
    from tests.factories import make_centre

    app = make_app(TESTING=False, ENV="production", SEAL_KEY="k" * 40,
                   SIGNING_KEYS_DIR=str(tmp_path / "signing"))
    with database(app).sessionmaker() as s:
        centre = make_centre(s, "Riverside College")
        s.commit()
        centre_id = centre.id
    problems = production_problems(app)
    assert len(problems) == 1 and "Riverside College" in problems[0]
    with pytest.raises(NotConfigured, match="keys init"):
        check_production(app)
    init_centre_signing_key(app.config, Path(app.instance_path), centre_id, "Riverside College")
    assert production_problems(app) == []


def test_the_database_url_can_come_from_a_secret_file(tmp_path, monkeypatch):
    monkeypatch.setenv("PORTFOLIO_INSTANCE_PATH", str(tmp_path))
    url = f"sqlite:///{tmp_path / 'from-file.sqlite3'}"
    secret = tmp_path / "database_url"
    secret.write_text(url + "\n")
    app = create_app({"DATABASE_URL": "", "DATABASE_URL_FILE": str(secret)})
    assert app.config["DATABASE_URL"] == url
    secret.write_text("")
    with pytest.raises(RuntimeError, match="is empty"):
        create_app({"DATABASE_URL": "", "DATABASE_URL_FILE": str(secret)})
