"""Blinker signals: one per change, the app as sender, never a password or a hash."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

import pytest
from flask import Flask
from flask.testing import FlaskClient

from flask_evershop_customer import signals

from .conftest import OTHER_PASSWORD, PASSWORD, Api, AppFactory, assert_no_secrets

ALL = [
    signals.customer_created,
    signals.customer_updated,
    signals.customer_deleted,
    signals.customer_logged_in,
    signals.customer_logged_out,
]

#: What ``recording`` notes of each signal sent: its name, the sender and the payload.
Event = tuple[str, Flask, dict[str, Any]]


@contextlib.contextmanager
def recording() -> Iterator[list[Event]]:
    events: list[Event] = []

    def receiver(name: str) -> Callable[..., None]:
        def receive(sender: Flask, **payload: Any) -> None:
            events.append((name, sender, payload))

        return receive

    receivers = [(signal, receiver(signal.name)) for signal in ALL]
    for signal, function in receivers:
        signal.connect(function)
    try:
        yield events
    finally:
        for signal, function in receivers:
            signal.disconnect(function)


def test_the_lifecycle_sends_each_signal_once(app: Flask, api: Api, client: FlaskClient) -> None:
    with recording() as events:
        data = api.register("alice@example.com")
        login = api.login("alice@example.com")
        url = f"/api/customers/{data['uuid']}"
        client.patch(
            url,
            json={"full_name": "B", "password": OTHER_PASSWORD, "current_password": PASSWORD},
            headers=login.headers,
        )
        client.delete(f"/api/customers/sessions/{login.sid}", headers=login.headers)
        client.delete(url, headers=api.admin_headers())
    names = [name for name, _, _ in events]
    assert names == [
        "evershop-customer-created",
        "evershop-customer-logged-in",
        "evershop-customer-updated",
        "evershop-customer-logged-out",
        "evershop-customer-deleted",
    ]
    assert all(sender is app for _, sender, _ in events)
    payloads = {name: payload for name, _, payload in events}
    assert payloads["evershop-customer-created"]["customer"]["uuid"] == data["uuid"]
    assert payloads["evershop-customer-logged-in"]["sid"] == login.sid
    assert payloads["evershop-customer-updated"]["changed"] == ["full_name", "password"]
    assert payloads["evershop-customer-updated"]["customer"]["full_name"] == "B"
    assert payloads["evershop-customer-logged-out"]["sids"] == [login.sid]
    assert payloads["evershop-customer-deleted"]["customer"]["full_name"] == "B"
    for _, _, payload in events:
        assert_no_secrets(json.dumps(payload))
        assert PASSWORD not in repr(payload) and OTHER_PASSWORD not in repr(payload)


def test_nothing_is_sent_for_failures_or_no_ops(api: Api, client: FlaskClient) -> None:
    data = api.register("alice@example.com")
    login = api.login("alice@example.com")
    with recording() as events:
        client.post("/api/customers", json={"email": "alice@example.com", "password": PASSWORD})
        client.post(
            "/api/customers",
            json={"email": "ALICE@example.com", "password": PASSWORD, "full_name": "Dup"},
        )
        client.post("/api/customers/sessions", json={"email": "alice@example.com", "password": "x"})
        client.patch(f"/api/customers/{data['uuid']}", json={}, headers=login.headers)
        client.patch(f"/api/customers/{data['uuid']}", json={"email": "bad"}, headers=login.headers)
    assert events == []


def test_receivers_see_the_change_inside_the_transaction(app: Flask, api: Api) -> None:
    seen: list[str] = []

    def receive(sender: Flask, customer: dict[str, Any]) -> None:
        from .conftest import customers, db

        Customer = customers.models.Customer
        row = db.session.scalars(db.select(Customer).filter_by(uuid=customer["uuid"])).one()
        seen.append(row.email)

    signals.customer_created.connect(receive)
    try:
        api.register("seen@example.com")
    finally:
        signals.customer_created.disconnect(receive)
    assert seen == ["seen@example.com"]


@pytest.mark.parametrize("signal", [signals.customer_created])
def test_a_raising_receiver_rolls_the_change_back(app_factory: AppFactory, signal: Any) -> None:
    app = app_factory(PROPAGATE_EXCEPTIONS=False)
    client = app.test_client(use_cookies=False)
    api = Api(app, client)

    def refuse(sender: Flask, **payload: Any) -> NoReturn:
        raise RuntimeError("refused")

    signal.connect(refuse)
    try:
        response = client.post(
            "/api/customers",
            json={"email": "veto@example.com", "password": PASSWORD, "full_name": "Veto"},
        )
    finally:
        signal.disconnect(refuse)
    assert response.status_code == 500
    assert response.get_json() == {"error": {"status": 500, "message": "Internal server error"}}
    api.register("veto@example.com")
