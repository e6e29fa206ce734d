"""examples/app.py: the whole library running on its own."""

from __future__ import annotations

import importlib
import json

import pytest
from flask import Flask

from .conftest import CHEAP_HASH, PASSWORD

FAST = {
    "TESTING": True,
    "EVERSHOP_CUSTOMER_PASSWORD_HASH_METHOD": CHEAP_HASH,
    "EVERSHOP_CUSTOMER_ALLOW_WEAK_PASSWORD_HASH": True,
}


@pytest.fixture
def instance(tmp_path, monkeypatch):
    """Point the example's instance folder at a temporary one."""
    monkeypatch.setattr(Flask, "auto_find_instance_path", lambda self: str(tmp_path))
    for key in ("FLASK_SECRET_KEY", "FLASK_EXAMPLE_ADMIN_EMAIL", "FLASK_EXAMPLE_ADMIN_PASSWORD"):
        monkeypatch.delenv(key, raising=False)
    return tmp_path


def test_importing_the_module_creates_no_app():
    module = importlib.import_module("examples.app")
    assert not any(isinstance(value, Flask) for value in vars(module).values())


def test_defaults_sqlite_in_the_instance_folder_and_generated_admin(instance, capsys):
    from examples.app import create_app

    app = create_app(FAST)
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{instance / 'shop.sqlite'}"
    assert (instance / "shop.sqlite").exists()
    printed = capsys.readouterr().err
    email, password = app.config["EXAMPLE_ADMIN_EMAIL"], app.config["EXAMPLE_ADMIN_PASSWORD"]
    assert f"{email} / {password}" in printed
    stored = json.loads((instance / "generated-settings.json").read_text())
    assert stored["EXAMPLE_ADMIN_PASSWORD"] == password
    assert len(app.config["SECRET_KEY"]) >= 32
    again = create_app(FAST)
    assert again.config["SECRET_KEY"] == app.config["SECRET_KEY"]
    assert again.config["EXAMPLE_ADMIN_PASSWORD"] == password


def test_the_schema_is_brought_up_to_date_and_the_api_works(instance):
    from examples.app import create_app

    client = create_app(FAST).test_client(use_cookies=False)
    body = {"email": "alice@example.com", "password": PASSWORD, "full_name": "Alice"}
    created = client.post("/api/customers", json=body)
    assert created.status_code == 200
    login = client.post("/api/customers/sessions", json=body)
    assert login.status_code == 200


def test_admin_login_sets_the_admin_cookie(instance):
    from examples.app import create_app

    app = create_app(
        {
            **FAST,
            "EXAMPLE_ADMIN_EMAIL": "boss@example.com",
            "EXAMPLE_ADMIN_PASSWORD": "s3cret-admin",
        }
    )
    client = app.test_client()
    wrong = client.post("/admin/login", json={"email": "boss@example.com", "password": "nope"})
    assert wrong.status_code == 400
    assert wrong.get_json() == {"error": {"status": 400, "message": "Invalid email or password"}}
    assert client.post("/admin/login", data="not json").status_code == 400
    ok = client.post("/admin/login", json={"email": "boss@example.com", "password": "s3cret-admin"})
    assert ok.status_code == 200
    assert ok.headers["Set-Cookie"].startswith("asid=")
    created = client.post(
        "/api/customers", json={"email": "c@example.com", "password": PASSWORD, "full_name": "C"}
    ).get_json()["data"]
    response = client.patch(f"/api/customers/{created['uuid']}", json={"status": 0})
    assert response.status_code == 200
    client.post("/admin/logout")
    assert client.patch(f"/api/customers/{created['uuid']}", json={}).status_code == 401


def test_a_cookie_for_another_admin_id_is_refused(instance):
    from examples.app import create_app

    app = create_app(FAST)
    with app.app_context():
        value = app.extensions["evershop_customer"].admin_sessions.open("someone-else")
    client = app.test_client(use_cookies=False)
    created = client.post(
        "/api/customers", json={"email": "d@example.com", "password": PASSWORD, "full_name": "D"}
    ).get_json()["data"]
    response = client.delete(
        f"/api/customers/{created['uuid']}", headers={"Cookie": f"asid={value}"}
    )
    assert response.status_code == 401


def test_environment_variables_and_test_config(instance, monkeypatch, tmp_path):
    from examples.app import create_app

    monkeypatch.setenv("FLASK_EXAMPLE_ADMIN_EMAIL", "env@example.com")
    monkeypatch.setenv("FLASK_EVERSHOP_CUSTOMER_TOKEN_LIFETIME", "3600")
    url = f"sqlite:///{tmp_path / 'other.sqlite'}"
    app = create_app({**FAST, "SQLALCHEMY_DATABASE_URI": url})
    assert app.config["EXAMPLE_ADMIN_EMAIL"] == "env@example.com"
    assert app.config["EVERSHOP_CUSTOMER_TOKEN_LIFETIME"] == 3600
    assert app.config["SQLALCHEMY_DATABASE_URI"] == url
    assert (tmp_path / "other.sqlite").exists()


def test_sqlite_waits_for_locks_in_wal_mode(instance):
    from examples.app import create_app, db

    app = create_app(FAST)
    with app.app_context():
        mode = db.session.execute(db.text("PRAGMA journal_mode")).scalar()
        assert mode == "wal"
    assert app.config["SQLALCHEMY_ENGINE_OPTIONS"]["connect_args"]["timeout"] >= 5
