"""One transaction per request, proven by fault injection: whatever fails after the
write (a signal receiver, a commit hook, the commit itself), the client gets the error
envelope and every table is exactly as it was. A 2xx is built only after the commit."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask, request_finished
from flask.testing import FlaskClient
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session as OrmSession

from flask_evershop_customer import signals

from .conftest import OTHER_PASSWORD, PASSWORD, Api, AppFactory, Login, db, table_contents

INTERNAL = {"error": {"status": 500, "message": "Internal server error"}}
UNAVAILABLE = {"error": {"status": 503, "message": "Service temporarily unavailable, try again"}}


@dataclass
class Shop:
    """Two customers, two sessions of Alice's, and a failed login on Alice's email."""

    api: Api
    alice: dict[str, Any]
    bob: dict[str, Any]
    first: Login
    second: Login
    admin: dict[str, str]


@pytest.fixture
def shop(app_factory: AppFactory, app: Flask, client: FlaskClient) -> Shop:
    # These tests read the 500 envelope that production gets, not the exception that
    # Flask re-raises under TESTING.
    app.config["PROPAGATE_EXCEPTIONS"] = False
    # Alice's hash was made with another method: her next login rehashes it (one more
    # write that must roll back with the rest).
    older_app = app_factory(EVERSHOP_CUSTOMER_PASSWORD_HASH_METHOD="pbkdf2:sha256:2")
    older = Api(older_app, older_app.test_client(use_cookies=False))
    alice = older.register("alice@example.com", full_name="Alice")
    bob = older.register("bob@example.com", full_name="Bob")
    api = Api(app, client)
    first, second = api.login("alice@example.com"), api.login("alice@example.com")
    failed = client.post(
        "/api/customers/sessions", json={"email": "alice@example.com", "password": "wrong!"}
    )
    assert failed.status_code == 400
    return Shop(api, alice, bob, first, second, api.admin_headers())


#: Each write the API can make: the request, and the signal it sends before committing.
OPERATIONS: dict[str, tuple[Any, Callable[[Shop], Any]]] = {
    "create": (
        signals.customer_created,
        lambda s: s.api.client.post(
            "/api/customers",
            json={"email": "carol@example.com", "password": PASSWORD, "full_name": "Carol"},
        ),
    ),
    "update": (
        signals.customer_updated,
        lambda s: s.api.client.patch(
            f"/api/customers/{s.alice['uuid']}",
            json={
                "email": "alice@new.example",
                "password": OTHER_PASSWORD,
                "full_name": "A2",
                "current_password": PASSWORD,
            },
            headers=s.first.headers,
        ),
    ),
    "disable": (
        signals.customer_updated,
        lambda s: s.api.client.patch(
            f"/api/customers/{s.alice['uuid']}", json={"status": 0}, headers=s.admin
        ),
    ),
    "delete": (
        signals.customer_deleted,
        lambda s: s.api.client.delete(f"/api/customers/{s.alice['uuid']}", headers=s.admin),
    ),
    "login": (
        signals.customer_logged_in,
        lambda s: s.api.client.post(
            "/api/customers/sessions", json={"email": "ALICE@example.com", "password": PASSWORD}
        ),
    ),
    "logout": (
        signals.customer_logged_out,
        lambda s: s.api.client.delete(
            f"/api/customers/sessions/{s.alice['uuid']}", headers=s.first.headers
        ),
    ),
}


#: The operations that record an attempt for throttling first, and how many rows.
ATTEMPTS_RECORDED = {"login": 2, "create": 1, "update": 1}
FAILURES = "evershop_customer_login_failure"


@contextlib.contextmanager
def connected(signal: Any, receiver: Callable[..., Any]) -> Iterator[None]:
    signal.connect(receiver)
    try:
        yield
    finally:
        signal.disconnect(receiver)


def _refuse(sender: Any, **payload: Any) -> None:
    raise RuntimeError("a receiver refused the change")


@pytest.mark.parametrize("operation", list(OPERATIONS))
def test_a_raising_signal_receiver_leaves_every_table_as_it_was(
    app: Flask, shop: Shop, operation: Any
) -> None:
    signal, request = OPERATIONS[operation]
    before = table_contents(app)
    with connected(signal, _refuse):
        response = request(shop)
    assert response.status_code == 500
    assert response.get_json() == INTERNAL
    assert "Set-Cookie" not in response.headers
    after = table_contents(app)
    if operation in ATTEMPTS_RECORDED:
        # A login (or registration) attempt is recorded for throttling before the
        # password is checked (or hashed): the one exception, and one that did not
        # succeed stays recorded.
        recorded = len(after.pop(FAILURES)) - len(before.pop(FAILURES))
        assert recorded == ATTEMPTS_RECORDED[operation]
    assert after == before
    # And the same request succeeds once the receiver is gone: it was the receiver.
    assert request(shop).status_code == 200
    assert table_contents(app) != before


@pytest.mark.parametrize("operation", list(OPERATIONS))
def test_a_raising_commit_hook_leaves_every_table_as_it_was(
    app: Flask, shop: Shop, operation: Any
) -> None:
    _, request = OPERATIONS[operation]
    before = table_contents(app)

    def veto(session: OrmSession) -> None:
        raise RuntimeError("a before_commit hook refused the change")

    sa.event.listen(OrmSession, "before_commit", veto)
    try:
        response = request(shop)
    finally:
        sa.event.remove(OrmSession, "before_commit", veto)
    assert response.status_code == 500
    assert response.get_json() == INTERNAL
    assert table_contents(app) == before


def _locked(statement: str = "COMMIT") -> OperationalError:
    return OperationalError(statement, {}, sqlite3.OperationalError("database is locked"))


@pytest.mark.parametrize("operation", list(OPERATIONS))
def test_a_commit_that_keeps_failing_is_503_and_changes_nothing(
    app: Flask, shop: Shop, operation: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, request = OPERATIONS[operation]
    before = table_contents(app)
    attempts = []

    def locked_commit(self: OrmSession) -> None:
        attempts.append(1)
        raise _locked()

    with monkeypatch.context() as patch:
        patch.setattr(OrmSession, "commit", locked_commit)
        response = request(shop)
    assert response.status_code == 503
    assert response.get_json() == UNAVAILABLE
    assert response.headers["Retry-After"] == "1"
    assert "Set-Cookie" not in response.headers
    assert len(attempts) == 3  # tried again twice: a lock is usually released soon
    assert table_contents(app) == before


@pytest.mark.parametrize("operation", list(OPERATIONS))
def test_a_commit_that_fails_once_is_retried_and_applied_once(
    app: Flask, shop: Shop, operation: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, request = OPERATIONS[operation]
    real_commit = OrmSession.commit
    failures = [_locked()]

    def flaky_commit(self: OrmSession) -> None:
        if failures:
            raise failures.pop()
        real_commit(self)

    with monkeypatch.context() as patch:
        patch.setattr(OrmSession, "commit", flaky_commit)
        response = request(shop)
    assert response.status_code == 200, response.get_json()
    assert not failures
    _assert_applied_once(app, shop, operation)


def _assert_applied_once(app: Any, shop: Shop, operation: str) -> None:
    customers = {row["uuid"]: row for row in table_contents(app)["evershop_customer"]}
    sessions = table_contents(app)["evershop_customer_session"]
    alice = customers.get(shop.alice["uuid"])
    live = [s for s in sessions if s["revoked_at"] is None]
    if operation == "update":
        assert alice is not None
        assert (alice["email"], alice["full_name"], alice["version"]) == (
            "alice@new.example",
            "A2",
            2,
        )
        assert [s["sid"] for s in live] == [shop.first.sid]
    elif operation == "disable":
        assert alice is not None
        assert (alice["status"], alice["version"]) == (0, 2)
        assert live == []
    elif operation == "delete":
        assert alice is None and sessions == []
    elif operation == "login":
        assert len(live) == 3
        # The email's failure is forgotten; the client address's is kept, and so are
        # the two registrations from that address.
        assert len(table_contents(app)[FAILURES]) == 3
        assert alice is not None
        assert alice["password_hash"].startswith("pbkdf2:sha256:1$")
    elif operation == "logout":
        assert live == []
    assert len(customers) == {"create": 3, "delete": 1}.get(operation, 2)


@pytest.mark.parametrize("operation", list(OPERATIONS))
def test_the_response_is_built_after_the_commit_and_without_sql(
    app: Flask, shop: Shop, operation: Any
) -> None:
    signal, request = OPERATIONS[operation]
    events: list[str] = []
    real_commit = OrmSession.commit

    def recording_commit(self: OrmSession) -> None:
        real_commit(self)
        events.append("commit")

    # Outside the request's transaction the change is not visible yet while the signal
    # is being sent, and is visible as soon as the response exists.
    seen_before_commit: list[Any] = []

    def look(sender: Any, **payload: Any) -> None:
        seen_before_commit.append(table_contents(app))

    def record(sender: Any, response: Any, **_: Any) -> None:
        events.append(f"response {response.status_code}")

    def statement(*_: Any) -> None:
        events.append("sql")

    with app.app_context():
        app_engine = db.engine
    before = table_contents(app)
    sa.event.listen(app_engine, "before_cursor_execute", statement)
    try:
        with connected(signal, look), connected(request_finished, record):
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(OrmSession, "commit", recording_commit)
                response = request(shop)
    finally:
        sa.event.remove(app_engine, "before_cursor_execute", statement)
    after = table_contents(app)
    assert response.status_code == 200
    # The change's commit, then the response: nothing after the commit can fail and turn
    # a committed change into an error (or read outside the transaction). (A login commits
    # its attempt record first, before the password is checked.)
    last_commit = len(events) - 1 - events[::-1].index("commit")
    assert events[last_commit:] == ["commit", "response 200"]
    assert "sql" in events
    if operation in ATTEMPTS_RECORDED:
        # Only the attempt record (committed before the password check) is visible.
        [seen] = seen_before_commit
        seen.pop(FAILURES)
        before.pop(FAILURES)
        assert seen == before
    else:
        assert seen_before_commit == [before]
    assert after != before
