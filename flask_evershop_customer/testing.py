"""Helpers for tests of a host's own code: a test client that is logged in without a
password round trip (as Flask-Login's ``FlaskLoginClient``).

::

    from flask_evershop_customer.testing import CustomerTestClient

    app.test_client_class = CustomerTestClient
    client = app.test_client(customer=alice_uuid)   # a bearer token of a new session
    admin = app.test_client(admin="ops-1")          # the admin cookie of a new session

Time is moved with ``customers.clock`` (see :class:`~flask_evershop_customer.Clock`).
A reset request's token is issued after its response is sent, in a thread of its own:
:func:`wait_for_work_after_responses` waits for it (once the response is closed, as
Flask's test client does when its ``with`` block ends or with ``buffered=True``).
"""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient

from .after_response import wait_for_work_after_responses
from .schemas import CustomerRecord
from .sessions import LoginResult
from .state import get_state

__all__ = ["CustomerTestClient", "wait_for_work_after_responses"]


class CustomerTestClient(FlaskClient):
    """A test client logged in as ``customer`` (a uuid or a :class:`CustomerRecord`)
    with a bearer token, and/or as ``admin`` (an admin id) with the admin cookie, both
    on sessions opened for it. ``login`` is the customer's :class:`LoginResult`."""

    def __init__(
        self,
        *args: Any,
        customer: str | CustomerRecord | None = None,
        admin: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.login: LoginResult | None = None
        with self.application.app_context():
            state = get_state()
            if customer is not None:
                uuid = customer.uuid if isinstance(customer, CustomerRecord) else customer
                self.login = state.sessions.open_session(uuid)
                self.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {self.login.token}"
            if admin is not None:
                name, value = state.settings.admin_cookie_name, state.admin_sessions.open(admin)
                if self._cookies is not None:
                    self.set_cookie(name, value)
                else:  # a client made with use_cookies=False
                    self.environ_base["HTTP_COOKIE"] = f"{name}={value}"
