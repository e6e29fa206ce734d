"""The mapped classes, built on the host's Flask-SQLAlchemy ``db``.

The columns are declared once on typed mixins; :func:`build_models` makes the concrete
classes on a given ``db.Model`` so they join the host's metadata (and its migrations).
Table, index and constraint names are fixed: the shipped Alembic revisions use them.
"""

from __future__ import annotations

import enum
import weakref
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

import sqlalchemy as sa
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

CUSTOMER_TABLE = "evershop_customer"
SESSION_TABLE = "evershop_customer_session"
LOGIN_FAILURE_TABLE = "evershop_customer_login_failure"
ADMIN_SESSION_TABLE = "evershop_customer_admin_session"
RESET_TOKEN_TABLE = "evershop_customer_reset_token"
REFRESH_TOKEN_TABLE = "evershop_customer_refresh_token"
ADDRESS_TABLE = "evershop_customer_address"

EMAIL_MAX_LENGTH = 254
FULL_NAME_MAX_LENGTH = 255
#: Longest address line, city and name of an address.
ADDRESS_LINE_MAX_LENGTH = 255
POSTCODE_MAX_LENGTH = 32
#: An E.164 number has at most 15 digits and a ``+``.
TELEPHONE_MAX_LENGTH = 16
#: ISO 3166-2 codes have at most six characters (``GB-ABC``, ``FR-971``).
PROVINCE_MAX_LENGTH = 8


class CustomerStatus(enum.IntEnum):
    """A customer's ``status``; the API and the database keep EverShop's numbers."""

    DISABLED = 0
    ACTIVE = 1


#: MySQL/MariaDB options: 4-byte UTF-8 whatever the server's default charset is.
MYSQL_TABLE_ARGS = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_unicode_ci"}


def exact_string(length: int) -> sa.types.TypeEngine[str]:
    """A VARCHAR compared byte for byte on MySQL too (its default collation folds case
    and accents, which would make two distinct canonical emails collide)."""
    return sa.String(length).with_variant(
        mysql.VARCHAR(length, charset="utf8mb4", collation="utf8mb4_bin"), "mysql", "mariadb"
    )


class _Mapped:
    """What the concrete classes get from ``db.Model``, for the type checker."""

    if TYPE_CHECKING:
        __table__: ClassVar[sa.Table]

        def __init__(self, **columns: Any) -> None: ...


class CustomerColumns(_Mapped):
    """A customer account. ``uuid`` is the public id; ``email_canonical`` is unique."""

    customer_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(sa.String(32), nullable=False)
    status: Mapped[int] = mapped_column(sa.SmallInteger, nullable=False)
    group_id: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    email: Mapped[str] = mapped_column(sa.String(EMAIL_MAX_LENGTH), nullable=False)
    email_canonical: Mapped[str] = mapped_column(exact_string(EMAIL_MAX_LENGTH), nullable=False)
    full_name: Mapped[str] = mapped_column(sa.String(FULL_NAME_MAX_LENGTH), nullable=False)
    password_hash: Mapped[str] = mapped_column(sa.String(255), nullable=False)
    version: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime, nullable=False)
    #: TRUE for a customer ``flask customers import-evershop`` wrote, NULL for one
    #: registered here: ``--update`` refreshes only the former.
    imported: Mapped[bool | None] = mapped_column(sa.Boolean, nullable=True)

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Any, ...]:
        return (
            sa.UniqueConstraint("uuid", name="uq_evershop_customer_uuid"),
            sa.UniqueConstraint("email_canonical", name="uq_evershop_customer_email_canonical"),
            # The admin list: an email prefix (PostgreSQL needs the pattern operator class
            # for LIKE 'prefix%' under any collation but C) and each sort, ties broken by
            # customer_id.
            sa.Index(
                "ix_evershop_customer_email_prefix",
                "email_canonical",
                postgresql_ops={"email_canonical": "varchar_pattern_ops"},
            ),
            sa.Index("ix_evershop_customer_created_at", "created_at", "customer_id"),
            sa.Index("ix_evershop_customer_full_name", "full_name", "customer_id"),
            MYSQL_TABLE_ARGS,
        )

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:
        # The version counter turns a concurrent write into StaleDataError: no lost update.
        return {"version_id_col": cls.__table__.c.version}

    def __repr__(self) -> str:
        return f"<Customer {self.uuid}>"


class LoginSessionColumns(_Mapped):
    """A login session: the JWT's ``sid``. Live while unrevoked and unexpired."""

    sid: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        sa.Integer,
        sa.ForeignKey(
            f"{CUSTOMER_TABLE}.customer_id",
            ondelete="CASCADE",
            name="fk_evershop_customer_session_customer_id",
        ),
        nullable=False,
    )
    created_at: Mapped[datetime] = mapped_column(sa.DateTime, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(sa.DateTime, nullable=False)
    revoked_at: Mapped[datetime | None] = mapped_column(sa.DateTime, nullable=True)
    #: The ``User-Agent`` the session logged in with (at most 255 characters), if any.
    user_agent: Mapped[str | None] = mapped_column(sa.String(255), nullable=True)

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Any, ...]:
        return (
            sa.Index("ix_evershop_customer_session_customer_id", "customer_id"),
            sa.Index("ix_evershop_customer_session_expires_at", "expires_at"),
            MYSQL_TABLE_ARGS,
        )

    def __repr__(self) -> str:
        return f"<CustomerSession {self.sid}>"


class LoginFailureColumns(_Mapped):
    """One failed login, under the hashed email or the hashed client address."""

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    subject: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    failed_at: Mapped[datetime] = mapped_column(sa.DateTime, nullable=False)

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Any, ...]:
        return (
            sa.Index("ix_evershop_customer_login_failure_subject", "subject", "failed_at"),
            sa.Index("ix_evershop_customer_login_failure_failed_at", "failed_at"),
            MYSQL_TABLE_ARGS,
        )


class AdminSessionColumns(_Mapped):
    """An admin login: the row the signed admin cookie names. Live while unrevoked and
    unexpired; the host's admin id is whatever its ``admin_loader`` understands."""

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    admin_id: Mapped[str] = mapped_column(sa.String(255), nullable=False)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(sa.DateTime, nullable=False)
    revoked_at: Mapped[datetime | None] = mapped_column(sa.DateTime, nullable=True)

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Any, ...]:
        return (
            sa.Index("ix_evershop_customer_admin_session_admin_id", "admin_id"),
            sa.Index("ix_evershop_customer_admin_session_expires_at", "expires_at"),
            MYSQL_TABLE_ARGS,
        )

    def __repr__(self) -> str:
        return f"<AdminSession {self.id}>"


class ResetTokenColumns(_Mapped):
    """A password reset token: only its SHA-256 digest is stored. Usable once, while
    unused and unexpired; a newer one of the customer, or a completed reset, uses it up."""

    digest: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        sa.Integer,
        sa.ForeignKey(
            f"{CUSTOMER_TABLE}.customer_id",
            ondelete="CASCADE",
            name="fk_evershop_customer_reset_token_customer_id",
        ),
        nullable=False,
    )
    #: The uuid of the customer it was issued to, which is never reused (a
    #: ``customer_id`` can be: SQLite reuses the highest rowid once it is deleted).
    customer_uuid: Mapped[str] = mapped_column(sa.String(32), nullable=False)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(sa.DateTime, nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(sa.DateTime, nullable=True)

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Any, ...]:
        return (
            sa.Index("ix_evershop_customer_reset_token_customer_id", "customer_id"),
            sa.Index("ix_evershop_customer_reset_token_expires_at", "expires_at"),
            MYSQL_TABLE_ARGS,
        )

    def __repr__(self) -> str:
        return f"<ResetToken of customer {self.customer_id}>"


class RefreshTokenColumns(_Mapped):
    """A refresh token of a token session: only its SHA-256 digest is stored. Usable
    while unspent and its session live; a spent one is kept while the session lives, to
    recognise a replay."""

    digest: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    sid: Mapped[str] = mapped_column(
        sa.String(36),
        sa.ForeignKey(
            f"{SESSION_TABLE}.sid",
            ondelete="CASCADE",
            name="fk_evershop_customer_refresh_token_sid",
        ),
        nullable=False,
    )
    created_at: Mapped[datetime] = mapped_column(sa.DateTime, nullable=False)
    #: The session's own expiry: rotation never extends a session.
    expires_at: Mapped[datetime] = mapped_column(sa.DateTime, nullable=False)
    spent_at: Mapped[datetime | None] = mapped_column(sa.DateTime, nullable=True)

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Any, ...]:
        return (
            sa.Index("ix_evershop_customer_refresh_token_sid", "sid"),
            sa.Index("ix_evershop_customer_refresh_token_expires_at", "expires_at"),
            MYSQL_TABLE_ARGS,
        )

    def __repr__(self) -> str:
        return f"<RefreshToken of session {self.sid}>"


class AddressColumns(_Mapped):
    """A customer's address. ``is_default`` is TRUE or NULL, never FALSE: the unique
    constraint on (``customer_id``, ``is_default``) then allows one default per customer,
    on every database (NULLs never collide)."""

    customer_address_id: Mapped[int] = mapped_column(
        sa.Integer, primary_key=True, autoincrement=True
    )
    uuid: Mapped[str] = mapped_column(sa.String(32), nullable=False)
    customer_id: Mapped[int] = mapped_column(
        sa.Integer,
        sa.ForeignKey(
            f"{CUSTOMER_TABLE}.customer_id",
            ondelete="CASCADE",
            name="fk_evershop_customer_address_customer_id",
        ),
        nullable=False,
    )
    full_name: Mapped[str] = mapped_column(sa.String(ADDRESS_LINE_MAX_LENGTH), nullable=False)
    telephone: Mapped[str | None] = mapped_column(sa.String(TELEPHONE_MAX_LENGTH), nullable=True)
    address_1: Mapped[str] = mapped_column(sa.String(ADDRESS_LINE_MAX_LENGTH), nullable=False)
    address_2: Mapped[str | None] = mapped_column(sa.String(ADDRESS_LINE_MAX_LENGTH), nullable=True)
    postcode: Mapped[str] = mapped_column(sa.String(POSTCODE_MAX_LENGTH), nullable=False)
    city: Mapped[str | None] = mapped_column(sa.String(ADDRESS_LINE_MAX_LENGTH), nullable=True)
    province: Mapped[str | None] = mapped_column(sa.String(PROVINCE_MAX_LENGTH), nullable=True)
    country: Mapped[str] = mapped_column(sa.String(2), nullable=False)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime, nullable=False)
    is_default: Mapped[bool | None] = mapped_column(sa.Boolean, nullable=True)

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Any, ...]:
        return (
            sa.UniqueConstraint("uuid", name="uq_evershop_customer_address_uuid"),
            # Also the index of a customer's addresses (its leading column).
            sa.UniqueConstraint(
                "customer_id", "is_default", name="uq_evershop_customer_address_default"
            ),
            MYSQL_TABLE_ARGS,
        )

    def __repr__(self) -> str:
        return f"<CustomerAddress {self.uuid}>"


class Models(NamedTuple):
    """The mapped classes of one ``db``. A table of a new feature joins here, and with
    a foreign key that names the customer it is erased with them (:func:`rows_naming`)."""

    Customer: type[CustomerColumns]
    LoginSession: type[LoginSessionColumns]
    LoginFailure: type[LoginFailureColumns]
    AdminSession: type[AdminSessionColumns]
    ResetToken: type[ResetTokenColumns]
    RefreshToken: type[RefreshTokenColumns]
    Address: type[AddressColumns]


def rows_naming(models: Models) -> list[sa.Delete]:
    """DELETE statements of every row of ``models``' tables that names the customer
    bound as ``customer_id``, directly or through another such row, dependents first.

    Found from the foreign keys, not listed by hand, so a new table is covered once it
    has one; run before the customer's own row goes, whether or not the database
    enforces the foreign keys (SQLite without ``PRAGMA foreign_keys`` does not).
    """
    customers = models.Customer.__table__
    tables = {model.__table__ for model in models} - {customers}
    customer_id: sa.BindParameter[int] = sa.bindparam("customer_id")

    def naming(table: sa.Table) -> tuple[int, sa.ColumnElement[bool]] | None:
        """How deep below the customer ``table`` is, and the condition of its rows."""
        for key in table.foreign_keys:
            parent = key.column.table
            if parent is customers:
                return 1, key.parent == customer_id
            if parent in tables:
                found = naming(parent)
                if found is not None:
                    depth, condition = found
                    selected = sa.select(key.column).where(condition)
                    return depth + 1, key.parent.in_(selected.scalar_subquery())
        return None

    named = []
    for table in tables:
        found = naming(table)
        if found is not None:
            named.append((-found[0], table.name, sa.delete(table).where(found[1])))
    return [statement for *_, statement in sorted(named, key=lambda item: item[:2])]


_built: weakref.WeakKeyDictionary[SQLAlchemy, Models] = weakref.WeakKeyDictionary()


def build_models(db: SQLAlchemy) -> Models:
    """The mapped classes on ``db.Model``; built once per ``db``."""
    if db not in _built:
        base: Any = db.Model
        _built[db] = Models(
            Customer=type("Customer", (CustomerColumns, base), {"__tablename__": CUSTOMER_TABLE}),
            LoginSession=type(
                "CustomerLoginSession",
                (LoginSessionColumns, base),
                {"__tablename__": SESSION_TABLE},
            ),
            LoginFailure=type(
                "CustomerLoginFailure",
                (LoginFailureColumns, base),
                {"__tablename__": LOGIN_FAILURE_TABLE},
            ),
            AdminSession=type(
                "CustomerAdminSession",
                (AdminSessionColumns, base),
                {"__tablename__": ADMIN_SESSION_TABLE},
            ),
            ResetToken=type(
                "CustomerResetToken",
                (ResetTokenColumns, base),
                {"__tablename__": RESET_TOKEN_TABLE},
            ),
            RefreshToken=type(
                "CustomerRefreshToken",
                (RefreshTokenColumns, base),
                {"__tablename__": REFRESH_TOKEN_TABLE},
            ),
            Address=type(
                "CustomerAddress", (AddressColumns, base), {"__tablename__": ADDRESS_TABLE}
            ),
        )
    return _built[db]
