"""Who makes a request: an admin (by id) or a customer (with their session)."""

from __future__ import annotations

from dataclasses import dataclass

from .schemas import CustomerRecord


@dataclass(frozen=True)
class Actor:
    """The caller of a use case. Admins manage every customer; a customer themselves."""

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
