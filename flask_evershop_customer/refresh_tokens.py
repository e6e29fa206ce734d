"""Refresh tokens of headless clients: issued with a token session, rotated on every use,
and a replayed (spent) one ends its session. No request objects.

A refresh token is opaque (random) and stored only as a digest keyed with the app's
secret, bound to its session: it works while unspent and while the session is live and
its customer active. Each refresh spends it and issues the next one (RFC 9700, §4.14.2);
presenting a spent one again means two parties hold the token, so the whole session
ends. Two refreshes racing with one
token: the one whose conditional UPDATE spends it wins; the other lost a race (401,
nothing ended) if it had read the token unspent, and is a replay if it read it spent. The
same UPDATE spends a token only while its session is live as committed at that moment
(MySQL reads the session with a shared lock there), so a refresh never answers tokens of a
session that a logout, a password change or a delete had already ended.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NoReturn

import sqlalchemy as sa

from . import signals
from .config import Settings
from .customers import CustomerTables
from .errors import Conflict, Unauthorized
from .logs import security_event
from .models import CustomerStatus, Models
from .schemas import CustomerRecord
from .tokens import TokenCodec, new_opaque_token, opaque_digest
from .unit_of_work import Unit, UnitOfWork

INVALID_REFRESH_TOKEN = "Invalid refresh token"
#: What :func:`~flask_evershop_customer.tokens.new_opaque_token` makes; anything else is
#: refused without a query.
_TOKEN_FORM = re.compile(r"[A-Za-z0-9_-]{43}")


@dataclass(frozen=True)
class Refreshed:
    """A refresh's answer: a new access token and, with rotation, the next refresh token."""

    access_token: str
    refresh_token: str | None
    sid: str
    customer: CustomerRecord


@dataclass(frozen=True)
class _Replayed:
    """A spent refresh token came back: its session has ended."""

    sid: str
    customer_uuid: str


class _Refused(Exception):
    """A refresh that must fail, for the reason given (logged, never answered)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RefreshTokens(CustomerTables):
    """The refresh token rules of one app, over the host's SQLAlchemy session."""

    def __init__(
        self,
        *,
        uow: UnitOfWork,
        models: Models,
        settings: Settings,
        tokens: TokenCodec,
        clock: Callable[[], datetime],
    ) -> None:
        super().__init__(models)
        self._uow = uow
        self._table = models.RefreshToken.__table__
        self._settings = settings
        self._tokens = tokens
        self._clock = clock

    def issue(self, sid: str, expires_at: datetime, now: datetime) -> str:
        """Inside a unit of work: store a new refresh token of session ``sid`` (which
        expires at ``expires_at``); the token."""
        token = new_opaque_token()
        self._uow.session.execute(
            sa.insert(self._table).values(
                digest=self._digest(token), sid=sid, created_at=now, expires_at=expires_at
            )
        )
        return token

    def access_token(self, customer_uuid: str, sid: str, now: datetime, ends: datetime) -> str:
        """An access token of session ``sid``, which ends at ``ends``: never valid after
        the session itself."""
        left = math.ceil((ends - now).total_seconds())
        lifetime = max(1, min(self._settings.access_token_lifetime, left))
        return self._tokens.issue(customer_uuid, sid, now, lifetime, access=True)

    def refresh(self, presented: str) -> Refreshed:
        """A new access token (and, with rotation, the next refresh token) for a refresh
        token. :class:`Unauthorized` ``Invalid refresh token`` for anything else: unknown,
        malformed, spent (which also ends the session), lost to a concurrent refresh,
        of an ended session or of a disabled customer."""
        if not _TOKEN_FORM.fullmatch(presented):
            self._refused(_Refused("malformed"))
        digest = self._digest(presented)
        now = self._clock()
        rotation = self._settings.refresh_token_rotation
        read_unspent = False
        table = self._table

        def work(_attempt: int) -> Unit[Refreshed | _Replayed]:
            nonlocal read_unspent
            row = self._uow.session.execute(self._lookup, {"digest": digest}).one_or_none()
            if row is None:
                raise _Refused("unknown")
            spent_at, sid, ends, revoked_at, *columns = row
            customer = CustomerRecord(*columns)
            if revoked_at is not None or ends <= now:
                raise _Refused("session ended")
            if customer.status != CustomerStatus.ACTIVE:
                raise _Refused("customer disabled")
            if spent_at is not None:
                if read_unspent:
                    # An earlier attempt of this request read it unspent: a lost race.
                    raise _Refused("lost race")
                return self._end_replayed(sid, customer, now)
            read_unspent = True
            refresh_token = None
            if rotation:
                # Spent only while unspent and its session live, as committed now: a
                # concurrent refresh, logout or delete that got there first wins.
                spent = self._uow.session.execute(
                    sa.update(table)
                    .where(
                        table.c.digest == digest,
                        table.c.spent_at.is_(None),
                        self._session_live(now),
                    )
                    .values(spent_at=now)
                )
                if getattr(spent, "rowcount", 0) != 1:
                    raise _Refused("lost race")
                refresh_token = self.issue(sid, ends, now)
            access = self.access_token(customer.uuid, sid, now, ends)
            return Unit(Refreshed(access, refresh_token, sid, customer))

        try:
            result = self._uow.run(work)
        except _Refused as refused:
            self._refused(refused)
        except Conflict:
            # The session was deleted (with its customer) while the new token was stored.
            self._refused(_Refused("session ended"))
        if isinstance(result, _Replayed):
            security_event("refresh_token_replayed", customer=result.customer_uuid, sid=result.sid)
            raise Unauthorized(INVALID_REFRESH_TOKEN)
        security_event("token_refreshed", customer=result.customer.uuid, sid=result.sid)
        return result

    def purge(self, batch_size: int = 1000) -> int:
        """Delete refresh tokens that can never work again: expired, or of a session that
        ended or is gone. Spent tokens of live sessions stay: they recognise a replay.
        ``batch_size`` rows per transaction; returns how many."""
        table = self._table
        now = self._clock()
        dead = sa.or_(table.c.expires_at <= now, ~self._session_live(now))
        return self._uow.delete_in_batches(table.c.digest, dead, batch_size)

    def _session_live(self, now: datetime) -> sa.ColumnElement[bool]:
        """The refresh token's session exists and is live at ``now``."""
        table, sessions = self._table, self._sessions
        return (
            sa.select(sessions.c.sid)
            .where(sessions.c.sid == table.c.sid, self._live(now))
            .correlate(table)
            .exists()
        )

    def _digest(self, token: str) -> str:
        return opaque_digest(token, self._settings.refresh_key)

    @functools.cached_property
    def _lookup(self) -> sa.Select[Any]:
        """A refresh token with its session and customer, built once."""
        table, sessions, customers = self._table, self._sessions, self._customers
        query = (
            sa.select(
                table.c.spent_at,
                sessions.c.sid,
                sessions.c.expires_at,
                sessions.c.revoked_at,
                *self._record_columns,
            )
            .join_from(table, sessions, sessions.c.sid == table.c.sid)
            .join(customers, customers.c.customer_id == sessions.c.customer_id)
            .where(table.c.digest == sa.bindparam("digest"))
        )
        if self._uow.session.get_bind().dialect.name == "postgresql":
            # PostgreSQL's EXISTS in the spending UPDATE reads its statement's snapshot,
            # and the next token's foreign key takes no lock a logout waits for: share-lock
            # the session until the refresh commits, so that a logout (or a replay ending
            # it) either waits or has been seen. MySQL's UPDATE reads the session with a
            # shared lock by itself (and cannot lock one table of a join alone); SQLite
            # writes one at a time.
            query = query.with_for_update(read=True, of=sessions)
        return query

    def _end_replayed(
        self, sid: str, customer: CustomerRecord, now: datetime
    ) -> Unit[Refreshed | _Replayed]:
        """A spent refresh token came back: end its session (its access and refresh
        tokens with it)."""
        sessions = self._sessions
        self._uow.session.execute(
            sa.update(sessions)
            .where(sessions.c.sid == sid, sessions.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        event = {"customer": customer.public(), "sids": [sid]}
        return Unit(_Replayed(sid, customer.uuid), [(signals.customer_logged_out, event)])

    @staticmethod
    def _refused(refused: _Refused) -> NoReturn:
        security_event("refresh_refused", reason=refused.reason)
        raise Unauthorized(INVALID_REFRESH_TOKEN)
