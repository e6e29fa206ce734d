"""POST /api/customers: registration."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from .conftest import PASSWORD, Api, AppFactory, database_free, table_contents

UUID = re.compile(r"[0-9a-f]{32}")
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")


def test_create_returns_the_customer_with_links(client: FlaskClient) -> None:
    response = client.post(
        "/api/customers",
        json={"email": "alice@example.com", "password": PASSWORD, "full_name": "Alice Example"},
    )
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    data = response.get_json()["data"]
    assert list(data) == [
        "customer_id",
        "uuid",
        "status",
        "group_id",
        "email",
        "full_name",
        "created_at",
        "updated_at",
        "links",
    ]
    assert isinstance(data["customer_id"], int)
    assert UUID.fullmatch(data["uuid"])
    assert data["status"] == 1 and data["group_id"] == 1
    assert data["email"] == "alice@example.com"
    assert data["full_name"] == "Alice Example"
    assert TIMESTAMP.fullmatch(data["created_at"]) and data["created_at"] == data["updated_at"]
    assert data["links"] == [
        {"rel": "customerGrid", "href": "/admin/customers", "action": "GET", "types": ["text/xml"]},
        {
            "rel": "edit",
            "href": f"/admin/customers/edit/{data['uuid']}",
            "action": "GET",
            "types": ["text/xml"],
        },
    ]
    assert response.headers["ETag"] == f'"{data["uuid"]}.1"'


@pytest.mark.parametrize(("sent", "stored"), [(0, 0), (1, 1), ("0", 0), ("1", 1)])
def test_status_is_honoured(api: Api, client: FlaskClient, sent: Any, stored: Any) -> None:
    response = client.post(
        "/api/customers",
        json={"email": "s@example.com", "password": PASSWORD, "full_name": "S", "status": sent},
        headers=api.admin_headers(),
    )
    assert response.status_code == 200
    assert response.get_json()["data"]["status"] == stored


@pytest.mark.parametrize("sent", [1, "1"])
def test_anyone_may_register_an_active_account(client: FlaskClient, sent: Any) -> None:
    body = {"email": "s@example.com", "password": PASSWORD, "full_name": "S", "status": sent}
    response = client.post("/api/customers", json=body)
    assert response.status_code == 200
    assert response.get_json()["data"]["status"] == 1


@pytest.mark.parametrize("sent", [0, "0"])
def test_only_an_admin_may_register_a_disabled_account(
    app: Flask, api: Api, client: FlaskClient, sent: Any
) -> None:
    """A stranger parking a disabled account on someone's address would keep them from
    registering (409) and from getting reset mail."""
    body = {"email": "s@example.com", "password": PASSWORD, "full_name": "S", "status": sent}
    response = client.post("/api/customers", json=body)
    assert response.status_code == 403
    assert response.get_json() == {
        "error": {"status": 403, "message": "/status 0 can only be set by an admin"}
    }
    assert table_contents(app)["evershop_customer"] == []
    # The owner of the address can still register it.
    assert api.register("s@example.com")["status"] == 1


def test_uuids_are_random(api: Api) -> None:
    first, second = api.register(), api.register()
    assert first["uuid"] != second["uuid"]
    assert first["customer_id"] != second["customer_id"]


@pytest.mark.parametrize(
    "email", ["alice@example.com", "ALICE@example.com", "Alice@Example.COM", "alice@EXAMPLE.com"]
)
def test_duplicate_email_in_any_case_is_409(api: Api, client: FlaskClient, email: Any) -> None:
    api.register("alice@example.com")
    response = client.post(
        "/api/customers", json={"email": email, "password": PASSWORD, "full_name": "Again"}
    )
    assert response.status_code == 409
    assert response.get_json() == {"error": {"status": 409, "message": "Email is already used"}}


def test_unknown_and_read_only_fields_are_ignored(client: FlaskClient) -> None:
    response = client.post(
        "/api/customers",
        json={
            "email": "extra@example.com",
            "password": PASSWORD,
            "full_name": "Extra",
            "group_id": 99,
            "customer_id": 5000,
            "uuid": "0" * 32,
            "created_at": "2000-01-01 00:00:00",
            "password_hash": "pbkdf2:sha256:1$x$y",
            "foo": "bar",
        },
    )
    assert response.status_code == 200
    data = response.get_json()["data"]
    assert data["group_id"] == 1
    assert data["uuid"] != "0" * 32
    assert data["customer_id"] != 5000
    assert data["created_at"] != "2000-01-01 00:00:00"
    assert "foo" not in data


VALIDATION_CASES = [
    ({"password": PASSWORD, "full_name": "N"}, "Request data must have required property 'email'"),
    (
        {"email": "a@example.com", "full_name": "N"},
        "Request data must have required property 'password'",
    ),
    (
        {"email": "a@example.com", "password": PASSWORD},
        "Request data must have required property 'full_name'",
    ),
    ({}, "Request data must have required property 'email'"),
    (
        {"email": "not-an-email", "password": PASSWORD, "full_name": "N"},
        '/email must match format "email"',
    ),
    ({"email": "a@b", "password": PASSWORD, "full_name": "N"}, '/email must match format "email"'),
    (
        {"email": " a@example.com", "password": PASSWORD, "full_name": "N"},
        '/email must match format "email"',
    ),
    ({"email": 12345, "password": PASSWORD, "full_name": "N"}, "/email must be string"),
    ({"email": None, "password": PASSWORD, "full_name": "N"}, "/email must be string"),
    ({"email": ["a@example.com"], "password": PASSWORD, "full_name": "N"}, "/email must be string"),
    (
        {"email": "a" * 250 + "@example.com", "password": PASSWORD, "full_name": "N"},
        "/email must NOT have more than 254 characters",
    ),
    (
        {"email": "a@example.com", "password": 12345678, "full_name": "N"},
        "/password must be string",
    ),
    ({"email": "a@example.com", "password": PASSWORD, "full_name": 7}, "/full_name must be string"),
    (
        {"email": "a@example.com", "password": PASSWORD, "full_name": ""},
        "/full_name must NOT have fewer than 1 characters",
    ),
    (
        {"email": "a@example.com", "password": PASSWORD, "full_name": "x" * 256},
        "/full_name must NOT have more than 255 characters",
    ),
    (
        {"email": "a@example.com", "password": PASSWORD, "full_name": "a\x00b"},
        "/full_name must not contain control characters",
    ),
    (
        {"email": "a@example.com", "password": PASSWORD, "full_name": "a\nb"},
        "/full_name must not contain control characters",
    ),
    (
        {"email": "a@example.com", "password": PASSWORD, "full_name": "Ann\u202eevil"},
        "/full_name must not contain control characters",
    ),
    (
        {"email": "a@example.com", "password": PASSWORD, "full_name": "\u3164"},
        "/full_name must contain visible characters",
    ),
    (
        {"email": "a@example.com", "password": PASSWORD, "full_name": " \u200b "},
        "/full_name must contain visible characters",
    ),
    (
        {"email": "a@example.com", "password": PASSWORD, "full_name": "N", "status": 2},
        "/status must be equal to one of the allowed values",
    ),
    (
        {"email": "a@example.com", "password": PASSWORD, "full_name": "N", "status": "01"},
        "/status must be equal to one of the allowed values",
    ),
    (
        {"email": "a@example.com", "password": PASSWORD, "full_name": "N", "status": True},
        "/status must be string,integer",
    ),
    (
        {"email": "a@example.com", "password": PASSWORD, "full_name": "N", "status": None},
        "/status must be string,integer",
    ),
    (
        {"email": "a@example.com", "password": PASSWORD, "full_name": "N", "status": 1.5},
        "/status must be string,integer",
    ),
    (
        {"email": "a@example.com", "password": "", "full_name": "N"},
        "/password must NOT have fewer than 8 characters",
    ),
]


@database_free
@pytest.mark.parametrize(("body", "message"), VALIDATION_CASES)
def test_validation_errors_name_the_field(client: FlaskClient, body: Any, message: Any) -> None:
    response = client.post("/api/customers", json=body)
    assert response.status_code == 400
    assert response.get_json() == {"error": {"status": 400, "message": message}}


@database_free
@pytest.mark.parametrize("body", ["[1, 2]", '"abc"', "5", "null", "true"])
def test_body_must_be_an_object(client: FlaskClient, body: Any) -> None:
    response = client.post("/api/customers", data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["error"]["message"] == "Request data must be object"


@database_free
def test_empty_body_is_an_empty_object(client: FlaskClient) -> None:
    response = client.post("/api/customers", data=b"", content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["error"]["message"] == (
        "Request data must have required property 'email'"
    )


def test_a_failed_create_stores_nothing(api: Api, client: FlaskClient) -> None:
    client.post(
        "/api/customers", json={"email": "x@example.com", "password": "short", "full_name": "X"}
    )
    response = client.post(
        "/api/customers/sessions", json={"email": "x@example.com", "password": "short"}
    )
    assert response.status_code == 400
    api.register("x@example.com")


def test_registration_closed_needs_an_admin(app_factory: AppFactory) -> None:
    app = app_factory(EVERSHOP_CUSTOMER_ALLOW_REGISTRATION=False)
    client = app.test_client(use_cookies=False)
    body = {"email": "closed@example.com", "password": PASSWORD, "full_name": "Closed"}
    assert client.post("/api/customers", json=body).status_code == 401
    from .conftest import Api

    api = Api(app, client)
    response = client.post("/api/customers", json=body, headers=api.admin_headers())
    assert response.status_code == 200
    login = api.login("closed@example.com")
    other = {**body, "email": "second@example.com"}
    response = client.post("/api/customers", json=other, headers=login.headers)
    assert response.status_code == 403


# -- one canonical email everywhere ---------------------------------------------------


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("zoe@example.com", "ｚｏｅ@example.com"),  # full-width compatibility forms
        ("strasse@example.com", "STRAẞE@example.com"),  # case folding, not lower()
        ("fi@example.com", "ﬁ@example.com"),  # a ligature
        ("zoe@example.com", "zoe@ＥＸＡＭＰＬＥ.com"),  # in the domain too
    ],
)
def test_compatibility_forms_of_an_email_are_one_customer(
    api: Api, client: FlaskClient, first: Any, second: Any
) -> None:
    api.register(first)
    body = {"email": second, "password": PASSWORD, "full_name": "Twin"}
    response = client.post("/api/customers", json=body)
    assert response.status_code == 409
    # The same form logs in, and counts against the same throttling key.
    login = client.post("/api/customers/sessions", json={"email": second, "password": PASSWORD})
    assert login.status_code == 200


def test_a_confusable_letter_of_another_script_is_another_address(
    api: Api, client: FlaskClient
) -> None:
    """A Cyrillic о is not a Latin o: two mailboxes, two customers (docs/security.md)."""
    latin = api.register("zoe@example.com")
    cyrillic = api.register("z\u043ee@example.com")
    assert latin["uuid"] != cyrillic["uuid"]


def test_unlock_takes_any_form_of_the_email(app_factory: AppFactory) -> None:
    app = app_factory(EVERSHOP_CUSTOMER_LOGIN_MAX_FAILURES=1)
    client = app.test_client(use_cookies=False)
    wrong = {"email": "zoe@example.com", "password": "a wrong password"}
    statuses = [client.post("/api/customers/sessions", json=wrong).status_code for _ in range(2)]
    assert statuses == [400, 429]
    result = app.test_cli_runner().invoke(args=["customers", "unlock", "ＺＯＥ@example.com"])
    assert result.exit_code == 0 and "Cleared 1 failed logins" in result.output
    assert client.post("/api/customers/sessions", json=wrong).status_code == 400


@database_free
def test_an_email_whose_folded_form_is_too_long_is_refused(client: FlaskClient) -> None:
    email = "ß" * 60 + "@" + "d" * 60 + "." + "e" * 60 + "." + "f" * 60 + ".com"
    body = {"email": email, "password": PASSWORD, "full_name": "Long"}
    response = client.post("/api/customers", json=body)
    assert response.status_code == 400
