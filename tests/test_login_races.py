"""Races around a login and an update, each held at a chosen point by an event, never by
sleeping: a login whose password check is overtaken by a password change, a disable or
a delete; a hash upgrade overtaken by a password change; a PATCH without ``If-Match``
overtaken again and again; MariaDB's snapshot isolation (error 1020).

Holding the login inside its password check also proves that it holds no lock there:
the overtaking request must finish while the login waits, or the test fails.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from .conftest import (
    OTHER_PASSWORD,
    PASSWORD,
    Api,
    AppFactory,
    Database,
    db,
    state_of,
    table_contents,
)
from .held_requests import mariadb_snapshot_isolation

#: Seconds a helper thread may take; a hang fails instead.
TIMEOUT = 30
INVALID = {"error": {"status": 400, "message": "Invalid email or password"}}

T = TypeVar("T")


def _in_thread(call: Callable[[], T]) -> T:
    """Run ``call`` in another thread to its end (it must not wait for the caller)."""
    result: list[T] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            result.append(call())
        except BaseException as exc:  # reported here
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(TIMEOUT)
    assert not thread.is_alive(), "the overtaking request waited for the held one"
    if errors:
        raise errors[0]
    return result[0]


def _overtaken_password_check(
    app: Flask, monkeypatch: pytest.MonkeyPatch, overtake: Callable[[], Any]
) -> list[Any]:
    """Make the next password check run ``overtake`` (in another thread, to its end)
    once the password has been found right. Returns what ``overtake`` answered."""
    hasher = state_of(app).hasher
    real_verify = hasher.verify
    answers: list[Any] = []
    overtaken = threading.Event()  # once only: ``overtake`` checks passwords too

    def verify(stored: str | None, password: str) -> bool:
        valid = real_verify(stored, password)
        if valid and not overtaken.is_set():
            overtaken.set()
            answers.append(_in_thread(overtake))
        return valid

    monkeypatch.setattr(hasher, "verify", verify)
    return answers


def _live_sessions(app: Flask) -> list[dict[str, Any]]:
    return [
        row for row in table_contents(app)["evershop_customer_session"] if row["revoked_at"] is None
    ]


def prepare_change(change: str, api: Api, alice: dict[str, Any]) -> Callable[[], Any]:
    """The request that overtakes the login, with its credentials made beforehand."""
    url = f"/api/customers/{alice['uuid']}"
    client = api.app.test_client(use_cookies=False)
    if change == "password":  # the victim, with a session of their own
        headers = api.login("alice@example.com").headers
        body = {"password": OTHER_PASSWORD, "current_password": PASSWORD}
        return lambda: client.patch(url, json=body, headers=headers)
    admin = api.admin_headers()
    if change == "delete":
        return lambda: client.delete(url, headers=admin)
    change_body: dict[str, Any] = (
        {"status": 0} if change == "disable" else {"email": "alice@new.example"}
    )
    return lambda: client.patch(url, json=change_body, headers=admin)


@pytest.mark.parametrize("route", ["/api/customers/sessions", "/api/customer/tokens"])
@pytest.mark.parametrize("change", ["password", "disable", "delete", "email"])
def test_a_login_overtaken_by_a_change_of_the_customer_fails(
    app: Flask,
    api: Api,
    client: FlaskClient,
    alice: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    change: Any,
    route: str,
) -> None:
    """Both login routes alike: the usual one and a headless client's."""
    overtake = prepare_change(change, api, alice)
    before = {row["sid"] for row in _live_sessions(app)}
    answers = _overtaken_password_check(app, monkeypatch, overtake)
    response = client.post(route, json={"email": "alice@example.com", "password": PASSWORD})
    [changed] = answers
    assert changed.status_code == 200, changed.get_json()
    # The same answer as a wrong password, and no session was written.
    assert response.status_code == 400 and response.get_json() == INVALID
    assert "Set-Cookie" not in response.headers
    assert {row["sid"] for row in _live_sessions(app)} <= before
    if change == "password":
        monkeypatch.undo()
        old = {"email": "alice@example.com", "password": PASSWORD}
        assert client.post(route, json=old).status_code == 400
        new = {"email": "alice@example.com", "password": OTHER_PASSWORD}
        assert client.post(route, json=new).status_code == 200


def _older_app(app_factory: Callable[..., Flask]) -> Api:
    """The API of an app hashing with an older method: its customers' next login on the
    usual app re-hashes their password."""
    older = app_factory(EVERSHOP_CUSTOMER_PASSWORD_HASH_METHOD="pbkdf2:sha256:2")
    return Api(older, older.test_client(use_cookies=False))


def test_a_hash_upgrade_overtaken_by_a_password_change_keeps_the_new_password(
    app_factory: AppFactory,
    app: Flask,
    api: Api,
    client: FlaskClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Registered under an older method: the next login re-hashes the password.
    older = _older_app(app_factory)
    alice = older.register("alice@example.com")
    admin = api.admin_headers()
    answers = _overtaken_password_check(
        app,
        monkeypatch,
        lambda: app.test_client(use_cookies=False).patch(
            f"/api/customers/{alice['uuid']}", json={"password": OTHER_PASSWORD}, headers=admin
        ),
    )
    response = client.post(
        "/api/customers/sessions", json={"email": "alice@example.com", "password": PASSWORD}
    )
    assert answers[0].status_code == 200
    assert response.status_code == 400
    monkeypatch.undo()
    old = {"email": "alice@example.com", "password": PASSWORD}
    new = {"email": "alice@example.com", "password": OTHER_PASSWORD}
    assert client.post("/api/customers/sessions", json=old).status_code == 400
    assert client.post("/api/customers/sessions", json=new).status_code == 200


def test_a_hash_upgrade_writes_only_over_the_hash_it_verified(
    app_factory: AppFactory, app: Flask, client: FlaskClient
) -> None:
    older = _older_app(app_factory)
    older.register("alice@example.com")
    statements: list[str] = []
    with app.app_context():
        engine = db.engine

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(" ".join(statement.split()))

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        body = {"email": "alice@example.com", "password": PASSWORD}
        assert client.post("/api/customers/sessions", json=body).status_code == 200
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    [upgrade] = [s for s in statements if s.startswith("UPDATE evershop_customer SET")]
    assert "evershop_customer.password_hash = " in upgrade.partition(" WHERE ")[2]
    # The re-read that decides whether the session may be written locks the row.
    locked = [s for s in statements if s.startswith("SELECT") and "FOR UPDATE" in s]
    assert locked or engine.dialect.name == "sqlite"  # SQLite: BEGIN IMMEDIATE instead
    if engine.dialect.name == "sqlite":
        assert "BEGIN IMMEDIATE" in statements


# -- PATCH without If-Match ------------------------------------------------------------


class Interferer:
    """Another writer that changes the customer's row from its own connection, without
    waiting for any lock: it fails at once where the row (or SQLite's file) is locked."""

    def __init__(self, app: Flask, customer_id: int) -> None:
        with app.app_context():
            url = db.engine.url
        self.backend = url.get_backend_name()
        options = {"connect_args": {"timeout": 0}} if self.backend == "sqlite" else {}
        self.engine = sa.create_engine(url, **options)
        self.customer_id = customer_id
        self.outcomes: list[str] = []

    def __call__(self) -> None:
        self.outcomes.append(_in_thread(self._write))

    def _write(self) -> str:
        try:
            with self.engine.connect() as connection:
                if self.backend == "sqlite":
                    connection.exec_driver_sql("BEGIN IMMEDIATE")
                    lock = ""
                else:
                    lock = " FOR UPDATE NOWAIT"
                connection.exec_driver_sql(
                    f"SELECT version FROM evershop_customer WHERE customer_id = {self.customer_id}"
                    + lock
                )
                connection.exec_driver_sql(
                    "UPDATE evershop_customer SET version = version + 1,"
                    f" full_name = 'Interferer' WHERE customer_id = {self.customer_id}"
                )
                connection.commit()
            return "written"
        except sa.exc.OperationalError:
            return "locked out"


UPDATE_CUSTOMER = "UPDATE evershop_customer SET"


@pytest.fixture
def interfering(app: Flask) -> Iterator[Callable[..., Interferer]]:
    """``interfering(customer_id, before=...)``: an :class:`Interferer` that writes
    whenever the request under test (in this thread) is about to run a statement that
    starts with ``before`` (by default, an UPDATE of the customer)."""
    made: list[tuple[sa.Engine, Any]] = []
    with app.app_context():
        engine = db.engine
    test_thread = threading.current_thread()

    def factory(customer_id: int, before: str = UPDATE_CUSTOMER) -> Interferer:
        interferer = Interferer(app, customer_id)

        def listener(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            if threading.current_thread() is test_thread and statement.lstrip().startswith(before):
                interferer()

        sa.event.listen(engine, "before_cursor_execute", listener)
        made.append((interferer.engine, listener))
        return interferer

    yield factory
    for interferer_engine, listener in made:
        sa.event.remove(engine, "before_cursor_execute", listener)
        interferer_engine.dispose()


@pytest.mark.parametrize("by", ["customer", "admin"])
def test_a_patch_without_if_match_overtaken_every_time_still_succeeds(
    api: Api,
    client: FlaskClient,
    alice: dict[str, Any],
    interfering: Callable[..., Interferer],
    by: Any,
) -> None:
    """Before each of its writes another writer commits a change: the first write finds
    a new version; the retry holds the row, so the other writer cannot get in again."""
    headers = api.login("alice@example.com").headers if by == "customer" else api.admin_headers()
    interferer = interfering(alice["customer_id"])
    response = client.patch(
        f"/api/customers/{alice['uuid']}", json={"full_name": "Mine"}, headers=headers
    )
    assert response.status_code == 200, response.get_json()
    assert interferer.outcomes == ["written", "locked out"]
    data = response.get_json()["data"]
    assert data["full_name"] == "Mine"
    assert response.headers["ETag"] == f'"{alice["uuid"]}.3"'  # on top of the other write


def test_a_patch_with_a_stale_if_match_is_412_and_not_retried(
    api: Api, client: FlaskClient, alice: dict[str, Any], interfering: Callable[..., Interferer]
) -> None:
    interferer = interfering(alice["customer_id"])
    headers = {**api.admin_headers(), "If-Match": f'"{alice["uuid"]}.1"'}
    response = client.patch(
        f"/api/customers/{alice['uuid']}", json={"full_name": "Mine"}, headers=headers
    )
    assert response.status_code == 412
    assert interferer.outcomes == ["written"]


def test_a_delete_without_if_match_overtaken_still_deletes(
    api: Api, client: FlaskClient, alice: dict[str, Any], interfering: Callable[..., Interferer]
) -> None:
    admin = api.admin_headers()
    # The customer changes after the admin's request read it, before each delete.
    interferer = interfering(
        alice["customer_id"], before="DELETE FROM evershop_customer_refresh_token"
    )
    response = client.delete(f"/api/customers/{alice['uuid']}", headers=admin)
    assert response.status_code == 200, response.get_json()
    assert interferer.outcomes == ["written", "locked out"]
    assert response.get_json()["data"]["full_name"] == "Interferer"  # as it was deleted
    assert table_contents(api.app)["evershop_customer"] == []


def test_mariadb_snapshot_isolation_conflicts_are_retried(
    app_factory: AppFactory, database: Database
) -> None:
    """MariaDB 11.6.2+ turns ``innodb_snapshot_isolation`` on by default: a write to a
    row changed since the transaction's snapshot fails with error 1020. Turned on here
    (the server of this suite may be older), it must be retried like a deadlock."""
    app = app_factory()
    with mariadb_snapshot_isolation(app, database) as errors:
        api = Api(app, app.test_client(use_cookies=False))
        alice = api.register("alice@example.com")
        admin = api.admin_headers()  # an admin's first write is optimistic
        interferer = Interferer(app, alice["customer_id"])
        test_thread = threading.current_thread()

        def overtake(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            if threading.current_thread() is test_thread and statement.startswith(UPDATE_CUSTOMER):
                if not interferer.outcomes:
                    interferer()

        with app.app_context():
            engine = db.engine
        sa.event.listen(engine, "before_cursor_execute", overtake)
        try:
            response = api.client.patch(
                f"/api/customers/{alice['uuid']}", json={"full_name": "Mine"}, headers=admin
            )
        finally:
            sa.event.remove(engine, "before_cursor_execute", overtake)
            interferer.engine.dispose()
    assert errors == [1020]  # the first write lost to the snapshot rule...
    assert response.status_code == 200, response.get_json()  # ...and was retried
    assert response.get_json()["data"]["full_name"] == "Mine"


# -- a session ended while its request is in flight --------------------------------------

STOLEN_PASSWORD = "the attacker owns this now"


def _overtaken_hash(
    app: Flask, monkeypatch: pytest.MonkeyPatch, overtake: Callable[[], Any]
) -> list[Any]:
    """Run ``overtake`` (in another thread, to its end) while the next request hashes
    ``STOLEN_PASSWORD``: no lock may be held then."""
    hasher = state_of(app).hasher
    real_hash = hasher.hash
    answers: list[Any] = []

    def hash_(password: str) -> str:
        stored = real_hash(password)
        if password == STOLEN_PASSWORD and not answers:
            answers.append(_in_thread(overtake))
        return stored

    monkeypatch.setattr(hasher, "hash", hash_)
    return answers


@pytest.mark.parametrize(
    "ending", ["own password change", "admin password change", "disable", "logout of all"]
)
@pytest.mark.parametrize("method", ["patch", "delete"])
def test_a_write_whose_session_ends_in_flight_writes_nothing(
    app: Flask,
    api: Api,
    client: FlaskClient,
    monkeypatch: pytest.MonkeyPatch,
    ending: Any,
    method: Any,
) -> None:
    """A stolen token's PATCH (or DELETE) is overtaken by the victim ending its session:
    it must not land on top (the victim's change wins, the thief gets 401)."""
    alice = api.register("alice@example.com")
    url = f"/api/customers/{alice['uuid']}"
    thief, victim = api.login("alice@example.com"), api.login("alice@example.com")
    admin = api.admin_headers()
    other = app.test_client(use_cookies=False)
    overtake = {
        "own password change": lambda: other.patch(
            url,
            json={"password": OTHER_PASSWORD, "current_password": PASSWORD},
            headers=victim.headers,
        ),
        "admin password change": lambda: other.patch(
            url, json={"password": OTHER_PASSWORD}, headers=admin
        ),
        "disable": lambda: other.patch(url, json={"status": 0}, headers=admin),
        "logout of all": lambda: other.delete(
            f"/api/customers/sessions/{alice['uuid']}", headers=victim.headers
        ),
    }[ending]
    if method == "delete":
        # The delete hashes nothing: hold it just before it takes its lock.
        answers: list[Any] = []
        with app.app_context():
            engine = db.engine
        test_thread = threading.current_thread()

        def hold(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            locking = statement.startswith("BEGIN IMMEDIATE") or "FOR UPDATE" in statement
            if threading.current_thread() is test_thread and locking and not answers:
                answers.append(_in_thread(overtake))

        sa.event.listen(engine, "before_cursor_execute", hold)
        try:
            response = client.delete(url, headers=thief.headers)
        finally:
            sa.event.remove(engine, "before_cursor_execute", hold)
    else:
        answers = _overtaken_hash(app, monkeypatch, overtake)
        # A thief with the token and the password (re-authentication stops one without).
        body = {
            "password": STOLEN_PASSWORD,
            "email": "mallory@evil.example",
            "current_password": PASSWORD,
        }
        response = client.patch(url, json=body, headers=thief.headers)
    [overtaking] = answers
    assert overtaking.status_code == 200, overtaking.get_json()
    assert response.status_code == 401, response.get_json()
    monkeypatch.undo()
    rows = table_contents(app)["evershop_customer"]
    assert len(rows) == 1 and rows[0]["email"] != "mallory@evil.example"
    stolen = {"email": "mallory@evil.example", "password": STOLEN_PASSWORD}
    assert client.post("/api/customers/sessions", json=stolen).status_code == 400


def test_two_logins_overlapping_in_a_hash_upgrade_both_succeed_and_count_nothing(
    app_factory: AppFactory, app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second login finds the hash the first one upgraded: the same password, so it
    logs in too (one more check says so), and neither counts as a failure."""
    _older_app(app_factory).register("alice@example.com")
    counted = table_contents(app)["evershop_customer_login_failure"]  # the registration
    body = {"email": "alice@example.com", "password": PASSWORD}
    answers = _overtaken_password_check(
        app,
        monkeypatch,
        lambda: app.test_client(use_cookies=False).post("/api/customers/sessions", json=body),
    )
    response = client.post("/api/customers/sessions", json=body)
    assert answers[0].status_code == 200, answers[0].get_json()
    assert response.status_code == 200, response.get_json()
    assert len(_live_sessions(app)) == 2
    assert table_contents(app)["evershop_customer_login_failure"] == counted
    [customer] = table_contents(app)["evershop_customer"]
    assert not customer["password_hash"].startswith("pbkdf2:sha256:2$")
