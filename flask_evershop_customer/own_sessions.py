"""A customer's view of their own sessions: list the live ones, end all but the current
one (``/customers/me/sessions``). No request objects."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from . import signals
from .actors import Actor
from .customers import CustomerTables
from .errors import Forbidden
from .logs import security_event
from .models import Models
from .schemas import CustomerRecord
from .unit_of_work import Unit, UnitOfWork


@dataclass(frozen=True)
class SessionInfo:
    """One of a customer's live sessions, as they see it listed."""

    sid: str
    created_at: datetime
    expires_at: datetime
    #: Whether this is the session making the request.
    current: bool
    #: The ``User-Agent`` it logged in with (at most 255 characters), or None.
    user_agent: str | None


class OwnSessions(CustomerTables):
    """The caller's own sessions, over the host's SQLAlchemy session."""

    def __init__(self, *, uow: UnitOfWork, models: Models, clock: Callable[[], datetime]) -> None:
        super().__init__(models)
        self._uow = uow
        self._clock = clock

    def live(self, actor: Actor) -> list[SessionInfo]:
        """The caller's live sessions, newest first; ``current`` marks the caller's.
        :class:`Forbidden` for an actor without a customer session (an admin)."""
        own = _own(actor)
        sessions = self._sessions
        rows = self._uow.session.execute(
            sa.select(
                sessions.c.sid, sessions.c.created_at, sessions.c.expires_at, sessions.c.user_agent
            )
            .where(sessions.c.customer_id == own.customer_id, self._live(self._clock()))
            .order_by(sessions.c.created_at.desc(), sessions.c.sid)
        ).all()
        return [
            SessionInfo(sid, created, expires, sid == actor.sid, agent)
            for sid, created, expires, agent in rows
        ]

    def end_others(self, actor: Actor) -> list[str]:
        """End every live session of the caller except the one making the request (sends
        ``customer_logged_out`` when there were any). Returns the ended session ids."""
        own = _own(actor)
        sessions = self._sessions
        now = self._clock()
        others = sa.and_(
            sessions.c.customer_id == own.customer_id,
            sessions.c.sid != actor.sid,
            self._live(now),
        )

        def work(_attempt: int) -> Unit[list[str]]:
            ended = list(
                self._uow.session.scalars(sa.select(sessions.c.sid).where(others).with_for_update())
            )
            if not ended:
                return Unit(ended, [])
            self._uow.session.execute(
                sa.update(sessions).where(sessions.c.sid.in_(ended)).values(revoked_at=now)
            )
            event = {"customer": own.public(), "sids": ended}
            return Unit(ended, [(signals.customer_logged_out, event)])

        ended = self._uow.run(work, locking=True)
        for sid in ended:
            security_event("logout", customer=own.uuid, sid=sid, by_admin=None)
        return ended


def _own(actor: Actor) -> CustomerRecord:
    if actor.customer is None or actor.sid is None:
        raise Forbidden("Customer credentials are required")
    return actor.customer
