"""The helpers hosts use in their own tests: a logged-in test client and the clock."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask, jsonify

from flask_evershop_customer import admin_required, current_customer, customer_required
from flask_evershop_customer.errors import NotFound
from flask_evershop_customer.testing import CustomerTestClient

from .conftest import Api, customers, state_of


@pytest.fixture
def host_app(app: Flask) -> Flask:
    app.test_client_class = CustomerTestClient

    @app.get("/account")
    @customer_required
    def account() -> Any:
        return jsonify({"email": current_customer.email})

    @app.get("/admin/page")
    @admin_required
    def admin_page() -> Any:
        return jsonify({"admin": True})

    return app


def test_a_client_logged_in_as_a_customer_without_a_password(
    host_app: Flask, api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    customer = api.register("t@example.com")
    hasher = state_of(host_app).hasher
    monkeypatch.setattr(hasher, "verify", lambda *_: pytest.fail("no password check"))
    client = host_app.test_client(customer=customer["uuid"])
    assert isinstance(client, CustomerTestClient)  # test_client() is typed FlaskClient
    assert client.get("/account").get_json() == {"email": "t@example.com"}
    assert client.login is not None and client.login.customer.uuid == customer["uuid"]
    # A real session: it ends like any other.
    response = client.delete(f"/api/customers/sessions/{client.login.sid}")
    assert response.status_code == 200
    assert client.get("/account").status_code == 401


@pytest.mark.parametrize("use_cookies", [True, False])
def test_a_client_logged_in_as_an_admin(host_app: Flask, use_cookies: Any) -> None:
    client = host_app.test_client(use_cookies=use_cookies, admin="ops-1")
    assert client.get("/admin/page").get_json() == {"admin": True}
    with host_app.app_context():
        assert customers.end_admin_sessions("ops-1") == 1
    assert client.get("/admin/page").status_code == 401


def test_no_session_for_an_unknown_or_disabled_customer(host_app: Flask, api: Api) -> None:
    disabled = api.register("d@example.com", status=0)
    for uuid in (disabled["uuid"], "0" * 32, "not-a-uuid"):
        with pytest.raises(NotFound, match="Invalid customer id"):
            host_app.test_client(customer=uuid)


def test_the_clock_moves_session_expiry(host_app: Flask, api: Api) -> None:
    customer = api.register("c@example.com")
    client = host_app.test_client(customer=customer["uuid"])
    lifetime = state_of(host_app).settings.token_lifetime
    with host_app.app_context():
        customers.clock.travel(lifetime)
    assert client.get("/account").status_code == 401
    with host_app.app_context():
        customers.clock.reset()
    assert client.get("/account").status_code == 200
