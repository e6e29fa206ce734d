"""DELETE /api/customers/{id}."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from .conftest import PASSWORD, Api


def test_customer_deletes_self_and_gets_the_record_as_it_was(api: Api, client: FlaskClient) -> None:
    data = api.register("alice@example.com")
    login = api.login("alice@example.com")
    response = client.delete(f"/api/customers/{data['uuid']}", headers=login.headers)
    assert response.status_code == 200
    body = response.get_json()["data"]
    assert "links" not in body
    assert body == {k: v for k, v in data.items() if k != "links"}
    assert response.headers["ETag"]


def test_delete_ends_sessions_and_login(api: Api, client: FlaskClient) -> None:
    data = api.register("alice@example.com")
    login, other = api.login("alice@example.com"), api.login("alice@example.com")
    assert client.delete(f"/api/customers/{data['uuid']}", headers=login.headers).status_code == 200
    assert client.delete(f"/api/customers/{data['uuid']}", headers=other.headers).status_code == 401
    response = client.post(
        "/api/customers/sessions", json={"email": "alice@example.com", "password": PASSWORD}
    )
    assert response.status_code == 400


def test_admin_deletes_any_customer_and_again_is_404(api: Api, client: FlaskClient) -> None:
    data = api.register("alice@example.com")
    url = f"/api/customers/{data['uuid']}"
    assert client.delete(url, headers=api.admin_headers()).status_code == 200
    response = client.delete(url, headers=api.admin_headers())
    assert response.status_code == 404
    assert response.get_json() == {"error": {"status": 404, "message": "Invalid customer id"}}


def test_email_is_free_again_after_delete(api: Api, client: FlaskClient) -> None:
    data = api.register("alice@example.com")
    client.delete(f"/api/customers/{data['uuid']}", headers=api.admin_headers())
    api.register("ALICE@example.com")


def test_one_customer_cannot_delete_another(api: Api, client: FlaskClient) -> None:
    data = api.register("alice@example.com")
    api.register("mallory@example.com")
    mallory = api.login("mallory@example.com")
    response = client.delete(f"/api/customers/{data['uuid']}", headers=mallory.headers)
    assert response.status_code == 403
    api.login("alice@example.com")


@pytest.mark.parametrize("headers", [None, {"Authorization": "Bearer nonsense"}])
def test_delete_needs_credentials(api: Api, client: FlaskClient, headers: Any) -> None:
    data = api.register("alice@example.com")
    response = client.delete(f"/api/customers/{data['uuid']}", headers=headers)
    assert response.status_code == 401
    api.login("alice@example.com")


@pytest.mark.parametrize("customer_id", ["0" * 32, "customer.%60uuid%60", "x"])
def test_unknown_or_malformed_id_is_404_and_deletes_nothing(
    api: Api, client: FlaskClient, customer_id: Any
) -> None:
    api.register("alice@example.com")
    response = client.delete(f"/api/customers/{customer_id}", headers=api.admin_headers())
    assert response.status_code == 404
    api.login("alice@example.com")


def test_delete_clears_the_token_cookie_of_a_customer(api: Api, cookie_client: FlaskClient) -> None:
    data = api.register("alice@example.com")
    cookie_client.post(
        "/api/customers/sessions", json={"email": "alice@example.com", "password": PASSWORD}
    )
    response = cookie_client.delete(f"/api/customers/{data['uuid']}")
    assert response.status_code == 200
    assert any(h.startswith("token=;") for h in response.headers.getlist("Set-Cookie"))
