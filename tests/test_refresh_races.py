"""Races around a refresh, each held at a chosen statement by an event, never by sleeping:
two refreshes with one token (the loser read it unspent: a lost race, nothing ends; or it
read it spent: a replay, the session ends), and a refresh overtaken by a logout or a
delete of its customer (whichever commits first, no token of the session works after
both). On every database, MariaDB's snapshot isolation included.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jwt
import pytest
from flask import Flask
from werkzeug.test import TestResponse

from .conftest import Api, AppFactory, Database, TokenPair, table_contents
from .held_requests import TIMEOUT, Request, gates, mariadb_snapshot_isolation

INVALID_REFRESH = {"error": {"status": 401, "message": "Invalid refresh token"}}
SELECT_TOKEN = "SELECT evershop_customer_refresh_token.spent_at"
SPEND_TOKEN = "UPDATE evershop_customer_refresh_token"


def refresh_in(api: Api, name: str, token: str) -> Request:
    client = api.app.test_client(use_cookies=False)
    request = Request(
        name, lambda: client.post("/api/customer/token/refresh", json={"refreshToken": token})
    )
    request.start()
    return request


def session_row(app: Flask) -> dict[str, Any]:
    [row] = table_contents(app)["evershop_customer_session"]
    return row


def me(api: Api, access: str) -> int:
    headers = {"Authorization": f"Bearer {access}"}
    return api.client.get("/api/customers/me", headers=headers).status_code


@pytest.fixture
def pair(api: Api, alice: dict[str, Any]) -> TokenPair:
    return api.tokens("alice@example.com")


def lost_race(api: Api, pair: TokenPair) -> tuple[TestResponse, TestResponse]:
    """Refresh A spends the token and is held before its commit; refresh B reads it
    unspent and reaches its own UPDATE; then A commits. Their answers."""
    with gates(api.app) as gate:
        a_spent = gate.at("A", "after", SPEND_TOKEN, hold=True)
        b_spends = gate.at("B", "before", SPEND_TOKEN, hold=False)
        first = refresh_in(api, "A", pair.refresh)
        assert a_spent.wait(TIMEOUT)
        second = refresh_in(api, "B", pair.refresh)
        assert b_spends.wait(TIMEOUT)  # B read the token unspent: A has not committed
        gate.open("A", "after", SPEND_TOKEN)
        return first.finish(), second.finish()


def test_two_refreshes_with_one_token_one_wins_and_the_loser_ends_nothing(
    api: Api, pair: TokenPair
) -> None:
    won, lost = lost_race(api, pair)
    assert won.status_code == 200, won.get_json()
    assert (lost.status_code, lost.get_json()) == (401, INVALID_REFRESH)
    assert session_row(api.app)["revoked_at"] is None
    tokens = won.get_json()["data"]
    assert me(api, tokens["accessToken"]) == 200
    assert api.refresh(tokens["refreshToken"]).status_code == 200


def test_a_refresh_that_reads_the_token_after_the_winner_committed_is_a_replay(
    api: Api, pair: TokenPair
) -> None:
    """Arriving after the winner committed, the loser holds a spent token: the same
    answer as any replay, and the session ends."""
    with gates(api.app) as gate:
        b_reads = gate.at("B", "before", SELECT_TOKEN, hold=True)
        second = refresh_in(api, "B", pair.refresh)
        assert b_reads.wait(TIMEOUT)
        won = api.refresh(pair.refresh)  # runs to its commit while B waits to read
        gate.open("B", "before", SELECT_TOKEN)
        replay = second.finish()
    assert won.status_code == 200
    assert (replay.status_code, replay.get_json()) == (401, INVALID_REFRESH)
    assert session_row(api.app)["revoked_at"] is not None
    assert me(api, won.get_json()["data"]["accessToken"]) == 401


def test_mariadb_snapshot_isolation_makes_the_loser_a_lost_race_still(
    app_factory: AppFactory, database: Database
) -> None:
    """With ``innodb_snapshot_isolation`` (on by default from MariaDB 11.6.2) the loser's
    UPDATE fails with error 1020 and its unit runs again, reading the token spent. It had
    read it unspent first: a lost race, not a replay."""
    app = app_factory()
    with mariadb_snapshot_isolation(app, database) as errors:
        api = Api(app, app.test_client(use_cookies=False))
        api.register("alice@example.com")
        won, lost = lost_race(api, api.tokens("alice@example.com"))
    assert errors == [1020]
    assert won.status_code == 200
    assert (lost.status_code, lost.get_json()) == (401, INVALID_REFRESH)
    assert session_row(app)["revoked_at"] is None


def ends_the_session(statement: str) -> bool:
    return statement.startswith(
        ("UPDATE evershop_customer_session", "DELETE FROM evershop_customer_session")
    )


def _overtaken_refresh(
    api: Api, pair: TokenPair, overtake: Callable[[], TestResponse]
) -> tuple[TestResponse, TestResponse]:
    """Refresh A reads its token unspent and its session live; then ``overtake`` starts
    and reaches the statement that ends the session (on PostgreSQL it waits there for
    A, which share-locked the session; elsewhere it runs to its end); then A goes on.
    Both answers."""
    with gates(api.app) as gate:
        a_read = gate.at("A", "before", SPEND_TOKEN, hold=True)
        b_ends = gate.at("B", "before", ends_the_session, hold=False)
        refresh = refresh_in(api, "A", pair.refresh)
        assert a_read.wait(TIMEOUT)
        other = Request("B", overtake)
        other.start()
        assert b_ends.wait(TIMEOUT)
        gate.open("A", "before", SPEND_TOKEN)
        return refresh.finish(), other.finish()


def assert_no_token_of_the_session_works(
    api: Api, pair: TokenPair, refreshed: TestResponse
) -> None:
    """Whichever came first, nothing of the session works afterwards: either the refresh
    was refused, or the tokens it answered were ended with their session."""
    tokens = [pair.access]
    if refreshed.status_code == 200:
        data = refreshed.get_json()["data"]
        tokens.append(data["accessToken"])
        assert api.refresh(data["refreshToken"]).get_json() == INVALID_REFRESH
    else:
        assert refreshed.get_json() == INVALID_REFRESH
    assert all(me(api, token) == 401 for token in tokens)


def test_a_refresh_overtaken_by_a_logout_answers_no_live_tokens(api: Api, pair: TokenPair) -> None:
    sid = jwt.decode(pair.access, options={"verify_signature": False})["sid"]
    client = api.app.test_client(use_cookies=False)
    refreshed, logout = _overtaken_refresh(
        api, pair, lambda: client.delete(f"/api/customers/sessions/{sid}", headers=pair.headers)
    )
    assert logout.status_code == 200
    assert_no_token_of_the_session_works(api, pair, refreshed)


def test_a_refresh_overtaken_by_a_delete_answers_no_live_tokens(
    api: Api, alice: dict[str, Any], pair: TokenPair
) -> None:
    """Whether the database deletes the token with its session (a foreign key) or not
    (SQLite without ``PRAGMA foreign_keys``)."""
    client = api.app.test_client(use_cookies=False)
    admin = api.admin_headers()
    refreshed, deleted = _overtaken_refresh(
        api, pair, lambda: client.delete(f"/api/customers/{alice['uuid']}", headers=admin)
    )
    assert deleted.status_code == 200
    assert table_contents(api.app)["evershop_customer_session"] == []
    assert (
        refreshed.status_code == 401
        or api.refresh(refreshed.get_json()["data"]["refreshToken"]).get_json() == INVALID_REFRESH
    )
