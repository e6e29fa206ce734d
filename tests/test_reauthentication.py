"""Re-authentication: a customer changing their own password or email sends
``current_password``; a wrong one is a failed login that costs one hash check."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from .conftest import (
    OTHER_PASSWORD,
    PASSWORD,
    Api,
    AppFactory,
    Login,
    table_contents,
)
from .test_login_races import _overtaken_password_check

REQUIRED = {
    "error": {
        "status": 400,
        "message": "Request data must have required property 'current_password'",
    }
}
INCORRECT = {"error": {"status": 400, "message": "Current password is incorrect"}}
NEW_PASSWORD = {"password": OTHER_PASSWORD}
NEW_EMAIL = {"email": "alice@new.example"}


def customers_table(app: Flask) -> list[dict[str, Any]]:
    return table_contents(app)["evershop_customer"]


def failures(app: Flask) -> int:
    return len(table_contents(app)["evershop_customer_login_failure"])


@pytest.mark.parametrize("change", [NEW_PASSWORD, NEW_EMAIL, {**NEW_PASSWORD, **NEW_EMAIL}])
@pytest.mark.parametrize("path", ["/api/customers/me", "uuid"])
def test_a_customers_own_change_needs_the_current_password(
    app: Flask,
    client: FlaskClient,
    alice: dict[str, Any],
    alice_login: Login,
    hash_calls: dict[str, int],
    change: dict[str, str],
    path: str,
) -> None:
    url = f"/api/customers/{alice['uuid']}" if path == "uuid" else path
    headers = alice_login.headers
    before = customers_table(app)
    missing = client.patch(url, json=change, headers=headers)
    assert missing.get_json() == REQUIRED
    assert hash_calls == {"check": 0, "hash": 0}
    wrong = client.patch(url, json={**change, "current_password": "not it at all"}, headers=headers)
    assert wrong.get_json() == INCORRECT
    assert hash_calls == {"check": 1, "hash": 0}  # exactly one check, no new hash
    assert customers_table(app) == before
    right = client.patch(url, json={**change, "current_password": PASSWORD}, headers=headers)
    assert right.status_code == 200, right.get_json()
    assert "current_password" not in right.get_data(as_text=True)


def test_a_wrong_current_password_counts_as_a_failed_login(
    app_factory: AppFactory, alice: dict[str, Any]
) -> None:
    app = app_factory(EVERSHOP_CUSTOMER_LOGIN_MAX_FAILURES=2)
    api = Api(app, app.test_client(use_cookies=False))
    api.register("bob@example.com")
    bob = api.login("bob@example.com")
    body = {"password": OTHER_PASSWORD, "current_password": "wrong guess"}
    for _ in range(2):
        response = api.client.patch("/api/customers/me", json=body, headers=bob.headers)
        assert response.get_json() == INCORRECT
    refused = api.client.patch("/api/customers/me", json=body, headers=bob.headers)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    # The same counter as the email's logins.
    login = {"email": "bob@example.com", "password": PASSWORD}
    assert api.client.post("/api/customers/sessions", json=login).status_code == 429
    # Even the right password waits out the window.
    right = {"password": OTHER_PASSWORD, "current_password": PASSWORD}
    assert api.client.patch("/api/customers/me", json=right, headers=bob.headers).status_code == 429


def test_a_right_current_password_is_not_counted(
    app: Flask, client: FlaskClient, alice_login: Login
) -> None:
    before = failures(app)  # the registration, counted per address
    body = {"full_name": "Renamed", **NEW_EMAIL, "current_password": PASSWORD}
    response = client.patch("/api/customers/me", json=body, headers=alice_login.headers)
    assert response.status_code == 200
    assert failures(app) == before


def test_resending_the_same_email_or_changing_the_name_needs_nothing(
    client: FlaskClient, alice_login: Login
) -> None:
    """EverShop's account form sends the email with every save."""
    body = {"email": "ALICE@example.com", "full_name": "Alice Again"}
    response = client.patch("/api/customers/me", json=body, headers=alice_login.headers)
    assert response.status_code == 200


def test_admins_never_send_it(api: Api, client: FlaskClient, alice: dict[str, Any]) -> None:
    url = f"/api/customers/{alice['uuid']}"
    body = {**NEW_PASSWORD, **NEW_EMAIL}
    assert client.patch(url, json=body, headers=api.admin_headers()).status_code == 200


def test_email_changes_may_go_without_it_by_configuration(app_factory: AppFactory) -> None:
    app = app_factory(EVERSHOP_CUSTOMER_REAUTH_FOR_EMAIL_CHANGE=False)
    api = Api(app, app.test_client(use_cookies=False))
    api.register("carol@example.com")
    carol = api.login("carol@example.com")
    email = api.client.patch("/api/customers/me", json=NEW_EMAIL, headers=carol.headers)
    assert email.status_code == 200
    password = api.client.patch("/api/customers/me", json=NEW_PASSWORD, headers=carol.headers)
    assert password.get_json() == REQUIRED


@pytest.mark.parametrize("value", [None, 5, [], {}])
def test_current_password_must_be_a_string(
    client: FlaskClient, alice_login: Login, value: Any
) -> None:
    body = {**NEW_PASSWORD, "current_password": value}
    response = client.patch("/api/customers/me", json=body, headers=alice_login.headers)
    assert response.get_json() == {
        "error": {"status": 400, "message": "/current_password must be string"}
    }


def test_an_admin_password_change_while_the_current_one_is_checked_wins(
    app: Flask,
    api: Api,
    client: FlaskClient,
    alice: dict[str, Any],
    alice_login: Login,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """While the customer's current password is being checked, an admin sets another
    one (which ends every session): the customer's change writes nothing."""
    url = f"/api/customers/{alice['uuid']}"
    admin = api.admin_headers()
    answers = _overtaken_password_check(
        app,
        monkeypatch,
        lambda: app.test_client(use_cookies=False).patch(
            url, json={"password": "set by the admin 1"}, headers=admin
        ),
    )
    body = {"password": "set by the customer", "current_password": PASSWORD}
    response = client.patch("/api/customers/me", json=body, headers=alice_login.headers)
    [overtaking] = answers
    assert overtaking.status_code == 200
    assert response.status_code == 401, response.get_json()
    monkeypatch.undo()
    login = {"email": "alice@example.com", "password": "set by the admin 1"}
    assert client.post("/api/customers/sessions", json=login).status_code == 200


def test_two_changes_from_one_session_cannot_both_use_the_old_password(
    app: Flask,
    client: FlaskClient,
    alice: dict[str, Any],
    alice_login: Login,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two requests of the same session both send the right current password; the one
    that commits first changes it, and the other, checked again under the row lock,
    finds the password it verified gone."""
    first = {"password": "first new password", "current_password": PASSWORD}
    answers = _overtaken_password_check(
        app,
        monkeypatch,
        lambda: app.test_client(use_cookies=False).patch(
            "/api/customers/me", json=first, headers=alice_login.headers
        ),
    )
    second = {"password": "second new password", "current_password": PASSWORD}
    response = client.patch("/api/customers/me", json=second, headers=alice_login.headers)
    [overtaking] = answers
    assert overtaking.status_code == 200
    assert response.get_json() == INCORRECT
    monkeypatch.undo()
    login = {"email": "alice@example.com", "password": "first new password"}
    assert client.post("/api/customers/sessions", json=login).status_code == 200


def test_another_spelling_of_the_same_canonical_address_needs_it(
    app_factory: AppFactory,
) -> None:
    """Another mailbox, where reset mail would go from then on: only the stored address
    itself, or it in other letter case, is no change."""
    app = app_factory()
    api = Api(app, app.test_client(use_cookies=False))
    api.register("strasse@example.com")
    login = api.login("strasse@example.com")
    for email in ("straße@example.com", "ｓｔｒａｓｓｅ@example.com"):
        response = api.client.patch(
            "/api/customers/me", json={"email": email}, headers=login.headers
        )
        assert response.get_json() == REQUIRED, email
    assert customers_table(app)[0]["email"] == "strasse@example.com"
    same = {"email": "STRASSE@Example.com"}
    response = api.client.patch("/api/customers/me", json=same, headers=login.headers)
    assert response.status_code == 200
    body = {"email": "straße@example.com", "current_password": PASSWORD}
    response = api.client.patch("/api/customers/me", json=body, headers=login.headers)
    assert response.status_code == 200
    assert customers_table(app)[0]["email"] == "straße@example.com"
