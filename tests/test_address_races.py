"""Races around addresses, each held at a chosen statement by an event: two requests
making two addresses the default (exactly one stays), two creates at the limit (one is
409), and address writes overtaken by a password change or by the customer's deletion.
On every database: the customer's row lock (SQLite's write lock) puts them in line.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask
from werkzeug.test import TestResponse

from .conftest import OTHER_PASSWORD, PASSWORD, Api, AppFactory, Login, table_contents
from .held_requests import TIMEOUT, Request, gates
from .test_addresses import MINE, PARIS, SAN_FRANCISCO, add

ADDRESS_WRITE = "UPDATE evershop_customer_address"
COUNT = "SELECT count(*)"


def locks_the_customer(statement: str) -> bool:
    """The statement that takes the customer's row lock (SQLite: the write lock)."""
    return "FOR UPDATE" in statement or statement.startswith("BEGIN IMMEDIATE")


def in_thread(name: str, call: Callable[[], TestResponse]) -> Request:
    request = Request(name, call)
    request.start()
    return request


def defaults(app: Flask) -> list[str]:
    rows = table_contents(app)["evershop_customer_address"]
    return [row["uuid"] for row in rows if row["is_default"]]


def held_then(app: Flask, first: Request, where: str, second: Request) -> None:
    """``first`` runs until just after the statement ``where`` (it holds the customer's
    lock there), ``second`` starts and reaches the lock, then ``first`` goes on."""
    with gates(app) as gate:
        held = gate.at(first.name, "after", where, hold=True)
        waiting = gate.at(second.name, "before", locks_the_customer, hold=False)
        first.start()
        assert held.wait(TIMEOUT)
        second.start()
        assert waiting.wait(TIMEOUT)
        gate.open(first.name, "after", where)
        first.join(TIMEOUT)
        second.join(TIMEOUT)


def test_two_requests_making_two_defaults_leave_exactly_one(
    app: Flask, api: Api, alice_login: Login
) -> None:
    first = add(api.client, alice_login)
    second = add(api.client, alice_login, PARIS)
    client_a = app.test_client(use_cookies=False)
    client_b = app.test_client(use_cookies=False)
    make_default = {"is_default": True}
    a = Request(
        "A",
        lambda: client_a.patch(
            f"{MINE}/{first['uuid']}", json=make_default, headers=alice_login.headers
        ),
    )
    b = Request(
        "B",
        lambda: client_b.patch(
            f"{MINE}/{second['uuid']}", json=make_default, headers=alice_login.headers
        ),
    )
    held_then(app, a, ADDRESS_WRITE, b)
    assert a.finish().status_code == 200 and b.finish().status_code == 200
    assert defaults(app) == [second["uuid"]]  # the later one, and only it


def test_two_creates_at_the_limit_give_one_409(app_factory: AppFactory) -> None:
    app = app_factory(EVERSHOP_CUSTOMER_MAX_ADDRESSES=2)
    api = Api(app, app.test_client(use_cookies=False))
    api.register("alice@example.com")
    login = api.login("alice@example.com")
    add(api.client, login)
    clients = [app.test_client(use_cookies=False) for _ in range(2)]
    a = Request("A", lambda: clients[0].post(MINE, json=SAN_FRANCISCO, headers=login.headers))
    b = Request("B", lambda: clients[1].post(MINE, json=PARIS, headers=login.headers))
    held_then(app, a, COUNT, b)
    statuses = sorted([a.finish().status_code, b.finish().status_code])
    assert statuses == [200, 409]
    assert len(table_contents(app)["evershop_customer_address"]) == 2


def _overtaken(app: Flask, write: Callable[[], TestResponse], overtake: Callable[[], Any]) -> Any:
    """``write`` stops just before it takes the customer's lock; ``overtake`` runs to its
    end meanwhile; then ``write`` goes on. Its answer."""
    with gates(app) as gate:
        about_to_lock = gate.at("A", "before", locks_the_customer, hold=True)
        held = in_thread("A", write)
        assert about_to_lock.wait(TIMEOUT)
        overtaking = in_thread("B", overtake).finish()
        assert overtaking.status_code == 200, overtaking.get_json()
        gate.open("A", "before", locks_the_customer)
        return held.finish()


def test_an_address_write_whose_session_ends_meanwhile_writes_nothing(
    app: Flask, api: Api, alice: dict[str, Any], alice_login: Login
) -> None:
    """A password change made elsewhere ends this session while its write is in flight:
    the write finds it ended, under the customer's lock, and changes nothing."""
    other = api.login("alice@example.com")
    client = app.test_client(use_cookies=False)
    change = {"password": OTHER_PASSWORD, "current_password": PASSWORD}
    answer = _overtaken(
        app,
        lambda: client.post(MINE, json=SAN_FRANCISCO, headers=alice_login.headers),
        lambda: app.test_client(use_cookies=False).patch(
            f"/api/customers/{alice['uuid']}", json=change, headers=other.headers
        ),
    )
    assert answer.status_code == 401, answer.get_json()
    assert table_contents(app)["evershop_customer_address"] == []


def test_an_address_write_for_a_customer_deleted_meanwhile_is_404(
    app: Flask, api: Api, alice: dict[str, Any]
) -> None:
    admin = api.admin_headers()
    client = app.test_client(use_cookies=False)
    base = f"/api/customers/{alice['uuid']}/addresses"
    answer = _overtaken(
        app,
        lambda: client.post(base, json=SAN_FRANCISCO, headers=admin),
        lambda: app.test_client(use_cookies=False).delete(
            f"/api/customers/{alice['uuid']}", headers=admin
        ),
    )
    assert answer.get_json() == {"error": {"status": 404, "message": "Invalid customer id"}}
    assert table_contents(app)["evershop_customer_address"] == []
