"""EverShop's storefront session routes, outside the API prefix, behind
``EVERSHOP_CUSTOMER_STOREFRONT_ROUTES``: ``POST /customer/login`` answers the session id and
sets the token cookie; ``GET|POST /customer/logout`` really ends the session.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from flask_evershop_customer import signals

from .conftest import PASSWORD, Api, AppFactory, database_free, table_contents

CREDENTIALS = {"email": "alice@example.com", "password": PASSWORD}
INVALID_LOGIN = {"error": {"status": 400, "message": "Invalid email or password"}}


@pytest.fixture
def shop(app_factory: AppFactory) -> Api:
    """A host app with the storefront routes, a browser-like client, and Alice."""
    app = app_factory(EVERSHOP_CUSTOMER_STOREFRONT_ROUTES=True)
    api = Api(app, app.test_client())
    api.register("alice@example.com")
    return api


def live_sessions(app: Flask) -> list[str]:
    rows = table_contents(app)["evershop_customer_session"]
    return [row["sid"] for row in rows if row["revoked_at"] is None]


def test_they_are_off_by_default(app: Flask, client: FlaskClient) -> None:
    """Outside the prefix, so the host's own pages keep those paths unless asked."""
    response = client.post("/customer/login", json=CREDENTIALS)
    assert response.status_code == 404
    assert not response.is_json  # the host's own 404, not the extension's envelope
    assert client.get("/customer/logout").status_code == 404


def test_login_answers_the_sid_and_sets_the_token_cookie(shop: Api) -> None:
    response = shop.client.post("/customer/login", json=CREDENTIALS)
    assert response.status_code == 200
    data = response.get_json()["data"]
    assert set(data) == {"sid"}
    assert live_sessions(shop.app) == [data["sid"]]
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("token=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert response.headers["Cache-Control"] == "no-store"
    # The cookie is a customer credential on the API like any login's.
    me = shop.client.get("/api/customers/me")
    assert me.status_code == 200 and me.get_json()["data"]["email"] == "alice@example.com"


def test_a_failed_login_is_the_usual_envelope(shop: Api) -> None:
    response = shop.client.post("/customer/login", json={**CREDENTIALS, "password": "nope!"})
    assert (response.status_code, response.get_json()) == (400, INVALID_LOGIN)
    assert "Set-Cookie" not in response.headers
    missing = shop.client.post("/customer/login", json={"email": "alice@example.com"})
    assert missing.get_json()["error"]["message"] == (
        "Request data must have required property 'password'"
    )
    assert shop.client.post("/customer/login", data="email=a").status_code == 415


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_logout_really_ends_the_session_and_clears_the_cookie(shop: Api, method: str) -> None:
    """EverShop's logout only forgets the customer in its session row; here the session
    ends, so a copy of the token is worthless too."""
    sid = shop.client.post("/customer/login", json=CREDENTIALS).get_json()["data"]["sid"]
    token = shop.client.get_cookie("token")
    assert token is not None
    ended: list[dict[str, Any]] = []

    def receive(_sender: object, **payload: Any) -> None:
        ended.append(payload)

    with signals.customer_logged_out.connected_to(receive):
        response = shop.client.open("/customer/logout", method=method)
    assert (response.status_code, response.get_json()) == (200, {"data": {}})
    assert "token=;" in response.headers["Set-Cookie"]
    assert shop.client.get_cookie("token") is None
    assert live_sessions(shop.app) == []
    assert [event["sids"] for event in ended] == [[sid]]
    copied = {"Authorization": f"Bearer {token.value}"}
    assert shop.client.get("/api/customers/me", headers=copied).status_code == 401


def test_logout_ends_only_the_current_session(shop: Api) -> None:
    other = shop.login("alice@example.com")
    shop.client.post("/customer/login", json=CREDENTIALS)
    shop.client.post("/customer/logout")
    assert live_sessions(shop.app) == [other.sid]


def test_logout_with_a_bearer_token_ends_that_session(shop: Api) -> None:
    pair = shop.tokens("alice@example.com")
    bare = shop.app.test_client(use_cookies=False)
    assert bare.post("/customer/logout", headers=pair.headers).status_code == 200
    assert live_sessions(shop.app) == []


@pytest.mark.parametrize("cookie", [None, "not-a-token"])
def test_logout_without_a_live_session_still_answers_and_clears(
    shop: Api, cookie: str | None
) -> None:
    client = shop.app.test_client()
    if cookie is not None:
        client.set_cookie("token", cookie)
    response = client.get("/customer/logout")
    assert (response.status_code, response.get_json()) == (200, {"data": {}})
    assert "token=;" in response.headers["Set-Cookie"]


def test_logout_of_an_ended_session_is_quiet(shop: Api) -> None:
    """The session ended elsewhere (a password change, another device): the browser is
    logged out either way."""
    login = shop.login("alice@example.com")
    bearer = {"Authorization": f"Bearer {login.token}"}
    shop.client.delete(f"/api/customers/sessions/{login.sid}", headers=bearer)
    browser = shop.app.test_client()
    browser.set_cookie("token", login.token)
    response = browser.post("/customer/logout")
    assert (response.status_code, response.get_json()) == (200, {"data": {}})
    assert browser.get_cookie("token") is None


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},  # another origin of the site: an <img> elsewhere
    ],
)
def test_another_site_can_neither_log_a_browser_in_nor_out(
    shop: Api, headers: dict[str, str]
) -> None:
    """Login CSRF would put the victim in the attacker's account; a cross-site logout
    link would end their session. Both are 403, whatever the method."""
    login = shop.client.post("/customer/login", json=CREDENTIALS, headers=headers)
    assert login.status_code == 403 and "Set-Cookie" not in login.headers
    assert live_sessions(shop.app) == []
    shop.client.post("/customer/login", json=CREDENTIALS)
    for method in ("GET", "POST"):
        response = shop.client.open("/customer/logout", method=method, headers=headers)
        assert response.status_code == 403
        assert response.get_json()["error"]["status"] == 403
    assert len(live_sessions(shop.app)) == 1


def test_the_same_site_may_log_in_and_out(shop: Api) -> None:
    same = {"Origin": "http://localhost", "Sec-Fetch-Site": "same-origin"}
    assert shop.client.post("/customer/login", json=CREDENTIALS, headers=same).status_code == 200
    assert shop.client.get("/customer/logout", headers=same).status_code == 200
    assert live_sessions(shop.app) == []


@database_free
def test_a_wrong_method_keeps_the_hosts_own_answer(app_factory: AppFactory) -> None:
    """Outside the prefix the host owns the error pages (a GET /customer/login page of its
    own, say, may sit beside the JSON login)."""
    app = app_factory(EVERSHOP_CUSTOMER_STOREFRONT_ROUTES=True)

    @app.get("/customer/login")
    def login_page() -> str:
        return "<form>...</form>"

    client = app.test_client()
    assert client.get("/customer/login").data == b"<form>...</form>"
    assert client.delete("/customer/logout").status_code == 405
