"""Who makes a request: an admin (by id) or a customer (with their session)."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from .schemas import CustomerRecord


class Identity(NamedTuple):
    """Whose token a request carries: the customer's uuid and the session id."""

    customer_uuid: str
    sid: str


class Actor:
    """The caller of a use case. Admins manage every customer; a customer themselves.

    A customer's record is either known when the actor is made (the token check read it)
    or read on first use of :attr:`customer` by ``load``, which also checks the session:
    a request trusted on its token alone (``EVERSHOP_CUSTOMER_CHECK_SESSION_EACH_REQUEST
    = False``) reads the database only if it needs more than the :attr:`identity`.
    """

    __slots__ = ("admin_id", "identity", "_record", "_load")

    def __init__(
        self,
        *,
        admin_id: str | None = None,
        identity: Identity | None = None,
        customer: CustomerRecord | None = None,
        load: Callable[[], CustomerRecord] | None = None,
    ) -> None:
        self.admin_id = admin_id
        #: The customer's uuid and session id, from the token (None for an admin).
        self.identity = identity
        self._record = customer
        self._load = load

    @classmethod
    def of_customer(cls, customer: CustomerRecord, sid: str) -> Actor:
        """A customer whose session was checked and record read."""
        return cls(identity=Identity(customer.uuid, sid), customer=customer)

    @property
    def customer(self) -> CustomerRecord | None:
        """The customer's record (read now if it was not yet: that read checks the
        session, and raises :class:`Unauthorized` if it ended), or None for an admin."""
        if self._record is None and self._load is not None:
            self._record = self._load()
        return self._record

    @property
    def sid(self) -> str | None:
        """The customer's session id, or None for an admin."""
        return self.identity.sid if self.identity is not None else None

    @property
    def customer_uuid(self) -> str | None:
        """The customer's uuid (no query), or None for an admin."""
        return self.identity.customer_uuid if self.identity is not None else None

    @property
    def is_admin(self) -> bool:
        """Whether an admin makes the request."""
        return self.admin_id is not None

    @property
    def is_customer(self) -> bool:
        """Whether a customer makes the request (no query)."""
        return self.identity is not None

    def may_manage(self, customer: CustomerRecord) -> bool:
        """Admins manage every customer; a customer only themselves."""
        return self.is_admin or self.customer_uuid == customer.uuid

    def __repr__(self) -> str:
        if self.is_admin:
            return f"<Actor admin {self.admin_id}>"
        return f"<Actor customer {self.customer_uuid}>"
