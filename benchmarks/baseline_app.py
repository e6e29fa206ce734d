"""The bare baselines: what a hand-written endpoint must do at the least, and no more.

Each endpoint does the one thing its library counterpart cannot avoid: one password
hash, or the same primary-key reads and writes on the same tables and rows, with no
token, validation or error shaping. A customer's own write must hold their session in
the writing transaction (a logout or password change that commits meanwhile ends it, and
then nothing is written), so the floors of PATCH and DELETE take the same locks. It is
its own Flask app with its own Flask-SQLAlchemy instance (so nothing of the library is
loaded into it), served under ``/bare`` by the same gunicorn workers as the example app
(see :mod:`.wsgi`). It signs and digests with the keys the example app derives.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import jwt
import sqlalchemy as sa
from flask import Flask, Response, jsonify, request
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import Mapped, mapped_column
from werkzeug.security import check_password_hash, generate_password_hash

TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"
ADDRESS_FIELDS = (
    "full_name",
    "telephone",
    "address_1",
    "address_2",
    "postcode",
    "city",
    "province",
    "country",
)
#: The library's JWT issuer and audience.
ISSUER, AUDIENCE = "flask-evershop-customer", "evershop-customer"

db = SQLAlchemy()


class BareCustomer(db.Model):  # type: ignore[name-defined,misc]
    """The library's customer table, mapped plainly (no version counter)."""

    __tablename__ = "evershop_customer"

    customer_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(sa.String(32))
    status: Mapped[int] = mapped_column(sa.SmallInteger)
    group_id: Mapped[int] = mapped_column(sa.Integer)
    email: Mapped[str] = mapped_column(sa.String(254))
    full_name: Mapped[str] = mapped_column(sa.String(255))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime)
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime)

    def public(self) -> dict[str, Any]:
        return {
            "customer_id": self.customer_id,
            "uuid": self.uuid,
            "status": self.status,
            "group_id": self.group_id,
            "email": self.email,
            "full_name": self.full_name,
            "created_at": self.created_at.strftime(TIMESTAMP_FORMAT),
            "updated_at": self.updated_at.strftime(TIMESTAMP_FORMAT),
        }


class BareAdminSession(db.Model):  # type: ignore[name-defined,misc]
    """The library's admin session table, mapped plainly."""

    __tablename__ = "evershop_customer_admin_session"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    admin_id: Mapped[str] = mapped_column(sa.String(255))
    expires_at: Mapped[datetime] = mapped_column(sa.DateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(sa.DateTime, nullable=True)


class BareSession(db.Model):  # type: ignore[name-defined,misc]
    """The library's session table, mapped plainly."""

    __tablename__ = "evershop_customer_session"

    sid: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    customer_id: Mapped[int] = mapped_column(sa.Integer)
    expires_at: Mapped[datetime] = mapped_column(sa.DateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(sa.DateTime, nullable=True)


class BareAddress(db.Model):  # type: ignore[name-defined,misc]
    """The library's address table, mapped plainly."""

    def public(self) -> dict[str, Any]:
        return {
            "customer_address_id": self.customer_address_id,
            "uuid": self.uuid,
            "customer_id": self.customer_id,
            "full_name": self.full_name,
            "telephone": self.telephone,
            "address_1": self.address_1,
            "address_2": self.address_2,
            "postcode": self.postcode,
            "city": self.city,
            "province": self.province,
            "country": self.country,
            "created_at": self.created_at.strftime(TIMESTAMP_FORMAT),
            "updated_at": self.updated_at.strftime(TIMESTAMP_FORMAT),
            "is_default": bool(self.is_default),
        }

    __tablename__ = "evershop_customer_address"

    customer_address_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(sa.String(32))
    customer_id: Mapped[int] = mapped_column(sa.Integer)
    full_name: Mapped[str] = mapped_column(sa.String(255))
    telephone: Mapped[str | None] = mapped_column(sa.String(16), nullable=True)
    address_1: Mapped[str] = mapped_column(sa.String(255))
    address_2: Mapped[str | None] = mapped_column(sa.String(255), nullable=True)
    postcode: Mapped[str] = mapped_column(sa.String(32))
    city: Mapped[str | None] = mapped_column(sa.String(255), nullable=True)
    province: Mapped[str | None] = mapped_column(sa.String(8), nullable=True)
    country: Mapped[str] = mapped_column(sa.String(2))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime)
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime)
    is_default: Mapped[bool | None] = mapped_column(sa.Boolean, nullable=True)


class BareRefreshToken(db.Model):  # type: ignore[name-defined,misc]
    """The library's refresh token table, mapped plainly."""

    __tablename__ = "evershop_customer_refresh_token"

    digest: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    sid: Mapped[str] = mapped_column(sa.String(36))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime)
    expires_at: Mapped[datetime] = mapped_column(sa.DateTime)
    spent_at: Mapped[datetime | None] = mapped_column(sa.DateTime, nullable=True)


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # The same pragmas the example app sets on its own SQLite connections.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def create_app(
    database_uri: str,
    *,
    hash_method: str,
    stored_hash: str,
    jwt_key: bytes,
    refresh_key: bytes,
    access_lifetime: int,
) -> Flask:
    """The bare app. ``stored_hash`` is what the bare login checks passwords against;
    ``jwt_key`` and ``refresh_key`` are the example app's keys."""
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = database_uri
    if database_uri.startswith("sqlite"):
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {"connect_args": {"timeout": 30}}
    db.init_app(app)
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            sa.event.listen(db.engine, "connect", _sqlite_pragmas)

    @app.get("/pid")
    def pid() -> Response:
        """Which worker holds this connection (the client balances connections)."""
        return jsonify({"pid": os.getpid()})

    @app.post("/hash/check")
    def hash_check() -> Response:
        """Login's floor: one ``check_password_hash``."""
        body = request.get_json()
        ok = check_password_hash(stored_hash, body["password"])
        return jsonify({"data": {"ok": ok}})

    @app.post("/hash/generate")
    def hash_generate() -> Response:
        """Create's floor: one ``generate_password_hash``."""
        body = request.get_json()
        generate_password_hash(body["password"], method=hash_method)
        return jsonify({"data": {}})

    def credential(sid: str) -> BareCustomer:
        """The customer behind a session: one primary-key read (the join the token check
        needs anyway)."""
        customer = db.session.execute(
            sa.select(BareCustomer)
            .join(BareSession, BareSession.customer_id == BareCustomer.customer_id)
            .where(BareSession.sid == sid)
        ).scalar_one()
        return customer

    def hold_session(sid: str) -> None:
        """The session, read again and share-locked in the writing transaction."""
        db.session.execute(
            sa.select(BareSession.sid).where(BareSession.sid == sid).with_for_update(read=True)
        ).one()

    @app.patch("/token/<sid>")
    def token(sid: str) -> Response:
        """The token check's floor (PATCH {}): the credential read, the customer answered."""
        request.get_json()
        return jsonify({"data": credential(sid).public()})

    @app.get("/me/<sid>")
    def me(sid: str) -> Response:
        """GET /customers/me's floor: the credential read, the customer answered."""
        return jsonify({"data": credential(sid).public()})

    @app.get("/customers")
    def customers() -> Response:
        """The admin list's floor: the admin session read, the newest 20, the count."""
        admin = db.session.get(BareAdminSession, request.args["asid"])
        assert admin is not None
        rows = db.session.scalars(
            sa.select(BareCustomer)
            .order_by(BareCustomer.created_at.desc(), BareCustomer.customer_id.desc())
            .limit(20)
        ).all()
        total = db.session.scalar(sa.select(sa.func.count()).select_from(BareCustomer))
        items = [row.public() for row in rows]
        return jsonify({"data": {"items": items, "total": total, "currentPage": 1, "limit": 20}})

    @app.get("/jwt")
    def verified() -> Response:
        """A trusted access token's floor: verify the JWT, answer who it names."""
        token = request.headers["Authorization"].removeprefix("Bearer ")
        claims = jwt.decode(token, jwt_key, algorithms=["HS256"], audience=AUDIENCE, issuer=ISSUER)
        return jsonify({"data": {"uuid": claims["sub"], "sid": claims["sid"]}})

    def refresh_digest(token: str) -> str:
        return hmac.new(refresh_key, token.encode(), hashlib.sha256).hexdigest()

    @app.post("/refresh")
    def refresh() -> Response:
        """The refresh's floor: the token read with its session and customer, the write
        that spends it (while its session is live), the next one's insert, a new JWT."""
        digest = refresh_digest(request.get_json()["refreshToken"])
        now = _now()
        row = db.session.execute(
            sa.select(BareRefreshToken.spent_at, BareSession.sid, BareSession.expires_at)
            .add_columns(BareSession.revoked_at, BareCustomer.uuid, BareCustomer.status)
            .join(BareSession, BareSession.sid == BareRefreshToken.sid)
            .join(BareCustomer, BareCustomer.customer_id == BareSession.customer_id)
            .where(BareRefreshToken.digest == digest)
        ).one()
        live = (
            sa.select(BareSession.sid)
            .where(
                BareSession.sid == BareRefreshToken.sid,
                BareSession.revoked_at.is_(None),
                BareSession.expires_at > now,
            )
            .exists()
        )
        db.session.execute(
            sa.update(BareRefreshToken)
            .where(BareRefreshToken.digest == digest, BareRefreshToken.spent_at.is_(None), live)
            .values(spent_at=now)
        )
        new = secrets.token_urlsafe(32)
        db.session.execute(
            sa.insert(BareRefreshToken).values(
                digest=refresh_digest(new), sid=row.sid, created_at=now, expires_at=row.expires_at
            )
        )
        issued = int(now.replace(tzinfo=timezone.utc).timestamp())
        exp = min(now + timedelta(seconds=access_lifetime), row.expires_at)
        claims = {
            "sub": row.uuid,
            "sid": row.sid,
            "iat": issued,
            "exp": int(exp.replace(tzinfo=timezone.utc).timestamp()),
            "iss": ISSUER,
            "aud": AUDIENCE,
        }
        access = jwt.encode(claims, jwt_key, algorithm="HS256")
        db.session.commit()
        return jsonify({"data": {"accessToken": access, "refreshToken": new}})

    @app.post("/addresses/<sid>")
    def add_address(sid: str) -> Response:
        """Adding an address's floor: the credential read, the customer locked, the
        session held, the count, the INSERT (no validation)."""
        body = request.get_json()
        customer_id = credential(sid).customer_id
        db.session.execute(
            sa.select(BareCustomer.customer_id)
            .where(BareCustomer.customer_id == customer_id)
            .with_for_update()
        ).one()
        hold_session(sid)
        db.session.scalar(
            sa.select(sa.func.count())
            .select_from(BareAddress)
            .where(BareAddress.customer_id == customer_id)
        )
        now = _now()
        fields = {k: body.get(k) for k in ADDRESS_FIELDS}
        address = BareAddress(
            uuid=uuid.uuid4().hex, customer_id=customer_id, created_at=now, updated_at=now, **fields
        )
        db.session.add(address)
        db.session.flush()
        data = address.public()
        db.session.commit()
        return jsonify({"data": data})

    @app.get("/addresses/<sid>")
    def list_addresses(sid: str) -> Response:
        """Listing addresses' floor: the credential read, the customer's addresses."""
        customer_id = credential(sid).customer_id
        rows = db.session.scalars(
            sa.select(BareAddress)
            .where(BareAddress.customer_id == customer_id)
            .order_by(BareAddress.created_at, BareAddress.customer_address_id)
        ).all()
        return jsonify({"data": {"items": [row.public() for row in rows]}})

    @app.patch("/customers/<sid>")
    def update(sid: str) -> Response:
        """PATCH's floor: the credential read, one write, the session held."""
        body = request.get_json()
        customer = credential(sid)
        now = _now()
        db.session.execute(
            sa.update(BareCustomer)
            .where(BareCustomer.customer_id == customer.customer_id)
            .values(full_name=body["full_name"], updated_at=now)
        )
        hold_session(sid)
        data = {**customer.public(), "full_name": body["full_name"]}
        data["updated_at"] = now.strftime(TIMESTAMP_FORMAT)
        db.session.commit()
        return jsonify({"data": data})

    @app.delete("/sessions/<sid>")
    def logout(sid: str) -> Response:
        """Logout's floor: one primary-key read, one write."""
        session = db.session.get(BareSession, sid)
        assert session is not None
        session.revoked_at = _now()
        db.session.commit()
        return jsonify({"data": {}})

    @app.delete("/customers/<sid>")
    def delete(sid: str) -> Response:
        """DELETE's floor: the credential read, the customer locked, the session held,
        three writes (sessions, addresses, customer)."""
        customer_id = credential(sid).customer_id
        customer = db.session.execute(
            sa.select(BareCustomer)
            .where(BareCustomer.customer_id == customer_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).scalar_one()
        hold_session(sid)
        data = customer.public()
        db.session.execute(sa.delete(BareSession).where(BareSession.customer_id == customer_id))
        db.session.execute(sa.delete(BareAddress).where(BareAddress.customer_id == customer_id))
        db.session.execute(sa.delete(BareCustomer).where(BareCustomer.customer_id == customer_id))
        db.session.commit()
        return jsonify({"data": data})

    return app
