"""Sessions: log in, log out, and the token check of every authenticated request. No
request objects.

A session is a row; the JWT names it, and every authenticated request checks it in one
indexed query, which is what makes logout, a password change or a disable take effect at
once. A login checks the password with no transaction open, then writes the session only
if the customer, read again and locked, is still the one that was verified.
"""

from __future__ import annotations

import functools
import uuid as uuid_module
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NoReturn

import sqlalchemy as sa

from . import signals
from .actors import Actor
from .config import Settings
from .customers import CustomerTables
from .errors import Conflict, Forbidden, InvalidCredentials, NotFound, Unauthorized
from .logs import security_event
from .models import CustomerStatus, Models
from .passwords import PasswordHasher
from .refresh_tokens import RefreshTokens
from .schemas import Credentials, CustomerRecord, is_sid, is_uuid
from .throttle import Throttle
from .tokens import Claims, TokenCodec
from .unit_of_work import Unit, UnitOfWork

#: Longest ``User-Agent`` a session keeps; a longer one is cut.
USER_AGENT_MAX_LENGTH = 255


@dataclass(frozen=True)
class LoginResult:
    """A new session: its id, its signed token, and whose it is; for a token session
    (``headless``), also its refresh token."""

    token: str
    sid: str
    customer: CustomerRecord
    refresh_token: str | None = None


class _ChangedDuringLogin(Exception):
    """The customer was changed, disabled or deleted while their password was checked."""


class _HashChanged(_ChangedDuringLogin):
    """Only the customer's password hash changed while their password was checked."""

    def __init__(self, password_hash: str) -> None:
        super().__init__()
        self.password_hash = password_hash


class Sessions(CustomerTables):
    """The session rules of one app, over the host's SQLAlchemy session."""

    def __init__(
        self,
        *,
        uow: UnitOfWork,
        models: Models,
        settings: Settings,
        hasher: PasswordHasher,
        tokens: TokenCodec,
        refresh_tokens: RefreshTokens,
        throttle: Throttle,
        clock: Callable[[], datetime],
    ) -> None:
        super().__init__(models)
        self._uow = uow
        self._settings = settings
        self._hasher = hasher
        self._tokens = tokens
        self._refresh_tokens = refresh_tokens
        self._throttle = throttle
        self._clock = clock

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

    def authenticate(self, token: str) -> tuple[CustomerRecord, str]:
        """The customer and session id a token stands for, in one indexed query.

        :class:`Unauthorized` unless the token verifies and its session is live, belongs
        to the token's customer, and that customer is active.
        """
        claims = self.verify(token)
        return self.check(claims), claims.sid

    def verify(self, token: str) -> Claims:
        """The claims of a token whose signature and claims verify (no query);
        :class:`Unauthorized` otherwise."""
        claims = self._tokens.verify(token)
        if not is_sid(claims.sid):
            raise Unauthorized("Invalid token")
        return claims

    def trusts(self, claims: Claims) -> bool:
        """Whether verified ``claims`` are enough without reading the session: only with
        ``EVERSHOP_CUSTOMER_CHECK_SESSION_EACH_REQUEST = False``, and only for an access
        token of a token session, which lives ``EVERSHOP_CUSTOMER_ACCESS_TOKEN_LIFETIME``
        at most (a login's token, whatever its lifetime, is always checked)."""
        settings = self._settings
        return (
            not settings.check_session_each_request
            and claims.access
            and claims.lifetime <= settings.access_token_lifetime
        )

    def check(self, claims: Claims) -> CustomerRecord:
        """The customer of verified ``claims``, in one indexed query; :class:`Unauthorized`
        unless their session is live, theirs, and they are active."""
        row = self._uow.session.execute(self._session_lookup, {"sid": claims.sid}).one_or_none()
        if row is None:
            raise Unauthorized("Session has ended")
        expires_at, revoked_at, *columns = row
        customer = CustomerRecord(*columns)
        if (
            revoked_at is not None
            or expires_at <= self._clock()
            or customer.uuid != claims.customer_uuid
            or customer.status != CustomerStatus.ACTIVE
        ):
            raise Unauthorized("Session has ended")
        return customer

    def login(
        self,
        credentials: Credentials,
        client_address: str,
        *,
        user_agent: str | None = None,
        headless: bool = False,
    ) -> LoginResult:
        """Check the password (exactly one hash check, whatever happens) and open a
        session. :class:`InvalidCredentials` for an unknown email, a wrong password or
        a disabled customer alike; :class:`TooManyRequests` while throttled.

        ``headless`` opens a token session (``POST /customer/tokens``): it lives the
        refresh token lifetime, its token is a short-lived access token, and the result
        carries its first refresh token.

        The attempt is recorded (and committed) before the password is checked, so
        concurrent attempts cannot slip past the limit; a success forgets it again. No
        transaction is open while the password is hashed; the session is written only if
        the customer, read again and locked, still has the hash that was verified, is
        still active and still has this email: a password change, a disable or a delete
        that commits meanwhile makes the login fail.
        """
        settings, throttle = self._settings, self._throttle
        email_key = throttle.subject("email", credentials.email_canonical)
        limits = {email_key: ("email", settings.login_max_failures)}
        if client_address:  # without one (a unix socket, say) there is nothing to limit by
            limits[throttle.client_subject("ip", client_address)] = (
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
        valid = self._hasher.verify(verified_hash, credentials.password)
        if (
            customer is None
            or verified_hash is None
            or not valid
            or customer.status != CustomerStatus.ACTIVE
        ):
            self._login_failed(customer, email_key, client_address)
        opened: LoginResult | None = None
        while opened is None:
            try:
                opened = self._write_login(
                    customer,
                    verified_hash,
                    credentials,
                    user_agent,
                    headless,
                    forget=lambda: throttle.forget(attempt, email_key),
                )
            except _HashChanged as changed:
                # Only the hash changed. Another login upgraded it: this password is its
                # password still (one more check says so, and this login wins too); or
                # the password was changed: it fails. Once only.
                if changed.password_hash == verified_hash or not self._hasher.verify(
                    changed.password_hash, credentials.password
                ):
                    self._login_failed(customer, email_key, client_address, "changed during login")
                verified_hash = changed.password_hash
            except (_ChangedDuringLogin, Conflict):
                self._login_failed(customer, email_key, client_address, "changed during login")
        result = opened
        security_event(
            "login", customer=result.customer.uuid, sid=result.sid, client=client_address
        )
        return result

    def _write_login(
        self,
        customer: CustomerRecord,
        verified_hash: str,
        credentials: Credentials,
        user_agent: str | None,
        headless: bool,
        *,
        forget: Callable[[], None],
    ) -> LoginResult:
        """Open the session of a verified login, re-hashing the password if the method
        changed, only while the customer still has ``verified_hash``, is active and has
        this email: :class:`_HashChanged` when only the hash is another,
        :class:`_ChangedDuringLogin` otherwise. ``forget`` (the attempt's) runs in the
        same transaction."""
        customers = self._customers
        rehash = (
            self._hasher.hash(credentials.password)
            if self._hasher.needs_rehash(verified_hash, credentials.password)
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
            if locked is None or tuple(locked[1:]) != (
                CustomerStatus.ACTIVE,
                customer.email_canonical,
            ):
                raise _ChangedDuringLogin()
            if locked[0] != verified_hash:
                raise _HashChanged(locked[0])
            opened = self._open(customer, now, user_agent, headless=headless)
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
            forget()
            return opened

        return self._uow.run(work, locking=True)

    def open_session(self, customer_uuid: str) -> LoginResult:
        """Open a session for an active customer without any password: for trusted
        callers only (a host's tests, see :mod:`flask_evershop_customer.testing`, or an
        impersonation feature of its own). :class:`NotFound` for an unknown or disabled
        customer. Sends ``customer_logged_in`` like a login."""
        customers = self._customers
        row = None
        if is_uuid(customer_uuid):
            row = self._uow.session.execute(
                sa.select(*self._record_columns).where(customers.c.uuid == customer_uuid)
            ).one_or_none()
        customer = CustomerRecord(*row) if row is not None else None
        if customer is None or customer.status != CustomerStatus.ACTIVE:
            raise NotFound("Invalid customer id")
        result = self._uow.run(lambda _attempt: self._open(customer, self._clock()))
        security_event("login", customer=customer.uuid, sid=result.sid, client=None)
        return result

    def _open(
        self,
        customer: CustomerRecord,
        now: datetime,
        user_agent: str | None = None,
        *,
        headless: bool = False,
    ) -> Unit[LoginResult]:
        """Inside a unit of work: write a new session of ``customer`` (a token session
        with its refresh token if ``headless``); its token, and the signal to send."""
        sid = str(uuid_module.uuid4())
        lifetime = self._settings.refresh_token_lifetime if headless else self._tokens.lifetime
        expires_at = now + timedelta(seconds=lifetime)
        self._uow.session.execute(
            sa.insert(self._sessions).values(
                sid=sid,
                customer_id=customer.customer_id,
                created_at=now,
                expires_at=expires_at,
                user_agent=user_agent[:USER_AGENT_MAX_LENGTH] if user_agent else None,
            )
        )
        if headless:
            refresh = self._refresh_tokens
            result = LoginResult(
                refresh.access_token(customer.uuid, sid, now, expires_at),
                sid,
                customer,
                refresh.issue(sid, expires_at, now),
            )
        else:
            result = LoginResult(self._tokens.issue(customer.uuid, sid, now), sid, customer)
        event = {"customer": customer.public(), "sid": sid}
        return Unit(result, [(signals.customer_logged_in, event)])

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
                    customer=actor.customer_uuid,
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

    def purge(self, batch_size: int = 1000) -> int:
        """Delete expired and revoked sessions, ``batch_size`` rows per transaction.
        Returns how many."""
        table = self._sessions
        now = self._clock()
        ended = sa.or_(table.c.expires_at <= now, table.c.revoked_at.is_not(None))
        return self._uow.delete_in_batches(table.c.sid, ended, batch_size)

    def clear_login_failures(self, email_canonical: str) -> int:
        """Lift the lockout of one email. Returns how many failures were forgotten."""
        return self._throttle.clear(self._throttle.subject("email", email_canonical))

    # -- helpers ----------------------------------------------------------------------

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
