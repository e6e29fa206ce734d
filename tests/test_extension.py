"""The extension object: init_app, register_blueprint alone, two apps, one db."""

from __future__ import annotations

import pytest
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_evershop_customer import ConfigurationError, EverShopCustomer

from .conftest import (
    CHEAP_HASH,
    PASSWORD,
    SECRET_KEY,
    AppFactory,
    Database,
    customers,
    database_free,
    db,
    state_of,
)

BODY = {"email": "alice@example.com", "password": PASSWORD, "full_name": "Alice"}


def test_register_blueprint_alone_sets_everything_up(app_factory: AppFactory) -> None:
    app = app_factory(set_up=False)
    app.register_blueprint(customers.blueprint)
    assert "evershop_customer" in app.extensions
    assert app.config["EVERSHOP_CUSTOMER_TOKEN_COOKIE_NAME"] == "token"
    client = app.test_client()
    assert client.post("/api/customers", json=BODY).status_code == 200
    assert client.put("/api/customers").status_code == 405
    assert client.get("/api/customers").status_code == 401  # the admin list
    assert "customers" in app.cli.commands


def test_register_blueprint_with_url_prefix(app_factory: AppFactory) -> None:
    app = app_factory(set_up=False)
    app.register_blueprint(customers.blueprint, url_prefix="/v1")
    client = app.test_client()
    assert client.post("/v1/customers", json=BODY).status_code == 200
    assert client.post("/api/customers", json=BODY).status_code == 404
    assert client.get("/v1/customers/openapi.json").status_code == 200
    assert state_of(app).settings.url_prefix == "/v1"


def test_configured_prefix_applies_to_plain_registration(app_factory: AppFactory) -> None:
    app = app_factory(set_up=False, EVERSHOP_CUSTOMER_URL_PREFIX="/shop/api")
    app.register_blueprint(customers.blueprint)
    assert app.test_client().post("/shop/api/customers", json=BODY).status_code == 200


def test_empty_prefix_puts_routes_at_the_root(app_factory: AppFactory) -> None:
    app = app_factory(set_up=False, EVERSHOP_CUSTOMER_URL_PREFIX="")
    customers.init_app(app)
    assert app.test_client().post("/customers", json=BODY).status_code == 200


@database_free
def test_second_registration_is_refused(app: Flask) -> None:
    with pytest.raises(RuntimeError, match="already set up"):
        customers.init_app(app)
    with pytest.raises(RuntimeError, match="already set up"):
        app.register_blueprint(customers.blueprint, name="again")


@database_free
def test_db_must_be_initialised_first(database: Database) -> None:
    app = Flask("no-db")
    app.config.update(SECRET_KEY=SECRET_KEY, SQLALCHEMY_DATABASE_URI=database.url)
    with pytest.raises(ConfigurationError, match="db.init_app"):
        customers.init_app(app)


@database_free
def test_another_db_instance_is_refused(database: Database) -> None:
    other = SQLAlchemy()
    app = Flask("other-db")
    app.config.update(SECRET_KEY=SECRET_KEY, SQLALCHEMY_DATABASE_URI=database.url)
    other.init_app(app)
    with pytest.raises(ConfigurationError, match="db.init_app"):
        customers.init_app(app)


def test_one_instance_serves_two_apps_with_different_config(app_factory: AppFactory) -> None:
    first = app_factory(set_up=False, EVERSHOP_CUSTOMER_TOKEN_COOKIE_NAME="first_token")
    second = app_factory(
        set_up=False,
        EVERSHOP_CUSTOMER_URL_PREFIX="/v2",
        EVERSHOP_CUSTOMER_ALLOW_REGISTRATION=False,
        SECRET_KEY="another-secret-key-that-is-long-enough-987654321",
    )
    customers.init_app(first)
    customers.init_app(second)
    one, two = first.test_client(), second.test_client()
    assert one.post("/api/customers", json=BODY).status_code == 200
    assert two.post("/v2/customers", json={**BODY, "email": "b@example.com"}).status_code == 401
    login = one.post("/api/customers/sessions", json=BODY)
    assert login.headers["Set-Cookie"].startswith("first_token=")
    token = login.get_json()["data"]["token"]
    # The apps sign with different secrets: a token of one is nothing to the other.
    headers = {"Authorization": f"Bearer {token}"}
    assert two.delete("/v2/customers/sessions/x", headers=headers).status_code == 401
    assert state_of(first).settings.url_prefix == "/api"
    assert state_of(second).settings.url_prefix == "/v2"


def test_constructor_with_app() -> None:
    local_db = SQLAlchemy()
    app = Flask("ctor")
    app.config.update(
        SECRET_KEY=SECRET_KEY,
        SQLALCHEMY_DATABASE_URI="sqlite://",
        EVERSHOP_CUSTOMER_PASSWORD_HASH_METHOD=CHEAP_HASH,
        EVERSHOP_CUSTOMER_ALLOW_WEAK_PASSWORD_HASH=True,
    )
    local_db.init_app(app)
    extension = EverShopCustomer(app, db=local_db)
    assert state_of(app).accepts_admin == extension.accepts_admin
    with app.app_context():
        local_db.create_all()
    assert app.test_client().post("/api/customers", json=BODY).status_code == 200


def test_models_join_the_hosts_metadata() -> None:
    tables = set(db.metadata.tables)
    assert {
        "evershop_customer",
        "evershop_customer_session",
        "evershop_customer_login_failure",
    } <= tables
    assert customers.models.Customer.__table__ is db.metadata.tables["evershop_customer"]


def test_a_missing_setup_says_what_to_do() -> None:
    from flask_evershop_customer.state import get_state

    with pytest.raises(RuntimeError, match="init_app"):
        get_state(Flask("nothing"))


def test_service_is_usable_outside_requests(app: Flask) -> None:
    from flask_evershop_customer.schemas import parse_new_customer

    with app.app_context():
        new = parse_new_customer(BODY)
        record = customers.accounts.create(new)
    assert record.email == "alice@example.com"
    login = app.test_client().post("/api/customers/sessions", json=BODY)
    assert login.status_code == 200
