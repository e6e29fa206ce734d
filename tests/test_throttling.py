"""Brute-force protection.

Failed logins are counted in the database, per canonical email and per client address,
within a sliding window. Time is moved with the extension's public clock, never by
sleeping.
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.security import check_password_hash, generate_password_hash
from werkzeug.test import TestResponse

from flask_evershop_customer import passwords as passwords_module
from flask_evershop_customer.clock import Clock as AppClock
from flask_evershop_customer.clock import utcnow

from .conftest import PASSWORD, Api, AppFactory, customers, database_free, db, table_contents

LOCKED = {"error": {"status": 429, "message": "Too many failed login attempts, try again later"}}
INVALID = {"error": {"status": 400, "message": "Invalid email or password"}}
WINDOW = 900


class Clock:
    """The apps' clocks, stopped together and moved together."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *apps: Flask) -> None:
        self.clocks: list[AppClock] = []
        for app in apps:
            with app.app_context():
                self.clocks.append(customers.clock)
        now = utcnow()
        for clock in self.clocks:
            clock.freeze(now)

    def advance(self, seconds: int) -> None:
        for clock in self.clocks:
            clock.travel(seconds)


def attempt(
    client: FlaskClient,
    email: str,
    password: str = "wrong password!",
    ip: str = "192.0.2.10",
    **headers: str,
) -> TestResponse:
    return client.post(
        "/api/customers/sessions",
        json={"email": email, "password": password},
        environ_base={"REMOTE_ADDR": ip},
        headers=headers,
    )


def fail(client: FlaskClient, email: str, times: int, **kwargs: str) -> None:
    for _ in range(times):
        response = attempt(client, email, **kwargs)
        assert response.status_code == 400, response.get_json()
        assert response.get_json() == INVALID


def assert_locked(response: TestResponse) -> int:
    assert response.status_code == 429
    assert response.mimetype == "application/json"
    assert response.get_json() == LOCKED
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= WINDOW
    assert "Set-Cookie" not in response.headers
    return retry_after


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many passwords the extension checks (a list, to count the calls)."""
    calls: list[int] = []
    real = check_password_hash

    def check(*args: str) -> bool:
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(passwords_module, "check_password_hash", check)
    return calls


def failure_rows(app: Flask) -> int:
    return len(table_contents(app)["evershop_customer_login_failure"])


# -- per email ------------------------------------------------------------------------


def test_the_sixth_attempt_is_refused_without_checking_the_password(
    api: Api, client: FlaskClient, checks: list[int]
) -> None:
    api.register("alice@example.com")
    fail(client, "alice@example.com", 5)
    checks.clear()
    # Even the right password is not looked at while the lockout lasts.
    assert_locked(attempt(client, "alice@example.com", PASSWORD))
    assert_locked(attempt(client, "alice@example.com"))
    assert checks == []


def test_the_lockout_looks_the_same_for_unknown_accounts(
    app: Flask, api: Api, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    Clock(monkeypatch, app)
    api.register("alice@example.com")
    fail(client, "alice@example.com", 5)
    fail(client, "nobody@example.com", 5)
    known, unknown = attempt(client, "alice@example.com"), attempt(client, "nobody@example.com")
    assert_locked(known)
    assert (known.status_code, known.get_data(), known.headers["Retry-After"]) == (
        unknown.status_code,
        unknown.get_data(),
        unknown.headers["Retry-After"],
    )
    assert sorted(known.headers.keys()) == sorted(unknown.headers.keys())


def test_the_email_is_counted_in_its_canonical_form(api: Api, client: FlaskClient) -> None:
    api.register("alice@example.com")
    for email in ("alice@example.com", "ALICE@example.com", "Alice@Example.COM"):
        attempt(client, email)
    fail(client, "alice@EXAMPLE.com", 2)
    assert_locked(attempt(client, "aLiCe@example.com", PASSWORD))


def test_other_accounts_are_not_affected(api: Api, client: FlaskClient) -> None:
    api.register("alice@example.com")
    api.register("bob@example.com")
    fail(client, "alice@example.com", 5)
    assert_locked(attempt(client, "alice@example.com", PASSWORD))
    assert attempt(client, "bob@example.com", PASSWORD).status_code == 200


def test_the_count_holds_across_app_instances(app_factory: AppFactory) -> None:
    """Two workers (or hosts) on one database share the count."""
    first, second = app_factory(), app_factory()
    Api(first, first.test_client()).register("alice@example.com")
    one, two = first.test_client(), second.test_client()
    fail(one, "alice@example.com", 3)
    fail(two, "alice@example.com", 2)
    assert_locked(attempt(one, "alice@example.com", PASSWORD))
    assert_locked(attempt(two, "alice@example.com", PASSWORD))


def test_a_success_resets_the_count(api: Api, client: FlaskClient) -> None:
    api.register("alice@example.com")
    fail(client, "alice@example.com", 4)
    assert attempt(client, "alice@example.com", PASSWORD).status_code == 200
    fail(client, "alice@example.com", 4)
    assert attempt(client, "alice@example.com", PASSWORD).status_code == 200


def test_the_window_slides_and_retry_after_is_exact(
    app: Flask, api: Api, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock(monkeypatch, app)
    api.register("alice@example.com")
    fail(client, "alice@example.com", 1)
    clock.advance(100)
    fail(client, "alice@example.com", 4)
    assert assert_locked(attempt(client, "alice@example.com", PASSWORD)) == WINDOW - 100
    clock.advance(WINDOW - 101)
    # One second before the oldest failure leaves the window: still locked, and attempts
    # made while locked are not counted (they cannot extend the lockout).
    assert assert_locked(attempt(client, "alice@example.com", PASSWORD)) == 1
    clock.advance(1)
    # The oldest failure has left the window: four remain, so one more try is allowed.
    fail(client, "alice@example.com", 1)
    assert assert_locked(attempt(client, "alice@example.com", PASSWORD)) == 100
    clock.advance(100)
    assert attempt(client, "alice@example.com", PASSWORD).status_code == 200


def test_the_limit_and_window_are_configurable(
    app_factory: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = app_factory(
        EVERSHOP_CUSTOMER_LOGIN_MAX_FAILURES=2, EVERSHOP_CUSTOMER_LOGIN_FAILURE_WINDOW=60
    )
    clock = Clock(monkeypatch, app)
    client = app.test_client()
    Api(app, client).register("alice@example.com")
    fail(client, "alice@example.com", 2)
    assert assert_locked(attempt(client, "alice@example.com", PASSWORD)) == 60
    clock.advance(60)
    assert attempt(client, "alice@example.com", PASSWORD).status_code == 200


def test_the_cli_lifts_a_lockout(app: Flask, api: Api, client: FlaskClient) -> None:
    api.register("alice@example.com")
    fail(client, "alice@example.com", 5)
    assert_locked(attempt(client, "alice@example.com", PASSWORD))
    runner = app.test_cli_runner()
    result = runner.invoke(args=["customers", "unlock", "ALICE@Example.com"])
    assert result.exit_code == 0, result.output
    assert "Cleared 5 failed logins" in result.output
    assert attempt(client, "alice@example.com", PASSWORD).status_code == 200


@database_free
def test_the_cli_refuses_an_invalid_email(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["customers", "unlock", "not an email"])
    assert result.exit_code == 2
    assert "not a valid email address" in result.output


def test_zero_turns_throttling_off(app_factory: AppFactory) -> None:
    app = app_factory(
        EVERSHOP_CUSTOMER_LOGIN_MAX_FAILURES=0,
        EVERSHOP_CUSTOMER_LOGIN_MAX_FAILURES_PER_IP=0,
        EVERSHOP_CUSTOMER_REGISTRATIONS_PER_IP=0,
    )
    client = app.test_client()
    Api(app, client).register("alice@example.com")
    fail(client, "alice@example.com", 8)
    assert attempt(client, "alice@example.com", PASSWORD).status_code == 200
    assert failure_rows(app) == 0


def test_failures_are_stored_under_digests_only(app: Flask, api: Api, client: FlaskClient) -> None:
    """The failure table holds no email and no address in clear."""
    api.register("alice@example.com")
    fail(client, "alice@example.com", 2, ip="203.0.113.99")
    LoginFailure = customers.models.LoginFailure
    with app.app_context():
        subjects = db.session.scalars(sa.select(LoginFailure.subject)).all()
    # Two failures under the email and the address each, and the registration's attempt
    # under the address it came from.
    assert len(subjects) == 5
    for subject in subjects:
        assert "alice" not in subject and "203.0.113" not in subject
        assert len(subject) == 64 and set(subject) <= set("0123456789abcdef")


# -- per client address ---------------------------------------------------------------


@pytest.fixture
def ip_limited(app_factory: AppFactory) -> Flask:
    app = app_factory(
        EVERSHOP_CUSTOMER_LOGIN_MAX_FAILURES=0, EVERSHOP_CUSTOMER_LOGIN_MAX_FAILURES_PER_IP=3
    )
    Api(app, app.test_client()).register("alice@example.com")
    return app


def test_one_address_is_limited_across_emails(ip_limited: Flask, checks: list[int]) -> None:
    client = ip_limited.test_client()
    for number in range(3):
        fail(client, f"guess{number}@example.com", 1, ip="203.0.113.7")
    checks.clear()
    assert_locked(attempt(client, "alice@example.com", PASSWORD, ip="203.0.113.7"))
    assert checks == []
    assert attempt(client, "alice@example.com", PASSWORD, ip="198.51.100.2").status_code == 200


def test_an_ipv6_client_is_counted_by_its_64_network(ip_limited: Flask) -> None:
    """One subscriber's /64 holds 2^64 addresses: rotating through them is one client."""
    client = ip_limited.test_client()
    for number, ip in enumerate(["2001:db8:1:2::1", "2001:db8:1:2::ffff", "2001:db8:1:2:a::b"]):
        fail(client, f"guess{number}@example.com", 1, ip=ip)
    for ip in ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:0db8:0001:0002::9"):
        assert_locked(attempt(client, "alice@example.com", PASSWORD, ip=ip))
    assert attempt(client, "alice@example.com", PASSWORD, ip="2001:db8:1:3::1").status_code == 200


def test_an_ipv4_mapped_address_is_its_ipv4_address(ip_limited: Flask) -> None:
    client = ip_limited.test_client()
    for number in range(3):
        fail(client, f"guess{number}@example.com", 1, ip="::ffff:203.0.113.7")
    assert_locked(attempt(client, "alice@example.com", PASSWORD, ip="203.0.113.7"))
    assert attempt(client, "alice@example.com", PASSWORD, ip="203.0.113.8").status_code == 200


def test_forwarding_headers_are_not_trusted_by_default(ip_limited: Flask) -> None:
    client = ip_limited.test_client()
    for number in range(3):
        fail(
            client,
            f"guess{number}@example.com",
            1,
            ip="203.0.113.7",
            **{"X-Forwarded-For": f"198.51.100.{number}", "X-Real-IP": f"198.51.100.{number}"},
        )
    response = attempt(
        client, "alice@example.com", PASSWORD, ip="203.0.113.7", **{"X-Forwarded-For": "10.9.8.7"}
    )
    assert_locked(response)


def test_behind_proxyfix_the_forwarded_client_is_counted(ip_limited: Flask) -> None:
    """What the security chapter tells hosts behind one reverse proxy to do."""
    # Flask's documented way to wrap the WSGI app; mypy sees a method being replaced.
    ip_limited.wsgi_app = ProxyFix(ip_limited.wsgi_app, x_for=1)  # type: ignore[method-assign]
    client = ip_limited.test_client()
    proxy = "10.0.0.1"
    for number in range(3):
        fail(
            client,
            f"guess{number}@example.com",
            1,
            ip=proxy,
            **{"X-Forwarded-For": "203.0.113.7"},
        )
    locked = attempt(
        client, "alice@example.com", PASSWORD, ip=proxy, **{"X-Forwarded-For": "203.0.113.7"}
    )
    assert_locked(locked)
    other = attempt(
        client, "alice@example.com", PASSWORD, ip=proxy, **{"X-Forwarded-For": "198.51.100.2"}
    )
    assert other.status_code == 200


# -- registrations per address, email changes per customer ----------------------------


REGISTRATIONS = {
    "error": {
        "status": 429,
        "message": "Too many registrations from this address, try again later",
    }
}


def register(client: FlaskClient, n: int, ip: str = "192.0.2.10", **headers: str) -> TestResponse:
    body = {"email": f"new{n}@example.com", "password": PASSWORD, "full_name": "New"}
    return client.post(
        "/api/customers", json=body, environ_base={"REMOTE_ADDR": ip}, headers=headers
    )


def test_registrations_are_limited_per_client_address(
    app_factory: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = app_factory(EVERSHOP_CUSTOMER_REGISTRATIONS_PER_IP=3)
    clock = Clock(monkeypatch, app)
    client = app.test_client(use_cookies=False)
    hashes: list[int] = []
    real_hash = generate_password_hash

    def counting_hash(*a: Any, **k: Any) -> str:
        hashes.append(1)
        return real_hash(*a, **k)

    monkeypatch.setattr(passwords_module, "generate_password_hash", counting_hash)
    statuses = [register(client, n).status_code for n in range(3)]
    # A duplicate counts too: it costs a hash and answers whether the email exists.
    statuses.append(register(client, 0).status_code)
    assert statuses == [200, 200, 200, 429]
    refused = register(client, 9)
    assert refused.status_code == 429 and refused.get_json() == REGISTRATIONS
    assert 1 <= int(refused.headers["Retry-After"]) <= WINDOW
    assert len(hashes) == 3  # nothing is hashed for a refused registration
    assert register(client, 9, ip="192.0.2.11").status_code == 200  # another address
    clock.advance(WINDOW)
    assert register(client, 10).status_code == 200


def test_a_registration_that_fails_validation_is_not_counted(app_factory: AppFactory) -> None:
    app = app_factory(EVERSHOP_CUSTOMER_REGISTRATIONS_PER_IP=1)
    client = app.test_client(use_cookies=False)
    for _ in range(3):
        bad = client.post("/api/customers", json={"email": "x"})
        assert bad.status_code == 400
    assert register(client, 1).status_code == 200


def test_an_admin_registers_customers_without_a_limit(app_factory: AppFactory) -> None:
    app = app_factory(EVERSHOP_CUSTOMER_REGISTRATIONS_PER_IP=1)
    client = app.test_client(use_cookies=False)
    admin = Api(app, client).admin_headers()
    assert [register(client, n, **admin).status_code for n in range(3)] == [200] * 3


def test_registration_limit_zero_turns_it_off(app_factory: AppFactory) -> None:
    app = app_factory(EVERSHOP_CUSTOMER_REGISTRATIONS_PER_IP=0)
    client = app.test_client(use_cookies=False)
    assert {register(client, n).status_code for n in range(25)} == {200}
    assert failure_rows(app) == 0


def test_a_customer_probing_for_taken_emails_is_limited(
    app_factory: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = app_factory(EVERSHOP_CUSTOMER_LOGIN_MAX_FAILURES=2)
    client = app.test_client(use_cookies=False)
    api = Api(app, client)
    prober = api.register("prober@example.com")
    taken = [api.register(f"victim{n}@example.com") for n in range(4)]
    login = api.login("prober@example.com")
    url = f"/api/customers/{prober['uuid']}"

    def move(email: str) -> TestResponse:
        body = {"email": email, "current_password": PASSWORD}
        return client.patch(url, json=body, headers=login.headers)

    assert [move(t["email"]).status_code for t in taken[:2]] == [409, 409]
    refused = move(taken[2]["email"])
    assert refused.status_code == 429
    assert refused.get_json()["error"]["message"] == (
        "Too many attempts to change the email, try again later"
    )
    # A free email is refused too while the limit holds (the answer says nothing)...
    assert move("free@example.com").status_code == 429
    # ...renaming is not an email change, and logging in is not affected.
    assert client.patch(url, json={"full_name": "P"}, headers=login.headers).status_code == 200
    assert attempt(client, "prober@example.com", PASSWORD).status_code == 200
    # Admins are never limited.
    admin = api.admin_headers()
    assert client.patch(url, json={"email": taken[3]["email"]}, headers=admin).status_code == 409


def test_a_successful_email_change_is_not_counted(app_factory: AppFactory) -> None:
    app = app_factory(EVERSHOP_CUSTOMER_LOGIN_MAX_FAILURES=1)
    client = app.test_client(use_cookies=False)
    api = Api(app, client)
    customer = api.register("mover@example.com")
    login = api.login("mover@example.com")
    url = f"/api/customers/{customer['uuid']}"
    for n in range(3):
        body = {"email": f"moved{n}@example.com", "current_password": PASSWORD}
        assert client.patch(url, json=body, headers=login.headers).status_code == 200
