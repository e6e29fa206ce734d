"""The rules: create, update, delete, log in, log out, authenticate. No request objects.

Each write runs as one unit of work: the change is flushed, the signals are sent, and
only then is it committed. Any failure rolls the whole unit back, so a 2xx always means
committed and anything else means nothing changed (except the failed-login record that
throttling needs). The database's unique constraint decides duplicates, not a pre-check.
"""

from __future__ import annotations

import functools
import math
import uuid as uuid_module
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Generic, TypeVar, cast

import sqlalchemy as sa
from blinker import Signal
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm.exc import ObjectDeletedError, StaleDataError

from . import signals
from .config import Settings
from .errors import (
    Conflict,
    Forbidden,
    InvalidCredentials,
    NotFound,
    PreconditionFailed,
    ServiceUnavailable,
    TooManyRequests,
    Unauthorized,
)
from .logs import security_event
from .models import CustomerColumns, Models, SessionColumns
from .passwords import PasswordHasher
from .schemas import (
    Credentials,
    CustomerChanges,
    CustomerRecord,
    NewCustomer,
    is_sid,
    is_uuid,
)
from .tokens import TokenCodec, fingerprint

T = TypeVar("T")
#: How often a unit of work is tried when the database reports a deadlock, a
#: serialization failure, a lock timeout, or a write that lost a race.
ATTEMPTS = 3
DEFAULT_GROUP_ID = 1
#: For bulk UPDATE/DELETE of session rows. The library never holds session objects in
#: the ORM session (it reads their columns only), and the commit that follows expires
#: everything, so matching the statement against the identity map (the default,
#: "auto") would be work for nothing on every logout, password change and delete.
NO_SYNC = {"synchronize_session": False}


def utcnow() -> datetime:
    """Now, in UTC, naive and to the second (what every supported database stores)."""
    return datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)


@dataclass(frozen=True)
class Actor:
    """Who makes a request: an admin (by id) or a customer (with their session)."""

    admin_id: str | None = None
    customer: CustomerColumns | None = None
    sid: str | None = None

    @property
    def is_admin(self) -> bool:
        """Whether an admin makes the request."""
        return self.admin_id is not None

    def may_manage(self, customer: CustomerColumns) -> bool:
        """Admins manage every customer; a customer only themselves."""
        return self.is_admin or (
            self.customer is not None and self.customer.customer_id == customer.customer_id
        )


@dataclass(frozen=True)
class LoginResult:
    """A new session: its id, its signed token, and whose it is."""

    token: str
    sid: str
    customer: CustomerRecord


@dataclass
class _Unit(Generic[T]):
    """What a unit of work produced: its result and the signals to send before commit."""

    result: T
    events: Sequence[tuple[Signal, Mapping[str, Any]]] = ()


def record_of(customer: CustomerColumns) -> CustomerRecord:
    """The public snapshot of a loaded customer."""
    return CustomerRecord(
        customer_id=customer.customer_id,
        uuid=customer.uuid,
        status=customer.status,
        group_id=customer.group_id,
        email=customer.email,
        full_name=customer.full_name,
        created_at=customer.created_at,
        updated_at=customer.updated_at,
        version=customer.version,
    )


class CustomerService:
    """The customer rules of one app, over the host's SQLAlchemy session."""

    def __init__(
        self,
        *,
        db: SQLAlchemy,
        models: Models,
        settings: Settings,
        hasher: PasswordHasher,
        tokens: TokenCodec,
        sender: Flask,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._db = db
        self._models = models
        self._settings = settings
        self.hasher = hasher
        self.tokens = tokens
        self._sender = sender
        self._clock = clock

    @property
    def _session(self) -> OrmSession:
        return self._db.session  # type: ignore[return-value]

    @functools.cached_property
    def _session_lookup(self) -> sa.Select[datetime, datetime | None, CustomerColumns]:
        """The token check's query, built once (on first use, when the host's models are
        all declared): building a statement costs more than running a cached one."""
        Customer, Session = self._models.Customer, self._models.Session
        return (
            sa.select(Session.expires_at, Session.revoked_at, Customer)
            .join(Customer, Customer.customer_id == Session.customer_id)
            .where(Session.sid == sa.bindparam("sid"))
        )

    @functools.cached_property
    def _end_sessions(self) -> sa.Update:
        """The usual logout's UPDATE, built once: end the bound ``sids`` if still live at
        the bound ``now``. On the table, not the mapped class: no session object is ever
        loaded to keep in step, and the ORM's bulk-update path costs more than the query."""
        table = self._models.Session.__table__
        return (
            sa.update(table)
            .where(
                table.c.sid.in_(sa.bindparam("sids", expanding=True)),
                table.c.revoked_at.is_(None),
                table.c.expires_at > sa.bindparam("now"),
            )
            .values(revoked_at=sa.bindparam("ended_at"))
        )

    # -- reads ------------------------------------------------------------------------

    def get(self, customer_uuid: str) -> CustomerColumns:
        """The customer with this uuid; :class:`NotFound` when there is none."""
        customer = None
        if is_uuid(customer_uuid):
            Customer = self._models.Customer
            customer = self._session.scalars(
                sa.select(Customer).where(Customer.uuid == customer_uuid)
            ).one_or_none()
        if customer is None:
            raise NotFound("Invalid customer id")
        return customer

    def authenticate(self, token: str) -> tuple[CustomerColumns, str]:
        """The customer and session id a token stands for, in one indexed query.

        :class:`Unauthorized` unless the token verifies and its session is live, belongs
        to the token's customer, and that customer is active.
        """
        claims = self.tokens.verify(token)
        if not is_sid(claims.sid):
            raise Unauthorized("Invalid token")
        row = self._session.execute(self._session_lookup, {"sid": claims.sid}).one_or_none()
        if row is None:
            raise Unauthorized("Session has ended")
        expires_at, revoked_at, customer = row
        if (
            revoked_at is not None
            or expires_at <= self._clock()
            or customer.uuid != claims.customer_uuid
            or customer.status != 1
        ):
            raise Unauthorized("Session has ended")
        return customer, claims.sid

    # -- customers --------------------------------------------------------------------

    def create(self, new: NewCustomer) -> CustomerRecord:
        """Create a customer. :class:`Conflict` when the email is taken (any case)."""
        password_hash = self.hasher.hash(new.password)

        def work() -> _Unit[CustomerRecord]:
            now = self._clock()
            customer = self._models.Customer(
                uuid=uuid_module.uuid4().hex,
                status=new.status,
                group_id=DEFAULT_GROUP_ID,
                email=new.email,
                email_canonical=new.email_canonical,
                full_name=new.full_name,
                password_hash=password_hash,
                created_at=now,
                updated_at=now,
            )
            self._session.add(customer)
            self._session.flush()
            record = record_of(customer)
            return _Unit(record, [(signals.customer_created, {"customer": record.public()})])

        return self._atomic(work)

    def update(
        self,
        customer: CustomerColumns,
        changes: CustomerChanges,
        actor: Actor,
        *,
        expected_version: int | None = None,
    ) -> CustomerRecord:
        """Apply ``changes``. A password change ends the customer's other sessions (all
        of them when an admin changes it); status 0 ends every session.

        :class:`Forbidden` for ``status`` from a non-admin, :class:`PreconditionFailed`
        when ``expected_version`` is not the current one, :class:`Conflict` for a taken
        email.
        """
        self.authorize(actor, customer)
        if changes.status is not None and not actor.is_admin:
            security_event(
                "forbidden",
                customer=actor.customer.uuid if actor.customer is not None else None,
                sid=actor.sid,
                target=customer.uuid,
                reason="status is admin-only",
            )
            raise Forbidden("/status can only be changed by an admin")
        password_hash = self.hasher.hash(changes.password) if changes.password else None
        customer_id = customer.customer_id

        def work() -> _Unit[CustomerRecord]:
            target = self._reload(customer)
            if expected_version is not None and target.version != expected_version:
                raise PreconditionFailed()
            changed = self._apply(target, changes, password_hash)
            if not changed:
                return _Unit(record_of(target))
            target.updated_at = self._clock()
            if password_hash is not None or target.status == 0:
                keep = actor.sid if password_hash is not None and target.status == 1 else None
                self._revoke_sessions(customer_id, keep_sid=keep)
            self._session.flush()
            record = record_of(target)
            event = {"customer": record.public(), "changed": sorted(changed)}
            return _Unit(record, [(signals.customer_updated, event)])

        return self._atomic(work, retry_stale=expected_version is None)

    def delete(
        self, customer: CustomerColumns, actor: Actor, *, expected_version: int | None = None
    ) -> CustomerRecord:
        """Delete a customer and every session of theirs; returns it as it was."""
        self.authorize(actor, customer)
        customer_id = customer.customer_id

        def work() -> _Unit[CustomerRecord]:
            target = self._reload(customer)
            if expected_version is not None and target.version != expected_version:
                raise PreconditionFailed()
            record = record_of(target)
            Session = self._models.Session
            self._session.execute(
                sa.delete(Session).where(Session.customer_id == customer_id),
                execution_options=NO_SYNC,
            )
            self._session.delete(target)
            self._session.flush()
            return _Unit(record, [(signals.customer_deleted, {"customer": record.public()})])

        return self._atomic(work, retry_stale=expected_version is None)

    # -- sessions ---------------------------------------------------------------------

    def login(self, credentials: Credentials, client_address: str) -> LoginResult:
        """Check the password (exactly one hash check, whatever happens) and open a
        session. :class:`InvalidCredentials` for an unknown email, a wrong password or
        a disabled customer alike; :class:`TooManyRequests` while throttled.

        The attempt is recorded (and committed) before the password is checked, so
        concurrent attempts cannot slip past the limit; a success forgets it again.
        """
        now = self._clock()
        email_key = self._subject("email", credentials.email_canonical)
        # Without an address (a unix socket, say) there is nothing to limit by.
        ip_key = self._subject("ip", client_address) if client_address else None
        attempt_ids = self._reserve_attempt(email_key, ip_key, now, client_address)
        Customer = self._models.Customer
        customer = self._session.scalars(
            sa.select(Customer).where(Customer.email_canonical == credentials.email_canonical)
        ).one_or_none()
        stored = customer.password_hash if customer is not None else None
        valid = self.hasher.verify(stored, credentials.password)
        if customer is None or not valid or customer.status != 1:
            security_event(
                "login_failed",
                customer=customer.uuid if customer is not None else None,
                email_hash=email_key[:16],
                client=client_address,
                reason="unknown email" if customer is None else "wrong password or disabled",
            )
            raise InvalidCredentials()
        rehash = (
            self.hasher.hash(credentials.password)
            if self.hasher.needs_rehash(customer.password_hash)
            else None
        )

        def work() -> _Unit[LoginResult]:
            sid = str(uuid_module.uuid4())
            expires_at = now + timedelta(seconds=self.tokens.lifetime)
            self._session.add(
                self._models.Session(
                    sid=sid, customer_id=customer.customer_id, created_at=now, expires_at=expires_at
                )
            )
            if rehash is not None:
                customer.password_hash = rehash
            if attempt_ids:
                LoginFailure = self._models.LoginFailure
                self._session.execute(
                    sa.delete(LoginFailure).where(
                        sa.or_(LoginFailure.subject == email_key, LoginFailure.id.in_(attempt_ids))
                    )
                )
            self._session.flush()
            record = record_of(customer)
            result = LoginResult(
                token=self.tokens.issue(customer.uuid, sid, now), sid=sid, customer=record
            )
            return _Unit(
                result, [(signals.customer_logged_in, {"customer": record.public(), "sid": sid})]
            )

        try:
            result = self._atomic(work, retry_stale=True)
        except (Conflict, ObjectDeletedError):
            # The customer was deleted while logging in.
            raise InvalidCredentials() from None
        # From the snapshot: after the commit the loaded customer is expired, and reading
        # it again would be one more query, outside the request's transaction.
        security_event(
            "login", customer=result.customer.uuid, sid=result.sid, client=client_address
        )
        return result

    def logout(self, ids: list[str], actor: Actor) -> list[str]:
        """End sessions: each id is a session id or a customer uuid (all of that
        customer's sessions). All or nothing: :class:`NotFound` if any id names no live
        session or customer, :class:`Forbidden` if any belongs to someone else.
        Returns the ended session ids."""
        if not ids:
            raise NotFound("Invalid session id")
        Customer, Session = self._models.Customer, self._models.Session
        now = self._clock()
        sids = [i for i in ids if i != actor.sid and is_sid(i)]
        uuids = [i for i in ids if is_uuid(i)]
        if len(sids) + len(uuids) + (actor.sid in ids) != len(ids):
            raise NotFound("Invalid session id")
        owners: dict[str, int] = {}
        if sids:
            owners = dict(
                self._session.execute(
                    sa.select(Session.sid, Session.customer_id).where(
                        Session.sid.in_(sids), _live(Session, now)
                    )
                ).all()
            )
        customer_ids: list[int] = []
        if uuids:
            found = dict(
                self._session.execute(
                    sa.select(Customer.uuid, Customer.customer_id).where(Customer.uuid.in_(uuids))
                ).all()
            )
            if len(found) != len(uuids):
                raise NotFound("Invalid customer id")
            customer_ids = list(found.values())
        if len(owners) != len(sids):
            raise NotFound("Invalid session id")
        if actor.sid in ids and actor.customer is not None:
            owners[actor.sid] = actor.customer.customer_id
        if not actor.is_admin:
            own_id = actor.customer.customer_id if actor.customer is not None else None
            if any(owner != own_id for owner in [*owners.values(), *customer_ids]):
                security_event(
                    "logout_forbidden",
                    customer=actor.customer.uuid if actor.customer else None,
                    sid=actor.sid,
                )
                raise Forbidden("You can only end your own sessions")

        def work() -> _Unit[list[tuple[str, str | None]]]:
            ended = dict(owners)  # every session ended here -> its customer_id
            if customer_ids:
                ended.update(
                    self._session.execute(
                        sa.select(Session.sid, Session.customer_id).where(
                            Session.customer_id.in_(customer_ids),
                            _live(Session, now),
                            Session.sid.not_in(list(owners)),
                        )
                    ).all()
                )
            if customer_ids:
                condition = sa.or_(
                    Session.sid.in_(list(owners)), Session.customer_id.in_(customer_ids)
                )
                self._session.execute(
                    sa.update(Session).where(condition, _live(Session, now)).values(revoked_at=now),
                    execution_options=NO_SYNC,
                )
            else:
                self._session.execute(
                    self._end_sessions, {"sids": list(owners), "now": now, "ended_at": now}
                )
            events = []
            uuids: dict[int, str] = {}
            for owner_id in {*owners.values(), *customer_ids}:
                owner = self._session.get(self._models.Customer, owner_id)
                if owner is not None:
                    uuids[owner_id] = owner.uuid
                    owner_sids = [sid for sid, of in ended.items() if of == owner_id]
                    events.append(
                        (
                            signals.customer_logged_out,
                            {"customer": record_of(owner).public(), "sids": owner_sids},
                        )
                    )
            return _Unit([(sid, uuids.get(of)) for sid, of in ended.items()], events)

        ended: list[tuple[str, str | None]] = self._atomic(work)
        for sid, customer_uuid in ended:
            security_event("logout", customer=customer_uuid, sid=sid, by_admin=actor.admin_id)
        return [sid for sid, _ in ended]

    # -- maintenance ------------------------------------------------------------------

    def purge_sessions(self, batch_size: int = 1000) -> int:
        """Delete expired and revoked sessions, ``batch_size`` rows per transaction, and
        login failures older than the throttling window. Returns the sessions deleted."""
        Session, LoginFailure = self._models.Session, self._models.LoginFailure
        now = self._clock()
        total = 0
        while True:
            batch = self._session.scalars(
                sa.select(Session.sid)
                .where(sa.or_(Session.expires_at <= now, Session.revoked_at.is_not(None)))
                .limit(batch_size)
            ).all()
            if batch:
                self._session.execute(sa.delete(Session).where(Session.sid.in_(batch)))
            self._session.commit()
            total += len(batch)
            if len(batch) < batch_size:
                break
        cutoff = now - timedelta(seconds=self._settings.login_failure_window)
        self._session.execute(sa.delete(LoginFailure).where(LoginFailure.failed_at <= cutoff))
        self._session.commit()
        return total

    def clear_login_failures(self, email_canonical: str) -> int:
        """Lift the lockout of one email. Returns how many failures were forgotten."""
        LoginFailure = self._models.LoginFailure
        subject = self._subject("email", email_canonical)
        result = self._session.execute(
            sa.delete(LoginFailure).where(LoginFailure.subject == subject)
        )
        self._session.commit()
        return int(getattr(result, "rowcount", 0) or 0)

    # -- helpers ----------------------------------------------------------------------

    def authorize(self, actor: Actor, customer: CustomerColumns) -> None:
        """:class:`Forbidden` unless ``actor`` may manage ``customer``."""
        if not actor.may_manage(customer):
            security_event(
                "forbidden",
                customer=actor.customer.uuid if actor.customer is not None else None,
                sid=actor.sid,
                target=customer.uuid,
            )
            raise Forbidden("You can only manage your own account")

    @staticmethod
    def _reload(customer: CustomerColumns) -> CustomerColumns:
        """The customer, still there: a retry after a rollback reloads it, and finds it
        gone if a concurrent request deleted it."""
        try:
            customer.version  # noqa: B018 - loads the row again if it was expired
        except ObjectDeletedError:
            raise NotFound("Invalid customer id") from None
        return customer

    @staticmethod
    def _apply(
        customer: CustomerColumns, changes: CustomerChanges, password_hash: str | None
    ) -> set[str]:
        changed = set()
        for name in ("email", "full_name", "status"):
            value = getattr(changes, name)
            if value is not None and value != getattr(customer, name):
                setattr(customer, name, value)
                changed.add(name)
        if changes.email_canonical is not None:
            customer.email_canonical = changes.email_canonical
        if password_hash is not None:
            customer.password_hash = password_hash
            changed.add("password")
        return changed

    def _revoke_sessions(self, customer_id: int, *, keep_sid: str | None) -> None:
        Session = self._models.Session
        condition = [Session.customer_id == customer_id, Session.revoked_at.is_(None)]
        if keep_sid is not None:
            condition.append(Session.sid != keep_sid)
        self._session.execute(
            sa.update(Session).where(*condition).values(revoked_at=self._clock()),
            execution_options=NO_SYNC,
        )

    def _subject(self, kind: str, value: str) -> str:
        """The throttling key of an email or an address: a keyed digest, never the value."""
        return fingerprint(f"{kind}:{value}", 64, self._settings.fingerprint_key)

    def _reserve_attempt(
        self, email_key: str, ip_key: str | None, now: datetime, client_address: str
    ) -> list[int]:
        """Record this attempt as a failure under each limited subject and commit it;
        then count the failures up to and including it (so concurrent attempts cannot
        all pass). Over a limit, forget it again and raise :class:`TooManyRequests`.
        Returns the ids of the recorded rows."""
        limits = {
            subject: limit
            for subject, limit in (
                (email_key, self._settings.login_max_failures),
                (ip_key, self._settings.login_max_failures_per_ip),
            )
            if subject is not None and limit > 0
        }
        if not limits:
            return []
        LoginFailure = self._models.LoginFailure
        rows: list[dict[str, Any]] = [{"subject": s, "failed_at": now} for s in limits]

        def work() -> _Unit[dict[str, int]]:
            table = LoginFailure.__table__
            insert = sa.insert(table)
            if self._session.get_bind().dialect.insert_executemany_returning:
                # One statement for both rows, with their ids.
                returned = self._session.execute(
                    insert.returning(table.c.subject, table.c.id), rows
                )
                return _Unit({subject: row_id for subject, row_id in returned})
            ids = {}
            for row in rows:  # MySQL has no RETURNING: one INSERT a row, with its lastrowid
                result = cast(CursorResult[Any], self._session.execute(insert, row))
                ids[row["subject"]] = int(result.inserted_primary_key[0])  # type: ignore[index]
            return _Unit(ids)

        ids = self._atomic(work)
        window = self._settings.login_failure_window
        counted = self._session.execute(
            sa.select(LoginFailure.subject, sa.func.count(), sa.func.min(LoginFailure.failed_at))
            .where(
                sa.or_(
                    *(
                        sa.and_(LoginFailure.subject == subject, LoginFailure.id <= row_id)
                        for subject, row_id in ids.items()
                    )
                ),
                LoginFailure.failed_at > now - timedelta(seconds=window),
            )
            .group_by(LoginFailure.subject)
        ).all()
        for subject, count, oldest in counted:
            if count > limits[subject]:
                self._session.execute(
                    sa.delete(LoginFailure).where(LoginFailure.id.in_(list(ids.values())))
                )
                self._session.commit()
                security_event(
                    "login_throttled",
                    scope="email" if subject == email_key else "ip",
                    email_hash=email_key[:16],
                    client=client_address,
                )
                # The oldest failure leaves the window then, freeing one attempt.
                raise TooManyRequests(
                    math.ceil((oldest + timedelta(seconds=window) - now).total_seconds())
                )
        return list(ids.values())

    def _atomic(self, work: Callable[[], _Unit[T]], *, retry_stale: bool = False) -> T:
        """Run ``work``, send its signals, commit; roll back on any failure.

        Retries transient database conflicts by running the whole unit again, signals
        included: a receiver works inside the transaction, so its own work was rolled
        back with the rest. Maps the other failures to API errors.
        """
        session = self._session
        for attempt in range(1, ATTEMPTS + 1):
            try:
                unit = work()
                for signal, payload in unit.events:
                    signal.send(self._sender, **payload)
                session.commit()
                return unit.result
            except IntegrityError as exc:
                session.rollback()
                if "email_canonical" in str(exc.orig):
                    raise Conflict() from None
                raise Conflict("The request conflicts with a concurrent change") from None
            except StaleDataError:
                session.rollback()
                if retry_stale and attempt < ATTEMPTS:
                    continue
                raise PreconditionFailed() from None
            except OperationalError as exc:
                session.rollback()
                if _is_transient(exc) and attempt < ATTEMPTS:
                    continue
                raise ServiceUnavailable() from None
            except BaseException:
                session.rollback()
                raise
        raise ServiceUnavailable()  # pragma: no cover - the loop always returns or raises


def _live(Session: type[SessionColumns], now: datetime) -> sa.ColumnElement[bool]:
    """A session neither revoked nor expired at ``now``."""
    return sa.and_(Session.revoked_at.is_(None), Session.expires_at > now)


def _is_transient(exc: OperationalError) -> bool:
    """Deadlocks, serialization failures and lock time-outs, on each supported database."""
    orig: Any = exc.orig
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if sqlstate in ("40001", "40P01", "55P03"):
        return True
    args = getattr(orig, "args", ())
    if args and args[0] in (1205, 1213):
        return True
    return "database is locked" in str(orig)
