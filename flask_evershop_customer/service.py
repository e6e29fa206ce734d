"""The rules: create, update, delete, log in, log out, authenticate. No request objects.

Each write runs as one unit of work (:mod:`.unit_of_work`): a 2xx always means committed
and anything else means nothing changed (except the attempts that throttling records).
The database's unique constraint decides duplicates, not a pre-check. Customers travel as
:class:`CustomerRecord` snapshots, never as live ORM objects: a write names the version
it was decided on, and a write that finds another version either runs again with the row
locked or, when the client sent ``If-Match``, is a 412.
"""

from __future__ import annotations

import dataclasses
import functools
import uuid as uuid_module
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NoReturn, cast

import sqlalchemy as sa
from sqlalchemy.engine import CursorResult

from . import signals
from .config import Settings
from .errors import (
    Conflict,
    Forbidden,
    InvalidCredentials,
    NotFound,
    PreconditionFailed,
    Unauthorized,
)
from .logs import security_event
from .models import Models
from .passwords import PasswordHasher
from .schemas import (
    Credentials,
    CustomerChanges,
    CustomerRecord,
    NewCustomer,
    is_sid,
    is_uuid,
)
from .throttle import Throttle
from .tokens import TokenCodec
from .unit_of_work import StaleVersion, Unit, UnitOfWork

DEFAULT_GROUP_ID = 1
#: The customer columns a :class:`CustomerRecord` is made of.
RECORD_COLUMNS = tuple(field.name for field in dataclasses.fields(CustomerRecord))


@dataclass(frozen=True)
class Actor:
    """Who makes a request: an admin (by id) or a customer (with their session)."""

    admin_id: str | None = None
    customer: CustomerRecord | None = None
    sid: str | None = None

    @property
    def is_admin(self) -> bool:
        """Whether an admin makes the request."""
        return self.admin_id is not None

    def may_manage(self, customer: CustomerRecord) -> bool:
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


class _ChangedDuringLogin(Exception):
    """The customer was changed, disabled or deleted while their password was checked."""


class CustomerService:
    """The customer rules of one app, over the host's SQLAlchemy session."""

    def __init__(
        self,
        *,
        uow: UnitOfWork,
        models: Models,
        settings: Settings,
        hasher: PasswordHasher,
        tokens: TokenCodec,
        throttle: Throttle,
        clock: Callable[[], datetime],
    ) -> None:
        self._uow = uow
        self._models = models
        self._settings = settings
        self.hasher = hasher
        self.tokens = tokens
        self.throttle = throttle
        self._clock = clock

    @property
    def _customers(self) -> sa.Table:
        return self._models.Customer.__table__

    @property
    def _sessions(self) -> sa.Table:
        return self._models.Session.__table__

    @functools.cached_property
    def _record_columns(self) -> list[sa.ColumnElement[Any]]:
        return [self._customers.c[name] for name in RECORD_COLUMNS]

    @functools.cached_property
    def _session_lookup(self) -> sa.Select[Any]:
        """The token check's query, built once (on first use, when the host's models are
        all declared): building a statement costs more than running a cached one."""
        sessions, customers = self._sessions, self._customers
        return (
            sa.select(sessions.c.expires_at, sessions.c.revoked_at, *self._record_columns)
            .join_from(sessions, customers, customers.c.customer_id == sessions.c.customer_id)
            .where(sessions.c.sid == sa.bindparam("sid"))
        )

    @functools.cached_property
    def _end_sessions(self) -> sa.Update:
        """The usual logout's UPDATE, built once: end the bound ``sids`` if still live at
        the bound ``now``."""
        table = self._sessions
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

    def get(self, customer_uuid: str) -> CustomerRecord:
        """The customer with this uuid; :class:`NotFound` when there is none."""
        row = None
        if is_uuid(customer_uuid):
            row = self._uow.session.execute(
                sa.select(*self._record_columns).where(self._customers.c.uuid == customer_uuid)
            ).one_or_none()
        if row is None:
            raise NotFound("Invalid customer id")
        return CustomerRecord(*row)

    def authenticate(self, token: str) -> tuple[CustomerRecord, str]:
        """The customer and session id a token stands for, in one indexed query.

        :class:`Unauthorized` unless the token verifies and its session is live, belongs
        to the token's customer, and that customer is active.
        """
        claims = self.tokens.verify(token)
        if not is_sid(claims.sid):
            raise Unauthorized("Invalid token")
        row = self._uow.session.execute(self._session_lookup, {"sid": claims.sid}).one_or_none()
        if row is None:
            raise Unauthorized("Session has ended")
        expires_at, revoked_at, *columns = row
        customer = CustomerRecord(*columns)
        if (
            revoked_at is not None
            or expires_at <= self._clock()
            or customer.uuid != claims.customer_uuid
            or customer.status != 1
        ):
            raise Unauthorized("Session has ended")
        return customer, claims.sid

    # -- customers --------------------------------------------------------------------

    def create(
        self, new: NewCustomer, *, client_address: str = "", by_admin: bool = False
    ) -> CustomerRecord:
        """Create a customer. :class:`Conflict` when the email is taken (any case);
        :class:`TooManyRequests` when ``client_address`` registered too often (admins
        are not limited)."""
        limit = self._settings.registrations_per_ip
        if client_address and not by_admin:
            subject = self.throttle.subject("register-ip", client_address)
            self.throttle.reserve(
                {subject: ("ip", limit)}, event="registration_throttled", client=client_address
            )
        self._uow.end_read()
        password_hash = self.hasher.hash(new.password)

        def work(_attempt: int) -> Unit[CustomerRecord]:
            now = self._clock()
            draft = CustomerRecord(
                customer_id=0,
                uuid=uuid_module.uuid4().hex,
                status=new.status,
                group_id=DEFAULT_GROUP_ID,
                email=new.email,
                email_canonical=new.email_canonical,
                full_name=new.full_name,
                created_at=now,
                updated_at=now,
                version=1,
            )
            values = dataclasses.asdict(draft)
            del values["customer_id"]
            result = cast(
                CursorResult[Any],
                self._uow.session.execute(
                    sa.insert(self._customers).values(password_hash=password_hash, **values)
                ),
            )
            key = result.inserted_primary_key
            assert key is not None  # an INSERT of one row always has it
            record = dataclasses.replace(draft, customer_id=int(key[0]))
            return Unit(record, [(signals.customer_created, {"customer": record.public()})])

        return self._uow.run(work)

    def update(
        self,
        customer: CustomerRecord,
        changes: CustomerChanges,
        actor: Actor,
        *,
        expected_version: int | None = None,
    ) -> CustomerRecord:
        """Apply ``changes``. A password change ends the customer's other sessions (all
        of them when an admin changes it); status 0 ends every session.

        Without ``expected_version`` concurrent updates are serialised and all applied;
        with it, a stale one is :class:`PreconditionFailed`. :class:`Forbidden` for
        ``status`` from a non-admin, :class:`Conflict` for a taken email (counted against
        a customer who tries too many: :class:`TooManyRequests`).
        """
        self.authorize(actor, customer)
        if changes.status is not None and not actor.is_admin:
            self._forbidden(actor, customer, "status is admin-only")
            raise Forbidden("/status can only be changed by an admin")
        if changes == CustomerChanges():
            if expected_version is not None and expected_version != customer.version:
                raise PreconditionFailed()
            return customer
        attempt = None
        new_email = changes.email_canonical not in (None, customer.email_canonical)
        if new_email and not actor.is_admin:
            attempt = self.throttle.reserve(
                {
                    self.throttle.subject("email-change", customer.uuid): (
                        "customer",
                        self._settings.login_max_failures,
                    )
                },
                event="email_change_throttled",
                customer=customer.uuid,
                sid=actor.sid,
            )
        password_hash = None
        if changes.password:
            self._uow.end_read()
            password_hash = self.hasher.hash(changes.password)

        def work(attempt_number: int) -> Unit[CustomerRecord]:
            # First from the record the request was decided on; after a lost race, from
            # the row locked until commit, so the retry cannot lose again.
            base = customer if attempt_number == 1 else self._locked(customer.customer_id)
            if expected_version is not None and base.version != expected_version:
                raise PreconditionFailed()
            values = _changed_values(base, changes)
            if password_hash is not None:
                values["password_hash"] = password_hash
            if not values:
                return Unit(base)
            changed = sorted({_FIELD_OF.get(name, name) for name in values})
            values["updated_at"] = self._clock()
            values["version"] = base.version + 1
            self._write_version(base, sa.update(self._customers).values(**values))
            status = values.get("status", base.status)
            if password_hash is not None or status == 0:
                keep = actor.sid if password_hash is not None and status == 1 else None
                self._revoke_sessions(base.customer_id, keep_sid=keep)
            if attempt is not None:
                self.throttle.forget(attempt)
            values.pop("password_hash", None)
            record = dataclasses.replace(base, **values)
            event = {"customer": record.public(), "changed": changed}
            return Unit(record, [(signals.customer_updated, event)])

        try:
            return self._uow.run(work, retry_stale=expected_version is None)
        except Conflict:
            if attempt is not None:
                security_event("email_conflict", customer=customer.uuid, sid=actor.sid)
            raise

    def delete(
        self, customer: CustomerRecord, actor: Actor, *, expected_version: int | None = None
    ) -> CustomerRecord:
        """Delete a customer and every session of theirs; returns it as it was."""
        self.authorize(actor, customer)

        def work(attempt_number: int) -> Unit[CustomerRecord]:
            base = customer if attempt_number == 1 else self._locked(customer.customer_id)
            if expected_version is not None and base.version != expected_version:
                raise PreconditionFailed()
            sessions = self._sessions
            self._uow.session.execute(
                sa.delete(sessions).where(sessions.c.customer_id == base.customer_id)
            )
            self._write_version(base, sa.delete(self._customers))
            return Unit(base, [(signals.customer_deleted, {"customer": base.public()})])

        return self._uow.run(work, retry_stale=expected_version is None)

    # -- sessions ---------------------------------------------------------------------

    def login(self, credentials: Credentials, client_address: str) -> LoginResult:
        """Check the password (exactly one hash check, whatever happens) and open a
        session. :class:`InvalidCredentials` for an unknown email, a wrong password or
        a disabled customer alike; :class:`TooManyRequests` while throttled.

        The attempt is recorded (and committed) before the password is checked, so
        concurrent attempts cannot slip past the limit; a success forgets it again. No
        transaction is open while the password is hashed; the session is written only if
        the customer, read again and locked, still has the hash that was verified, is
        still active and still has this email: a password change, a disable or a delete
        that commits meanwhile makes the login fail.
        """
        settings, throttle = self._settings, self.throttle
        email_key = throttle.subject("email", credentials.email_canonical)
        limits = {email_key: ("email", settings.login_max_failures)}
        if client_address:  # without one (a unix socket, say) there is nothing to limit by
            limits[throttle.subject("ip", client_address)] = (
                "ip",
                settings.login_max_failures_per_ip,
            )
        attempt = throttle.reserve(
            limits, event="login_throttled", email_hash=email_key[:16], client=client_address
        )
        customers = self._customers
        row = self._uow.session.execute(
            sa.select(customers.c.password_hash, *self._record_columns).where(
                customers.c.email_canonical == credentials.email_canonical
            )
        ).one_or_none()
        self._uow.end_read()
        verified_hash = row[0] if row is not None else None
        customer = CustomerRecord(*row[1:]) if row is not None else None
        valid = self.hasher.verify(verified_hash, credentials.password)
        if customer is None or verified_hash is None or not valid or customer.status != 1:
            self._login_failed(customer, email_key, client_address)
        rehash = (
            self.hasher.hash(credentials.password)
            if self.hasher.needs_rehash(verified_hash)
            else None
        )
        now = self._clock()

        def work(_attempt: int) -> Unit[LoginResult]:
            locked = self._uow.session.execute(
                sa.select(
                    customers.c.password_hash, customers.c.status, customers.c.email_canonical
                )
                .where(customers.c.customer_id == customer.customer_id)
                .with_for_update()
            ).one_or_none()
            if locked is None or tuple(locked) != (verified_hash, 1, customer.email_canonical):
                raise _ChangedDuringLogin()
            sid = str(uuid_module.uuid4())
            self._uow.session.execute(
                sa.insert(self._sessions).values(
                    sid=sid,
                    customer_id=customer.customer_id,
                    created_at=now,
                    expires_at=now + timedelta(seconds=self.tokens.lifetime),
                )
            )
            if rehash is not None:
                # Only over the hash that was verified: never over a newer password.
                self._uow.session.execute(
                    sa.update(customers)
                    .where(
                        customers.c.customer_id == customer.customer_id,
                        customers.c.password_hash == verified_hash,
                    )
                    .values(password_hash=rehash)
                )
            throttle.forget(attempt, email_key)
            result = LoginResult(self.tokens.issue(customer.uuid, sid, now), sid, customer)
            event = {"customer": customer.public(), "sid": sid}
            return Unit(result, [(signals.customer_logged_in, event)])

        try:
            result = self._uow.run(work, locking=True)
        except (_ChangedDuringLogin, Conflict):
            self._login_failed(customer, email_key, client_address, "changed during login")
        security_event(
            "login", customer=result.customer.uuid, sid=result.sid, client=client_address
        )
        return result

    def _login_failed(
        self,
        customer: CustomerRecord | None,
        email_key: str,
        client_address: str,
        reason: str | None = None,
    ) -> NoReturn:
        security_event(
            "login_failed",
            customer=customer.uuid if customer is not None else None,
            email_hash=email_key[:16],
            client=client_address,
            reason=reason
            or ("unknown email" if customer is None else "wrong password or disabled"),
        )
        raise InvalidCredentials()

    def logout(self, ids: list[str], actor: Actor) -> list[str]:
        """End sessions: each id is a session id or a customer uuid (all of that
        customer's sessions). All or nothing: :class:`NotFound` if any id names no live
        session or customer, :class:`Forbidden` if any belongs to someone else.
        Returns the ended session ids."""
        if not ids:
            raise NotFound("Invalid session id")
        customers, sessions = self._customers, self._sessions
        session = self._uow.session
        now = self._clock()
        sids = [i for i in ids if i != actor.sid and is_sid(i)]
        uuids = [i for i in ids if is_uuid(i)]
        if len(sids) + len(uuids) + (actor.sid in ids) != len(ids):
            raise NotFound("Invalid session id")
        owners: dict[str, int] = {}
        if sids:
            owners = dict(
                session.execute(
                    sa.select(sessions.c.sid, sessions.c.customer_id).where(
                        sessions.c.sid.in_(sids), self._live(now)
                    )
                ).all()
            )
        customer_ids: list[int] = []
        if uuids:
            found = dict(
                session.execute(
                    sa.select(customers.c.uuid, customers.c.customer_id).where(
                        customers.c.uuid.in_(uuids)
                    )
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

        def work(_attempt: int) -> Unit[list[tuple[str, str | None]]]:
            ended = dict(owners)  # every session ended here -> its customer_id
            if customer_ids:
                ended.update(
                    session.execute(
                        sa.select(sessions.c.sid, sessions.c.customer_id).where(
                            sessions.c.customer_id.in_(customer_ids),
                            self._live(now),
                            sessions.c.sid.not_in(list(owners)),
                        )
                    ).all()
                )
                condition = sa.or_(
                    sessions.c.sid.in_(list(owners)), sessions.c.customer_id.in_(customer_ids)
                )
                session.execute(
                    sa.update(sessions).where(condition, self._live(now)).values(revoked_at=now)
                )
            else:
                session.execute(
                    self._end_sessions, {"sids": list(owners), "now": now, "ended_at": now}
                )
            events = []
            uuids: dict[int, str] = {}
            for owner in self._records({*owners.values(), *customer_ids}, actor):
                uuids[owner.customer_id] = owner.uuid
                owner_sids = [sid for sid, of in ended.items() if of == owner.customer_id]
                events.append(
                    (signals.customer_logged_out, {"customer": owner.public(), "sids": owner_sids})
                )
            return Unit([(sid, uuids.get(of)) for sid, of in ended.items()], events)

        ended = self._uow.run(work)
        for sid, customer_uuid in ended:
            security_event("logout", customer=customer_uuid, sid=sid, by_admin=actor.admin_id)
        return [sid for sid, _ in ended]

    # -- maintenance ------------------------------------------------------------------

    def purge_sessions(self, batch_size: int = 1000) -> int:
        """Delete expired and revoked sessions, ``batch_size`` rows per transaction.
        Returns how many."""
        table = self._sessions
        now = self._clock()
        ended = sa.or_(table.c.expires_at <= now, table.c.revoked_at.is_not(None))
        total = 0
        while True:

            def work(_attempt: int) -> Unit[int]:
                batch = self._uow.session.scalars(
                    sa.select(table.c.sid).where(ended).limit(batch_size)
                ).all()
                if batch:
                    self._uow.session.execute(sa.delete(table).where(table.c.sid.in_(batch)))
                return Unit(len(batch))

            deleted = self._uow.run(work)
            total += deleted
            if deleted < batch_size:
                return total

    def clear_login_failures(self, email_canonical: str) -> int:
        """Lift the lockout of one email. Returns how many failures were forgotten."""
        return self.throttle.clear(self.throttle.subject("email", email_canonical))

    # -- helpers ----------------------------------------------------------------------

    def authorize(self, actor: Actor, customer: CustomerRecord) -> None:
        """:class:`Forbidden` unless ``actor`` may manage ``customer``."""
        if not actor.may_manage(customer):
            self._forbidden(actor, customer)
            raise Forbidden("You can only manage your own account")

    @staticmethod
    def _forbidden(actor: Actor, customer: CustomerRecord, reason: str | None = None) -> None:
        security_event(
            "forbidden",
            customer=actor.customer.uuid if actor.customer is not None else None,
            sid=actor.sid,
            target=customer.uuid,
            reason=reason,
        )

    def _locked(self, customer_id: int) -> CustomerRecord:
        """The customer as committed now, locked until the transaction ends;
        :class:`NotFound` if a concurrent request deleted it."""
        row = self._uow.session.execute(
            sa.select(*self._record_columns)
            .where(self._customers.c.customer_id == customer_id)
            .with_for_update()
        ).one_or_none()
        if row is None:
            raise NotFound("Invalid customer id")
        return CustomerRecord(*row)

    def _write_version(self, base: CustomerRecord, statement: sa.Update | sa.Delete) -> None:
        """Run an UPDATE or DELETE of ``base``'s row only while it is still at
        ``base``'s version; :class:`StaleVersion` when another request changed it."""
        customers = self._customers
        result = self._uow.session.execute(
            statement.where(
                customers.c.customer_id == base.customer_id,
                customers.c.version == base.version,
            )
        )
        if getattr(result, "rowcount", 0) != 1:
            raise StaleVersion()

    def _records(self, customer_ids: Iterable[int], actor: Actor) -> list[CustomerRecord]:
        """The customers with these ids; the actor's own record costs no query."""
        wanted = set(customer_ids)
        own = actor.customer
        if own is not None and wanted == {own.customer_id}:
            return [own]
        if not wanted:
            return []
        rows = self._uow.session.execute(
            sa.select(*self._record_columns).where(self._customers.c.customer_id.in_(wanted))
        ).all()
        return [CustomerRecord(*row) for row in rows]

    def _revoke_sessions(self, customer_id: int, *, keep_sid: str | None) -> None:
        sessions = self._sessions
        condition = [sessions.c.customer_id == customer_id, sessions.c.revoked_at.is_(None)]
        if keep_sid is not None:
            condition.append(sessions.c.sid != keep_sid)
        self._uow.session.execute(
            sa.update(sessions).where(*condition).values(revoked_at=self._clock())
        )

    def _live(self, now: datetime) -> sa.ColumnElement[bool]:
        """A session neither revoked nor expired at ``now``."""
        sessions = self._sessions
        return sa.and_(sessions.c.revoked_at.is_(None), sessions.c.expires_at > now)


#: The field name a changed column is reported under in ``customer_updated``.
_FIELD_OF = {"password_hash": "password", "email_canonical": "email"}


def _changed_values(base: CustomerRecord, changes: CustomerChanges) -> dict[str, Any]:
    """The columns ``changes`` really changes on ``base``."""
    values: dict[str, Any] = {}
    for name in ("email", "full_name", "status"):
        value = getattr(changes, name)
        if value is not None and value != getattr(base, name):
            values[name] = value
    if changes.email_canonical is not None and changes.email_canonical != base.email_canonical:
        values["email_canonical"] = changes.email_canonical
    return values
