"""The benchmark's databases: PostgreSQL when it answers, SQLite otherwise; bulk rows."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

#: The PostgreSQL server to use (any existing database on it: we only connect to
#: create and drop our own).
POSTGRES_SERVER_URL = os.environ.get(
    "EVERSHOP_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
INSERT_BATCH = 5000


@dataclass(frozen=True)
class Seeded:
    """One bulk-inserted customer and its one live session."""

    customer_id: int
    uuid: str
    email: str
    sid: str


def postgres_answers() -> bool:
    """Whether the PostgreSQL server takes connections (bounded: 3 s)."""
    engine = sa.create_engine(POSTGRES_SERVER_URL, connect_args={"connect_timeout": 3})
    try:
        with engine.connect():
            return True
    except Exception:  # noqa: BLE001 - any failure means "use SQLite"
        return False
    finally:
        engine.dispose()


@contextlib.contextmanager
def fresh_database(backend: str, directory: Path, label: str) -> Iterator[str]:
    """An empty database, dropped (or deleted) when the block ends. Yields its URL."""
    if backend == "sqlite":
        path = directory / f"{label}.sqlite"
        try:
            yield f"sqlite:///{path}"
        finally:
            for suffix in ("", "-wal", "-shm", "-journal"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(f"{path}{suffix}")
        return
    name = f"efc_bench_{label}_{os.getpid()}_{secrets.token_hex(3)}"
    server = sa.make_url(POSTGRES_SERVER_URL)
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f"CREATE DATABASE {name}")
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()


def server_version(engine: sa.Engine) -> str:
    """``PostgreSQL 15.2`` or ``SQLite 3.40.1``."""
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            version = connection.exec_driver_sql("select sqlite_version()").scalar_one()
            return f"SQLite {version}"
        version = connection.exec_driver_sql("show server_version").scalar_one()
        return f"PostgreSQL {version}"


def seed(
    engine: sa.Engine,
    customer_table: sa.Table,
    session_table: sa.Table,
    *,
    count: int,
    first: int,
    password_hash: str,
    now: datetime,
    lifetime: int,
) -> list[Seeded]:
    """Insert ``count`` customers (``bench<first>@example.com`` on), each with one live
    session, straight into the tables; return them in order."""
    seeded: list[Seeded] = []
    expires_at = now + timedelta(seconds=lifetime)
    with engine.begin() as connection:
        for start in range(first, first + count, INSERT_BATCH):
            stop = min(start + INSERT_BATCH, first + count)
            customers = []
            for number in range(start, stop):
                email = f"bench{number}@example.com"
                customers.append(
                    {
                        "uuid": uuid.uuid4().hex,
                        "status": 1,
                        "group_id": 1,
                        "email": email,
                        "email_canonical": email,
                        "full_name": f"Bench Customer {number}",
                        "password_hash": password_hash,
                        "version": 1,
                        "created_at": now,
                        "updated_at": now,
                    }
                )
            ids = connection.execute(
                sa.insert(customer_table).returning(
                    customer_table.c.customer_id, sort_by_parameter_order=True
                ),
                customers,
            ).scalars()
            sessions = []
            for customer_id, customer in zip(ids, customers, strict=True):
                sid = str(uuid.uuid4())
                sessions.append(
                    {
                        "sid": sid,
                        "customer_id": customer_id,
                        "created_at": now,
                        "expires_at": expires_at,
                        "revoked_at": None,
                    }
                )
                seeded.append(
                    Seeded(customer_id, str(customer["uuid"]), str(customer["email"]), sid)
                )
            connection.execute(sa.insert(session_table), sessions)
        if engine.dialect.name == "postgresql":
            for table in (customer_table, session_table):
                connection.exec_driver_sql(f"ANALYZE {table.name}")
    return seeded


def seed_refresh_tokens(
    engine: sa.Engine,
    table: sa.Table,
    rows: list[Seeded],
    *,
    key: bytes,
    now: datetime,
    lifetime: int,
) -> list[str]:
    """One unspent refresh token for each row's session, digested with ``key`` as the
    library does; the tokens, in the order of ``rows``."""
    tokens = [secrets.token_urlsafe(32) for _ in rows]
    expires_at = now + timedelta(seconds=lifetime)
    with engine.begin() as connection:
        for start in range(0, len(rows), INSERT_BATCH):
            batch = [
                {
                    "digest": hmac.new(key, token.encode(), hashlib.sha256).hexdigest(),
                    "sid": row.sid,
                    "created_at": now,
                    "expires_at": expires_at,
                }
                for row, token in zip(
                    rows[start : start + INSERT_BATCH],
                    tokens[start : start + INSERT_BATCH],
                    strict=True,
                )
            ]
            if batch:
                connection.execute(sa.insert(table), batch)
    return tokens
