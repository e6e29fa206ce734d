"""ETag and If-Match: every customer response names its version; a write that names a
version applies only to that one (412 otherwise, and nothing changes)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from .conftest import OTHER_PASSWORD, PASSWORD, Api, Login, count_statements, table_contents

STALE_MESSAGE = "The customer was changed by another request; fetch it again"
STALE = {"error": {"status": 412, "message": STALE_MESSAGE}}


def tag(uuid: str, version: int) -> str:
    return f'"{uuid}.{version}"'


def test_every_customer_response_carries_its_etag(api: Api, client: FlaskClient) -> None:
    body = {"email": "alice@example.com", "password": PASSWORD, "full_name": "A"}
    created = client.post("/api/customers", json=body)
    data, login = created.get_json()["data"], api.login("alice@example.com")
    url = f"/api/customers/{data['uuid']}"
    assert created.headers["ETag"] == tag(data["uuid"], 1)

    renamed = client.patch(url, json={"full_name": "B"}, headers=login.headers)
    assert renamed.headers["ETag"] == tag(data["uuid"], 2)
    unchanged = client.patch(url, json={}, headers=login.headers)
    assert unchanged.headers["ETag"] == tag(data["uuid"], 2)
    by_admin = client.patch(url, json={"status": 0}, headers=api.admin_headers())
    assert by_admin.headers["ETag"] == tag(data["uuid"], 3)
    deleted = client.delete(url, headers=api.admin_headers())
    assert deleted.status_code == 200
    assert deleted.headers["ETag"] == tag(data["uuid"], 3)


def test_responses_without_a_customer_have_no_etag(
    api: Api, client: FlaskClient, alice: dict[str, Any], alice_login: Login
) -> None:
    data, login = alice, alice_login
    url = f"/api/customers/{data['uuid']}"
    assert "ETag" not in client.patch(url, json={"email": "bad"}, headers=login.headers).headers
    assert "ETag" not in client.patch(url, json={}).headers
    login_response = client.post(
        "/api/customers/sessions",
        json={"email": "alice@example.com", "password": "correct horse battery"},
    )
    assert "ETag" not in login_response.headers


def test_patch_with_the_current_tag_applies(
    client: FlaskClient, alice: dict[str, Any], alice_login: Login
) -> None:
    data, etag, login = alice, tag(alice["uuid"], 1), alice_login
    response = client.patch(
        f"/api/customers/{data['uuid']}",
        json={"full_name": "Current"},
        headers={**login.headers, "If-Match": etag},
    )
    assert response.status_code == 200
    assert response.get_json()["data"]["full_name"] == "Current"
    assert response.headers["ETag"] == tag(data["uuid"], 2)


def test_delete_with_the_current_tag_applies(
    app: Flask, client: FlaskClient, alice: dict[str, Any], alice_login: Login
) -> None:
    data, etag, login = alice, tag(alice["uuid"], 1), alice_login
    response = client.delete(
        f"/api/customers/{data['uuid']}", headers={**login.headers, "If-Match": etag}
    )
    assert response.status_code == 200
    assert table_contents(app)["evershop_customer"] == []


@pytest.mark.parametrize("method", ["patch", "delete"])
def test_star_matches_any_version(
    client: FlaskClient, alice: dict[str, Any], alice_login: Login, method: Any
) -> None:
    data, login = alice, alice_login
    url = f"/api/customers/{data['uuid']}"
    assert client.patch(url, json={"full_name": "V2"}, headers=login.headers).status_code == 200
    kwargs = {"json": {"full_name": "V3"}} if method == "patch" else {}
    response = getattr(client, method)(url, headers={**login.headers, "If-Match": "*"}, **kwargs)
    assert response.status_code == 200


def test_one_matching_tag_in_a_list_is_enough(
    api: Api, client: FlaskClient, alice: dict[str, Any], alice_login: Login
) -> None:
    data, etag, login = alice, tag(alice["uuid"], 1), alice_login
    other = api.register("bob@example.com")
    response = client.patch(
        f"/api/customers/{data['uuid']}",
        json={"full_name": "Listed"},
        headers={**login.headers, "If-Match": f"{tag(other['uuid'], 1)}, {etag}"},
    )
    assert response.status_code == 200


def _refused(
    app: Flask,
    client: FlaskClient,
    method: str,
    url: str,
    headers: dict[str, str],
    **kwargs: Any,
) -> TestResponse:
    before = table_contents(app)
    response: TestResponse = getattr(client, method)(url, headers=headers, **kwargs)
    assert response.status_code == 412, response.get_json()
    assert response.get_json() == STALE
    assert "ETag" not in response.headers
    assert table_contents(app) == before
    return response


@pytest.mark.parametrize("method", ["patch", "delete"])
def test_a_stale_tag_is_refused_and_nothing_changes(
    app: Flask, client: FlaskClient, alice: dict[str, Any], alice_login: Login, method: Any
) -> None:
    data, stale, login = alice, tag(alice["uuid"], 1), alice_login
    url = f"/api/customers/{data['uuid']}"
    assert client.patch(url, json={"full_name": "Newer"}, headers=login.headers).status_code == 200
    headers = {**login.headers, "If-Match": stale}
    body = {"full_name": "Older", "password": OTHER_PASSWORD}
    kwargs = {"json": body} if method == "patch" else {}
    _refused(app, client, method, url, headers, **kwargs)


FOREIGN_OR_MALFORMED = [
    "{other}",  # another customer's tag
    'W/"{uuid}.1"',  # weak tags never match (strong comparison)
    '"{uuid}.2"',  # a version that does not exist yet
    '"{uuid}"',
    "{uuid}.1",  # unquoted
    '"{uuid}.01x"',
    "",
    "garbage",
]


@pytest.mark.parametrize("method", ["patch", "delete"])
def test_a_foreign_or_malformed_tag_is_refused(
    api: Api,
    app: Flask,
    client: FlaskClient,
    alice: dict[str, Any],
    alice_login: Login,
    method: Any,
) -> None:
    data, login = alice, alice_login
    other = api.register("bob@example.com")
    kwargs = {"json": {"full_name": "Nope"}} if method == "patch" else {}
    url = f"/api/customers/{data['uuid']}"
    for header in FOREIGN_OR_MALFORMED:
        value = header.format(uuid=data["uuid"], other=tag(other["uuid"], 1))
        _refused(app, client, method, url, {**login.headers, "If-Match": value}, **kwargs)


def test_a_stale_tag_is_refused_even_for_an_empty_patch(
    app: Flask, client: FlaskClient, alice: dict[str, Any], alice_login: Login
) -> None:
    data, stale, login = alice, tag(alice["uuid"], 1), alice_login
    url = f"/api/customers/{data['uuid']}"
    assert client.patch(url, json={"full_name": "Newer"}, headers=login.headers).status_code == 200
    _refused(app, client, "patch", url, {**login.headers, "If-Match": stale}, json={})


def test_a_stale_tag_from_an_admin_is_refused_too(
    api: Api, app: Flask, client: FlaskClient, alice: dict[str, Any], alice_login: Login
) -> None:
    data, stale, login = alice, tag(alice["uuid"], 1), alice_login
    url = f"/api/customers/{data['uuid']}"
    assert client.patch(url, json={"full_name": "Newer"}, headers=login.headers).status_code == 200
    headers = {**api.admin_headers(), "If-Match": stale}
    _refused(app, client, "patch", url, headers, json={"status": 0})
    _refused(app, client, "delete", url, headers)


def test_without_if_match_a_patch_writes_only_the_fields_it_names(
    app: Flask, client: FlaskClient, alice: dict[str, Any], alice_login: Login
) -> None:
    data, login = alice, alice_login
    url = f"/api/customers/{data['uuid']}"
    with count_statements(app) as counter:
        response = client.patch(url, json={"full_name": "Only this"}, headers=login.headers)
    assert response.status_code == 200
    updates = [s for s in counter.statements if re.match(r"\s*UPDATE evershop_customer\s", s)]
    assert len(updates) == 1
    match = re.search(r"\bSET\s+(.*?)\s+WHERE\b", updates[0], re.S | re.I)
    assert match is not None, updates[0]
    assigned = match.group(1)
    columns = {part.split("=")[0].strip().strip('`"') for part in assigned.split(",")}
    # updated_at is to the second: it is only written when the second has changed.
    assert {"full_name", "version"} <= columns <= {"full_name", "updated_at", "version"}
