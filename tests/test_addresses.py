"""Customers' addresses (DESIGN §11): the routes for the customer and for admins, real
validation (ISO 3166 through pycountry, telephone numbers through phonenumbers), one
default, the limit, signals, and what a delete takes with it.
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.exc import IntegrityError

from flask_evershop_customer import signals

from .conftest import (
    Api,
    AppFactory,
    Login,
    count_statements,
    customers,
    database_free,
    db,
    table_contents,
)

SAN_FRANCISCO = {
    "full_name": "Alice Example",
    "address_1": "1600 Amphitheatre Parkway",
    "address_2": "Building 40",
    "city": "Mountain View",
    "postcode": "94043",
    "telephone": "(650) 253-0000",
    "country": "us",
    "province": "us-ca",
}
PARIS = {
    "full_name": "Alice Example",
    "address_1": "8 rue de Londres",
    "city": "Paris",
    "postcode": "75009",
    "telephone": "01 42 68 53 00",
    "country": "FR",
    "province": "FR-75C",
}
INVALID_ADDRESS = {"error": {"status": 404, "message": "Invalid address"}}
MINE = "/api/customers/me/addresses"


def rows(app: Flask) -> list[dict[str, Any]]:
    return table_contents(app)["evershop_customer_address"]


def add(client: FlaskClient, login: Login, body: dict[str, Any] | None = None, **extra: Any) -> Any:
    response = client.post(MINE, json={**(body or SAN_FRANCISCO), **extra}, headers=login.headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["data"]


def listed(client: FlaskClient, login: Login) -> list[dict[str, Any]]:
    response = client.get(MINE, headers=login.headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["data"]["items"]  # type: ignore[no-any-return]


# -- the customer's own addresses -----------------------------------------------------


def test_an_address_is_added_checked_and_normalised(
    app: Flask, client: FlaskClient, alice: dict[str, Any], alice_login: Login
) -> None:
    data = add(client, alice_login)
    assert list(data) == [
        "customer_address_id",
        "uuid",
        "customer_id",
        "full_name",
        "telephone",
        "address_1",
        "address_2",
        "postcode",
        "city",
        "province",
        "country",
        "created_at",
        "updated_at",
        "is_default",
        "links",
    ]
    assert data["customer_id"] == alice["customer_id"]
    assert len(data["uuid"]) == 32 and data["uuid"].isalnum()
    assert (data["country"], data["province"], data["telephone"]) == ("US", "US-CA", "+16502530000")
    assert data["is_default"] is False  # the first address does not become the default
    href = f"/api/customers/me/addresses/{data['uuid']}"
    assert data["links"] == [
        {"rel": "edit", "href": href, "action": "PATCH", "types": ["application/json"]},
        {"rel": "delete", "href": href, "action": "DELETE", "types": ["application/json"]},
    ]
    [row] = rows(app)
    assert row["telephone"] == "+16502530000" and row["is_default"] is None
    assert listed(client, alice_login) == [{k: v for k, v in data.items() if k != "links"}]


def test_the_list_is_oldest_first_and_only_the_callers(
    api: Api, client: FlaskClient, alice_login: Login
) -> None:
    first = add(client, alice_login)
    second = add(client, alice_login, PARIS)
    api.register("bob@example.com")
    bob = api.login("bob@example.com")
    add(client, bob)
    assert [item["uuid"] for item in listed(client, alice_login)] == [first["uuid"], second["uuid"]]
    assert len(listed(client, bob)) == 1


@database_free
@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"full_name": None}, "/full_name must be string"),
        ({"full_name": "   "}, "/full_name must NOT have fewer than 1 characters"),
        ({"full_name": "x" * 256}, "/full_name must NOT have more than 255 characters"),
        ({"address_1": "a\nb"}, "/address_1 must not contain control characters"),
        ({"address_1": "1 Main St\u202e"}, "/address_1 must not contain control characters"),
        ({"address_2": "a\u2028b"}, "/address_2 must not contain control characters"),
        ({"city": "\u2066Paris\u2069"}, "/city must not contain control characters"),
        ({"full_name": "\u3164"}, "/full_name must contain visible characters"),
        ({"city": "\u200b"}, "/city must contain visible characters"),
        ({"postcode": "\u200b"}, "/postcode must contain visible characters"),
        ({"address_2": 5}, "/address_2 must be string"),
        ({"city": "c" * 256}, "/city must NOT have more than 255 characters"),
        ({"postcode": ""}, "/postcode must NOT have fewer than 1 characters"),
        ({"postcode": "9" * 33}, "/postcode must NOT have more than 32 characters"),
        ({"telephone": "123"}, "/telephone must be a valid telephone number"),
        ({"telephone": "call me maybe"}, "/telephone must be a valid telephone number"),
        ({"telephone": 6502530000}, "/telephone must be string"),
        ({"telephone": "1" * 33}, "/telephone must NOT have more than 32 characters"),
        ({"country": "XX"}, "/country must be an ISO 3166-1 alpha-2 code"),
        ({"country": "USA"}, "/country must be an ISO 3166-1 alpha-2 code"),
        ({"country": 1}, "/country must be string"),
        ({"province": None}, "Request data must have required property 'province'"),
        ({"province": ""}, "Request data must have required property 'province'"),
        ({"province": "CA"}, "/province must be an ISO 3166-2 subdivision code of US"),
        ({"province": "FR-75C"}, "/province must be an ISO 3166-2 subdivision code of US"),
        ({"is_default": "yes"}, "/is_default must be boolean"),
        ({"is_default": 1}, "/is_default must be boolean"),
    ],
)
def test_every_field_is_checked_and_named(
    client: FlaskClient, alice_login: Login, change: dict[str, Any], message: str
) -> None:
    response = client.post(MINE, json={**SAN_FRANCISCO, **change}, headers=alice_login.headers)
    assert response.get_json() == {"error": {"status": 400, "message": message}}


@database_free
@pytest.mark.parametrize("missing", ["full_name", "address_1", "postcode", "country"])
def test_the_required_fields_are_named_in_order(
    client: FlaskClient, alice_login: Login, missing: str
) -> None:
    body = {k: v for k, v in SAN_FRANCISCO.items() if k != missing}
    response = client.post(MINE, json=body, headers=alice_login.headers)
    assert response.get_json()["error"]["message"] == (
        f"Request data must have required property '{missing}'"
    )
    assert client.post(MINE, json=[], headers=alice_login.headers).get_json()["error"][
        "message"
    ] == ("Request data must be object")


def test_a_country_without_subdivisions_takes_no_province(
    client: FlaskClient, alice_login: Login
) -> None:
    """Gibraltar has no ISO 3166-2 subdivisions: no province is needed, and none fits."""
    gibraltar = {**SAN_FRANCISCO, "country": "GI", "telephone": "+350 200 12345"}
    del gibraltar["province"]
    assert add(client, alice_login, gibraltar)["province"] is None
    response = client.post(
        MINE, json={**gibraltar, "province": "GI-1"}, headers=alice_login.headers
    )
    assert response.get_json()["error"]["message"] == (
        "/province must be an ISO 3166-2 subdivision code of GI"
    )


def test_optional_fields_may_be_null_or_blank(client: FlaskClient, alice_login: Login) -> None:
    data = add(
        client, alice_login, {**SAN_FRANCISCO, "address_2": "", "city": None, "telephone": " "}
    )
    assert (data["address_2"], data["city"], data["telephone"]) == (None, None, None)


def test_an_international_number_is_accepted_for_any_country(
    client: FlaskClient, alice_login: Login
) -> None:
    data = add(client, alice_login, {**PARIS, "telephone": "+1 650-253-0000"})
    assert data["telephone"] == "+16502530000"


def test_owner_ids_and_timestamps_in_the_body_are_ignored(
    app: Flask, api: Api, client: FlaskClient, alice: dict[str, Any], alice_login: Login
) -> None:
    bob = api.register("bob@example.com")
    sneaky = {
        "customer_id": bob["customer_id"],
        "customer_address_id": 999,
        "uuid": "f" * 32,
        "created_at": "2000-01-01 00:00:00",
        "unknown": "x",
    }
    data = add(client, alice_login, {**SAN_FRANCISCO, **sneaky})
    assert data["customer_id"] == alice["customer_id"] and data["uuid"] != "f" * 32
    # An admin cannot move an address to another customer by accident either.
    url = f"/api/customers/{alice['uuid']}/addresses/{data['uuid']}"
    moved = client.patch(url, json=sneaky, headers=api.admin_headers())
    assert moved.status_code == 200
    assert [row["customer_id"] for row in rows(app)] == [alice["customer_id"]]


# -- changing and deleting ------------------------------------------------------------


def test_a_change_is_checked_with_the_stored_fields(
    client: FlaskClient, alice_login: Login
) -> None:
    data = add(client, alice_login)
    url = f"{MINE}/{data['uuid']}"
    # A new country needs a province of its own.
    response = client.patch(url, json={"country": "FR"}, headers=alice_login.headers)
    assert response.get_json()["error"]["message"] == (
        "/province must be an ISO 3166-2 subdivision code of FR"
    )
    moved = client.patch(
        url, json={"country": "FR", "province": "fr-75c"}, headers=alice_login.headers
    )
    assert moved.status_code == 200
    assert (moved.get_json()["data"]["country"], moved.get_json()["data"]["province"]) == (
        "FR",
        "FR-75C",
    )
    cleared = client.patch(url, json={"address_2": None}, headers=alice_login.headers)
    assert cleared.get_json()["data"]["address_2"] is None
    assert (
        cleared.get_json()["data"]["links"][0]["href"]
        == f"/api/customers/me/addresses/{data['uuid']}"
    )


def test_an_empty_change_changes_nothing(
    app: Flask, client: FlaskClient, alice_login: Login
) -> None:
    data = add(client, alice_login)
    before = rows(app)
    received: list[Any] = []
    with signals.address_updated.connected_to(lambda _s, **payload: received.append(payload)):
        response = client.patch(f"{MINE}/{data['uuid']}", json={}, headers=alice_login.headers)
    assert response.status_code == 200
    assert rows(app) == before and received == []


def test_deleting_answers_the_address_as_it_was(
    app: Flask, client: FlaskClient, alice_login: Login
) -> None:
    data = add(client, alice_login, is_default=True)
    response = client.delete(f"{MINE}/{data['uuid']}", headers=alice_login.headers)
    assert response.get_json()["data"] == {k: v for k, v in data.items() if k != "links"}
    assert rows(app) == []
    again = client.delete(f"{MINE}/{data['uuid']}", headers=alice_login.headers)
    assert (again.status_code, again.get_json()) == (404, INVALID_ADDRESS)


@pytest.mark.parametrize("address_id", ["0" * 32, "not-a-uuid", "A" * 32])
def test_an_unknown_address_is_404(
    client: FlaskClient, alice_login: Login, address_id: str
) -> None:
    add(client, alice_login)
    url = f"{MINE}/{address_id}"
    assert client.patch(url, json={}, headers=alice_login.headers).get_json() == INVALID_ADDRESS
    assert client.delete(url, headers=alice_login.headers).get_json() == INVALID_ADDRESS


def test_another_customers_address_is_404_to_a_customer(
    app: Flask, api: Api, client: FlaskClient, alice_login: Login
) -> None:
    api.register("bob@example.com")
    bob = api.login("bob@example.com")
    bobs = add(client, bob)
    url = f"{MINE}/{bobs['uuid']}"
    patched = client.patch(url, json={"city": "Mine"}, headers=alice_login.headers)
    assert patched.get_json() == INVALID_ADDRESS
    assert client.delete(url, headers=alice_login.headers).get_json() == INVALID_ADDRESS
    assert rows(app)[0]["city"] == "Mountain View"


# -- one default ----------------------------------------------------------------------


def test_one_default_at_most(client: FlaskClient, alice_login: Login) -> None:
    first = add(client, alice_login, is_default=True)
    second = add(client, alice_login, PARIS, is_default=True)
    assert [a["is_default"] for a in listed(client, alice_login)] == [False, True]
    url = f"{MINE}/{first['uuid']}"
    assert client.patch(url, json={"is_default": True}, headers=alice_login.headers).get_json()[
        "data"
    ]["is_default"]
    assert [a["is_default"] for a in listed(client, alice_login)] == [True, False]
    # false leaves the customer without a default; deleting the default promotes none.
    client.patch(url, json={"is_default": False}, headers=alice_login.headers)
    assert [a["is_default"] for a in listed(client, alice_login)] == [False, False]
    client.patch(f"{MINE}/{second['uuid']}", json={"is_default": True}, headers=alice_login.headers)
    client.delete(f"{MINE}/{second['uuid']}", headers=alice_login.headers)
    assert [a["is_default"] for a in listed(client, alice_login)] == [False]


def test_the_database_itself_refuses_a_second_default(
    app: Flask, client: FlaskClient, alice_login: Login
) -> None:
    """The unique constraint on (customer_id, is_default), with is_default TRUE or NULL,
    holds even for a write that goes around the rules."""
    add(client, alice_login, is_default=True)
    second = add(client, alice_login, PARIS)
    table = customers.models.Address.__table__
    with app.app_context(), pytest.raises(IntegrityError):
        db.session.execute(
            sa.update(table).where(table.c.uuid == second["uuid"]).values(is_default=True)
        )
        db.session.commit()


# -- admins and the order of checks ---------------------------------------------------


def test_an_admin_manages_any_customers_addresses(
    app: Flask, api: Api, client: FlaskClient, alice: dict[str, Any]
) -> None:
    admin = api.admin_headers()
    base = f"/api/customers/{alice['uuid']}/addresses"
    created = client.post(base, json=SAN_FRANCISCO, headers=admin)
    assert created.status_code == 200
    data = created.get_json()["data"]
    assert data["links"][0]["href"] == f"{base}/{data['uuid']}"
    assert client.get(base, headers=admin).get_json()["data"]["items"][0]["uuid"] == data["uuid"]
    changed = client.patch(f"{base}/{data['uuid']}", json={"city": "Palo Alto"}, headers=admin)
    assert changed.get_json()["data"]["city"] == "Palo Alto"
    assert client.delete(f"{base}/{data['uuid']}", headers=admin).status_code == 200
    assert rows(app) == []


def test_a_customer_may_use_the_route_with_their_own_id(
    client: FlaskClient, alice: dict[str, Any], alice_login: Login
) -> None:
    base = f"/api/customers/{alice['uuid']}/addresses"
    created = client.post(base, json=SAN_FRANCISCO, headers=alice_login.headers)
    assert created.status_code == 200
    assert len(listed(client, alice_login)) == 1


def test_the_checks_run_401_then_404_then_403_then_the_address(
    api: Api, client: FlaskClient, alice: dict[str, Any], alice_login: Login
) -> None:
    api.register("bob@example.com")
    bob = api.login("bob@example.com")
    address = add(client, alice_login)
    base = f"/api/customers/{alice['uuid']}/addresses"
    assert client.get(base).status_code == 401
    unknown = client.get(f"/api/customers/{'0' * 32}/addresses", headers=api.admin_headers())
    assert unknown.get_json() == {"error": {"status": 404, "message": "Invalid customer id"}}
    assert client.get(base, headers=bob.headers).status_code == 403
    assert client.post(base, json=SAN_FRANCISCO, headers=bob.headers).status_code == 403
    url = f"{base}/{address['uuid']}"
    assert client.patch(url, json={}, headers=bob.headers).status_code == 403
    assert client.delete(url, headers=bob.headers).status_code == 403
    admin = api.admin_headers()
    assert client.delete(f"{base}/{'0' * 32}", headers=admin).get_json() == INVALID_ADDRESS


def test_the_own_routes_need_a_customer_credential(api: Api, client: FlaskClient) -> None:
    assert client.get(MINE).status_code == 401
    response = client.get(MINE, headers=api.admin_headers())
    assert response.get_json() == {
        "error": {"status": 403, "message": "Customer credentials are required"}
    }


# -- the limit, deleting the customer, signals ----------------------------------------


def test_at_most_max_addresses(app_factory: AppFactory) -> None:
    app = app_factory(EVERSHOP_CUSTOMER_MAX_ADDRESSES=2)
    api = Api(app, app.test_client(use_cookies=False))
    api.register("alice@example.com")
    login = api.login("alice@example.com")
    add(api.client, login)
    add(api.client, login, PARIS)
    response = api.client.post(MINE, json=SAN_FRANCISCO, headers=login.headers)
    assert response.get_json() == {
        "error": {"status": 409, "message": "A customer can have at most 2 addresses"}
    }
    assert len(rows(app)) == 2


def test_deleting_the_customer_deletes_their_addresses(
    app: Flask, api: Api, client: FlaskClient, alice: dict[str, Any], alice_login: Login
) -> None:
    """Whether or not the database enforces the foreign key (the suite's SQLite does
    not)."""
    add(client, alice_login)
    api.register("bob@example.com")
    bobs = add(client, api.login("bob@example.com"))
    assert (
        client.delete(f"/api/customers/{alice['uuid']}", headers=alice_login.headers).status_code
        == 200
    )
    assert [row["uuid"] for row in rows(app)] == [bobs["uuid"]]


def test_signals_carry_the_customer_and_the_address(
    client: FlaskClient, alice: dict[str, Any], alice_login: Login
) -> None:
    received: list[tuple[str, dict[str, Any]]] = []

    def receiver(name: str) -> Any:
        return lambda _sender, **payload: received.append((name, payload))

    created_r, updated_r, deleted_r = receiver("created"), receiver("updated"), receiver("deleted")
    with (
        signals.address_created.connected_to(created_r),
        signals.address_updated.connected_to(updated_r),
        signals.address_deleted.connected_to(deleted_r),
    ):
        data = add(client, alice_login)
        url = f"{MINE}/{data['uuid']}"
        client.patch(
            url, json={"city": "Palo Alto", "is_default": True}, headers=alice_login.headers
        )
        client.delete(url, headers=alice_login.headers)
    assert [name for name, _ in received] == ["created", "updated", "deleted"]
    for _, payload in received:
        assert payload["customer"]["uuid"] == alice["uuid"]
        assert "password_hash" not in payload["customer"]
        assert payload["address"]["uuid"] == data["uuid"]
    assert received[1][1]["changed"] == ["city", "is_default"]
    assert received[2][1]["address"]["city"] == "Palo Alto"


def test_a_receiver_that_raises_rolls_the_address_back(
    app: Flask, client: FlaskClient, alice_login: Login
) -> None:
    def refuse(_sender: object, **_payload: Any) -> None:
        raise RuntimeError("no")

    with signals.address_created.connected_to(refuse), pytest.raises(RuntimeError):
        client.post(MINE, json=SAN_FRANCISCO, headers=alice_login.headers)
    assert rows(app) == []


# -- statements -----------------------------------------------------------------------


def test_statement_counts(
    app: Flask, api: Api, client: FlaskClient, alice: dict[str, Any], alice_login: Login
) -> None:
    """The own list: the token check and the read. A write: the token check, the
    customer locked, the session still live, then the count and the INSERT (create; one
    UPDATE more to move the default) or the address read and its UPDATE or DELETE. An
    admin's list: the admin session, the customer, the read."""
    headers = alice_login.headers
    with count_statements(app) as counter:
        data = add(client, alice_login)
    assert counter.count == 5, counter.statements
    with count_statements(app) as counter:
        add(client, alice_login, PARIS, is_default=True)
    assert counter.count == 6, counter.statements
    with count_statements(app) as counter:
        listed(client, alice_login)
    assert counter.count == 2, counter.statements
    with count_statements(app) as counter:
        client.patch(f"{MINE}/{data['uuid']}", json={"city": "Palo Alto"}, headers=headers)
    assert counter.count == 5, counter.statements
    with count_statements(app) as counter:
        client.delete(f"{MINE}/{data['uuid']}", headers=headers)
    assert counter.count == 5, counter.statements
    admin = api.admin_headers()
    with count_statements(app) as counter:
        client.get(f"/api/customers/{alice['uuid']}/addresses", headers=admin)
    assert counter.count == 3, counter.statements


def test_a_change_checks_only_what_it_names_and_what_depends_on_it(
    app: Flask, client: FlaskClient, alice_login: Login
) -> None:
    """An address whose stored province the ISO data no longer lists (a retired code)
    can still be edited: a change checks the fields it names, and a new country's
    province and telephone number."""
    data = add(client, alice_login)
    table = customers.models.Address.__table__
    with app.app_context():
        db.session.execute(
            sa.update(table).where(table.c.uuid == data["uuid"]).values(province="US-ZZ")
        )
        db.session.commit()
    url = f"{MINE}/{data['uuid']}"
    renamed = client.patch(url, json={"city": "Palo Alto"}, headers=alice_login.headers)
    assert renamed.status_code == 200
    assert renamed.get_json()["data"]["province"] == "US-ZZ"
    refused = client.patch(url, json={"province": "US-ZZ"}, headers=alice_login.headers)
    assert refused.get_json()["error"]["message"] == (
        "/province must be an ISO 3166-2 subdivision code of US"
    )
    moved = client.patch(url, json={"country": "FR"}, headers=alice_login.headers)
    assert moved.get_json()["error"]["message"] == (
        "/province must be an ISO 3166-2 subdivision code of FR"
    )
