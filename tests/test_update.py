"""PATCH /api/customers/{id}."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from .conftest import OTHER_PASSWORD, PASSWORD, Api, Login, database_free, state_of


def test_customer_updates_own_name(
    client: FlaskClient, alice: dict[str, Any], alice_login: Login
) -> None:
    data, login = alice, alice_login
    response = client.patch(
        f"/api/customers/{data['uuid']}", json={"full_name": "Alice Renamed"}, headers=login.headers
    )
    assert response.status_code == 200
    body = response.get_json()["data"]
    assert body["full_name"] == "Alice Renamed"
    assert body["email"] == "alice@example.com"
    assert body["uuid"] == data["uuid"]
    assert body["created_at"] == data["created_at"]
    assert [link["rel"] for link in body["links"]] == ["customerGrid", "edit"]
    assert body["links"][1]["href"] == f"/admin/customers/edit/{data['uuid']}"


def test_admin_updates_any_customer_including_status(
    api: Api, client: FlaskClient, alice: dict[str, Any]
) -> None:
    data = alice
    response = client.patch(
        f"/api/customers/{data['uuid']}",
        json={"status": "0", "email": "new@example.com"},
        headers=api.admin_headers(),
    )
    assert response.status_code == 200
    body = response.get_json()["data"]
    assert body["status"] == 0 and body["email"] == "new@example.com"


def test_customer_cannot_change_status(
    client: FlaskClient, alice: dict[str, Any], alice_login: Login
) -> None:
    data, login = alice, alice_login
    response = client.patch(
        f"/api/customers/{data['uuid']}", json={"status": 0}, headers=login.headers
    )
    assert response.status_code == 403
    assert response.get_json()["error"]["status"] == 403


def test_empty_patch_changes_nothing(
    client: FlaskClient, alice: dict[str, Any], alice_login: Login
) -> None:
    data, login = alice, alice_login
    response = client.patch(f"/api/customers/{data['uuid']}", json={}, headers=login.headers)
    assert response.status_code == 200
    body = response.get_json()["data"]
    body.pop("links")
    expected = {k: v for k, v in data.items() if k != "links"}
    assert body == expected


def test_read_only_and_unknown_fields_are_ignored(
    client: FlaskClient, alice: dict[str, Any], alice_login: Login
) -> None:
    data, login = alice, alice_login
    response = client.patch(
        f"/api/customers/{data['uuid']}",
        json={
            "uuid": "f" * 32,
            "customer_id": 999,
            "group_id": 5,
            "created_at": "2000-01-01 00:00:00",
            "updated_at": "2000-01-01 00:00:00",
            "password_hash": "x",
            "foo": "bar",
        },
        headers=login.headers,
    )
    assert response.status_code == 200
    body = response.get_json()["data"]
    assert body["uuid"] == data["uuid"]
    assert body["customer_id"] == data["customer_id"]
    assert body["group_id"] == 1
    assert body["created_at"] == data["created_at"]
    assert body["updated_at"] == data["updated_at"]


def test_password_change_takes_effect(
    api: Api, client: FlaskClient, alice: dict[str, Any], alice_login: Login
) -> None:
    data, login = alice, alice_login
    response = client.patch(
        f"/api/customers/{data['uuid']}",
        json={"password": OTHER_PASSWORD, "current_password": PASSWORD},
        headers=login.headers,
    )
    assert response.status_code == 200
    old = client.post(
        "/api/customers/sessions", json={"email": "alice@example.com", "password": PASSWORD}
    )
    assert old.status_code == 400
    api.login("alice@example.com", OTHER_PASSWORD)


def test_password_change_ends_other_sessions_but_not_this_one(
    api: Api, client: FlaskClient, alice: dict[str, Any], alice_login: Login
) -> None:
    data, login = alice, alice_login
    other = api.login("alice@example.com")
    response = client.patch(
        f"/api/customers/{data['uuid']}",
        json={"password": OTHER_PASSWORD, "current_password": PASSWORD},
        headers=login.headers,
    )
    assert response.status_code == 200
    url = f"/api/customers/{data['uuid']}"
    assert client.patch(url, json={}, headers=login.headers).status_code == 200
    assert client.patch(url, json={}, headers=other.headers).status_code == 401


def test_admin_password_change_ends_every_session(
    api: Api, client: FlaskClient, alice: dict[str, Any], alice_login: Login
) -> None:
    data, login = alice, alice_login
    url = f"/api/customers/{data['uuid']}"
    response = client.patch(url, json={"password": OTHER_PASSWORD}, headers=api.admin_headers())
    assert response.status_code == 200
    assert client.patch(url, json={}, headers=login.headers).status_code == 401


def test_disabling_ends_every_session_and_login(
    api: Api, client: FlaskClient, alice: dict[str, Any], alice_login: Login
) -> None:
    data, login = alice, alice_login
    url = f"/api/customers/{data['uuid']}"
    assert client.patch(url, json={"status": 0}, headers=api.admin_headers()).status_code == 200
    assert client.patch(url, json={}, headers=login.headers).status_code == 401
    response = client.post(
        "/api/customers/sessions", json={"email": "alice@example.com", "password": PASSWORD}
    )
    assert response.status_code == 400
    assert response.get_json()["error"]["message"] == "Invalid email or password"


def test_email_change_to_a_taken_email_in_any_case_is_409(
    api: Api, client: FlaskClient, alice: dict[str, Any], alice_login: Login
) -> None:
    data, login = alice, alice_login
    api.register("bob@example.com")
    response = client.patch(
        f"/api/customers/{data['uuid']}",
        json={"email": "BOB@example.com", "current_password": PASSWORD},
        headers=login.headers,
    )
    assert response.status_code == 409
    assert response.get_json()["error"]["message"] == "Email is already used"
    unchanged = client.patch(f"/api/customers/{data['uuid']}", json={}, headers=login.headers)
    assert unchanged.get_json()["data"]["email"] == "alice@example.com"


def test_email_change_to_own_email_in_another_case(
    client: FlaskClient, alice: dict[str, Any], alice_login: Login
) -> None:
    data, login = alice, alice_login
    response = client.patch(
        f"/api/customers/{data['uuid']}", json={"email": "Alice@Example.com"}, headers=login.headers
    )
    assert response.status_code == 200
    assert response.get_json()["data"]["email"] == "Alice@Example.com"


def test_login_uses_new_email(
    api: Api, client: FlaskClient, alice: dict[str, Any], alice_login: Login
) -> None:
    data, login = alice, alice_login
    client.patch(
        f"/api/customers/{data['uuid']}",
        json={"email": "alice2@example.com", "current_password": PASSWORD},
        headers=login.headers,
    )
    api.login("ALICE2@example.com")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"email": "nope"}, '/email must match format "email"'),
        ({"email": 5}, "/email must be string"),
        ({"full_name": ""}, "/full_name must NOT have fewer than 1 characters"),
        ({"full_name": None}, "/full_name must be string"),
        ({"password": "short"}, "/password must NOT have fewer than 8 characters"),
        ({"password": ""}, "/password must NOT have fewer than 8 characters"),
        ([], "Request data must be object"),
    ],
)
def test_invalid_update_is_400_and_changes_nothing(
    client: FlaskClient, alice: dict[str, Any], alice_login: Login, body: Any, message: Any
) -> None:
    data, login = alice, alice_login
    url = f"/api/customers/{data['uuid']}"
    response = client.patch(url, json=body, headers=login.headers)
    assert response.status_code == 400
    assert response.get_json() == {"error": {"status": 400, "message": message}}
    after = client.patch(url, json={}, headers=login.headers).get_json()["data"]
    assert after["email"] == data["email"] and after["full_name"] == data["full_name"]


@database_free
def test_no_credentials_is_401(client: FlaskClient, alice: dict[str, Any]) -> None:
    data = alice
    response = client.patch(f"/api/customers/{data['uuid']}", json={"full_name": "X"})
    assert response.status_code == 401
    assert response.get_json() == {"error": {"status": 401, "message": "Unauthorized"}}


def test_one_customer_cannot_change_another(
    api: Api, client: FlaskClient, alice: dict[str, Any]
) -> None:
    data = alice
    api.register("mallory@example.com")
    mallory = api.login("mallory@example.com")
    response = client.patch(
        f"/api/customers/{data['uuid']}", json={"full_name": "Hacked"}, headers=mallory.headers
    )
    assert response.status_code == 403
    admin = client.patch(f"/api/customers/{data['uuid']}", json={}, headers=api.admin_headers())
    assert admin.get_json()["data"]["full_name"] == "Alice Example"


@pytest.mark.parametrize("customer_id", ["0" * 32, "not-a-uuid", "F" * 32, "1", "a" * 33])
def test_unknown_or_malformed_id_is_404(
    api: Api, client: FlaskClient, alice: dict[str, Any], customer_id: Any
) -> None:
    response = client.patch(
        f"/api/customers/{customer_id}", json={"full_name": "X"}, headers=api.admin_headers()
    )
    assert response.status_code == 404
    assert response.get_json() == {"error": {"status": 404, "message": "Invalid customer id"}}


def test_order_of_checks_401_then_404_then_403(
    api: Api, client: FlaskClient, alice: dict[str, Any]
) -> None:
    data = alice
    api.register("bob@example.com")
    bob = api.login("bob@example.com")
    assert client.patch("/api/customers/" + "0" * 32, json={}).status_code == 401
    assert (
        client.patch("/api/customers/" + "0" * 32, json={}, headers=bob.headers).status_code == 404
    )
    response = client.patch(f"/api/customers/{data['uuid']}", json=[], headers=bob.headers)
    assert response.status_code == 403


def test_updated_at_moves_only_on_change(
    app: Flask,
    client: FlaskClient,
    alice: dict[str, Any],
    alice_login: Login,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from datetime import datetime, timedelta

    data, login = alice, alice_login
    later = datetime.strptime(data["updated_at"], "%Y-%m-%d %H:%M:%S") + timedelta(hours=1)
    state_of(app).clock.freeze(later)
    url = f"/api/customers/{data['uuid']}"
    unchanged = client.patch(url, json={"full_name": "Alice Example"}, headers=login.headers)
    assert unchanged.get_json()["data"]["updated_at"] == data["updated_at"]
    changed = client.patch(url, json={"full_name": "Alice B"}, headers=login.headers)
    assert changed.get_json()["data"]["updated_at"] == later.strftime("%Y-%m-%d %H:%M:%S")
