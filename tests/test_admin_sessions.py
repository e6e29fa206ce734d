"""Admin sessions are rows: a cookie can be logged out for good, one admin's cookies can
all be ended, and the CLI's cookie is a session like any other."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask, jsonify
from flask.testing import FlaskClient

from flask_evershop_customer import admin_required

from .conftest import AdminLoaderFixture, Api, customers, database_free, state_of, table_contents


@pytest.fixture
def host_app(app_factory: Any) -> Flask:
    app: Flask = app_factory()

    @app.post("/admin/login/<admin_id>")
    def admin_login(admin_id: str) -> Any:
        return customers.login_admin(jsonify({"ok": True}), admin_id)

    @app.post("/admin/logout")
    def admin_logout() -> Any:
        return customers.logout_admin(jsonify({"ok": True}))

    @app.get("/admin/dashboard")
    @admin_required
    def dashboard() -> Any:
        return jsonify({"admin": True})

    return app


def _cookie(client: FlaskClient, admin_id: str) -> str:
    """Log ``admin_id`` in through the host's route; the ``asid`` value it was given."""
    response = client.post(f"/admin/login/{admin_id}")
    [value] = [
        header.split(";")[0].split("=", 1)[1]
        for header in response.headers.getlist("Set-Cookie")
        if header.startswith("asid=")
    ]
    return value


def _dashboard(app: Flask, value: str) -> int:
    client = app.test_client(use_cookies=False)
    return client.get("/admin/dashboard", headers={"Cookie": f"asid={value}"}).status_code


def _rows(app: Flask) -> list[dict[str, Any]]:
    return table_contents(app)["evershop_customer_admin_session"]


def test_a_logged_out_admin_cookie_no_longer_works_anywhere(host_app: Flask) -> None:
    browser = host_app.test_client()
    saved = _cookie(browser, "admin-7")
    assert _dashboard(host_app, saved) == 200
    response = browser.post("/admin/logout")
    assert "asid=;" in response.headers["Set-Cookie"]
    # Someone who copied the cookie before the logout has nothing.
    assert _dashboard(host_app, saved) == 401
    [row] = _rows(host_app)
    assert row["admin_id"] == "admin-7" and row["revoked_at"] is not None


def test_logout_ends_only_the_session_of_its_own_cookie(host_app: Flask) -> None:
    first, second = host_app.test_client(), host_app.test_client()
    one, two = _cookie(first, "admin-7"), _cookie(second, "admin-7")
    first.post("/admin/logout")
    assert (_dashboard(host_app, one), _dashboard(host_app, two)) == (401, 200)


def test_end_admin_sessions_ends_every_cookie_of_one_admin(host_app: Flask) -> None:
    client = host_app.test_client(use_cookies=False)
    mine = [_cookie(client, "admin-7") for _ in range(3)]
    theirs = _cookie(client, "admin-8")
    with host_app.app_context():
        assert customers.end_admin_sessions("admin-7") == 3
        assert customers.end_admin_sessions("admin-7") == 0
    assert [_dashboard(host_app, value) for value in mine] == [401, 401, 401]
    assert _dashboard(host_app, theirs) == 200


def test_the_session_row_expires_on_the_extension_clock(host_app: Flask) -> None:
    value = _cookie(host_app.test_client(use_cookies=False), "admin-7")
    lifetime = state_of(host_app).settings.admin_cookie_lifetime
    with host_app.app_context():
        customers.clock.travel(lifetime)
    # The signature's own timestamp is still fine (itsdangerous reads the real time);
    # the row has expired.
    assert _dashboard(host_app, value) == 401


@database_free
def test_logout_without_or_with_a_bad_cookie_just_clears_it(host_app: Flask) -> None:
    client = host_app.test_client(use_cookies=False)
    for headers in ({}, {"Cookie": "asid=garbage"}):
        response = client.post("/admin/logout", headers=headers)
        assert response.status_code == 200 and "asid=;" in response.headers["Set-Cookie"]


def test_the_cli_cookie_is_a_session_that_can_be_ended(app: Flask, api: Api) -> None:
    result = app.test_cli_runner().invoke(args=["customers", "admin-cookie", "admin-42"])
    assert result.exit_code == 0, result.output
    value = result.output.strip()
    customer = api.register("e@example.com")
    client = app.test_client(use_cookies=False)
    url, headers = f"/api/customers/{customer['uuid']}", {"Cookie": f"asid={value}"}
    assert client.patch(url, json={"full_name": "E"}, headers=headers).status_code == 200
    with app.app_context():
        assert customers.end_admin_sessions("admin-42") == 1
    assert client.patch(url, json={"full_name": "F"}, headers=headers).status_code == 401


def test_the_cli_refuses_an_admin_the_loader_rejects(
    app: Flask, admin_loader: AdminLoaderFixture
) -> None:
    @admin_loader
    def load(admin_id: str) -> bool:
        return admin_id == "admin-1"

    refused = app.test_cli_runner().invoke(args=["customers", "admin-cookie", "nobody"])
    assert refused.exit_code != 0
    assert "admin loader does not accept" in refused.output
    assert _rows(app) == []
    accepted = app.test_cli_runner().invoke(args=["customers", "admin-cookie", "admin-1"])
    assert accepted.exit_code == 0 and len(_rows(app)) == 1


def test_purge_deletes_ended_admin_sessions_and_keeps_live_ones(host_app: Flask) -> None:
    client = host_app.test_client(use_cookies=False)
    live = _cookie(client, "admin-7")
    ended = _cookie(client, "admin-8")
    with host_app.app_context():
        customers.end_admin_sessions("admin-8")
    result = host_app.test_cli_runner().invoke(args=["customers", "purge-sessions"])
    assert "1 admin sessions" in result.output
    assert [row["admin_id"] for row in _rows(host_app)] == ["admin-7"]
    assert (_dashboard(host_app, live), _dashboard(host_app, ended)) == (200, 401)
