"""EverShop-shaped source databases for the import tests: the DDL of each era
(``evershop-head-notes.md`` §9) and rows with real bcrypt hashes, as bcryptjs writes
them (``$2a$``; cost 4 here, for speed)."""

from __future__ import annotations

import uuid as uuid_module
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import bcrypt
import sqlalchemy as sa

from flask_evershop_customer.evershop_hashes import escape_tags

#: The eras of EverShop's schema the importer reads, and the server each lives on.
ERAS = {"head": "postgresql", "rc3": "postgresql", "rc2": "mysql"}

HEAD_DDL = [
    """CREATE TABLE customer (
        customer_id INT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        uuid UUID NOT NULL DEFAULT gen_random_uuid(),
        status SMALLINT NOT NULL DEFAULT 1,
        group_id INT DEFAULT 1,
        email VARCHAR NOT NULL,
        password VARCHAR NOT NULL,
        full_name VARCHAR NULL,
        created_at TIMESTAMPTZ DEFAULT CURRENT_TIMESTAMP,
        updated_at TIMESTAMPTZ DEFAULT CURRENT_TIMESTAMP,
        meta_data JSONB NOT NULL DEFAULT '{}',
        CONSTRAINT "CUSTOMER_UUID_UNIQUE" UNIQUE (uuid),
        CONSTRAINT "EMAIL_UNIQUE" UNIQUE (email))""",
    """CREATE TABLE customer_address (
        customer_address_id INT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        uuid UUID NOT NULL DEFAULT gen_random_uuid(),
        customer_id INT NOT NULL REFERENCES customer (customer_id) ON DELETE CASCADE,
        full_name VARCHAR, telephone VARCHAR, address_1 VARCHAR, address_2 VARCHAR,
        postcode VARCHAR, city VARCHAR, province VARCHAR, country VARCHAR NOT NULL,
        created_at TIMESTAMPTZ DEFAULT CURRENT_TIMESTAMP,
        updated_at TIMESTAMPTZ DEFAULT CURRENT_TIMESTAMP,
        is_default BOOLEAN NULL,
        CONSTRAINT "CUSTOMER_ADDRESS_UUID_UNIQUE" UNIQUE (uuid))""",
]
RC3_DDL = [
    HEAD_DDL[0].replace(",\n        meta_data JSONB NOT NULL DEFAULT '{}'", ""),
    HEAD_DDL[1].replace("is_default BOOLEAN NULL", "is_default SMALLINT NULL"),
]
RC2_DDL = [
    """CREATE TABLE customer (
        customer_id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
        uuid VARCHAR(36) NOT NULL DEFAULT (replace(uuid(),'-','')),
        status SMALLINT NOT NULL DEFAULT 1,
        group_id INT UNSIGNED NULL,
        email VARCHAR(255) NOT NULL,
        password VARCHAR(255) NOT NULL,
        full_name CHAR(255) NULL,
        created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
        updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
        UNIQUE KEY CUSTOMER_UUID_UNIQUE (uuid),
        UNIQUE KEY EMAIL_UNIQUE (email)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
    """CREATE TABLE customer_address (
        customer_address_id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
        uuid VARCHAR(36) NOT NULL DEFAULT (replace(uuid(),'-','')),
        customer_id INT UNSIGNED NOT NULL,
        full_name VARCHAR(255), telephone VARCHAR(255), address_1 VARCHAR(255),
        address_2 VARCHAR(255), postcode VARCHAR(255), city VARCHAR(255),
        province VARCHAR(255), country VARCHAR(255) NOT NULL,
        created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
        updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
        is_default INT UNSIGNED NULL,
        UNIQUE KEY CUSTOMER_ADDRESS_UUID_UNIQUE (uuid),
        CONSTRAINT FK_CUSTOMER_ADDRESS FOREIGN KEY (customer_id)
            REFERENCES customer (customer_id) ON DELETE CASCADE) ENGINE=InnoDB
        DEFAULT CHARSET=utf8mb4""",
]
DDL = {"head": HEAD_DDL, "rc3": RC3_DDL, "rc2": RC2_DDL}


def bcryptjs_hash(password: str) -> str:
    """What EverShop stored: bcryptjs's ``$2a$`` hash of the password as its request
    escaping left it."""
    salt = bcrypt.gensalt(rounds=4, prefix=b"2a")
    return bcrypt.hashpw(escape_tags(password).encode()[:72], salt).decode()


@dataclass
class Source:
    """An EverShop database of one era, and what was put in it."""

    era: str
    url: str
    engine: sa.Engine = field(init=False)
    uuids: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.engine = sa.create_engine(self.url)
        with self.engine.begin() as connection:
            for statement in DDL[self.era]:
                connection.exec_driver_sql(statement)

    def customer(
        self,
        email: str,
        password: str = "correct horse battery",
        *,
        full_name: str | None = "Alice Example",
        status: int = 1,
        created_at: datetime | None = None,
        password_hash: str | None = None,
        uuid: str | None = None,
    ) -> str:
        """Insert a customer (with ``uuid``, or a new one); its uuid as EverShop stores it
        (dashed but at rc.2)."""
        if uuid is None:
            dashed = str(uuid_module.uuid4())
            uuid = dashed.replace("-", "") if self.era == "rc2" else dashed
        values: dict[str, Any] = {
            "uuid": uuid,
            "status": status,
            "group_id": 1,
            "email": email,
            "password": password_hash or bcryptjs_hash(password),
            "full_name": full_name,
        }
        if created_at is not None:
            values.update(created_at=created_at, updated_at=created_at)
        with self.engine.begin() as connection:
            connection.execute(sa.insert(self.table("customer")).values(**values))
        self.uuids[email] = uuid
        return uuid

    def address(self, email: str, **values: Any) -> str:
        """Insert an address of the customer with ``email``; its uuid as stored."""
        with self.engine.begin() as connection:
            customers = self.table("customer")
            customer_id = connection.scalar(
                sa.select(customers.c.customer_id).where(customers.c.email == email)
            )
            dashed = str(uuid_module.uuid4())
            uuid = dashed.replace("-", "") if self.era == "rc2" else dashed
            if "is_default" in values and self.era != "head":
                values["is_default"] = int(values["is_default"])
            connection.execute(
                sa.insert(self.table("customer_address")).values(
                    uuid=uuid, customer_id=customer_id, **values
                )
            )
        return uuid

    def table(self, name: str) -> sa.Table:
        return sa.Table(name, sa.MetaData(), autoload_with=self.engine)

    def dispose(self) -> None:
        self.engine.dispose()
