"""Re-authentication: a customer's current password, checked before they change their
own password or email. One hash check, throttled and counted like a login. No request
objects."""

from __future__ import annotations

import sqlalchemy as sa

from .actors import Actor
from .config import Settings
from .errors import ValidationError
from .logs import security_event
from .models import Models
from .passwords import PasswordHasher
from .schemas import CustomerRecord
from .throttle import Throttle
from .unit_of_work import UnitOfWork

CURRENT_PASSWORD_REQUIRED = "Request data must have required property 'current_password'"
CURRENT_PASSWORD_INCORRECT = "Current password is incorrect"


class Reauthentication:
    """Checks a customer's current password for a change of their own account."""

    def __init__(
        self,
        *,
        uow: UnitOfWork,
        models: Models,
        settings: Settings,
        hasher: PasswordHasher,
        throttle: Throttle,
    ) -> None:
        self._uow = uow
        self._customers = models.Customer.__table__
        self._settings = settings
        self._hasher = hasher
        self._throttle = throttle

    def needed(self, actor: Actor, *, password: bool, new_email: bool) -> bool:
        """Whether this change needs the current password: a customer's own password
        change always, their email change unless configured otherwise; an admin's never."""
        if actor.is_admin:
            return False
        return password or (new_email and self._settings.reauth_for_email_change)

    def check(self, actor: Actor, customer: CustomerRecord, current_password: str | None) -> str:
        """Verify ``current_password`` for ``customer``; return the hash it matched, which
        the write must still find (a password changed meanwhile makes it fail).

        :class:`ValidationError` when it is missing or wrong. A wrong one counts as a
        failed login of the customer's email (past the limit :class:`TooManyRequests`,
        without a check) and is logged; a right one is forgotten at once.
        """
        if current_password is None:
            raise ValidationError(CURRENT_PASSWORD_REQUIRED)
        email_key = self._throttle.subject("email", customer.email_canonical)
        attempt = self._throttle.reserve(
            {email_key: ("email", self._settings.login_max_failures)},
            event="reauth_throttled",
            customer=customer.uuid,
            sid=actor.sid,
        )
        stored = self._stored_hash(customer)
        self._uow.end_read()  # no transaction is open while the password is hashed
        if not self._hasher.verify(stored, current_password) or stored is None:
            security_event("reauth_failed", customer=customer.uuid, sid=actor.sid)
            raise ValidationError(CURRENT_PASSWORD_INCORRECT)
        attempt.succeeded()
        return stored

    def still_current(self, actor: Actor, customer: CustomerRecord, verified_hash: str) -> None:
        """Inside the writing transaction, with the customer's row locked: the verified
        password must still be the customer's."""
        if self._stored_hash(customer) != verified_hash:
            security_event(
                "reauth_failed",
                customer=customer.uuid,
                sid=actor.sid,
                reason="password changed meanwhile",
            )
            raise ValidationError(CURRENT_PASSWORD_INCORRECT)

    def _stored_hash(self, customer: CustomerRecord) -> str | None:
        customers = self._customers
        stored: str | None = self._uow.session.scalar(
            sa.select(customers.c.password_hash).where(
                customers.c.customer_id == customer.customer_id
            )
        )
        return stored
