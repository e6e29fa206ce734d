"""``EVERSHOP_CUSTOMER_CHECK_SESSION_EACH_REQUEST = False``: an access token is trusted on
its signature and claims alone, with no query, for as long as it lives; anything that
needs the customer's record still checks the session; a login's two-day token is always
checked; a refresh always reads the database.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import jwt
import pytest
from flask import Flask, Response, jsonify

from flask_evershop_customer import (
    current_customer,
    customer_required,
    get_current_identity,
)
from flask_evershop_customer.clock import utcnow

from .conftest import OTHER_PASSWORD, PASSWORD, Api, AppFactory, count_statements, state_of

INVALID_REFRESH = {"error": {"status": 401, "message": "Invalid refresh token"}}


def host(app_factory: AppFactory, *, check: bool, **config: Any) -> Api:
    """A host app with its own customer-only routes: one that needs only who is calling,
    one that reads the customer's record."""
    app = app_factory(EVERSHOP_CUSTOMER_CHECK_SESSION_EACH_REQUEST=check, **config)

    @app.get("/cart")
    @customer_required
    def cart() -> Response:
        identity = get_current_identity()
        assert identity is not None
        return jsonify({"customer": identity.customer_uuid, "sid": identity.sid})

    @app.get("/greeting")
    @customer_required
    def greeting() -> Response:
        return jsonify({"name": current_customer.full_name if current_customer else None})

    api = Api(app, app.test_client(use_cookies=False))
    api.register("alice@example.com")
    return api


@pytest.fixture
def trusting(app_factory: AppFactory) -> Api:
    return host(app_factory, check=False)


def sid_of(token: str) -> str:
    return str(jwt.decode(token, options={"verify_signature": False})["sid"])


def test_an_access_token_is_trusted_without_a_query(trusting: Api) -> None:
    pair = trusting.tokens("alice@example.com")
    with count_statements(trusting.app) as counter:
        response = trusting.client.get("/cart", headers=pair.headers)
    assert response.status_code == 200
    assert response.get_json()["sid"] == sid_of(pair.access)
    assert counter.count == 0, counter.statements


def test_by_default_every_request_checks_the_session(app_factory: AppFactory) -> None:
    api = host(app_factory, check=True)
    pair = api.tokens("alice@example.com")
    with count_statements(api.app) as counter:
        assert api.client.get("/cart", headers=pair.headers).status_code == 200
    assert counter.count == 1
    api.client.delete(f"/api/customers/sessions/{sid_of(pair.access)}", headers=pair.headers)
    assert api.client.get("/cart", headers=pair.headers).status_code == 401


def test_after_a_logout_the_access_token_lives_out_its_time_where_trusted(
    trusting: Api,
) -> None:
    """The documented trade-off: a route that needs only the identity accepts the token
    until it expires; everything that reads the customer refuses it at once, and the
    refresh token is dead."""
    pair = trusting.tokens("alice@example.com")
    client = trusting.client
    sid = sid_of(pair.access)
    assert client.delete(f"/api/customers/sessions/{sid}", headers=pair.headers).status_code == 200
    assert client.get("/cart", headers=pair.headers).status_code == 200
    assert client.get("/api/customers/me", headers=pair.headers).status_code == 401
    assert (
        client.patch(
            "/api/customers/me", json={"full_name": "Mallory"}, headers=pair.headers
        ).status_code
        == 401
    )
    # current_customer reads the record, so it checks the session: anonymous now.
    assert client.get("/greeting", headers=pair.headers).get_json() == {"name": None}
    assert trusting.refresh(pair.refresh).get_json() == INVALID_REFRESH


def test_reading_the_record_costs_the_one_query_of_the_check(trusting: Api) -> None:
    pair = trusting.tokens("alice@example.com")
    with count_statements(trusting.app) as counter:
        response = trusting.client.get("/api/customers/me", headers=pair.headers)
    assert response.status_code == 200
    assert counter.count == 1
    with count_statements(trusting.app) as counter:
        assert trusting.client.get("/greeting", headers=pair.headers).get_json() == {
            "name": "Alice Example"
        }
    assert counter.count == 1


def test_a_logins_two_day_token_is_always_checked(trusting: Api) -> None:
    login = trusting.login("alice@example.com")
    with count_statements(trusting.app) as counter:
        assert trusting.client.get("/cart", headers=login.headers).status_code == 200
    assert counter.count == 1
    trusting.client.delete(f"/api/customers/sessions/{login.sid}", headers=login.headers)
    assert trusting.client.get("/cart", headers=login.headers).status_code == 401


def test_writes_check_the_session_in_their_transaction(trusting: Api) -> None:
    """A password change elsewhere ends the token's session: its own next write is
    refused, even though the token is trusted for reads of the identity."""
    pair = trusting.tokens("alice@example.com")
    other = trusting.login("alice@example.com")
    body = {"password": OTHER_PASSWORD, "current_password": PASSWORD}
    assert (
        trusting.client.patch("/api/customers/me", json=body, headers=other.headers).status_code
        == 200
    )
    rename = {"full_name": "Mallory"}
    response = trusting.client.patch("/api/customers/me", json=rename, headers=pair.headers)
    assert response.status_code == 401


@pytest.mark.parametrize("forgery", ["expired", "other key", "garbage"])
def test_trust_needs_a_valid_unexpired_signature(trusting: Api, forgery: str) -> None:
    pair = trusting.tokens("alice@example.com")
    claims = jwt.decode(pair.access, options={"verify_signature": False})
    settings = state_of(trusting.app).settings
    if forgery == "expired":
        codec = state_of(trusting.app).tokens
        with trusting.app.app_context():
            token = codec.issue(
                claims["sub"],
                claims["sid"],
                utcnow() - timedelta(hours=1),
                lifetime=600,
                access=True,
            )
    elif forgery == "other key":
        token = jwt.encode(claims, b"k" * 32, algorithm="HS256")
    else:
        token = pair.access[:-4] + "AAAA"
    assert settings.check_session_each_request is False
    with count_statements(trusting.app) as counter:
        response = trusting.client.get("/cart", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert counter.count == 0


def test_the_identity_of_an_admin_or_nobody_is_none(trusting: Api) -> None:
    app: Flask = trusting.app
    with app.test_request_context("/"):
        assert get_current_identity() is None
    cookie: dict[str, Any] = trusting.admin_headers()
    with app.test_request_context("/", headers=cookie):
        assert get_current_identity() is None


def test_a_trusted_token_may_log_out_its_own_ended_session(trusting: Api) -> None:
    """As a checked token may (EverShop's storefront logs out this way): the second
    logout of one's own session is 200 too, not the 401 the session check gives."""
    pair = trusting.tokens("alice@example.com")
    url = f"/api/customers/sessions/{sid_of(pair.access)}"
    assert trusting.client.delete(url, headers=pair.headers).status_code == 200
    again = trusting.client.delete(url, headers=pair.headers)
    assert (again.status_code, again.get_json()) == (200, {"data": {}})


def test_only_access_tokens_are_trusted_whatever_the_login_lifetime(
    app_factory: AppFactory,
) -> None:
    """A host with login tokens as short as an access token still has them checked on
    every request: trust goes by the token's kind (its ``token_use`` claim), not by its
    lifetime."""
    api = host(app_factory, check=False, EVERSHOP_CUSTOMER_TOKEN_LIFETIME=600)
    login = api.login("alice@example.com")
    assert "token_use" not in jwt.decode(login.token, options={"verify_signature": False})
    with count_statements(api.app) as counter:
        assert api.client.get("/cart", headers=login.headers).status_code == 200
    assert counter.count == 1
    api.client.delete(f"/api/customers/sessions/{login.sid}", headers=login.headers)
    assert api.client.get("/cart", headers=login.headers).status_code == 401
    pair = api.tokens("alice@example.com")
    assert jwt.decode(pair.access, options={"verify_signature": False})["token_use"] == "access"
