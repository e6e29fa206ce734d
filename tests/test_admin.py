"""Admins and the helpers for the host's own routes."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask, Response, abort, jsonify

from flask_evershop_customer import (
    admin_required,
    current_customer,
    customer_required,
    get_current_customer,
)

from .conftest import (
    PASSWORD,
    AdminLoaderFixture,
    Api,
    AppFactory,
    customers,
    database_free,
    state_of,
)


@pytest.fixture
def host_app(app_factory: AppFactory) -> Flask:
    app = app_factory()

    @app.post("/admin/login")
    def admin_login() -> Response:
        return customers.login_admin(jsonify({"ok": True}), "admin-7")

    @app.post("/admin/logout")
    def admin_logout() -> Response:
        return customers.logout_admin(jsonify({"ok": True}))

    @app.get("/admin/dashboard")
    @admin_required
    def dashboard() -> Response:
        return jsonify({"admin": True})

    @app.get("/account")
    @customer_required
    def account() -> Response:
        return jsonify({"email": current_customer.email})

    @app.get("/whoami")
    def whoami() -> Response:
        return jsonify({"customer": current_customer.uuid if current_customer else None})

    return app


def test_login_admin_sets_a_signed_httponly_cookie(host_app: Flask) -> None:
    client = host_app.test_client()
    response = client.post("/admin/login")
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("asid=") and "HttpOnly" in cookie and "Path=/" in cookie
    assert "Max-Age=86400" in cookie and "SameSite=Lax" in cookie
    assert client.get("/admin/dashboard").status_code == 200
    client.post("/admin/logout")
    response = client.get("/admin/dashboard")
    assert response.status_code == 401
    assert response.get_json() == {"error": {"status": 401, "message": "Unauthorized"}}


def test_the_admin_cookie_manages_customers(host_app: Flask) -> None:
    client = host_app.test_client()
    created = client.post(
        "/api/customers", json={"email": "a@example.com", "password": PASSWORD, "full_name": "A"}
    ).get_json()["data"]
    client.post("/admin/login")
    response = client.patch(f"/api/customers/{created['uuid']}", json={"full_name": "By Admin"})
    assert response.status_code == 200


@database_free
@pytest.mark.parametrize("value", ["garbage", "", "a.b.c", "x" * 5000])
def test_a_bad_admin_cookie_is_no_credential(host_app: Flask, value: Any) -> None:
    client = host_app.test_client(use_cookies=False)
    response = client.get("/admin/dashboard", headers={"Cookie": f"asid={value}"})
    assert response.status_code == 401


def test_a_tampered_admin_cookie_is_refused(host_app: Flask, api: Api) -> None:
    client = host_app.test_client(use_cookies=False)
    header = api.admin_headers("admin-7")["Cookie"]
    tampered = header[:-2] + ("AA" if not header.endswith("AA") else "BB")
    assert client.get("/admin/dashboard", headers={"Cookie": header}).status_code == 200
    assert client.get("/admin/dashboard", headers={"Cookie": tampered}).status_code == 401


def test_an_expired_admin_cookie_is_refused(
    app_factory: AppFactory, api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = app_factory(EVERSHOP_CUSTOMER_ADMIN_COOKIE_LIFETIME=60)
    with app.app_context():
        value = state_of(app).admin_sessions.open("admin")
    import time

    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 3600)
    client = app.test_client(use_cookies=False)
    data = api.register("b@example.com")
    response = client.delete(f"/api/customers/{data['uuid']}", headers={"Cookie": f"asid={value}"})
    assert response.status_code == 401


def test_admin_loader_can_refuse_a_validly_signed_admin(
    host_app: Flask, api: Api, admin_loader: AdminLoaderFixture
) -> None:
    seen: list[str] = []

    @admin_loader
    def load(admin_id: str) -> bool:
        seen.append(admin_id)
        return admin_id == "still-here"

    client = host_app.test_client(use_cookies=False)
    assert client.get("/admin/dashboard", headers=api.admin_headers("gone")).status_code == 401
    ok = client.get("/admin/dashboard", headers=api.admin_headers("still-here"))
    assert ok.status_code == 200
    assert seen == ["gone", "still-here"]


def test_customer_required_and_current_customer(host_app: Flask, api: Api) -> None:
    client = host_app.test_client(use_cookies=False)
    data = api.register("c@example.com")
    login = api.login("c@example.com")
    assert client.get("/account").status_code == 401
    response = client.get("/account", headers=login.headers)
    assert response.get_json() == {"email": "c@example.com"}
    assert client.get("/whoami").get_json() == {"customer": None}
    assert client.get("/whoami", headers=login.headers).get_json() == {"customer": data["uuid"]}
    assert client.get("/account", headers=api.admin_headers()).status_code == 403


def test_a_customer_is_not_an_admin(host_app: Flask, api: Api) -> None:
    api.register("d@example.com")
    login = api.login("d@example.com")
    client = host_app.test_client(use_cookies=False)
    assert client.get("/admin/dashboard", headers=login.headers).status_code == 403


def test_cli_prints_a_working_admin_cookie(app: Flask, api: Api) -> None:
    result = app.test_cli_runner().invoke(args=["customers", "admin-cookie", "admin-42"])
    assert result.exit_code == 0
    value = result.output.strip()
    data = api.register("e@example.com")
    client = app.test_client(use_cookies=False)
    response = client.patch(
        f"/api/customers/{data['uuid']}",
        json={"status": 0},
        headers={"Cookie": f"asid={value}"},
    )
    assert response.status_code == 200
    assert response.get_json()["data"]["status"] == 0


# -- the host's own views ----------------------------------------------------------------


@pytest.fixture
def guarded_app(app_factory: AppFactory) -> Flask:
    """Host views written as the integration chapter shows them, some ``async def``."""
    app = app_factory()

    @app.get("/profile")
    def profile() -> Response:
        if not current_customer.is_authenticated:
            abort(401)
        return jsonify({"email": current_customer.email})

    @app.get("/maybe")
    def maybe() -> Response:
        customer = get_current_customer()
        if customer is None:
            return jsonify({"customer": None})
        return jsonify({"customer": customer.uuid})

    @app.get("/async/account")
    @customer_required
    async def async_account() -> Response:
        return jsonify({"email": current_customer.email})

    @app.get("/async/admin")
    @admin_required
    async def async_admin() -> Response:
        return jsonify({"admin": True})

    return app


def test_current_customer_fails_closed_without_a_customer(guarded_app: Flask, api: Api) -> None:
    client = guarded_app.test_client(use_cookies=False)
    assert client.get("/profile").status_code == 401
    assert client.get("/profile", headers=api.admin_headers()).status_code == 401
    assert client.get("/maybe").get_json() == {"customer": None}
    api.register("p@example.com")
    login = api.login("p@example.com")
    assert client.get("/profile", headers=login.headers).get_json() == {"email": "p@example.com"}
    with guarded_app.test_request_context():
        assert not current_customer and current_customer.is_authenticated is False
        assert get_current_customer() is None


def test_get_current_customer_is_the_record_or_none(guarded_app: Flask, api: Api) -> None:
    customer = api.register("q@example.com")
    login = api.login("q@example.com")
    client = guarded_app.test_client(use_cookies=False)
    assert client.get("/maybe", headers=login.headers).get_json() == {"customer": customer["uuid"]}
    bad = {"Authorization": "Bearer not-a-token"}
    assert client.get("/maybe", headers=bad).get_json() == {"customer": None}


def test_async_host_views_run_under_the_decorators(guarded_app: Flask, api: Api) -> None:
    client = guarded_app.test_client(use_cookies=False)
    api.register("r@example.com")
    login = api.login("r@example.com")
    assert client.get("/async/account", headers=login.headers).get_json() == {
        "email": "r@example.com"
    }
    assert client.get("/async/account").status_code == 401
    assert client.get("/async/admin", headers=api.admin_headers()).get_json() == {"admin": True}
