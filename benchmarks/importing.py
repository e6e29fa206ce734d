"""The EverShop import's benchmark: a shop of ``--large-rows`` customers (one address
each for a fifth of them) in an EverShop-shaped database, imported into a freshly
migrated one with ``flask customers import-evershop``, timed. Target: 100,000 customers
in under a minute on PostgreSQL.

The source has EverShop's columns (HEAD's names and types, written through SQLAlchemy so
the same code builds it on SQLite for a smoke run). The bcrypt hashes are a few real
ones, repeated: the import copies hashes, it never checks them.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import bcrypt
import sqlalchemy as sa

TARGET_SECONDS = 60.0
INSERT_BATCH = 5000


def evershop_tables(metadata: sa.MetaData) -> tuple[sa.Table, sa.Table]:
    """EverShop's ``customer`` and ``customer_address`` (HEAD's columns)."""
    customer = sa.Table(
        "customer",
        metadata,
        sa.Column("customer_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("uuid", sa.Uuid(as_uuid=False), nullable=False, unique=True),
        sa.Column("status", sa.SmallInteger, nullable=False),
        sa.Column("group_id", sa.Integer),
        sa.Column("email", sa.String(255), nullable=False, unique=True),
        sa.Column("password", sa.String(255), nullable=False),
        sa.Column("full_name", sa.String(255)),
        sa.Column("created_at", sa.DateTime(timezone=True)),
        sa.Column("updated_at", sa.DateTime(timezone=True)),
    )
    address = sa.Table(
        "customer_address",
        metadata,
        sa.Column("customer_address_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("uuid", sa.Uuid(as_uuid=False), nullable=False, unique=True),
        sa.Column("customer_id", sa.ForeignKey("customer.customer_id"), nullable=False),
        *(
            sa.Column(name, sa.String(255))
            for name in ("full_name", "telephone", "address_1", "address_2", "postcode")
        ),
        sa.Column("city", sa.String(255)),
        sa.Column("province", sa.String(255)),
        sa.Column("country", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True)),
        sa.Column("updated_at", sa.DateTime(timezone=True)),
        sa.Column("is_default", sa.Boolean),
    )
    return customer, address


def build_source(url: str, customers: int) -> None:
    """Fill an empty database with an EverShop shop of ``customers`` customers."""
    engine = sa.create_engine(url)
    metadata = sa.MetaData()
    customer, address = evershop_tables(metadata)
    metadata.create_all(engine)
    hashes = [
        bcrypt.hashpw(f"password {n}".encode(), bcrypt.gensalt(4, b"2a")).decode() for n in range(8)
    ]
    now = datetime.now(timezone.utc)
    try:
        with engine.begin() as connection:
            for start in range(0, customers, INSERT_BATCH):
                stop = min(start + INSERT_BATCH, customers)
                connection.execute(
                    sa.insert(customer),
                    [
                        {
                            "uuid": str(uuid.uuid4()),
                            "status": 1,
                            "group_id": 1,
                            "email": f"shopper{n}@example.com",
                            "password": hashes[n % len(hashes)],
                            "full_name": f"Shopper {n}",
                            "created_at": now,
                            "updated_at": now,
                        }
                        for n in range(start, stop)
                    ],
                )
            ids = connection.scalars(
                sa.select(customer.c.customer_id).where(customer.c.customer_id % 5 == 0)
            ).all()
            for start in range(0, len(ids), INSERT_BATCH):
                connection.execute(
                    sa.insert(address),
                    [
                        {
                            "uuid": str(uuid.uuid4()),
                            "customer_id": customer_id,
                            "full_name": "Shopper",
                            "telephone": "+16502530000",
                            "address_1": "1600 Amphitheatre Parkway",
                            "postcode": "94043",
                            "city": "Mountain View",
                            "province": "US-CA",
                            "country": "US",
                            "created_at": now,
                            "updated_at": now,
                            "is_default": True,
                        }
                        for customer_id in ids[start : start + INSERT_BATCH]
                    ],
                )
    finally:
        engine.dispose()


def measure(app: Any, source_url: str, customers: int, workdir: Path) -> dict[str, Any]:
    """Run ``flask customers import-evershop`` on ``app``; what it took."""
    report = workdir / "import-report.csv"
    started = time.monotonic()
    result = app.test_cli_runner().invoke(
        args=["customers", "import-evershop", source_url, "--report", str(report)]
    )
    seconds = time.monotonic() - started
    if result.exit_code != 0:
        raise RuntimeError(f"the import failed: {result.output[-2000:]}")
    return {
        "customers": customers,
        "seconds": round(seconds, 1),
        "customers_per_second": round(customers / seconds),
        "target_seconds": TARGET_SECONDS,
        "met": seconds < TARGET_SECONDS,
        "output": result.output.strip().splitlines()[-1],
    }
