"""Cookies and cross-site request forgery.

The token and admin cookies are HttpOnly and SameSite=Lax, and Secure unless the app is
in debug or testing mode (or EVERSHOP_CUSTOMER_COOKIE_SECURE says otherwise). A write
authenticated by a cookie is refused when the browser says it comes from another site;
a cookie-authenticated POST with a body must be JSON; bearer requests need no check.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask, Response, jsonify
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from flask_evershop_customer import customer_required, same_origin_required

from .conftest import (
    PASSWORD,
    Api,
    AppFactory,
    customers,
    database_free,
    state_of,
    table_contents,
)

FOREIGN_ORIGINS = [
    "https://evil.example",
    "null",  # sandboxed frames, some redirects
    "https://localhost",  # another scheme
    "http://localhost:8080",  # another port
    "http://localhost.evil.example",
    "http://evil.example/http://localhost",
]


CROSS_SITE_REFUSED = {
    "error": {"status": 403, "message": "Cross-site requests are not allowed here"}
}


def cookie_attributes(header: str) -> tuple[str, str, dict[str, str]]:
    """Name, value and attributes (lower-cased names) of one Set-Cookie header."""
    pair, *attributes = [part.strip() for part in header.split(";")]
    name, _, value = pair.partition("=")
    parsed = {}
    for attribute in attributes:
        key, _, val = attribute.partition("=")
        parsed[key.lower()] = val
    return name, value, parsed


def add_admin_routes(app: Flask) -> Flask:
    @app.post("/admin/login")
    def admin_login() -> Response:
        return customers.login_admin(jsonify({"ok": True}), "admin-1")

    @app.post("/admin/logout")
    def admin_logout() -> Response:
        return customers.logout_admin(jsonify({"ok": True}))

    return app


def all_cookies(app: Flask) -> list[tuple[str, str, dict[str, str]]]:
    """Every cookie the extension sets or clears, in order: token set, token cleared,
    admin set, admin cleared."""
    add_admin_routes(app)
    client = app.test_client(use_cookies=False)
    Api(app, client).register("c@example.com")
    login = client.post(
        "/api/customers/sessions", json={"email": "c@example.com", "password": PASSWORD}
    )
    token = login.get_json()["data"]["token"]
    sid = login.get_json()["data"]["sid"]
    name = state_of(app).settings.token_cookie_name
    logout = client.post(f"/api/customers/sessions/{sid}", headers={"Cookie": f"{name}={token}"})
    headers = [
        login.headers["Set-Cookie"],
        logout.headers["Set-Cookie"],
        client.post("/admin/login").headers["Set-Cookie"],
        client.post("/admin/logout").headers["Set-Cookie"],
    ]
    return [cookie_attributes(header) for header in headers]


@pytest.mark.parametrize(
    ("config", "secure"),
    [
        ({"TESTING": False}, True),  # production: Secure
        ({"TESTING": True}, False),
        ({"TESTING": False, "DEBUG": True}, False),
        ({"TESTING": True, "EVERSHOP_CUSTOMER_COOKIE_SECURE": True}, True),
        ({"TESTING": False, "EVERSHOP_CUSTOMER_COOKIE_SECURE": False}, False),
    ],
)
def test_cookie_attributes(app_factory: AppFactory, config: Any, secure: Any) -> None:
    app = app_factory(**config)
    cookies = all_cookies(app)
    assert [name for name, _, _ in cookies] == ["token", "token", "asid", "asid"]
    for name, _, attributes in cookies:
        assert "httponly" in attributes, name
        assert attributes["samesite"] == "Lax", name
        assert attributes["path"] == "/", name
        assert ("secure" in attributes) is secure, (name, attributes)
        assert "domain" not in attributes, name  # host-only
    (_, token, set_token), (_, cleared, clear_token) = cookies[0], cookies[1]
    assert token.count(".") == 2 and set_token["max-age"] == "172800"
    assert cleared == "" and clear_token["max-age"] == "0"
    assert cookies[2][2]["max-age"] == "86400" and cookies[3][2]["max-age"] == "0"


def test_cookie_names_can_take_the_host_prefix(app_factory: AppFactory) -> None:
    """ASVS 5.0 3.3.1/3.3.3: '__Host-' names work (Secure, Path=/, no Domain)."""
    app = app_factory(
        EVERSHOP_CUSTOMER_TOKEN_COOKIE_NAME="__Host-token",
        EVERSHOP_CUSTOMER_ADMIN_COOKIE_NAME="__Host-asid",
        EVERSHOP_CUSTOMER_COOKIE_SECURE=True,
    )
    cookies = all_cookies(app)
    assert [name for name, _, _ in cookies] == ["__Host-token"] * 2 + ["__Host-asid"] * 2
    for _, _, attributes in cookies:
        assert "secure" in attributes and attributes["path"] == "/"
        assert "domain" not in attributes
    # The prefixed cookies are read back as credentials.
    client = app.test_client(use_cookies=False)
    data = Api(app, client).register("host@example.com")
    token = client.post(
        "/api/customers/sessions", json={"email": "host@example.com", "password": PASSWORD}
    ).get_json()["data"]["token"]
    url = f"/api/customers/{data['uuid']}"
    assert (
        client.patch(url, json={}, headers={"Cookie": f"__Host-token={token}"}).status_code == 200
    )
    with app.app_context():
        admin = state_of(app).admin_sessions.open("admin")
    response = client.patch(url, json={"status": 0}, headers={"Cookie": f"__Host-asid={admin}"})
    assert response.get_json()["data"]["status"] == 0


def test_a_failed_login_sets_no_cookie(api: Api, client: FlaskClient) -> None:
    api.register("c@example.com")
    response = client.post(
        "/api/customers/sessions", json={"email": "c@example.com", "password": "nope nope"}
    )
    assert "Set-Cookie" not in response.headers


# -- cross-site writes ------------------------------------------------------------------


class Browser:
    """A logged-in customer in a browser: the token lives in the cookie jar only."""

    def __init__(self, app: Flask, api: Api) -> None:
        self.customer = api.register("b@example.com", full_name="Browser User")
        self.client = app.test_client()
        response = self.client.post(
            "/api/customers/sessions", json={"email": "b@example.com", "password": PASSWORD}
        )
        self.sid = response.get_json()["data"]["sid"]
        self.token = response.get_json()["data"]["token"]
        self.url = f"/api/customers/{self.customer['uuid']}"
        self.api = api

    def alive(self) -> bool:
        """Whether the session still works and the record is unchanged (by bearer)."""
        response = self.api.client.patch(
            self.url, json={}, headers={"Authorization": f"Bearer {self.token}"}
        )
        return response.status_code == 200 and response.get_json()["data"]["full_name"] == (
            "Browser User"
        )


@pytest.fixture
def browser(app: Flask, api: Api) -> Browser:
    return Browser(app, api)


def refused_403(response: TestResponse) -> None:
    assert response.status_code == 403
    assert response.get_json() == {
        "error": {
            "status": 403,
            "message": "Cross-site requests with cookie credentials are not allowed",
        }
    }


def test_cookie_writes_from_another_origin_are_refused(browser: Browser) -> None:
    for origin in FOREIGN_ORIGINS:
        headers = {"Origin": origin}
        refused_403(browser.client.patch(browser.url, json={"full_name": "X"}, headers=headers))
        refused_403(browser.client.delete(browser.url, headers=headers))
        refused_403(browser.client.post(f"/api/customers/sessions/{browser.sid}", headers=headers))
        refused_403(
            browser.client.delete(f"/api/customers/sessions/{browser.sid}", headers=headers)
        )
    assert browser.alive()


@pytest.mark.parametrize("site", ["cross-site", "same-site"])
def test_sec_fetch_site_cross_site_is_refused_without_origin(browser: Browser, site: str) -> None:
    """``same-site`` is another origin of the same site (another port, a sibling
    subdomain): refused, as its Origin would be."""
    headers = {"Sec-Fetch-Site": site}
    refused_403(browser.client.patch(browser.url, json={"full_name": "X"}, headers=headers))
    refused_403(browser.client.post(f"/api/customers/sessions/{browser.sid}", headers=headers))
    assert browser.alive()


SAME_ORIGIN_HEADERS = [
    {},  # curl, servers and test clients send neither header
    {"Origin": "http://localhost"},
    {"Origin": "HTTP://LOCALHOST"},
    {"Sec-Fetch-Site": "same-origin"},
    {"Sec-Fetch-Site": "none"},  # typed into the address bar: no forgery
    {"Origin": "http://localhost", "Sec-Fetch-Site": "same-origin"},
]


def test_same_origin_cookie_writes_pass(browser: Browser) -> None:
    for number, headers in enumerate(SAME_ORIGIN_HEADERS):
        name = f"Renamed {number}"
        response = browser.client.patch(browser.url, json={"full_name": name}, headers=headers)
        assert response.status_code == 200, headers
        assert response.get_json()["data"]["full_name"] == name


def test_origin_wins_over_sec_fetch_site(browser: Browser) -> None:
    headers = {"Origin": "https://evil.example", "Sec-Fetch-Site": "same-origin"}
    refused_403(browser.client.patch(browser.url, json={"full_name": "X"}, headers=headers))


def test_the_admin_cookie_is_checked_too(app: Flask, api: Api) -> None:
    add_admin_routes(app)
    target = api.register("t@example.com")
    admin = app.test_client()
    admin.post("/admin/login")
    url = f"/api/customers/{target['uuid']}"
    refused_403(admin.patch(url, json={"status": 0}, headers={"Origin": "https://evil.example"}))
    refused_403(admin.delete(url, headers={"Sec-Fetch-Site": "cross-site"}))
    response = admin.patch(url, json={}, headers={"Origin": "http://localhost"})
    assert response.get_json()["data"]["status"] == 1


def test_same_origin_required_guards_a_host_s_own_session_routes(app: Flask) -> None:
    """The host's admin logout (or any view that sets or ends a browser's session) takes
    the storefront login's rule: 403 from another origin, in the envelope, the view not
    run; this origin and requests without browser headers pass."""
    calls = []

    @app.post("/admin/sign-out")
    @same_origin_required
    def sign_out() -> Response:
        calls.append(1)
        return customers.logout_admin(jsonify({"ok": True}))

    client = app.test_client()
    for origin in FOREIGN_ORIGINS:
        response = client.post("/admin/sign-out", headers={"Origin": origin})
        assert (response.status_code, response.get_json()) == (403, CROSS_SITE_REFUSED)
        assert response.cache_control.no_store and "Set-Cookie" not in response.headers
    refused = client.post("/admin/sign-out", headers={"Sec-Fetch-Site": "cross-site"})
    assert refused.status_code == 403 and calls == []
    for headers in SAME_ORIGIN_HEADERS:
        assert client.post("/admin/sign-out", headers=headers).status_code == 200, headers
    assert len(calls) == len(SAME_ORIGIN_HEADERS)


def test_bearer_requests_need_no_origin_check(api: Api, client: FlaskClient) -> None:
    data = api.register("m@example.com")
    login = api.login("m@example.com")
    headers = {**login.headers, "Origin": "https://app.example", "Sec-Fetch-Site": "cross-site"}
    response = client.patch(
        f"/api/customers/{data['uuid']}", json={"full_name": "M"}, headers=headers
    )
    assert response.status_code == 200
    response = client.post(f"/api/customers/sessions/{login.sid}", headers=headers)
    assert response.status_code == 200


def test_a_bearer_token_from_another_origin_wins_over_the_cookie(
    browser: Browser, api: Api
) -> None:
    """A request that carries both is judged by the bearer token, which a forging site
    cannot attach without a CORS preflight."""
    api.register("other@example.com")
    other = api.login("other@example.com")
    headers = {**other.headers, "Origin": "https://evil.example"}
    response = browser.client.patch(browser.url, json={"full_name": "X"}, headers=headers)
    # Refused as Other editing someone else's record, not as a cross-site cookie write.
    assert response.status_code == 403
    assert response.get_json()["error"]["message"] == "You can only manage your own account"
    assert browser.alive()


# -- cookie POSTs must be JSON --------------------------------------------------------------


NON_JSON_BODIES = [
    ("application/x-www-form-urlencoded", b"full_name=X"),
    ("multipart/form-data; boundary=b", b'--b\r\nContent-Disposition: form-data; name="a"'),
    ("text/plain", b'{"full_name": "X"}'),
]


def test_a_cookie_post_or_patch_with_a_non_json_body_is_refused(browser: Browser) -> None:
    for content_type, body in NON_JSON_BODIES:
        logout = browser.client.post(
            f"/api/customers/sessions/{browser.sid}", data=body, content_type=content_type
        )
        assert logout.status_code == 415, content_type
        assert logout.get_json()["error"]["status"] == 415
        patch = browser.client.patch(browser.url, data=body, content_type=content_type)
        assert patch.status_code == 415, content_type
    assert browser.alive()


def test_a_form_cannot_log_a_browser_in(api: Api, app: Flask) -> None:
    """Login CSRF: a cross-site HTML form (or a CORS-safelisted fetch) can only send
    form or text bodies, and login takes JSON only, so no cookie is planted. With the
    other origin's ``Origin`` (as browsers send it) the cross-site rule refuses it first."""
    api.register("victim@example.com")
    client = app.test_client()
    for content_type, body in [
        ("application/x-www-form-urlencoded", b"email=victim%40example.com&password=x"),
        ("text/plain", b'{"email": "victim@example.com", "password": "correct horse battery"}'),
    ]:
        for headers, status in [({}, 415), ({"Origin": "https://evil.example"}, 403)]:
            response = client.post(
                "/api/customers/sessions", data=body, content_type=content_type, headers=headers
            )
            assert response.status_code == status
            assert "Set-Cookie" not in response.headers


@pytest.mark.parametrize(
    "headers",
    [
        *({"Origin": origin} for origin in FOREIGN_ORIGINS),
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": "https://evil.example", "Sec-Fetch-Site": "same-origin"},
    ],
)
def test_another_origin_cannot_log_a_browser_in_with_json(
    api: Api, app: Flask, headers: dict[str, str]
) -> None:
    """A page elsewhere that may send JSON (CORS lets the request through, whatever its
    answer) must not plant the token cookie of an account of its choosing."""
    api.register("victim@example.com")
    body = {"email": "victim@example.com", "password": PASSWORD}
    response = app.test_client().post("/api/customers/sessions", json=body, headers=headers)
    assert (response.status_code, response.get_json()) == (403, CROSS_SITE_REFUSED)
    assert "Set-Cookie" not in response.headers
    assert table_contents(app)["evershop_customer_session"] == []


def test_a_login_of_this_origin_or_without_browser_headers_works(api: Api, app: Flask) -> None:
    api.register("c@example.com")
    body = {"email": "c@example.com", "password": PASSWORD}
    for headers in SAME_ORIGIN_HEADERS:
        response = app.test_client().post("/api/customers/sessions", json=body, headers=headers)
        assert response.status_code == 200, headers
        assert response.headers["Set-Cookie"].startswith("token=")


def test_a_headless_login_sets_no_cookie_and_works_from_another_origin(
    api: Api, app: Flask
) -> None:
    """``POST /customer/tokens`` answers tokens only: no cookie to plant, so the
    cross-site rule has nothing to guard (a client on another origin logs in here)."""
    api.register("c@example.com")
    response = app.test_client().post(
        "/api/customer/tokens",
        json={"email": "c@example.com", "password": PASSWORD},
        headers={"Origin": "https://spa.example"},
    )
    assert response.status_code == 200
    assert set(response.get_json()["data"]) == {"accessToken", "refreshToken"}
    assert "Set-Cookie" not in response.headers


def test_the_body_less_cookie_logout_of_the_docs_works(browser: Browser) -> None:
    response = browser.client.post(f"/api/customers/sessions/{browser.sid}")
    assert response.status_code == 200
    assert not browser.alive()


# -- logout is never a GET ----------------------------------------------------------------------


def test_logout_is_never_a_safe_method(browser: Browser) -> None:
    for method in ("get", "head"):
        for url in (
            f"/api/customers/sessions/{browser.sid}",
            f"/api/customers/sessions/{browser.customer['uuid']}",
            f"/api/customers/sessions/{browser.sid}?_method=DELETE",
        ):
            response = getattr(browser.client, method)(url)
            assert response.status_code == 405, (method, url)
            assert "GET" not in response.headers["Allow"]
    assert browser.alive()


def test_a_method_override_header_is_ignored(browser: Browser) -> None:
    for name in ("X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override"):
        response = browser.client.get(
            f"/api/customers/sessions/{browser.sid}", headers={name: "DELETE"}
        )
        assert response.status_code == 405
    assert browser.alive()


# -- cookies that can no longer work are cleared ------------------------------------------------


def token_cleared(response: TestResponse) -> bool:
    """Whether ``response`` tells the browser to drop the token cookie."""
    for header in response.headers.getlist("Set-Cookie"):
        name, value, attributes = cookie_attributes(header)
        if name == "token":
            return value == "" and attributes.get("max-age") == "0"
    return False


def end_elsewhere(browser: Browser) -> None:
    """The browser's session ends from another device (logout of all sessions)."""
    other = browser.api.login("b@example.com")
    response = browser.api.client.delete(
        f"/api/customers/sessions/{browser.customer['uuid']}", headers=other.headers
    )
    assert response.status_code == 200


def test_logging_out_of_a_session_that_ended_elsewhere_succeeds(browser: Browser) -> None:
    """EverShop's account page logs out with the cookie and shows any error: a session
    ended by another device must not leave the customer stuck."""
    end_elsewhere(browser)
    response = browser.client.delete(f"/api/customers/sessions/{browser.sid}")
    assert response.status_code == 200 and response.get_json() == {"data": {}}
    assert token_cleared(response)
    assert browser.client.get_cookie("token") is None


def test_only_one_own_ended_session_is_a_logout_that_succeeds(browser: Browser, api: Api) -> None:
    end_elsewhere(browser)
    others = [f"/api/customers/sessions/{browser.customer['uuid']}"]
    others.append(f"/api/customers/sessions/{browser.sid},{api.login('b@example.com').sid}")
    for url in others:
        browser.client.set_cookie("token", browser.token)
        response = browser.client.delete(url)
        assert response.status_code == 401
        assert token_cleared(response)


@pytest.fixture
def account_route(app: Flask) -> None:
    """A host route behind ``customer_required`` (added before any request)."""

    @app.get("/account")
    @customer_required
    def account() -> Response:
        return jsonify({"ok": True})


def test_a_401_to_a_refused_token_cookie_clears_it(account_route: None, browser: Browser) -> None:
    end_elsewhere(browser)
    for method, url in (("patch", browser.url), ("get", "/account")):
        browser.client.set_cookie("token", browser.token)
        response = getattr(browser.client, method)(url, json={})
        assert response.status_code == 401
        assert token_cleared(response), url
        assert browser.client.get_cookie("token") is None


@database_free
def test_a_401_keeps_a_cookie_it_did_not_judge(browser: Browser) -> None:
    """A bad bearer token is refused; the cookie beside it was never looked at."""
    response = browser.client.patch(
        browser.url, json={}, headers={"Authorization": "Bearer not-a-token"}
    )
    assert response.status_code == 401 and not token_cleared(response)


@pytest.mark.parametrize("action", ["logout", "disable", "password"])
def test_an_admin_ending_the_session_of_the_token_cookie_sent_clears_it(
    browser: Browser, api: Api, action: Any
) -> None:
    admin = api.admin_headers()["Cookie"].split("=", 1)[1]
    browser.client.set_cookie("asid", admin)
    if action == "logout":
        response = browser.client.delete(f"/api/customers/sessions/{browser.sid}")
    else:
        body = {"status": 0} if action == "disable" else {"password": "a brand new password"}
        response = browser.client.patch(browser.url, json=body)
    assert response.status_code == 200, response.get_json()
    assert token_cleared(response)


def test_an_admin_write_that_leaves_the_token_cookie_alive_keeps_it(
    browser: Browser, api: Api
) -> None:
    admin = api.admin_headers()["Cookie"].split("=", 1)[1]
    browser.client.set_cookie("asid", admin)
    response = browser.client.patch(browser.url, json={"full_name": "Renamed By Admin"})
    assert response.status_code == 200 and not token_cleared(response)


def test_a_bearer_logout_leaves_a_cookie_of_another_live_session(
    api: Api, client: FlaskClient
) -> None:
    """Only the browser's own session, ended, clears its cookie."""
    api.register("alice@example.com")
    old, live = api.login("alice@example.com"), api.login("alice@example.com")
    cookie = {"Cookie": f"token={live.token}"}
    url = f"/api/customers/sessions/{old.sid}"
    first = client.delete(url, headers={**old.headers, **cookie})
    again = client.delete(url, headers={**old.headers, **cookie})  # already ended
    for response in (first, again):
        assert response.status_code == 200 and not token_cleared(response)
    assert (
        client.delete(f"/api/customers/sessions/{live.sid}", headers={**live.headers, **cookie})
        .headers.get("Set-Cookie", "")
        .startswith("token=;")
    )
