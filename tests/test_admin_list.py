"""``GET /customers``: the admin list, with paging, an email prefix, a status filter and
sorting; its pages read through indexes at any size."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from .conftest import Api, database_free, db, state_of
from .test_scale import LARGE, SMALL, capture, empty_app, grow

__all__ = ["empty_app"]  # the fixture, used below

URL = "/api/customers"


@pytest.fixture
def shop(api: Api) -> list[dict[str, Any]]:
    """Five customers, created one second apart (so created_at sorts them)."""
    made = []
    clock = state_of(api.app).clock
    for n, (email, name) in enumerate(
        [
            ("ann@example.com", "Zed Ann"),
            ("Bob@Example.com", "Bob"),
            ("bobby@example.com", "Bobby"),
            ("cy%_!@example.com", "Cy"),
            ("dee@example.org", "Dee"),
        ]
    ):
        clock.travel(n)
        made.append(api.register(email, full_name=name))
        clock.reset()
    return made


def listing(client: FlaskClient, api: Api, **query: Any) -> dict[str, Any]:
    response = client.get(URL, query_string=query, headers=api.admin_headers())
    assert response.status_code == 200, response.get_json()
    return response.get_json()["data"]  # type: ignore[no-any-return]


def emails(data: dict[str, Any]) -> list[str]:
    return [item["email"] for item in data["items"]]


def test_the_default_page_is_the_newest_twenty_with_evershops_names(
    client: FlaskClient, api: Api, shop: list[dict[str, Any]]
) -> None:
    data = listing(client, api)
    assert set(data) == {"items", "total", "currentPage", "limit"}
    assert (data["total"], data["currentPage"], data["limit"]) == (5, 1, 20)
    assert emails(data) == [c["email"] for c in reversed(shop)]
    assert data["items"][0] == {k: v for k, v in shop[-1].items() if k != "links"}


def test_paging(client: FlaskClient, api: Api, shop: list[dict[str, Any]]) -> None:
    pages = [listing(client, api, limit=2, page=page, order="asc") for page in (1, 2, 3, 4)]
    assert [emails(p) for p in pages] == [
        [shop[0]["email"], shop[1]["email"]],
        [shop[2]["email"], shop[3]["email"]],
        [shop[4]["email"]],
        [],
    ]
    assert {p["total"] for p in pages} == {5}
    assert [p["currentPage"] for p in pages] == [1, 2, 3, 4]


def test_an_email_prefix_in_any_case_and_with_wildcard_characters(
    client: FlaskClient, api: Api, shop: list[dict[str, Any]]
) -> None:
    assert sorted(emails(listing(client, api, email="BOB"))) == [
        "Bob@Example.com",
        "bobby@example.com",
    ]
    assert emails(listing(client, api, email="bob@")) == ["Bob@Example.com"]
    # % and _ are letters here, not wildcards.
    assert emails(listing(client, api, email="cy%_!")) == ["cy%_!@example.com"]
    assert emails(listing(client, api, email="c%")) == []
    assert emails(listing(client, api, email="_")) == []
    assert listing(client, api, email="nobody")["total"] == 0


def test_a_status_filter(client: FlaskClient, api: Api, shop: list[dict[str, Any]]) -> None:
    url = f"/api/customers/{shop[1]['uuid']}"
    client.patch(url, json={"status": 0}, headers=api.admin_headers())
    disabled = listing(client, api, status=0)
    assert (emails(disabled), disabled["total"]) == (["Bob@Example.com"], 1)
    assert listing(client, api, status=1)["total"] == 4


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("email", [0, 1, 2, 3, 4]),
        ("full_name", [1, 2, 3, 4, 0]),
        ("customer_id", [0, 1, 2, 3, 4]),
        ("created_at", [0, 1, 2, 3, 4]),
    ],
)
def test_each_sort_both_ways(
    client: FlaskClient, api: Api, shop: list[dict[str, Any]], sort: str, expected: list[int]
) -> None:
    ascending = emails(listing(client, api, sort=sort, order="asc"))
    descending = emails(listing(client, api, sort=sort, order="desc"))
    assert ascending == [shop[i]["email"] for i in expected]
    assert descending == list(reversed(ascending))


def test_ties_are_broken_by_customer_id(client: FlaskClient, api: Api) -> None:
    made = [api.register(f"twin{n}@example.com", full_name="Twin") for n in range(4)]
    ids = [c["customer_id"] for c in made]
    for order, expected in (("asc", ids), ("desc", list(reversed(ids)))):
        got = listing(client, api, sort="full_name", order=order)["items"]
        assert [item["customer_id"] for item in got] == expected
        pages = [
            listing(client, api, sort="created_at", order=order, limit=1, page=p)["items"][0]
            for p in (1, 2, 3, 4)
        ]
        assert [item["customer_id"] for item in pages] == expected


@database_free
@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"page": "0"}, "/page must be >= 1"),
        ({"page": "x"}, "/page must be integer"),
        ({"page": "-1"}, "/page must be integer"),
        ({"page": "1" * 12}, "/page must be integer"),
        ({"page": "1000001"}, "/page must be <= 1000000"),
        ({"limit": "0"}, "/limit must be >= 1"),
        ({"limit": "101"}, "/limit must be <= 100"),
        ({"limit": "٣"}, "/limit must be integer"),
        ({"status": "2"}, "/status must be equal to one of the allowed values"),
        ({"sort": "password_hash"}, "/sort must be equal to one of the allowed values"),
        ({"order": "up"}, "/order must be equal to one of the allowed values"),
        ({"email": "a" * 255}, "/email must NOT have more than 254 characters"),
        ({"email": "a\x00"}, "/email must not contain the NUL character"),
    ],
)
def test_bad_parameters_are_400_naming_the_parameter(
    client: FlaskClient, api: Api, query: dict[str, str], message: str
) -> None:
    response = client.get(URL, query_string=query, headers=api.admin_headers())
    assert response.get_json() == {"error": {"status": 400, "message": message}}


def test_only_an_admin_lists(client: FlaskClient, api: Api, alice_login: Any) -> None:
    assert client.get(URL).status_code == 401
    refused = client.get(URL, headers=alice_login.headers)
    assert refused.status_code == 403
    assert "alice" not in refused.get_data(as_text=True)


def page_plan_problems(app: Flask, statement: str, parameters: Any, *, sorts: bool) -> list[str]:
    """What in a page's plan reads a table whole, or sorts rows (``sorts``: a sort of the
    matches of an email prefix is expected; their number, not the table's size, is what
    it costs)."""
    with app.app_context(), db.engine.connect() as connection:
        dialect = connection.dialect.name
        if dialect == "sqlite":
            plan = [
                row[3]
                for row in connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
            ]
            # Ordered by customer_id, the table's own b-tree (the rowid) is the index.
            by_rowid = "ORDER BY evershop_customer.customer_id" in statement
            whole = [p for p in plan if p.startswith("SCAN") and "INDEX" not in p and not by_rowid]
            sorting = [p for p in plan if "TEMP B-TREE" in p]
        elif dialect == "postgresql":
            plan = [
                row[0] for row in connection.exec_driver_sql("EXPLAIN " + statement, parameters)
            ]
            whole = [p for p in plan if "Seq Scan" in p]
            sorting = [p for p in plan if p.strip().startswith(("Sort", "->  Sort"))]
        else:
            rows = list(connection.exec_driver_sql("EXPLAIN " + statement, parameters).mappings())
            whole = [f"{r['table']}: ALL" for r in rows if r["type"] == "ALL"]
            sorting = [
                f"{r['table']}: {r['Extra']}" for r in rows if "filesort" in (r["Extra"] or "")
            ]
    return whole + ([] if sorts else sorting)


def page_statements(app: Flask, api: Api, **query: Any) -> list[tuple[str, Any]]:
    with capture(app) as seen:
        listing(api.client, api, **query)
    return [(s, p) for s, p in seen if s.lstrip().upper().startswith("SELECT")]


QUERIES: list[dict[str, Any]] = [
    {},
    {"order": "asc"},
    {"sort": "email"},
    {"sort": "full_name", "order": "asc"},
    {"sort": "customer_id"},
    {"email": "bulk4242"},
    {"email": "bulk4242", "sort": "full_name"},
    {"status": 1, "page": 3},
]


def test_pages_read_through_indexes_at_any_size(empty_app: Flask) -> None:
    """The page's statement is the same at 100 and 100,000 customers and reads no table
    whole; only the count of an unfiltered list reads every row (of an index)."""
    app = empty_app
    api = Api(app, app.test_client(use_cookies=False))
    grow(app, SMALL)
    small = [page_statements(app, api, **query) for query in QUERIES]
    grow(app, LARGE)
    large = [page_statements(app, api, **query) for query in QUERIES]
    for query, few, many in zip(QUERIES, small, large, strict=True):
        assert [s for s, _ in few] == [s for s, _ in many], query
        # The admin session (a primary-key lookup), the page, the count.
        _admin, page, _count = many
        # An email prefix sorted by anything but the email sorts its matches.
        expected_sort = "email" in query and query.get("sort", "created_at") != "email"
        assert page_plan_problems(app, *page, sorts=expected_sort) == [], (query, page[0])
