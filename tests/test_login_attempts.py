"""Login attempts are recorded before the password is checked, so the limit holds even
when attempts arrive together."""

from __future__ import annotations

import threading
from datetime import datetime

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.security import check_password_hash
from werkzeug.test import TestResponse

from flask_evershop_customer import passwords

from .conftest import PASSWORD, Api, AppFactory, Database, db, state_of


def test_concurrent_attempts_check_no_more_passwords_than_the_limit(
    app_factory: AppFactory, monkeypatch: pytest.MonkeyPatch, database: Database
) -> None:
    if database.backend == "sqlite":
        pytest.skip("SQLite serialises writers: there is no race to show")
    app = app_factory(EVERSHOP_CUSTOMER_LOGIN_MAX_FAILURES=3)
    app.test_client().post(
        "/api/customers",
        json={"email": "alice@example.com", "password": PASSWORD, "full_name": "Alice"},
    )
    checks: list[int] = []
    real_check = check_password_hash

    def counting_check(pwhash: str, password: str) -> bool:
        checks.append(1)
        return real_check(pwhash, password)

    monkeypatch.setattr(passwords, "check_password_hash", counting_check)
    barrier = threading.Barrier(8)
    statuses: list[int] = []

    def attempt() -> None:
        client = app.test_client()
        barrier.wait()
        response = client.post(
            "/api/customers/sessions",
            json={"email": "alice@example.com", "password": "a wrong password"},
        )
        statuses.append(response.status_code)

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert set(statuses) <= {400, 429}  # (a list comparison here was lexicographic)
    assert len(checks) <= 3
    assert statuses.count(400) == len(checks)


def test_without_returning_one_insert_a_row_still_counts(
    app: Flask, client: FlaskClient, api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MySQL has no INSERT ... RETURNING: the attempt rows go in one by one."""
    api.register("alice@example.com")
    with app.app_context():
        dialect = db.engine.dialect
    monkeypatch.setattr(dialect, "insert_executemany_returning", False)
    wrong = {"email": "alice@example.com", "password": "a wrong password"}
    statuses = [client.post("/api/customers/sessions", json=wrong).status_code for _ in range(6)]
    assert statuses == [400] * 5 + [429]


def test_a_success_forgets_its_own_attempt(app_factory: AppFactory) -> None:
    app = app_factory(EVERSHOP_CUSTOMER_LOGIN_MAX_FAILURES_PER_IP=2)
    client = app.test_client(use_cookies=False)
    body = {"email": "alice@example.com", "password": PASSWORD, "full_name": "Alice"}
    client.post("/api/customers", json=body)
    for _ in range(5):
        assert client.post("/api/customers/sessions", json=body).status_code == 200


def test_no_client_address_means_no_address_limit(app_factory: AppFactory) -> None:
    app = app_factory(
        EVERSHOP_CUSTOMER_LOGIN_MAX_FAILURES=0, EVERSHOP_CUSTOMER_LOGIN_MAX_FAILURES_PER_IP=1
    )
    client = app.test_client(use_cookies=False)
    wrong = {"email": "x@example.com", "password": "a wrong password"}
    for _ in range(3):
        response = client.post(
            "/api/customers/sessions", json=wrong, environ_base={"REMOTE_ADDR": ""}
        )
        assert response.status_code == 400
    limited = [client.post("/api/customers/sessions", json=wrong).status_code for _ in range(2)]
    assert limited == [400, 429]


def test_an_attempt_counts_neighbours_committed_in_any_order(
    app_factory: AppFactory, monkeypatch: pytest.MonkeyPatch, database: Database
) -> None:
    """At the limit, an attempt whose row is written but not yet committed while a
    later one counts and commits: the two must not both be let through."""
    if database.backend == "sqlite":
        pytest.skip("SQLite serialises writers: the second attempt cannot write meanwhile")
    from .test_login_races import _in_thread

    app = app_factory(EVERSHOP_CUSTOMER_LOGIN_MAX_FAILURES=5)
    client = app.test_client(use_cookies=False)
    wrong = {"email": "alice@example.com", "password": "a wrong password"}
    client.post("/api/customers", json={**wrong, "password": PASSWORD, "full_name": "Alice"})
    for _ in range(4):
        assert client.post("/api/customers/sessions", json=wrong).status_code == 400
    state = state_of(app)
    checks: list[int] = []
    real_verify = state.hasher.verify

    def counting_verify(stored_hash: str | None, password: str) -> bool:
        checks.append(1)
        return real_verify(stored_hash, password)

    monkeypatch.setattr(state.hasher, "verify", counting_verify)
    real_insert = state.throttle._insert
    overtaking: list[TestResponse] = []
    held_thread = threading.current_thread()

    def insert(subjects: list[str], now: datetime) -> dict[str, int]:
        ids = real_insert(subjects, now)  # written, not committed yet
        if threading.current_thread() is held_thread and not overtaking:
            other = app.test_client(use_cookies=False)
            overtaking.append(_in_thread(lambda: other.post("/api/customers/sessions", json=wrong)))
        return ids

    monkeypatch.setattr(state.throttle, "_insert", insert)
    held = client.post("/api/customers/sessions", json=wrong)
    statuses = sorted([held.status_code, overtaking[0].status_code])
    assert len(checks) <= 1, statuses  # the fifth failure is the last password checked
    assert 429 in statuses
