"""DELETE /api/customers/{id}."""

from __future__ import annotations

from typing import Any, cast

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from flask_evershop_customer.models import rows_naming

from .conftest import PASSWORD, Api, state_of, table_contents
from .test_addresses import SAN_FRANCISCO


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


def _account_with_every_kind_of_row(api: Api, email: str) -> dict[str, Any]:
    """A customer with a session, a token session (its refresh token), an address and a
    pending reset token."""
    customer = api.register(email)
    login = api.login(email)
    api.tokens(email)
    response = api.client.post(
        "/api/customers/me/addresses", json=SAN_FRANCISCO, headers=login.headers
    )
    assert response.status_code == 200, response.get_json()
    with api.client.post("/api/customers/reset-password", json={"email": email}) as answer:
        assert answer.status_code == 200
    return customer


def _rows_naming(app: Flask, customer: dict[str, Any]) -> dict[str, int]:
    """How many rows of each table name ``customer``, directly or through a session."""
    contents = table_contents(app)
    sids = {
        row["sid"]
        for row in contents["evershop_customer_session"]
        if row["customer_id"] == customer["customer_id"]
    }
    found = {
        name: sum(
            1
            for row in rows
            if row.get("customer_id") == customer["customer_id"] or row.get("sid") in sids
        )
        for name, rows in contents.items()
        if name != "evershop_customer"
    }
    return {name: count for name, count in found.items() if count}


@pytest.mark.parametrize("by", ["customer", "admin"])
def test_a_delete_removes_every_row_that_names_the_customer(
    app: Flask, api: Api, client: FlaskClient, by: str
) -> None:
    """Whether or not the database enforces the foreign keys (the suite's SQLite does
    not); another customer's rows stay."""
    alice = _account_with_every_kind_of_row(api, "alice@example.com")
    bob = _account_with_every_kind_of_row(api, "bob@example.com")
    before = _rows_naming(app, alice)
    assert set(before) == {
        "evershop_customer_session",
        "evershop_customer_refresh_token",
        "evershop_customer_address",
        "evershop_customer_reset_token",
    }
    bobs = _rows_naming(app, bob)
    headers = api.admin_headers() if by == "admin" else api.login("alice@example.com").headers
    response = client.delete(f"/api/customers/{alice['uuid']}", headers=headers)
    assert response.status_code == 200, response.get_json()
    assert _rows_naming(app, alice) == {}
    assert _rows_naming(app, bob) == bobs


def test_every_table_that_references_the_customer_is_covered(app: Flask) -> None:
    """A new feature's table is erased with the customer once its foreign key names
    them: nobody has to remember a list."""
    models = state_of(app).models
    ours = {model.__table__ for model in models}

    def references_the_customer(table: sa.Table) -> bool:
        return any(
            key.column.table is models.Customer.__table__
            or (key.column.table in ours and references_the_customer(key.column.table))
            for key in table.foreign_keys
        )

    expected = {table.name for table in ours if references_the_customer(table)}
    covered = {cast(sa.Table, statement.table).name for statement in rows_naming(models)}
    assert covered == expected
    assert {"evershop_customer_reset_token", "evershop_customer_refresh_token"} <= covered
