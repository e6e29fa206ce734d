"""POST /api/customers/sessions (login) and DELETE|POST /api/customers/sessions/{ids}."""

from __future__ import annotations

import re
from typing import Any

import jwt
import pytest
from flask.testing import FlaskClient

from .conftest import PASSWORD, Api, database_free

SID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}")
INVALID = {"error": {"status": 400, "message": "Invalid email or password"}}


def test_login_returns_token_and_sid_and_sets_the_cookie(
    client: FlaskClient, alice: dict[str, Any]
) -> None:
    response = client.post(
        "/api/customers/sessions", json={"email": "alice@example.com", "password": PASSWORD}
    )
    assert response.status_code == 200
    data = response.get_json()["data"]
    assert set(data) == {"token", "sid"}
    assert SID.fullmatch(data["sid"])
    claims = jwt.decode(data["token"], options={"verify_signature": False})
    assert set(claims) == {"sub", "sid", "iat", "exp", "iss", "aud"}
    assert claims["sub"] == alice["uuid"] and claims["sid"] == data["sid"]
    assert claims["exp"] - claims["iat"] == 172800
    assert jwt.get_unverified_header(data["token"])["alg"] == "HS256"
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith(f"token={data['token']};")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Max-Age=172800" in cookie
    assert "Path=/" in cookie


def test_login_is_case_insensitive_on_email(api: Api, alice: dict[str, Any]) -> None:
    api.login("ALICE@Example.COM")


@pytest.mark.parametrize(
    "body",
    [
        {"email": "alice@example.com", "password": "wrong password"},
        {"email": "nobody@example.com", "password": PASSWORD},
    ],
)
def test_failed_logins_look_alike(client: FlaskClient, alice: dict[str, Any], body: Any) -> None:
    response = client.post("/api/customers/sessions", json=body)
    assert response.status_code == 400
    assert response.get_json() == INVALID
    assert "Set-Cookie" not in response.headers


def test_disabled_customer_cannot_log_in(api: Api, client: FlaskClient) -> None:
    api.register("off@example.com", status=0)
    response = client.post(
        "/api/customers/sessions", json={"email": "off@example.com", "password": PASSWORD}
    )
    assert response.get_json() == INVALID


@database_free
@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"email": "alice@example.com"}, "Request data must have required property 'password'"),
        ({"password": PASSWORD}, "Request data must have required property 'email'"),
        ({"email": "alice", "password": PASSWORD}, '/email must match format "email"'),
        ({"email": "alice@example.com", "password": 5}, "/password must be string"),
        ([], "Request data must be object"),
    ],
)
def test_login_validation(
    client: FlaskClient, alice: dict[str, Any], body: Any, message: Any
) -> None:
    response = client.post("/api/customers/sessions", json=body)
    assert response.status_code == 400
    assert response.get_json() == {"error": {"status": 400, "message": message}}


def test_each_login_is_its_own_session(api: Api, alice: dict[str, Any]) -> None:
    first, second = api.login("alice@example.com"), api.login("alice@example.com")
    assert first.sid != second.sid


def test_a_bad_token_cookie_does_not_break_login(api: Api, alice: dict[str, Any]) -> None:
    client = api.app.test_client()
    client.set_cookie("token", "garbage")
    response = client.post(
        "/api/customers/sessions", json={"email": "alice@example.com", "password": PASSWORD}
    )
    assert response.status_code == 200


# -- logout ---------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["delete", "post"])
def test_logout_by_sid_revokes_the_token(
    api: Api, client: FlaskClient, alice: dict[str, Any], method: Any
) -> None:
    login = api.login("alice@example.com")
    url = f"/api/customers/{alice['uuid']}"
    assert client.patch(url, json={}, headers=login.headers).status_code == 200
    response = getattr(client, method)(
        f"/api/customers/sessions/{login.sid}", headers=login.headers
    )
    assert response.status_code == 200
    assert response.get_json() == {"data": {}}
    after = client.patch(url, json={}, headers=login.headers)
    assert after.status_code == 401
    assert after.get_json()["error"]["status"] == 401


def test_logout_ends_only_the_named_session(
    api: Api, client: FlaskClient, alice: dict[str, Any]
) -> None:
    first, second = api.login("alice@example.com"), api.login("alice@example.com")
    client.delete(f"/api/customers/sessions/{first.sid}", headers=first.headers)
    url = f"/api/customers/{alice['uuid']}"
    assert client.patch(url, json={}, headers=second.headers).status_code == 200


def test_logout_by_comma_separated_sids(
    api: Api, client: FlaskClient, alice: dict[str, Any]
) -> None:
    logins = [api.login("alice@example.com") for _ in range(3)]
    ids = ",".join(login.sid for login in logins[1:])
    response = client.delete(f"/api/customers/sessions/{ids}", headers=logins[0].headers)
    assert response.status_code == 200
    url = f"/api/customers/{alice['uuid']}"
    assert client.patch(url, json={}, headers=logins[0].headers).status_code == 200
    for login in logins[1:]:
        assert client.patch(url, json={}, headers=login.headers).status_code == 401


def test_logout_by_own_uuid_ends_every_session(
    api: Api, client: FlaskClient, alice: dict[str, Any]
) -> None:
    logins = [api.login("alice@example.com") for _ in range(3)]
    response = client.delete(f"/api/customers/sessions/{alice['uuid']}", headers=logins[0].headers)
    assert response.status_code == 200
    url = f"/api/customers/{alice['uuid']}"
    for login in logins:
        assert client.patch(url, json={}, headers=login.headers).status_code == 401


def test_logout_needs_credentials(api: Api, client: FlaskClient, alice: dict[str, Any]) -> None:
    login = api.login("alice@example.com")
    assert client.delete(f"/api/customers/sessions/{login.sid}").status_code == 401
    assert client.delete(f"/api/customers/sessions/{alice['uuid']}").status_code == 401
    url = f"/api/customers/{alice['uuid']}"
    assert client.patch(url, json={}, headers=login.headers).status_code == 200


def test_customer_cannot_log_out_another(
    api: Api, client: FlaskClient, alice: dict[str, Any]
) -> None:
    victim = api.login("alice@example.com")
    api.register("mallory@example.com")
    mallory = api.login("mallory@example.com")
    by_sid = client.delete(f"/api/customers/sessions/{victim.sid}", headers=mallory.headers)
    assert by_sid.status_code == 403
    by_uuid = client.delete(f"/api/customers/sessions/{alice['uuid']}", headers=mallory.headers)
    assert by_uuid.status_code == 403
    mixed = client.delete(
        f"/api/customers/sessions/{mallory.sid},{victim.sid}", headers=mallory.headers
    )
    assert mixed.status_code == 403
    url = f"/api/customers/{alice['uuid']}"
    assert client.patch(url, json={}, headers=victim.headers).status_code == 200


def test_admin_logs_out_anyone(api: Api, client: FlaskClient, alice: dict[str, Any]) -> None:
    login = api.login("alice@example.com")
    response = client.delete(f"/api/customers/sessions/{login.sid}", headers=api.admin_headers())
    assert response.status_code == 200
    url = f"/api/customers/{alice['uuid']}"
    assert client.patch(url, json={}, headers=login.headers).status_code == 401
    again = api.login("alice@example.com")
    response = client.post(f"/api/customers/sessions/{alice['uuid']}", headers=api.admin_headers())
    assert response.status_code == 200
    assert client.patch(url, json={}, headers=again.headers).status_code == 401


@pytest.mark.parametrize(
    "ids",
    [
        "does-not-exist",
        "00000000-0000-4000-8000-000000000000",
        "0" * 32,
        "user_token_secret.%60user_id%60",
        ",",
    ],
)
def test_unknown_session_is_404_and_ends_nothing(
    api: Api, client: FlaskClient, alice: dict[str, Any], ids: Any
) -> None:
    login = api.login("alice@example.com")
    response = client.delete(f"/api/customers/sessions/{ids}", headers=login.headers)
    assert response.status_code == 404
    assert response.get_json()["error"]["status"] == 404
    url = f"/api/customers/{alice['uuid']}"
    assert client.patch(url, json={}, headers=login.headers).status_code == 200


def test_a_list_with_one_unknown_id_ends_nothing(
    api: Api, client: FlaskClient, alice: dict[str, Any]
) -> None:
    login, other = api.login("alice@example.com"), api.login("alice@example.com")
    ids = f"{other.sid},00000000-0000-4000-8000-000000000000"
    assert client.delete(f"/api/customers/sessions/{ids}", headers=login.headers).status_code == 404
    url = f"/api/customers/{alice['uuid']}"
    assert client.patch(url, json={}, headers=other.headers).status_code == 200


def test_an_ended_session_cannot_be_ended_again(
    api: Api, client: FlaskClient, alice: dict[str, Any]
) -> None:
    login, other = api.login("alice@example.com"), api.login("alice@example.com")
    client.delete(f"/api/customers/sessions/{other.sid}", headers=login.headers)
    again = client.delete(f"/api/customers/sessions/{other.sid}", headers=login.headers)
    assert again.status_code == 404


def test_logout_with_the_cookie_clears_it(
    api: Api, cookie_client: FlaskClient, alice: dict[str, Any]
) -> None:
    login = cookie_client.post(
        "/api/customers/sessions", json={"email": "alice@example.com", "password": PASSWORD}
    )
    sid = login.get_json()["data"]["sid"]
    url = f"/api/customers/{alice['uuid']}"
    assert cookie_client.patch(url, json={}).status_code == 200
    response = cookie_client.post(f"/api/customers/sessions/{sid}")
    assert response.status_code == 200
    assert response.headers["Set-Cookie"].startswith("token=;")
    assert cookie_client.patch(url, json={}).status_code == 401


def test_logout_is_never_a_get(api: Api, client: FlaskClient, alice: dict[str, Any]) -> None:
    login = api.login("alice@example.com")
    response = client.get(f"/api/customers/sessions/{login.sid}", headers=login.headers)
    assert response.status_code == 405
    url = f"/api/customers/{alice['uuid']}"
    assert client.patch(url, json={}, headers=login.headers).status_code == 200
