"""Access and refresh tokens for headless clients (DESIGN §10): ``POST /customer/tokens``
is a login in every respect; ``POST /customer/token/refresh`` rotates the refresh token
and takes a replayed one for theft; one regression test per attack.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import jwt
import pytest
from flask import Flask
from flask.testing import FlaskClient

from flask_evershop_customer import signals
from flask_evershop_customer.config import DEFAULTS
from flask_evershop_customer.errors import ConfigurationError

from .conftest import (
    OTHER_PASSWORD,
    PASSWORD,
    Api,
    AppFactory,
    TokenPair,
    count_statements,
    database_free,
    start_app,
    state_of,
    table_contents,
)

INVALID_REFRESH = {"error": {"status": 401, "message": "Invalid refresh token"}}
INVALID_LOGIN = {"error": {"status": 400, "message": "Invalid email or password"}}
ACCESS_LIFETIME = DEFAULTS["EVERSHOP_CUSTOMER_ACCESS_TOKEN_LIFETIME"]
REFRESH_LIFETIME = DEFAULTS["EVERSHOP_CUSTOMER_REFRESH_TOKEN_LIFETIME"]


def me(client: FlaskClient, access: str) -> int:
    """The status of ``GET /customers/me`` with ``access`` as the bearer token."""
    return client.get(
        "/api/customers/me", headers={"Authorization": f"Bearer {access}"}
    ).status_code


def sessions(app: Flask) -> list[dict[str, Any]]:
    return table_contents(app)["evershop_customer_session"]


def refresh_rows(app: Flask) -> list[dict[str, Any]]:
    return table_contents(app)["evershop_customer_refresh_token"]


@pytest.fixture
def pair(api: Api, alice: dict[str, Any]) -> TokenPair:
    """Alice's first tokens, as a mobile app gets them."""
    return api.tokens("alice@example.com")


# -- POST /customer/tokens: a login ---------------------------------------------------


def test_tokens_answer_an_access_and_a_refresh_token_and_no_cookie(
    app: Flask, client: FlaskClient, alice: dict[str, Any]
) -> None:
    response = client.post(
        "/api/customer/tokens", json={"email": "Alice@Example.com", "password": PASSWORD}
    )
    assert response.status_code == 200
    data = response.get_json()["data"]
    assert set(data) == {"accessToken", "refreshToken"}
    assert "Set-Cookie" not in response.headers
    assert response.headers["Cache-Control"] == "no-store"
    assert me(client, data["accessToken"]) == 200
    claims = jwt.decode(data["accessToken"], options={"verify_signature": False})
    assert claims["sub"] == alice["uuid"]
    assert claims["exp"] - claims["iat"] == ACCESS_LIFETIME
    # The refresh token is opaque: 32 random bytes; only a digest of it is stored.
    assert len(data["refreshToken"]) == 43 and "." not in data["refreshToken"]
    [session] = sessions(app)
    assert session["sid"] == claims["sid"]
    assert session["expires_at"] - session["created_at"] == timedelta(seconds=REFRESH_LIFETIME)
    [row] = refresh_rows(app)
    assert row["sid"] == claims["sid"] and row["spent_at"] is None
    assert row["expires_at"] == session["expires_at"]
    assert data["refreshToken"] not in str(row)


@pytest.mark.parametrize(
    "body",
    [
        {"email": "alice@example.com", "password": "wrong password!"},
        {"email": "nobody@example.com", "password": PASSWORD},
    ],
)
def test_tokens_fail_exactly_as_a_login(
    client: FlaskClient, alice: dict[str, Any], body: dict[str, str]
) -> None:
    tokens = client.post("/api/customer/tokens", json=body)
    login = client.post("/api/customers/sessions", json=body)
    assert (tokens.status_code, tokens.get_json()) == (400, INVALID_LOGIN)
    assert (login.status_code, login.get_json()) == (400, INVALID_LOGIN)


def test_a_disabled_customer_gets_no_tokens(
    api: Api, client: FlaskClient, alice: dict[str, Any]
) -> None:
    admin = api.admin_headers()
    client.patch(f"/api/customers/{alice['uuid']}", json={"status": 0}, headers=admin)
    body = {"email": "alice@example.com", "password": PASSWORD}
    response = client.post("/api/customer/tokens", json=body)
    assert (response.status_code, response.get_json()) == (400, INVALID_LOGIN)


@database_free
def test_tokens_validate_the_body_as_login(client: FlaskClient) -> None:
    response = client.post("/api/customer/tokens", json={"password": PASSWORD})
    assert response.status_code == 400
    assert response.get_json()["error"]["message"] == (
        "Request data must have required property 'email'"
    )
    assert client.post("/api/customer/tokens", data="x").status_code == 415


def test_tokens_share_the_login_throttle(app: Flask, client: FlaskClient, alice: Any) -> None:
    """Failures through either route count against one limit per email."""
    limit = state_of(app).settings.login_max_failures
    wrong = {"email": "alice@example.com", "password": "wrong password!"}
    for i in range(limit):
        path = "/api/customer/tokens" if i % 2 else "/api/customers/sessions"
        assert client.post(path, json=wrong).status_code == 400
    right = {"email": "alice@example.com", "password": PASSWORD}
    response = client.post("/api/customer/tokens", json=right)
    assert response.status_code == 429 and "Retry-After" in response.headers


def test_tokens_check_one_hash_and_send_the_login_signal(
    app: Flask, client: FlaskClient, alice: dict[str, Any], hash_calls: dict[str, int]
) -> None:
    received: list[dict[str, Any]] = []

    def receive(_sender: object, **payload: Any) -> None:
        received.append(payload)

    body = {"email": "alice@example.com", "password": PASSWORD}
    with signals.customer_logged_in.connected_to(receive):
        response = client.post("/api/customer/tokens", json=body)
    assert response.status_code == 200
    assert hash_calls == {"check": 1, "hash": 0}
    [event] = received
    assert event["customer"]["uuid"] == alice["uuid"]
    assert event["sid"] == sessions(app)[0]["sid"]


def test_tokens_upgrade_an_old_hash_as_a_login_does(app_factory: AppFactory) -> None:
    older = app_factory(EVERSHOP_CUSTOMER_PASSWORD_HASH_METHOD="pbkdf2:sha256:2")
    Api(older, older.test_client(use_cookies=False)).register("alice@example.com")
    app = app_factory()
    before = table_contents(app)["evershop_customer"][0]["password_hash"]
    Api(app, app.test_client(use_cookies=False)).tokens("alice@example.com")
    after = table_contents(app)["evershop_customer"][0]["password_hash"]
    assert before.startswith("pbkdf2:sha256:2$") and not after.startswith("pbkdf2:sha256:2$")


# -- POST /customer/token/refresh -----------------------------------------------------


def test_a_refresh_rotates_the_refresh_token(
    app: Flask, api: Api, client: FlaskClient, pair: TokenPair
) -> None:
    response = api.refresh(pair.refresh)
    assert response.status_code == 200
    data = response.get_json()["data"]
    assert set(data) == {"accessToken", "refreshToken"}
    assert data["refreshToken"] != pair.refresh
    assert me(client, data["accessToken"]) == 200
    assert me(client, pair.access) == 200  # the older access token lives out its time
    # Same session: rotation never opens another nor extends it.
    old = jwt.decode(pair.access, options={"verify_signature": False})
    new = jwt.decode(data["accessToken"], options={"verify_signature": False})
    assert new["sid"] == old["sid"] and len(sessions(app)) == 1
    spent, fresh = sorted(refresh_rows(app), key=lambda row: row["spent_at"] is None)
    assert spent["spent_at"] is not None and fresh["spent_at"] is None
    assert fresh["expires_at"] == spent["expires_at"] == sessions(app)[0]["expires_at"]
    # The next one works in turn.
    assert api.refresh(data["refreshToken"]).status_code == 200


def test_a_replayed_refresh_token_ends_the_whole_session(
    app: Flask, api: Api, client: FlaskClient, pair: TokenPair
) -> None:
    """RFC 9700 §4.14.2: a spent token coming back means two parties hold it. Whichever
    is the thief, the session ends: its access tokens and its newest refresh token."""
    rotated = api.refresh(pair.refresh).get_json()["data"]
    ended: list[dict[str, Any]] = []

    def receive(_sender: object, **payload: Any) -> None:
        ended.append(payload)

    with signals.customer_logged_out.connected_to(receive):
        replay = api.refresh(pair.refresh)
    assert (replay.status_code, replay.get_json()) == (401, INVALID_REFRESH)
    assert me(client, pair.access) == 401
    assert me(client, rotated["accessToken"]) == 401
    assert api.refresh(rotated["refreshToken"]).get_json() == INVALID_REFRESH
    [session] = sessions(app)
    assert session["revoked_at"] is not None
    assert [event["sids"] for event in ended] == [[session["sid"]]]


def test_without_rotation_the_refresh_token_keeps_working_as_evershops(
    app_factory: AppFactory,
) -> None:
    app = app_factory(EVERSHOP_CUSTOMER_REFRESH_TOKEN_ROTATION=False)
    api = Api(app, app.test_client(use_cookies=False))
    api.register("alice@example.com")
    pair = api.tokens("alice@example.com")
    for _ in range(3):
        response = api.refresh(pair.refresh)
        assert response.status_code == 200
        assert set(response.get_json()["data"]) == {"accessToken"}
        assert me(api.client, response.get_json()["data"]["accessToken"]) == 200
    assert [row["spent_at"] for row in refresh_rows(app)] == [None]


@database_free
@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "Refresh token is required"),
        ({"refreshToken": None}, "Refresh token is required"),
        ({"refreshToken": ""}, "Refresh token is required"),
        ({"refreshToken": 12}, "Refresh token must be a string"),
        ([], "Request data must be object"),
    ],
)
def test_a_refresh_without_a_token_is_400(client: FlaskClient, body: Any, message: str) -> None:
    response = client.post("/api/customer/token/refresh", json=body)
    assert response.get_json() == {"error": {"status": 400, "message": message}}


def test_an_access_token_lives_no_longer_than_its_session(
    app_factory: AppFactory,
) -> None:
    app = app_factory(
        EVERSHOP_CUSTOMER_ACCESS_TOKEN_LIFETIME=1800, EVERSHOP_CUSTOMER_REFRESH_TOKEN_LIFETIME=2000
    )
    api = Api(app, app.test_client(use_cookies=False))
    api.register("alice@example.com")
    pair = api.tokens("alice@example.com")
    state_of(app).clock.travel(1000)  # 1,000 seconds of the session left
    access = api.refresh(pair.refresh).get_json()["data"]["accessToken"]
    claims = jwt.decode(access, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 1000


# -- attacks --------------------------------------------------------------------------


def test_a_refresh_token_is_no_access_token(client: FlaskClient, pair: TokenPair) -> None:
    assert me(client, pair.refresh) == 401


def test_an_access_token_is_no_refresh_token(api: Api, pair: TokenPair) -> None:
    assert api.refresh(pair.access).get_json() == INVALID_REFRESH


@pytest.mark.parametrize("position", [0, 21, 42])
def test_a_tampered_refresh_token_is_refused_and_ends_nothing(
    app: Flask, api: Api, client: FlaskClient, pair: TokenPair, position: int
) -> None:
    flipped = "A" if pair.refresh[position] != "A" else "B"
    tampered = pair.refresh[:position] + flipped + pair.refresh[position + 1 :]
    assert api.refresh(tampered).get_json() == INVALID_REFRESH
    for junk in [pair.refresh + "A", pair.refresh[:-1], "é" * 43, pair.refresh.upper()]:
        assert api.refresh(junk).get_json() == INVALID_REFRESH
    assert me(client, pair.access) == 200
    assert api.refresh(pair.refresh).status_code == 200


def test_an_expired_refresh_token_is_refused(app: Flask, api: Api, pair: TokenPair) -> None:
    state_of(app).clock.travel(REFRESH_LIFETIME)
    assert api.refresh(pair.refresh).get_json() == INVALID_REFRESH


def test_a_refresh_token_is_refused_after_logout(
    app: Flask, api: Api, client: FlaskClient, pair: TokenPair
) -> None:
    sid = jwt.decode(pair.access, options={"verify_signature": False})["sid"]
    assert client.delete(f"/api/customers/sessions/{sid}", headers=pair.headers).status_code == 200
    assert api.refresh(pair.refresh).get_json() == INVALID_REFRESH
    assert me(client, pair.access) == 401


@pytest.mark.parametrize("change", ["password", "disable", "delete"])
def test_a_change_of_the_customer_ends_refreshing(
    api: Api, client: FlaskClient, alice: dict[str, Any], pair: TokenPair, change: str
) -> None:
    """A password change elsewhere, a disable and a delete end every session, token
    sessions included."""
    url = f"/api/customers/{alice['uuid']}"
    if change == "password":
        other = api.login("alice@example.com")
        body = {"password": OTHER_PASSWORD, "current_password": PASSWORD}
        assert client.patch(url, json=body, headers=other.headers).status_code == 200
    elif change == "disable":
        assert client.patch(url, json={"status": 0}, headers=api.admin_headers()).status_code == 200
    else:
        assert client.delete(url, headers=api.admin_headers()).status_code == 200
    assert api.refresh(pair.refresh).get_json() == INVALID_REFRESH


def test_a_password_change_with_the_access_token_keeps_its_own_session(
    api: Api, client: FlaskClient, alice: dict[str, Any], pair: TokenPair
) -> None:
    other = api.tokens("alice@example.com")
    body = {"password": OTHER_PASSWORD, "current_password": PASSWORD}
    response = client.patch("/api/customers/me", json=body, headers=pair.headers)
    assert response.status_code == 200
    assert api.refresh(pair.refresh).status_code == 200
    assert api.refresh(other.refresh).get_json() == INVALID_REFRESH


def test_tokens_of_one_app_are_nothing_to_an_app_with_another_secret(
    app_factory: AppFactory,
) -> None:
    """Two apps on one database, with different secrets: neither the access token (its
    signature) nor the refresh token (its keyed digest) crosses over."""
    first = app_factory()
    second = app_factory(SECRET_KEY="another secret, at least thirty-two bytes long")
    api = Api(first, first.test_client(use_cookies=False))
    api.register("alice@example.com")
    pair = api.tokens("alice@example.com")
    other = Api(second, second.test_client(use_cookies=False))
    assert me(other.client, pair.access) == 401
    assert other.refresh(pair.refresh).get_json() == INVALID_REFRESH
    assert api.refresh(pair.refresh).status_code == 200


def test_no_token_or_digest_reaches_the_security_log(
    api: Api, pair: TokenPair, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="flask_evershop_customer.security")
    rotated = api.refresh(pair.refresh).get_json()["data"]
    api.refresh(pair.refresh)  # a replay
    events = [getattr(record, "security_event", None) for record in caplog.records]
    assert "token_refreshed" in events and "refresh_token_replayed" in events
    text = caplog.text
    for secret in (pair.refresh, pair.access, rotated["refreshToken"], rotated["accessToken"]):
        assert secret not in text


# -- statements -----------------------------------------------------------------------


def test_statement_counts(app_factory: AppFactory) -> None:
    """Tokens: the login's six and the refresh token's INSERT. A refresh: one read (the
    token with its session and customer), the UPDATE that spends it, the next one's
    INSERT; without rotation the read alone. A replay: the read and ending the session."""
    app = app_factory()
    api = Api(app, app.test_client(use_cookies=False))
    api.register("alice@example.com")
    with count_statements(app) as counter:
        pair = api.tokens("alice@example.com")
    assert counter.count == 7, counter.statements
    with count_statements(app) as counter:
        assert api.refresh(pair.refresh).status_code == 200
    assert counter.count == 3, counter.statements
    with count_statements(app) as counter:
        assert api.refresh(pair.refresh).status_code == 401
    assert counter.count == 2, counter.statements
    fixed = app_factory(EVERSHOP_CUSTOMER_REFRESH_TOKEN_ROTATION=False)
    fixed_api = Api(fixed, fixed.test_client(use_cookies=False))
    kept = fixed_api.tokens("alice@example.com")
    with count_statements(fixed) as counter:
        assert fixed_api.refresh(kept.refresh).status_code == 200
    assert counter.count == 1, counter.statements
    with count_statements(fixed) as counter:
        assert fixed_api.refresh("A" * 42).status_code == 401  # malformed: no query
    assert counter.count == 0


# -- purge ----------------------------------------------------------------------------


def test_purge_keeps_spent_tokens_of_live_sessions_only(
    app: Flask, api: Api, client: FlaskClient, alice: dict[str, Any]
) -> None:
    live = api.tokens("alice@example.com")
    api.refresh(live.refresh)  # one spent, one fresh: both stay
    ended = api.tokens("alice@example.com")
    sid = jwt.decode(ended.access, options={"verify_signature": False})["sid"]
    client.delete(f"/api/customers/sessions/{sid}", headers=ended.headers)
    result = app.test_cli_runner().invoke(args=["customers", "purge-sessions"])
    assert result.exit_code == 0, result.output
    assert "Deleted 1 expired or revoked sessions, 1 refresh tokens" in result.output
    assert len(refresh_rows(app)) == 2
    assert api.refresh(live.refresh).get_json() == INVALID_REFRESH  # still seen as a replay
    state_of(app).clock.travel(REFRESH_LIFETIME)
    result = app.test_cli_runner().invoke(args=["customers", "purge-sessions"])
    assert refresh_rows(app) == [] and sessions(app) == []


# -- configuration --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            {
                "EVERSHOP_CUSTOMER_ACCESS_TOKEN_LIFETIME": 7200,
                "EVERSHOP_CUSTOMER_REFRESH_TOKEN_LIFETIME": 3600,
            },
            "EVERSHOP_CUSTOMER_ACCESS_TOKEN_LIFETIME must not exceed",
        ),
        ({"EVERSHOP_CUSTOMER_ACCESS_TOKEN_LIFETIME": 10}, "must be at least 60, got 10"),
        ({"EVERSHOP_CUSTOMER_REFRESH_TOKEN_LIFETIME": "1800"}, "must be an integer, got '1800'"),
        ({"EVERSHOP_CUSTOMER_REFRESH_TOKEN_ROTATION": "no"}, "must be True or False"),
        ({"EVERSHOP_CUSTOMER_CHECK_SESSION_EACH_REQUEST": 0}, "must be True or False"),
        ({"EVERSHOP_CUSTOMER_STOREFRONT_ROUTES": "yes"}, "must be True or False"),
    ],
)
def test_token_settings_are_validated_at_start_up(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        start_app(**config)
