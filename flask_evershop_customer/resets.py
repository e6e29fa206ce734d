"""Password reset: a single-use token for an email, then a new password with it. No
request objects.

The answer to a request never tells whether the email belongs to anyone: every request is
counted alike, and the token goes only to the host's ``password_reset_requested``
receiver, which mails the link. Only the token's SHA-256 digest is stored.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from datetime import datetime, timedelta

import sqlalchemy as sa

from . import signals
from .config import Settings
from .customers import CustomerTables
from .errors import ValidationError
from .logs import security_event
from .models import CustomerStatus, Models
from .passwords import PasswordHasher, check_policy
from .schemas import CustomerRecord, NewPassword
from .throttle import Attempt, Throttle
from .tokens import new_opaque_token, opaque_digest
from .unit_of_work import Unit, UnitOfWork

INVALID_TOKEN = "Token is invalid or expired"


class PasswordResets(CustomerTables):
    """The password reset rules of one app, over the host's SQLAlchemy session."""

    def __init__(
        self,
        *,
        uow: UnitOfWork,
        models: Models,
        settings: Settings,
        hasher: PasswordHasher,
        throttle: Throttle,
        clock: Callable[[], datetime],
    ) -> None:
        super().__init__(models)
        self._uow = uow
        self._tokens = models.ResetToken.__table__
        self._settings = settings
        self._hasher = hasher
        self._throttle = throttle
        self._clock = clock

    def accept(self, email_canonical: str, client_address: str) -> Callable[[], None]:
        """Count a reset request against the email and the address alike, known email
        or not (:class:`TooManyRequests` past the login limits), and return the rest of
        it: the step that issues the token, if the email names an active customer.

        The HTTP route runs that step once its answer is sent, so the answer takes as
        long whether or not the email has an account (the host's mail included).
        """
        throttle, settings = self._throttle, self._settings
        email_key = throttle.subject("reset-email", email_canonical)
        limits = {email_key: ("email", settings.login_max_failures)}
        if client_address:
            limits[throttle.client_subject("reset-ip", client_address)] = (
                "ip",
                settings.login_max_failures_per_ip,
            )
        attempt = throttle.reserve(limits, event="reset_throttled", email_hash=email_key[:16])
        self._uow.end_read()
        return functools.partial(self._issue, email_canonical, client_address, attempt.ids)

    def _issue(self, email_canonical: str, client_address: str, attempt_ids: list[int]) -> None:
        """Issue a token for the active customer with this email, if there is one, and
        send it to ``password_reset_requested``; older tokens of theirs are used up.

        An email without an account gets the same statements (older tokens of nobody
        used up, and a write of the same size: its attempt rows written again), so that
        the request after this one, on this worker or this SQLite file, cannot tell the
        two apart either.
        """
        settings = self._settings
        customers, tokens = self._customers, self._tokens
        failures = self._models.LoginFailure.__table__
        token = new_opaque_token()
        now = self._clock()

        def work(_attempt: int) -> Unit[CustomerRecord | None]:
            # The customer's row, locked: of two requests at once, the later one voids
            # the earlier one's token (it waits, then sees it).
            row = self._uow.session.execute(
                sa.select(*self._record_columns)
                .where(
                    customers.c.email_canonical == email_canonical,
                    customers.c.status == CustomerStatus.ACTIVE,
                )
                .with_for_update()
            ).one_or_none()
            if row is None:
                # The statements of an issue: older tokens used up (of nobody: no
                # customer has id 0), then one row written.
                self._use_up_reset_tokens(0, now)
                self._uow.session.execute(
                    sa.update(failures)
                    .where(failures.c.id.in_(attempt_ids))
                    .values(failed_at=failures.c.failed_at)
                )
                return Unit(None)
            customer = CustomerRecord(*row)
            self._use_up_reset_tokens(customer.customer_id, now)
            self._uow.session.execute(
                sa.insert(tokens).values(
                    digest=opaque_digest(token),
                    customer_id=customer.customer_id,
                    customer_uuid=customer.uuid,
                    created_at=now,
                    expires_at=now + timedelta(seconds=settings.reset_token_lifetime),
                )
            )
            return Unit(customer)

        customer = self._uow.run(work, locking=True)
        security_event(
            "reset_requested",
            customer=customer.uuid if customer is not None else None,
            client=client_address,
        )
        if customer is not None:
            self._uow.notify(
                signals.password_reset_requested, {"customer": customer.public(), "token": token}
            )

    def complete(self, new: NewPassword) -> CustomerRecord:
        """Set the new password of the token's customer (the policy applied), end every
        session of theirs, use up all their tokens and forget their email's failed logins.
        :class:`ValidationError` ``Token is invalid or expired`` for a token that is
        unknown, used, expired, or whose customer is disabled."""
        customer = self._holder(new.token)
        check_policy(
            new.password,
            min_length=self._settings.password_min_length,
            email=customer.email,
            full_name=customer.full_name,
        )
        self._uow.end_read()  # nothing is held while the password is hashed
        password_hash = self._hasher.hash(new.password)
        digest = opaque_digest(new.token)
        customers, sessions, tokens = self._customers, self._sessions, self._tokens

        def work(_attempt: int) -> Unit[CustomerRecord]:
            now = self._clock()
            # The token row, locked: of two completions with one token, one wins.
            live = self._uow.session.execute(
                sa.select(tokens.c.digest)
                .where(
                    tokens.c.digest == digest,
                    tokens.c.used_at.is_(None),
                    tokens.c.expires_at > now,
                )
                .with_for_update()
            ).one_or_none()
            base = self._uow.session.execute(
                sa.select(*self._record_columns)
                .where(
                    customers.c.customer_id == customer.customer_id,
                    customers.c.uuid == customer.uuid,
                    customers.c.status == CustomerStatus.ACTIVE,
                )
                .with_for_update()
            ).one_or_none()
            if live is None or base is None:
                raise ValidationError(INVALID_TOKEN)
            record = CustomerRecord(*base)
            version = record.version + 1
            self._uow.session.execute(
                sa.update(customers)
                .where(customers.c.customer_id == record.customer_id)
                .values(password_hash=password_hash, version=version, updated_at=now)
            )
            self._uow.session.execute(
                sa.update(sessions)
                .where(sessions.c.customer_id == record.customer_id, self._live(now))
                .values(revoked_at=now)
            )
            self._use_up_reset_tokens(record.customer_id, now)
            # The email's failed logins are forgotten: its owner has just proved it.
            email_key = self._throttle.subject("email", record.email_canonical)
            self._throttle.forget(Attempt(self._throttle, []), email_key)
            updated = dataclasses.replace(record, version=version, updated_at=now)
            return Unit(updated, [(signals.password_reset, {"customer": updated.public()})])

        result = self._uow.run(work, locking=True)
        security_event("password_reset", customer=result.uuid)
        return result

    def purge(self, batch_size: int = 1000) -> int:
        """Delete used and expired tokens, ``batch_size`` rows per transaction. Returns
        how many."""
        tokens = self._tokens
        spent = sa.or_(tokens.c.used_at.is_not(None), tokens.c.expires_at <= self._clock())
        return self._uow.delete_in_batches(tokens.c.digest, spent, batch_size)

    def _holder(self, token: str) -> CustomerRecord:
        """The active customer of a usable token; :class:`ValidationError` otherwise."""
        tokens, customers = self._tokens, self._customers
        row = self._uow.session.execute(
            sa.select(*self._record_columns)
            .join_from(
                tokens,
                customers,
                sa.and_(
                    customers.c.customer_id == tokens.c.customer_id,
                    customers.c.uuid == tokens.c.customer_uuid,
                ),
            )
            .where(
                tokens.c.digest == opaque_digest(token),
                tokens.c.used_at.is_(None),
                tokens.c.expires_at > self._clock(),
                customers.c.status == CustomerStatus.ACTIVE,
            )
        ).one_or_none()
        if row is None:
            security_event("reset_refused", reason="invalid or expired token")
            raise ValidationError(INVALID_TOKEN)
        return CustomerRecord(*row)
