"""Flat cost as data grows: login, the token check and logout run the same statements
at 100 and at 100,000 customers and sessions, and every lookup they make uses an index.
Plus the batched purge of ended sessions.

The big tables are filled by one ``INSERT ... SELECT`` per table over a cross join of
digits (portable Core, no Python loop), so this runs on all three databases in seconds.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from .conftest import (
    Api,
    count_statements,
    db,
    fresh_database,
    make_app,
    selected_backends,
    state_of,
)

SMALL, LARGE = 100, 100_000
BULK_HASH = "pbkdf2:sha256:1$" + "s" * 16 + "$" + "0" * 64


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)


def numbers(count: int) -> sa.Subquery:
    """A subquery of ``n`` = 0 .. count-1 (a cross join of digit tables)."""
    places = max(1, len(str(count - 1)))
    digit = sa.union_all(
        *(sa.select(sa.literal_column(str(d)).label("d")) for d in range(10))
    ).subquery("digits")
    tables = [digit.alias(f"p{place}") for place in range(places)]
    n: sa.ColumnElement[Any] = sum(
        (table.c.d * 10**place for place, table in enumerate(tables)), sa.literal_column("0")
    )
    query = sa.select(n.label("n")).select_from(tables[0])
    for table in tables[1:]:
        query = query.join(table, sa.true())  # a cross join
    return query.where(n < count).subquery("numbers")


def grow(app: Flask, customers: int) -> None:
    """Add bulk customers, one live session each, and as many failed-login records, until
    there are ``customers`` customers."""
    tables = db.metadata.tables
    customer = tables["evershop_customer"]
    session = tables["evershop_customer_session"]
    failure = tables["evershop_customer_login_failure"]
    now = utcnow()
    with app.app_context():
        url = db.engine.url
    # The cross join is meant: no cartesian-product warning (SQLAlchemy's MySQL compiler
    # does not see the join above as one).
    engine = sa.create_engine(url, enable_from_linting=False, poolclass=sa.pool.NullPool)
    with engine.begin() as connection:
        have = connection.scalar(sa.select(sa.func.count()).select_from(customer))
        assert have is not None  # a count always has a row
        first_new = connection.scalar(
            sa.select(sa.func.coalesce(sa.func.max(customer.c.customer_id), 0))
        )
        todo = numbers(customers - have)
        number = sa.cast(todo.c.n + have, sa.String)
        email = sa.literal("bulk") + number + sa.literal("@example.com")
        connection.execute(
            customer.insert().from_select(
                [
                    "uuid",
                    "status",
                    "group_id",
                    "email",
                    "email_canonical",
                    "full_name",
                    "password_hash",
                    "version",
                    "created_at",
                    "updated_at",
                ],
                sa.select(
                    sa.literal("bulk") + number,
                    sa.literal(1),
                    sa.literal(1),
                    email,
                    email,
                    sa.literal("Bulk Customer"),
                    sa.literal(BULK_HASH),
                    sa.literal(1),
                    sa.literal(now, sa.DateTime),
                    sa.literal(now, sa.DateTime),
                ),
            )
        )
        connection.execute(
            session.insert().from_select(
                ["sid", "customer_id", "created_at", "expires_at"],
                sa.select(
                    sa.literal("bulk-") + sa.cast(customer.c.customer_id, sa.String),
                    customer.c.customer_id,
                    sa.literal(now, sa.DateTime),
                    sa.literal(now + timedelta(days=2), sa.DateTime),
                ).where(customer.c.customer_id > first_new),
            )
        )
        connection.execute(
            failure.insert().from_select(
                ["subject", "failed_at"],
                sa.select(sa.literal("bulk-") + number, sa.literal(now, sa.DateTime)),
            )
        )
        assert connection.scalar(sa.select(sa.func.count()).select_from(customer)) == customers
    analyze(app)


def analyze(app: Flask) -> None:
    """Fresh planner statistics, as a production database would have."""
    with app.app_context(), db.engine.connect() as connection:
        if connection.dialect.name == "mysql":
            names = ", ".join(db.metadata.tables)
            connection.exec_driver_sql(f"ANALYZE TABLE {names}").all()
        else:
            connection.exec_driver_sql("ANALYZE")
        connection.commit()


@contextlib.contextmanager
def capture(app: Flask) -> Iterator[list[tuple[str, Any]]]:
    """The statements (and their parameters) run on ``app``'s engine inside the block."""
    seen: list[tuple[str, Any]] = []

    def listener(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        seen.append((statement, parameters))

    with app.app_context():
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", listener)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", listener)


def scans(app: Flask, statement: str, parameters: Any) -> list[str]:
    """The parts of ``statement``'s plan that read a whole table (or a whole index)."""
    with app.app_context(), db.engine.connect() as connection:
        dialect = connection.dialect.name
        if dialect == "sqlite":
            plan = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
            return [row[3] for row in plan if row[3].startswith("SCAN")]
        if dialect == "postgresql":
            plan = connection.exec_driver_sql("EXPLAIN " + statement, parameters)
            return [row[0] for row in plan if "Seq Scan" in row[0]]
        rows = connection.exec_driver_sql("EXPLAIN " + statement, parameters).mappings()
        return [
            f"{row['table']}: {row['type']}"
            for row in rows
            if row["table"] is not None and (row["type"] in ("ALL", "index") or not row["key"])
        ]


def requests_of_a_customer(api: Api, uuid: str, email: str) -> dict[str, list[tuple[str, Any]]]:
    """Log in, make a token-checked request, log out; the statements of each."""
    app, client = api.app, api.client
    with capture(app) as login_statements:
        login = api.login(email)
    with capture(app) as check_statements:
        response = client.patch(f"/api/customers/{uuid}", json={}, headers=login.headers)
        assert response.status_code == 200
    with capture(app) as logout_statements:
        response = client.delete(f"/api/customers/sessions/{login.sid}", headers=login.headers)
        assert response.status_code == 200
    return {"login": login_statements, "token check": check_statements, "logout": logout_statements}


@pytest.fixture(params=selected_backends())
def empty_app(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Flask]:
    with fresh_database(request.param, tmp_path_factory) as url:
        engine = sa.create_engine(url)
        db.metadata.create_all(engine)
        engine.dispose()
        app = make_app(url)
        yield app
        with app.app_context():
            db.engine.dispose()


def _shape(statements: list[tuple[str, Any]]) -> list[str]:
    """The statements with their values left out (parameters are bound, never inlined)."""
    return [re.sub(r"\s+", " ", statement).strip() for statement, _ in statements]


def test_requests_cost_the_same_at_100_and_100000_customers(empty_app: Flask) -> None:
    app = empty_app
    api = Api(app, app.test_client(use_cookies=False))
    uuid = api.register("probe@example.com")["uuid"]
    grow(app, SMALL)
    small = requests_of_a_customer(api, uuid, "probe@example.com")
    grow(app, LARGE)
    large = requests_of_a_customer(api, uuid, "probe@example.com")

    for name in small:
        assert len(small[name]) == len(large[name]), name
        assert _shape(small[name]) == _shape(large[name]), name
    assert len(large["token check"]) == 1  # the one indexed session + customer lookup

    for name, statements in large.items():
        for statement, parameters in statements:
            if statement.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE")):
                assert scans(app, statement, parameters) == [], (name, statement)


# -- purging --------------------------------------------------------------------------


def test_purge_sessions_deletes_ended_sessions_in_batches_and_keeps_live_ones(
    app: Flask, api: Api
) -> None:
    api.register("alice@example.com")
    live = [api.login("alice@example.com") for _ in range(3)]
    customer_id = db.metadata.tables["evershop_customer"]
    sessions = db.metadata.tables["evershop_customer_session"]
    failures = db.metadata.tables["evershop_customer_login_failure"]
    now = utcnow()
    window = state_of(app).settings.login_failure_window
    with app.app_context():
        owner = db.session.scalar(sa.select(customer_id.c.customer_id))
        ended = []
        for i in range(10):  # 5 expired, 3 revoked, 2 both
            expires = now - timedelta(seconds=1) if i < 5 or i >= 8 else now + timedelta(days=1)
            revoked = now - timedelta(minutes=1) if i >= 5 else None
            sid = f"00000000-0000-4000-8000-{i:012d}"
            ended.append(sid)
            db.session.execute(
                sessions.insert().values(
                    sid=sid,
                    customer_id=owner,
                    created_at=now - timedelta(days=3),
                    expires_at=expires,
                    revoked_at=revoked,
                )
            )
        db.session.execute(
            failures.insert(),
            [
                {"subject": "old", "failed_at": now - timedelta(seconds=window + 5)},
                {"subject": "recent", "failed_at": now - timedelta(seconds=5)},
            ],
        )
        db.session.commit()

    with count_statements(app) as counter:
        result = app.test_cli_runner().invoke(
            args=["customers", "purge-sessions", "--batch-size", "4"]
        )
    assert result.exit_code == 0, result.output
    assert (
        "Deleted 10 expired or revoked sessions, 0 refresh tokens, 0 admin sessions"
        in result.output
    )
    deletes = [
        s
        for s in counter.statements
        if s.lstrip().startswith("DELETE FROM evershop_customer_session")
    ]
    assert len(deletes) == 3  # 4 + 4 + 2

    with app.app_context():
        left = set(db.session.scalars(sa.select(sessions.c.sid)))
        subjects = set(db.session.scalars(sa.select(failures.c.subject)))
    assert left == {login.sid for login in live}
    assert "old" not in subjects and "recent" in subjects
    for login in live:  # the live sessions still work
        response = api.client.delete(f"/api/customers/sessions/{login.sid}", headers=login.headers)
        assert response.status_code == 200

    again = app.test_cli_runner().invoke(args=["customers", "purge-sessions"])
    assert (
        "Deleted 3 expired or revoked sessions, 0 refresh tokens, 0 admin sessions" in again.output
    )
