"""The SQL statements each endpoint issues, pinned.

Not a timing test: the number of statements is what a request costs the database, and
what the benchmarks' bare baselines are built to match. An extra query (a lazy load, a
reload after commit, a pre-check) fails here on every database before it shows up as a
slower benchmark. A change that needs fewer statements updates the pin on purpose.
BEGIN and COMMIT are not counted (the driver sends them, not a cursor).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask, jsonify
from flask.testing import FlaskClient

from flask_evershop_customer import current_customer, customer_required, password_reset_requested

from .conftest import OTHER_PASSWORD, PASSWORD, Api, Login, count_statements


@pytest.fixture
def host_app(app: Flask) -> Flask:
    """The test app with a host route of its own behind ``customer_required``."""

    @app.get("/account")
    @customer_required
    def account() -> Any:
        return jsonify({"uuid": current_customer.uuid})

    return app


def statements(app: Flask, request: Callable[[], Any], status: int = 200) -> list[str]:
    """The statements ``request`` ran, after checking that it answered ``status``."""
    with count_statements(app) as counter:
        response = request()
    assert response.status_code == status, response.get_json()
    return counter.statements


def assert_count(found: list[str], expected: int) -> None:
    listing = "\n".join(f"  {' '.join(s.split())[:110]}" for s in found)
    assert len(found) == expected, f"{len(found)} statements, pinned at {expected}:\n{listing}"


def test_create(host_app: Flask, client: FlaskClient) -> None:
    body = {"email": "new@example.com", "password": PASSWORD, "full_name": "New"}
    # The registration recorded under the client address and counted (registrations are
    # limited per address), then the INSERT (its key comes back with it); the unique
    # constraint decides duplicates.
    assert_count(statements(host_app, lambda: client.post("/api/customers", json=body)), 3)


def test_create_by_an_admin(host_app: Flask, client: FlaskClient, api: Api) -> None:
    body = {"email": "new@example.com", "password": PASSWORD, "full_name": "New"}
    headers = api.admin_headers()
    found = statements(host_app, lambda: client.post("/api/customers", json=body, headers=headers))
    # The admin session, then the INSERT: admins are not limited per address.
    assert_count(found, 2)


def test_login(host_app: Flask, client: FlaskClient, alice: dict[str, Any]) -> None:
    body = {"email": "alice@example.com", "password": PASSWORD}
    found = statements(host_app, lambda: client.post("/api/customers/sessions", json=body))
    # The attempt recorded first (one INSERT for the email and the address), the count up
    # to it, the customer; after the password check, the customer again, locked (is it
    # still as verified?), the new session, forgetting the email's failures and this
    # attempt; nothing after the commit.
    assert_count(found, 6)


@pytest.mark.parametrize(
    "body",
    [
        {"email": "alice@example.com", "password": "a wrong password"},
        {"email": "nobody@example.com", "password": PASSWORD},
    ],
    ids=["wrong-password", "unknown-email"],
)
def test_failed_login(
    host_app: Flask, client: FlaskClient, alice: dict[str, Any], body: Any
) -> None:
    found = statements(
        host_app, lambda: client.post("/api/customers/sessions", json=body), status=400
    )
    # The attempt recorded first (one INSERT), the count up to it, the customer (or none).
    assert_count(found, 3)


def test_token_check_on_a_host_route(
    host_app: Flask, client: FlaskClient, alice_login: Login
) -> None:
    found = statements(host_app, lambda: client.get("/account", headers=alice_login.headers))
    # One indexed lookup: the session joined to its customer.
    assert_count(found, 1)


def test_authenticated_empty_patch(
    host_app: Flask, client: FlaskClient, alice: dict[str, Any], alice_login: Login
) -> None:
    url = f"/api/customers/{alice['uuid']}"
    found = statements(host_app, lambda: client.patch(url, json={}, headers=alice_login.headers))
    # The token check already loaded the caller's own record: nothing else to read.
    assert_count(found, 1)


def test_authenticated_patch(
    host_app: Flask, client: FlaskClient, alice: dict[str, Any], alice_login: Login
) -> None:
    url = f"/api/customers/{alice['uuid']}"
    body = {"full_name": "Alice Renamed"}
    found = statements(host_app, lambda: client.patch(url, json=body, headers=alice_login.headers))
    # The token check, one versioned UPDATE, then (the row now held) whether the session
    # making it is still live: one ended while the request was in flight writes nothing.
    assert_count(found, 3)


def test_authenticated_patch_of_the_email(
    host_app: Flask, client: FlaskClient, alice: dict[str, Any], alice_login: Login
) -> None:
    url = f"/api/customers/{alice['uuid']}"
    body = {
        "full_name": "Alice Renamed",
        "email": "alice.renamed@example.com",
        "current_password": PASSWORD,
    }
    found = statements(host_app, lambda: client.patch(url, json=body, headers=alice_login.headers))
    # The token check; re-authentication (its attempt recorded and counted, the hash
    # read, the attempt forgotten once the password is right); the email change's own
    # attempt recorded and counted (a customer probing for taken emails is limited);
    # the versioned UPDATE and the session still live; the pending reset tokens used up
    # (the new address did not ask for them); that attempt forgotten.
    assert_count(found, 11)


def test_authenticated_patch_with_a_password_change(
    host_app: Flask, client: FlaskClient, alice: dict[str, Any], alice_login: Login
) -> None:
    url = f"/api/customers/{alice['uuid']}"
    body = {"password": OTHER_PASSWORD, "current_password": PASSWORD}
    found = statements(host_app, lambda: client.patch(url, json=body, headers=alice_login.headers))
    # The token check; re-authentication (attempt recorded and counted, hash read,
    # attempt forgotten); the UPDATE, the session still live, the pending reset tokens
    # used up, and ending the customer's other sessions.
    assert_count(found, 9)


def test_admin_patch(host_app: Flask, client: FlaskClient, api: Api, alice: dict[str, Any]) -> None:
    url = f"/api/customers/{alice['uuid']}"
    body = {"full_name": "Set By Admin"}
    headers = api.admin_headers()
    found = statements(host_app, lambda: client.patch(url, json=body, headers=headers))
    # The admin session (one lookup by primary key), the customer by uuid, the UPDATE.
    assert_count(found, 3)


def test_get_me(host_app: Flask, client: FlaskClient, alice_login: Login) -> None:
    found = statements(
        host_app, lambda: client.get("/api/customers/me", headers=alice_login.headers)
    )
    # The token check's read is the answer.
    assert_count(found, 1)


def test_list_own_sessions(host_app: Flask, client: FlaskClient, alice_login: Login) -> None:
    url = "/api/customers/me/sessions"
    # The token check, then the live sessions by the customer_id index.
    assert_count(statements(host_app, lambda: client.get(url, headers=alice_login.headers)), 2)


def test_end_other_sessions(
    host_app: Flask, client: FlaskClient, api: Api, alice_login: Login
) -> None:
    api.login("alice@example.com")
    url = "/api/customers/me/sessions"
    # The token check, the other live sessions locked, the UPDATE.
    found = statements(host_app, lambda: client.delete(url, headers=alice_login.headers))
    assert_count(found, 3)


def test_reset_request_for_a_customer(
    host_app: Flask, client: FlaskClient, alice_login: Login
) -> None:
    body = {"email": "alice@example.com"}
    found = statements(host_app, lambda: client.post("/api/customers/reset-password", json=body))
    # The request recorded and counted (per email and address); after the answer, the
    # customer read and locked, older tokens used up, the new token stored.
    assert_count(found, 5)


def test_reset_request_for_nobody(host_app: Flask, client: FlaskClient) -> None:
    body = {"email": "nobody@example.com"}
    found = statements(host_app, lambda: client.post("/api/customers/reset-password", json=body))
    # Recorded and counted alike; after the answer, the (empty) read, the tokens of
    # nobody used up and a write of the same size as a token's (the attempt rows written
    # again): the statements of a customer's request.
    assert_count(found, 5)


def test_reset_completion(host_app: Flask, client: FlaskClient, alice_login: Login) -> None:
    tokens: list[str] = []
    with password_reset_requested.connected_to(
        lambda sender, **payload: tokens.append(payload["token"]), sender=host_app
    ):
        client.post("/api/customers/reset-password", json={"email": "alice@example.com"})
    body = {"token": tokens[0], "password": "a brand new passphrase"}
    found = statements(host_app, lambda: client.post("/api/customers/password", json=body))
    # The token's customer; then the token and the customer locked, the new password,
    # every session ended, every token used up, the email's failed logins forgotten.
    assert_count(found, 7)


def test_admin_list(host_app: Flask, client: FlaskClient, api: Api, alice: dict[str, Any]) -> None:
    headers = api.admin_headers()
    # The admin session, the page, the count.
    found = statements(host_app, lambda: client.get("/api/customers", headers=headers))
    assert_count(found, 3)


def test_patch_and_delete_of_me_cost_what_they_cost_by_id(
    host_app: Flask, client: FlaskClient, alice_login: Login
) -> None:
    headers = alice_login.headers
    body = {"full_name": "Alice Renamed"}
    renamed = statements(
        host_app, lambda: client.patch("/api/customers/me", json=body, headers=headers)
    )
    assert_count(renamed, 3)  # as test_authenticated_patch
    deleted = statements(host_app, lambda: client.delete("/api/customers/me", headers=headers))
    assert_count(deleted, 8)  # as test_delete


def test_get_own_record_by_id(
    host_app: Flask, client: FlaskClient, alice: dict[str, Any], alice_login: Login
) -> None:
    url = f"/api/customers/{alice['uuid']}"
    assert_count(statements(host_app, lambda: client.get(url, headers=alice_login.headers)), 1)


def test_admin_get_by_id(
    host_app: Flask, client: FlaskClient, api: Api, alice: dict[str, Any]
) -> None:
    url = f"/api/customers/{alice['uuid']}"
    headers = api.admin_headers()
    # The admin session, then the customer by uuid.
    assert_count(statements(host_app, lambda: client.get(url, headers=headers)), 2)


def test_delete(
    host_app: Flask, client: FlaskClient, alice: dict[str, Any], alice_login: Login
) -> None:
    url = f"/api/customers/{alice['uuid']}"
    found = statements(host_app, lambda: client.delete(url, headers=alice_login.headers))
    # The token check; the customer locked and the session still live (the session rows
    # go first, so the check comes before them); every row naming the customer (refresh
    # tokens, addresses, reset tokens, sessions: deleted whether or not the database
    # enforces the foreign keys), the customer.
    assert_count(found, 8)


def test_logout_of_the_calling_session(
    host_app: Flask, client: FlaskClient, alice_login: Login
) -> None:
    url = f"/api/customers/sessions/{alice_login.sid}"
    found = statements(host_app, lambda: client.delete(url, headers=alice_login.headers))
    # The token check already proved the session live and whose: one UPDATE ends it.
    assert_count(found, 2)


def test_logout_of_another_session_by_sid(
    host_app: Flask, client: FlaskClient, api: Api, alice_login: Login
) -> None:
    other = api.login("alice@example.com")
    url = f"/api/customers/sessions/{other.sid}"
    found = statements(host_app, lambda: client.delete(url, headers=alice_login.headers))
    # The token check, whose session that is (and whether live), the UPDATE.
    assert_count(found, 3)


def test_logout_by_customer_uuid(
    host_app: Flask, client: FlaskClient, api: Api, alice: dict[str, Any], alice_login: Login
) -> None:
    api.login("alice@example.com")
    url = f"/api/customers/sessions/{alice['uuid']}"
    found = statements(host_app, lambda: client.delete(url, headers=alice_login.headers))
    # The token check, the customer by uuid, their live sessions, the UPDATE.
    assert_count(found, 4)
