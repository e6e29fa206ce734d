"""Customers: create, read, update, delete, with authorization and the password policy
inside, so a host calling these directly gets the same rules as HTTP. No request objects.

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
from collections.abc import Callable
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import CursorResult

from . import signals
from .actors import Actor
from .config import Settings
from .errors import (
    Conflict,
    Forbidden,
    NotFound,
    PreconditionFailed,
    Unauthorized,
)
from .logs import security_event
from .models import CustomerStatus, Models, rows_naming
from .passwords import PasswordHasher, check_policy
from .reauth import Reauthentication
from .schemas import (
    CustomerChanges,
    CustomerRecord,
    NewCustomer,
    is_uuid,
    parse_customer_changes,
)
from .throttle import Throttle
from .unit_of_work import StaleVersion, Unit, UnitOfWork

DEFAULT_GROUP_ID = 1
#: The customer columns a :class:`CustomerRecord` is made of.
RECORD_COLUMNS = tuple(field.name for field in dataclasses.fields(CustomerRecord))


def record_columns(customers: sa.Table) -> list[sa.ColumnElement[Any]]:
    """The columns of ``customers`` a :class:`CustomerRecord` is built from, in order."""
    return [customers.c[name] for name in RECORD_COLUMNS]


class CustomerTables:
    """What the customer and session rules share: the tables and the record columns."""

    _uow: UnitOfWork

    def __init__(self, models: Models) -> None:
        self._models = models

    @property
    def _customers(self) -> sa.Table:
        return self._models.Customer.__table__

    @property
    def _sessions(self) -> sa.Table:
        return self._models.LoginSession.__table__

    @functools.cached_property
    def _record_columns(self) -> list[sa.ColumnElement[Any]]:
        return record_columns(self._customers)

    def _use_up_reset_tokens(self, customer_id: int, now: datetime) -> None:
        """Inside a unit of work: the customer's pending reset tokens can no longer be
        used (a newer token, a completed reset, or a change of password, email or
        status)."""
        tokens = self._models.ResetToken.__table__
        self._uow.session.execute(
            sa.update(tokens)
            .where(tokens.c.customer_id == customer_id, tokens.c.used_at.is_(None))
            .values(used_at=now)
        )

    def _live(self, now: datetime) -> sa.ColumnElement[bool]:
        """A session neither revoked nor expired at ``now``."""
        sessions = self._sessions
        return sa.and_(sessions.c.revoked_at.is_(None), sessions.c.expires_at > now)


class Customers(CustomerTables):
    """The customer rules of one app, over the host's SQLAlchemy session."""

    def __init__(
        self,
        *,
        uow: UnitOfWork,
        models: Models,
        settings: Settings,
        hasher: PasswordHasher,
        throttle: Throttle,
        reauth: Reauthentication,
        clock: Callable[[], datetime],
    ) -> None:
        super().__init__(models)
        self._uow = uow
        self._settings = settings
        self._hasher = hasher
        self._throttle = throttle
        self._reauth = reauth
        self._clock = clock

    # -- reads ------------------------------------------------------------------------

    def get(self, actor: Actor, customer_uuid: str) -> CustomerRecord:
        """The customer ``customer_uuid`` names, for ``actor``: :class:`NotFound` when
        there is none, then :class:`Forbidden` unless the actor may manage it. The
        caller's own record costs no query."""
        own = actor.customer
        if own is not None and own.uuid == customer_uuid:
            return own
        customer = self.find(customer_uuid)
        self.authorize(actor, customer)
        return customer

    def find(self, customer_uuid: str) -> CustomerRecord:
        """The customer with this uuid, whoever asks; :class:`NotFound` when there is
        none."""
        row = None
        if is_uuid(customer_uuid):
            row = self._uow.session.execute(
                sa.select(*self._record_columns).where(self._customers.c.uuid == customer_uuid)
            ).one_or_none()
        if row is None:
            raise NotFound("Invalid customer id")
        return CustomerRecord(*row)

    def create(
        self, new: NewCustomer, *, client_address: str = "", by_admin: bool = False
    ) -> CustomerRecord:
        """Create a customer. :class:`ValidationError` for a password the policy
        refuses, :class:`Conflict` when the email is taken (in any form),
        :class:`TooManyRequests` when ``client_address`` registered too often (admins
        are not limited), :class:`Forbidden` for a disabled account (``status`` 0) from
        anyone but an admin: nobody may park one on someone else's address."""
        if new.status != CustomerStatus.ACTIVE and not by_admin:
            security_event("forbidden", customer=None, reason="status 0 at registration")
            raise Forbidden("/status 0 can only be set by an admin")
        self._check_policy(new.password, new.email, new.full_name)
        limit = self._settings.registrations_per_ip
        if client_address and not by_admin:
            subject = self._throttle.client_subject("register-ip", client_address)
            self._throttle.reserve(
                {subject: ("ip", limit)}, event="registration_throttled", client=client_address
            )
        self._uow.end_read()
        password_hash = self._hasher.hash(new.password)

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
        actor: Actor,
        customer_uuid: str,
        changes: CustomerChanges | object,
        *,
        expected_version: int | None = None,
    ) -> CustomerRecord:
        """Apply ``changes`` (a :class:`CustomerChanges`, or a decoded JSON body such as
        ``{"full_name": "Ann"}``, validated as the HTTP API does, after the checks of
        :meth:`get`). A password change ends the customer's other sessions (all of them
        when an admin changes it); status 0 ends every session.

        Without ``expected_version`` concurrent updates are serialised and all applied;
        with it, a stale one is :class:`PreconditionFailed`. :class:`Forbidden` for
        ``status`` from a non-admin, :class:`Conflict` for a taken email (counted against
        a customer who tries too many: :class:`TooManyRequests`). A customer's own
        password or email change needs ``current_password`` (see :mod:`.reauth`).
        """
        customer = self.get(actor, customer_uuid)
        if not isinstance(changes, CustomerChanges):
            # A decoded JSON body: validated only once the caller may touch the customer.
            changes = parse_customer_changes(changes)
        if changes.status is not None and not actor.is_admin:
            self._forbidden(actor, customer, "status is admin-only")
            raise Forbidden("/status can only be changed by an admin")
        if changes.is_empty:
            if expected_version is not None and expected_version != customer.version:
                raise PreconditionFailed()
            return customer
        if changes.password is not None:
            self._check_policy(
                changes.password,
                changes.email or customer.email,
                changes.full_name or customer.full_name,
            )
        if expected_version is not None and expected_version != customer.version:
            raise PreconditionFailed()  # before any hashing: the write could not succeed
        new_email = _new_mailbox(customer.email, changes.email)
        verified_hash = None
        if self._reauth.needed(actor, password=changes.password is not None, new_email=new_email):
            verified_hash = self._reauth.check(actor, customer, changes.current_password)
        attempt = None
        if new_email and not actor.is_admin:
            attempt = self._throttle.reserve(
                {
                    self._throttle.subject("email-change", customer.uuid): (
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
            password_hash = self._hasher.hash(changes.password)

        def work(attempt_number: int) -> Unit[CustomerRecord]:
            # First from the record the request was decided on; after a lost race, from
            # the row locked until commit, so the retry cannot lose again.
            base = self._base(actor, customer, attempt_number)
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
            self._check_session(actor, base.customer_id)
            if verified_hash is not None and attempt_number > 1:
                # On a first attempt the version predicate vouched for the hash.
                self._reauth.still_current(actor, base, verified_hash)
            if {"password_hash", "status"} & values.keys() or _new_mailbox(
                base.email, values.get("email")
            ):
                self._use_up_reset_tokens(base.customer_id, values["updated_at"])
            active = values.get("status", base.status) == CustomerStatus.ACTIVE
            if password_hash is not None or not active:
                keep = actor.sid if password_hash is not None and active else None
                self._revoke_sessions(base.customer_id, keep_sid=keep)
            if attempt is not None:
                self._throttle.forget(attempt)
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
        self, actor: Actor, customer_uuid: str, *, expected_version: int | None = None
    ) -> CustomerRecord:
        """Delete a customer with every row of the library's tables that names them
        (sessions, refresh and reset tokens, addresses, ...); returns it as it was.
        :class:`NotFound`, :class:`Forbidden` and :class:`PreconditionFailed` as for
        :meth:`update`."""
        customer = self.get(actor, customer_uuid)

        def work(attempt_number: int) -> Unit[CustomerRecord]:
            if actor.is_customer:
                # The session rows go first: lock the account, then check the session.
                base = self.locked_for(actor, customer.customer_id)
            else:
                base = self._base(actor, customer, attempt_number)
            if expected_version is not None and base.version != expected_version:
                raise PreconditionFailed()
            for statement in self._rows_naming:
                self._uow.session.execute(statement, {"customer_id": base.customer_id})
            self._write_version(base, sa.delete(self._customers))
            return Unit(base, [(signals.customer_deleted, {"customer": base.public()})])

        return self._uow.run(work, retry_stale=expected_version is None, locking=actor.is_customer)

    # -- helpers ----------------------------------------------------------------------

    @functools.cached_property
    def _rows_naming(self) -> list[sa.Delete]:
        return rows_naming(self._models)

    def authorize(self, actor: Actor, customer: CustomerRecord) -> None:
        """:class:`Forbidden` unless ``actor`` may manage ``customer``."""
        if not actor.may_manage(customer):
            self._forbidden(actor, customer)
            raise Forbidden("You can only manage your own account")

    def _check_policy(self, password: str, email: str, full_name: str) -> None:
        min_length = self._settings.password_min_length
        check_policy(password, min_length=min_length, email=email, full_name=full_name)

    @staticmethod
    def _forbidden(actor: Actor, customer: CustomerRecord, reason: str | None = None) -> None:
        security_event(
            "forbidden",
            customer=actor.customer_uuid,
            sid=actor.sid,
            target=customer.uuid,
            reason=reason,
        )

    def _base(self, actor: Actor, customer: CustomerRecord, attempt: int) -> CustomerRecord:
        """The record a write is decided on: on a first attempt the one the request read
        (a lost race retries), on a retry the row as committed now, locked."""
        return customer if attempt == 1 else self._locked(customer.customer_id)

    def locked_for(self, actor: Actor, customer_id: int) -> CustomerRecord:
        """Inside a unit of work, before a write of ``actor`` to this customer's account:
        the customer as committed now, locked until the transaction ends, and for a
        customer acting on their own account, their session still live.
        :class:`NotFound` if the customer is gone, :class:`Unauthorized` if the session
        ended."""
        locked = self._locked(customer_id)
        self._check_session(actor, customer_id)
        return locked

    def _check_session(self, actor: Actor, customer_id: int) -> None:
        """For a customer acting on their own account, in the writing transaction and
        after the customer's row is locked: their session must still be live. One that
        ended meanwhile (a password change elsewhere, a logout of all sessions, a
        disable) can no longer write: :class:`Unauthorized`. The read locks the session
        row, so the logout that would end it waits for this write (or this write sees
        it ended)."""
        if not actor.is_customer:
            return
        sessions, customers = self._sessions, self._customers
        live = self._uow.session.execute(
            sa.select(sessions.c.sid)
            .join_from(sessions, customers, customers.c.customer_id == sessions.c.customer_id)
            .where(
                sessions.c.sid == actor.sid,
                sessions.c.customer_id == customer_id,
                self._live(self._clock()),
                customers.c.status == CustomerStatus.ACTIVE,
            )
            .with_for_update(read=True)
        ).one_or_none()
        if live is None:
            raise Unauthorized("Session has ended")

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

    def _revoke_sessions(self, customer_id: int, *, keep_sid: str | None) -> None:
        sessions = self._sessions
        condition = [sessions.c.customer_id == customer_id, sessions.c.revoked_at.is_(None)]
        if keep_sid is not None:
            condition.append(sessions.c.sid != keep_sid)
        self._uow.session.execute(
            sa.update(sessions).where(*condition).values(revoked_at=self._clock())
        )


def _new_mailbox(stored: str, sent: str | None) -> bool:
    """Whether ``sent`` names another mailbox than ``stored``: anything but the stored
    address itself or it in other letter case. A spelling of the same canonical form
    (``straße`` for ``strasse``, full-width letters) is another address, where reset
    mail would go from then on."""
    return sent is not None and sent.lower() != stored.lower()


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
