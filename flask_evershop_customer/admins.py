"""Admin sessions: each admin login is a row, and the signed admin cookie names it.

The host owns its admins and their login; the extension keeps the sessions that login
opens, so that one cookie can be logged out (:meth:`AdminSessions.revoke`) and all of one
admin's cookies ended (:meth:`AdminSessions.end_all`) without rotating any secret.
"""

from __future__ import annotations

import functools
import uuid as uuid_module
from collections.abc import Callable
from datetime import datetime, timedelta

import sqlalchemy as sa

from .errors import Unauthorized
from .models import AdminSessionColumns
from .tokens import AdminCookieSigner
from .unit_of_work import Unit, UnitOfWork


class AdminSessions:
    """Opens, checks and ends the admin sessions of one app."""

    def __init__(
        self,
        *,
        uow: UnitOfWork,
        model: type[AdminSessionColumns],
        signer: AdminCookieSigner,
        clock: Callable[[], datetime],
    ) -> None:
        self._uow = uow
        self._model = model
        self.signer = signer
        self._clock = clock

    @functools.cached_property
    def _lookup(self) -> sa.Select[str, datetime, datetime | None]:
        """The check of every admin request, built once: one primary-key lookup."""
        table = self._model.__table__
        return sa.select(table.c.admin_id, table.c.expires_at, table.c.revoked_at).where(
            table.c.id == sa.bindparam("id")
        )

    def open(self, admin_id: str) -> str:
        """Open a session for ``admin_id`` (committed); returns the cookie value."""
        session_id = str(uuid_module.uuid4())

        def work(_attempt: int) -> Unit[None]:
            now = self._clock()
            self._uow.session.execute(
                sa.insert(self._model.__table__).values(
                    id=session_id,
                    admin_id=admin_id,
                    created_at=now,
                    expires_at=now + timedelta(seconds=self.signer.max_age),
                )
            )
            return Unit(None)

        self._uow.run(work)
        return self.signer.sign(session_id)

    def session_id(self, cookie: str) -> str:
        """The session id a cookie names; :class:`Unauthorized` if it does not verify."""
        return self.signer.unsign(cookie)

    def check(self, cookie: str) -> tuple[str, str]:
        """The admin id and session id of a cookie whose session is live;
        :class:`Unauthorized` otherwise."""
        session_id = self.signer.unsign(cookie)
        row = self._uow.session.execute(self._lookup, {"id": session_id}).one_or_none()
        if row is None:
            raise Unauthorized("Admin session has ended")
        admin_id, expires_at, revoked_at = row
        if revoked_at is not None or expires_at <= self._clock():
            raise Unauthorized("Admin session has ended")
        return admin_id, session_id

    def revoke(self, session_id: str) -> bool:
        """End one session. Returns whether it was live."""
        table = self._model.__table__
        return self._end(table.c.id == session_id) > 0

    def end_all(self, admin_id: str) -> int:
        """End every live session of ``admin_id``. Returns how many were ended."""
        table = self._model.__table__
        return self._end(table.c.admin_id == admin_id)

    def purge(self, batch_size: int) -> int:
        """Delete ended and expired sessions, ``batch_size`` per transaction."""
        table = self._model.__table__
        now = self._clock()
        ended = sa.or_(table.c.expires_at <= now, table.c.revoked_at.is_not(None))
        return self._uow.delete_in_batches(table.c.id, ended, batch_size)

    def _end(self, condition: sa.ColumnElement[bool]) -> int:
        table = self._model.__table__
        now = self._clock()

        def work(_attempt: int) -> Unit[int]:
            result = self._uow.session.execute(
                sa.update(table)
                .where(condition, table.c.revoked_at.is_(None), table.c.expires_at > now)
                .values(revoked_at=now)
            )
            return Unit(int(getattr(result, "rowcount", 0) or 0))

        return self._uow.run(work)
