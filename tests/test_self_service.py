"""The customer's own account: ``/customers/me`` and ``GET /customers/{id}``."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from .conftest import OTHER_PASSWORD, PASSWORD, Api, Login, table_contents

ME = "/api/customers/me"


def tag(customer: dict[str, Any], version: int = 1) -> str:
    return f'"{customer["uuid"]}.{version}"'


def record(customer: dict[str, Any]) -> dict[str, Any]:
    """The customer object as a read answers it: registration's, without its links."""
    return {key: value for key, value in customer.items() if key != "links"}


# -- reading ----------------------------------------------------------------------------


def test_get_me_answers_the_callers_own_record(
    client: FlaskClient, alice: dict[str, Any], alice_login: Login
) -> None:
    response = client.get(ME, headers=alice_login.headers)
    assert response.status_code == 200
    assert response.get_json() == {"data": record(alice)}
    assert response.headers["ETag"] == tag(alice)
    assert response.headers["Cache-Control"] == "no-store"


def test_get_me_with_the_token_cookie(api: Api, cookie_client: FlaskClient) -> None:
    customer = api.register("cookie@example.com")
    body = {"email": "cookie@example.com", "password": PASSWORD}
    assert cookie_client.post("/api/customers/sessions", json=body).status_code == 200
    response = cookie_client.get(ME)
    assert response.status_code == 200
    assert response.get_json()["data"]["uuid"] == customer["uuid"]


def test_me_needs_a_customer_credential(api: Api, client: FlaskClient) -> None:
    assert client.get(ME).status_code == 401
    for method in ("get", "patch", "delete"):
        response = getattr(client, method)(ME, headers=api.admin_headers())
        assert response.status_code == 403, method
        assert response.get_json() == {
            "error": {"status": 403, "message": "Customer credentials are required"}
        }


def test_on_me_a_customer_credential_wins_over_an_admin_cookie(
    api: Api, client: FlaskClient, alice: dict[str, Any], alice_login: Login
) -> None:
    headers = {**alice_login.headers, **api.admin_headers()}
    response = client.get(ME, headers=headers)
    assert response.status_code == 200
    assert response.get_json()["data"]["uuid"] == alice["uuid"]
    # Elsewhere the admin cookie wins: an admin may change the status.
    url = f"/api/customers/{alice['uuid']}"
    assert client.patch(url, json={"status": 1}, headers=headers).status_code == 200
    assert client.patch(ME, json={"status": 1}, headers=headers).status_code == 403


def test_a_bad_token_on_me_is_401_even_beside_an_admin_cookie(
    api: Api, client: FlaskClient
) -> None:
    headers = {"Authorization": "Bearer not-a-token", **api.admin_headers()}
    assert client.get(ME, headers=headers).status_code == 401


def test_get_customer_by_id_for_an_admin_or_that_customer(
    api: Api, client: FlaskClient, alice: dict[str, Any], alice_login: Login
) -> None:
    url = f"/api/customers/{alice['uuid']}"
    for headers in (alice_login.headers, api.admin_headers()):
        response = client.get(url, headers=headers)
        assert response.status_code == 200
        assert response.get_json() == {"data": record(alice)}
        assert response.headers["ETag"] == tag(alice)
    assert client.head(url, headers=alice_login.headers).status_code == 200


def test_get_customer_checks_401_then_404_then_403(
    api: Api, client: FlaskClient, alice: dict[str, Any]
) -> None:
    bob = api.register("bob@example.com")
    bobs = api.login("bob@example.com")
    url = f"/api/customers/{alice['uuid']}"
    assert client.get(url).status_code == 401
    assert client.get("/api/customers/" + "0" * 32, headers=bobs.headers).status_code == 404
    assert client.get("/api/customers/not-a-uuid", headers=bobs.headers).status_code == 404
    refused = client.get(url, headers=bobs.headers)
    assert refused.status_code == 403
    assert "ETag" not in refused.headers
    assert bob["uuid"] not in refused.get_data(as_text=True)


# -- writing ----------------------------------------------------------------------------


def test_patch_me_changes_the_callers_record_with_evershops_self_link(
    client: FlaskClient, alice: dict[str, Any], alice_login: Login
) -> None:
    response = client.patch(ME, json={"full_name": "Alice Renamed"}, headers=alice_login.headers)
    assert response.status_code == 200
    data = response.get_json()["data"]
    assert data["full_name"] == "Alice Renamed" and data["uuid"] == alice["uuid"]
    assert data["links"] == [
        {
            "rel": "self",
            "href": "/api/customers/me",
            "action": "PATCH",
            "types": ["application/json"],
        }
    ]
    assert response.headers["ETag"] == tag(alice, 2)


def test_patch_me_keeps_the_rules_of_patch_by_id(
    app: Any, client: FlaskClient, alice: dict[str, Any], alice_login: Login
) -> None:
    headers = alice_login.headers
    before = table_contents(app)["evershop_customer"]
    refused = client.patch(ME, json={"status": 0}, headers=headers)
    assert refused.status_code == 403
    invalid = client.patch(ME, json={"email": "nope"}, headers=headers)
    assert invalid.get_json() == {
        "error": {"status": 400, "message": '/email must match format "email"'}
    }
    stale = client.patch(
        ME, json={"full_name": "X"}, headers={**headers, "If-Match": tag(alice, 7)}
    )
    assert stale.status_code == 412
    assert table_contents(app)["evershop_customer"] == before
    fresh = client.patch(ME, json={"full_name": "X"}, headers={**headers, "If-Match": tag(alice)})
    assert fresh.status_code == 200


def test_a_password_change_through_me_ends_the_other_sessions(
    api: Api, client: FlaskClient, alice: dict[str, Any], alice_login: Login
) -> None:
    other = api.login("alice@example.com")
    response = client.patch(ME, json={"password": OTHER_PASSWORD}, headers=alice_login.headers)
    assert response.status_code == 200
    assert client.get(ME, headers=other.headers).status_code == 401
    assert client.get(ME, headers=alice_login.headers).status_code == 200


def test_delete_me_deletes_the_callers_account(
    app: Any, client: FlaskClient, alice: dict[str, Any], alice_login: Login
) -> None:
    response = client.delete(ME, headers=alice_login.headers)
    assert response.status_code == 200
    assert response.get_json() == {"data": record(alice)}
    assert table_contents(app)["evershop_customer"] == []
    assert client.get(ME, headers=alice_login.headers).status_code == 401


def test_a_cookie_write_to_me_from_another_site_is_refused(
    api: Api, cookie_client: FlaskClient
) -> None:
    api.register("cookie@example.com")
    body = {"email": "cookie@example.com", "password": PASSWORD}
    assert cookie_client.post("/api/customers/sessions", json=body).status_code == 200
    forged = {"Origin": "https://evil.example"}
    assert cookie_client.patch(ME, json={"full_name": "X"}, headers=forged).status_code == 403
    assert cookie_client.delete(ME, headers=forged).status_code == 403
    assert cookie_client.get(ME, headers=forged).status_code == 200  # a read changes nothing


# -- routing ----------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["post", "put"])
def test_me_is_never_a_customer_id(client: FlaskClient, alice_login: Login, method: str) -> None:
    response = getattr(client, method)(ME, json={}, headers=alice_login.headers)
    assert response.status_code == 405
    assert set(response.headers["Allow"].split(", ")) == {
        "GET",
        "HEAD",
        "PATCH",
        "DELETE",
        "OPTIONS",
    }


def test_an_admin_patch_of_me_is_not_a_lookup_of_a_customer_named_me(
    api: Api, client: FlaskClient
) -> None:
    response = client.patch(ME, json={"full_name": "X"}, headers=api.admin_headers())
    assert response.get_json()["error"]["message"] == "Customer credentials are required"


def test_the_fixed_names_keep_their_own_methods(client: FlaskClient) -> None:
    assert client.get("/api/customers/sessions").status_code == 405
    assert client.get("/api/customers/openapi.json").status_code == 200
    assert client.delete("/api/customers/openapi.json").status_code == 405
