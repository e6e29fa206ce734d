"""Races: requests released together decide by the database's constraints and the
version counter, never by luck. No 500, no duplicate, no lost update.

Each race holds every thread at its first write statement (an engine event with a
barrier) until all of them are there, so the writes really overlap: the outcome does not
depend on how the threads happen to be scheduled. On SQLite the app is the example app
(WAL and a busy timeout), as the deployment chapter recommends for several writers.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from .conftest import (
    CHEAP_HASH,
    PASSWORD,
    SECRET_KEY,
    Api,
    AppFactory,
    CheckedClient,
    Database,
    table_contents,
)

#: Seconds any thread may wait at a barrier or to finish; a hang fails instead.
TIMEOUT = 60
RACERS = 8

INSERT_CUSTOMER = re.compile(r"\s*INSERT INTO evershop_customer\b\s*\(", re.I)
UPDATE_CUSTOMER = re.compile(r"\s*UPDATE evershop_customer\b\s+SET", re.I)
DELETE_SESSIONS = re.compile(r"\s*DELETE FROM evershop_customer_session\b", re.I)


@pytest.fixture
def race_app(
    database: Database, app_factory: AppFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Flask]:
    """The app under test: the usual one on the servers, the example app on SQLite."""
    if database.backend != "sqlite":
        yield app_factory()
        return
    from examples.app import create_app

    monkeypatch.setattr(Flask, "auto_find_instance_path", lambda self: str(tmp_path))
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": SECRET_KEY,
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'race.sqlite'}",
            "EXAMPLE_ADMIN_EMAIL": "admin@example.com",
            "EXAMPLE_ADMIN_PASSWORD": "not-used-here",
            "EVERSHOP_CUSTOMER_PASSWORD_HASH_METHOD": CHEAP_HASH,
            "EVERSHOP_CUSTOMER_ALLOW_WEAK_PASSWORD_HASH": True,
        }
    )
    app.test_client_class = CheckedClient
    yield app
    with app.app_context():
        app.extensions["sqlalchemy"].engine.dispose()


def _engine(app: Flask) -> sa.Engine:
    with app.app_context():
        return app.extensions["sqlalchemy"].engine  # type: ignore[no-any-return]


@contextlib.contextmanager
def meeting_at(app: Flask, pattern: re.Pattern[str], parties: int) -> Iterator[list[str]]:
    """Hold each of ``parties`` threads at its first statement matching ``pattern`` until
    all of them have reached theirs. Yields the matching statements as they run (a retry
    after a lost race shows up as one more)."""
    barrier = threading.Barrier(parties)
    arrived = threading.local()
    statements: list[str] = []

    def listener(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if pattern.match(statement):
            statements.append(statement)
            if not getattr(arrived, "done", False):
                arrived.done = True
                barrier.wait(timeout=TIMEOUT)

    engine = _engine(app)
    sa.event.listen(engine, "before_cursor_execute", listener)
    try:
        yield statements
    finally:
        sa.event.remove(engine, "before_cursor_execute", listener)


def race(app: Flask, *calls: Callable[[Any], Any]) -> list[Any]:
    """Run each call with its own test client in its own thread, all released together by
    a barrier; return their responses in order."""
    start = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)
    errors: list[BaseException] = []

    def run(index: int, call: Callable[[Any], Any]) -> None:
        client = app.test_client(use_cookies=False)
        try:
            start.wait(timeout=TIMEOUT)
            results[index] = call(client)
        except BaseException as exc:  # reported in the main thread
            errors.append(exc)

    threads = [
        threading.Thread(target=run, args=(i, call), daemon=True) for i, call in enumerate(calls)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)
    assert not any(thread.is_alive() for thread in threads), "a racing request hung"
    if errors:
        raise errors[0]
    return results


def case_variants(email: str, count: int) -> list[str]:
    """``count`` spellings of ``email`` that differ only in letter case."""
    letters = [i for i, c in enumerate(email) if c.isalpha()]
    variants = []
    for n in range(count):
        chars = list(email)
        for k, position in enumerate(letters):
            if n >> (k % 3) & 1:
                chars[position] = chars[position].upper()
        variants.append("".join(chars))
    assert len(set(variants)) == count
    return variants


def customers(app: Flask) -> list[dict[str, Any]]:
    return table_contents(app)["evershop_customer"]


def test_concurrent_registrations_of_one_email_make_one_customer(race_app: Flask) -> None:
    emails = case_variants("racer@example.com", RACERS)

    def register(email: str) -> Callable[[Any], Any]:
        body = {"email": email, "password": "a long enough password", "full_name": "Racer"}
        return lambda client: client.post("/api/customers", json=body)

    with meeting_at(race_app, INSERT_CUSTOMER, RACERS) as inserts:
        responses = race(race_app, *(register(email) for email in emails))

    assert len(inserts) == RACERS
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [409] * (RACERS - 1), [r.get_json() for r in responses]
    for response in responses:
        if response.status_code == 409:
            assert response.get_json() == {
                "error": {"status": 409, "message": "Email is already used"}
            }
    (winner,) = [r.get_json()["data"] for r in responses if r.status_code == 200]
    rows = customers(race_app)
    assert len(rows) == 1
    assert (rows[0]["uuid"], rows[0]["email"]) == (winner["uuid"], winner["email"])


def test_two_updates_racing_onto_one_email_move_only_one(race_app: Flask) -> None:
    api = Api(race_app, race_app.test_client(use_cookies=False))
    first, second = api.register("first@example.com"), api.register("second@example.com")
    logins = [api.login("first@example.com"), api.login("second@example.com")]
    targets = ["taken@example.com", "TAKEN@Example.com"]

    def move(customer: dict[str, Any], login: Any, email: str) -> Callable[[Any], Any]:
        url = f"/api/customers/{customer['uuid']}"
        body = {"email": email, "current_password": PASSWORD}
        return lambda client: client.patch(url, json=body, headers=login.headers)

    with meeting_at(race_app, UPDATE_CUSTOMER, 2):
        responses = race(
            race_app, move(first, logins[0], targets[0]), move(second, logins[1], targets[1])
        )

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 409], [r.get_json() for r in responses]
    winner_index = 0 if responses[0].status_code == 200 else 1
    loser = (first, second)[1 - winner_index]
    winner = (first, second)[winner_index]
    assert _customer_row(race_app, loser["uuid"])["email"] == loser["email"]  # untouched
    assert _customer_row(race_app, winner["uuid"])["email"] == targets[winner_index]
    assert len(customers(race_app)) == 2


def _customer_row(app: Flask, uuid: str) -> dict[str, Any]:
    [row] = [row for row in customers(app) if row["uuid"] == uuid]
    return row


def test_concurrent_patches_without_if_match_lose_nothing(race_app: Flask) -> None:
    api = Api(race_app, race_app.test_client(use_cookies=False))
    customer = api.register("both@example.com", full_name="Before")
    login = api.login("both@example.com")
    url = f"/api/customers/{customer['uuid']}"

    def patch(body: dict[str, Any]) -> Callable[[Any], Any]:
        return lambda client: client.patch(url, json=body, headers=login.headers)

    with meeting_at(race_app, UPDATE_CUSTOMER, 2) as updates:
        responses = race(
            race_app,
            patch({"full_name": "After"}),
            patch({"email": "moved@example.com", "current_password": PASSWORD}),
        )

    assert [r.status_code for r in responses] == [200, 200], [r.get_json() for r in responses]
    # Both wrote against version 1: one lost at the database and was retried on version 2.
    assert len(updates) == 3
    row = _customer_row(race_app, customer["uuid"])
    assert (row["full_name"], row["email"], row["version"]) == ("After", "moved@example.com", 3)
    bodies = [r.get_json()["data"] for r in responses]
    assert any(b["full_name"] == "After" and b["email"] == "moved@example.com" for b in bodies)
    assert sorted(r.headers["ETag"] for r in responses) == [
        f'"{customer["uuid"]}.2"',
        f'"{customer["uuid"]}.3"',
    ]


def test_concurrent_patches_with_the_same_if_match_one_wins(race_app: Flask) -> None:
    api = Api(race_app, race_app.test_client(use_cookies=False))
    created = api.client.post(
        "/api/customers",
        json={"email": "tag@example.com", "password": "a long enough password", "full_name": "0"},
    )
    customer, etag = created.get_json()["data"], created.headers["ETag"]
    login = api.login("tag@example.com", "a long enough password")
    url = f"/api/customers/{customer['uuid']}"
    headers = {**login.headers, "If-Match": etag}

    def patch(name: str) -> Callable[[Any], Any]:
        return lambda client: client.patch(url, json={"full_name": name}, headers=headers)

    with meeting_at(race_app, UPDATE_CUSTOMER, 2) as updates:
        responses = race(race_app, patch("One"), patch("Two"))

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 412], [r.get_json() for r in responses]
    assert len(updates) == 2  # the loser is not retried: its precondition no longer holds
    (refused,) = [r for r in responses if r.status_code == 412]
    assert refused.get_json()["error"]["status"] == 412
    (accepted,) = [r.get_json()["data"] for r in responses if r.status_code == 200]
    row = _customer_row(race_app, customer["uuid"])
    assert (row["full_name"], row["version"]) == (accepted["full_name"], 2)


def test_a_patch_racing_a_delete_ends_in_one_of_the_serial_orders(race_app: Flask) -> None:
    api = Api(race_app, race_app.test_client(use_cookies=False))
    customer = api.register("gone@example.com")
    login = api.login("gone@example.com")
    url = f"/api/customers/{customer['uuid']}"
    either = re.compile(f"{UPDATE_CUSTOMER.pattern}|{DELETE_SESSIONS.pattern}", re.I)

    with meeting_at(race_app, either, 2):
        patched, deleted = race(
            race_app,
            lambda client: client.patch(url, json={"full_name": "Late"}, headers=login.headers),
            lambda client: client.delete(url, headers=login.headers),
        )

    assert deleted.status_code == 200, deleted.get_json()
    # PATCH first (200, and DELETE answers with the patched customer), or DELETE first
    # (the PATCH then finds no customer: 404, or its token no longer verifies: 401).
    assert patched.status_code in (200, 401, 404), patched.get_json()
    if patched.status_code == 200:
        assert deleted.get_json()["data"]["full_name"] == "Late"
    contents = table_contents(race_app)
    assert contents["evershop_customer"] == []
    assert contents["evershop_customer_session"] == []
