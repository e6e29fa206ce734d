"""EverShop's Customer REST API as a Flask extension.

The package, one job a module:

- ``extension``: :class:`EverShopCustomer`, ``init_app`` and the per-app set-up.
- ``config``: every ``EVERSHOP_CUSTOMER_*`` default, validated once into ``Settings``.
- ``state``: what the extension keeps per app (``app.extensions["evershop_customer"]``).
- ``models``: the mapped classes, built on the host's Flask-SQLAlchemy ``db``.
- ``schemas``: request parsing and validation, response shaping (pure functions).
- ``actors``: who makes a request (an admin or a customer with a session).
- ``customers``: the customer rules: create, read, update, delete, with authorization
  and the password policy inside.
- ``sessions``: the session rules: log in, log out, the token check, purging.
- ``refresh_tokens``: headless clients' refresh tokens: rotation, replay detection.
- ``listing``: the admin list of customers: a page, filters, sorts, the total.
- ``addresses``: customers' addresses: list, add, change, delete; one default each.
- ``address_schemas``: addresses' fields checked against ISO 3166 and libphonenumber.
- ``own_sessions``: a customer's own sessions: list them, end all but the current one.
- ``reauth``: the current password a customer's own password or email change needs.
- ``resets``: password reset: single-use hashed tokens, the new password, purging.
- ``admins``: admin sessions (the rows the admin cookie names).
- ``throttle``: attempts counted per subject in the database, limits, ``Retry-After``.
- ``unit_of_work``: the transaction loop: signals before commit, retries of transient
  conflicts, SQLite's write lock.
- ``passwords``: Werkzeug hashing, the hash-method and password policies, the dummy hash.
- ``tokens``: the customer JWT, the signed admin cookie, opaque tokens' digests.
- ``clock``: the time every expiry and window is judged by.
- ``auth``: credentials from the request, the cross-site rule, the host's decorators.
- ``testing``: a test client logged in without a password, for hosts' tests.
- ``views``: the blueprint and its thin views; ``errors``: the exception ladder and the
  envelope; ``signals``, ``logs`` (the security log), ``cli``, ``openapi`` (the
  document), ``api_reference`` (the document as a page), ``migrations``.
"""

from .actors import Actor, Identity
from .address_schemas import AddressRecord
from .addresses import Addresses
from .auth import (
    AnonymousCustomer,
    admin_required,
    current_customer,
    customer_required,
    get_current_customer,
    get_current_identity,
    same_origin_required,
)
from .clock import Clock
from .customers import Customers
from .errors import APIError, ConfigurationError, EverShopCustomerError, TooManyRequests
from .extension import EverShopCustomer
from .migrations import MIGRATIONS_DIRECTORY, add_version_location
from .models import CustomerStatus
from .own_sessions import OwnSessions, SessionInfo
from .refresh_tokens import Refreshed, RefreshTokens
from .resets import PasswordResets
from .schemas import Credentials, CustomerChanges, CustomerRecord, NewCustomer
from .sessions import LoginResult, Sessions
from .signals import (
    address_created,
    address_deleted,
    address_updated,
    customer_created,
    customer_deleted,
    customer_logged_in,
    customer_logged_out,
    customer_updated,
    password_reset,
    password_reset_requested,
)
from .throttle import Attempt, Throttle

__version__ = "0.1.0"

__all__ = [
    "MIGRATIONS_DIRECTORY",
    "APIError",
    "Actor",
    "AddressRecord",
    "Addresses",
    "AnonymousCustomer",
    "Attempt",
    "Clock",
    "ConfigurationError",
    "Credentials",
    "CustomerChanges",
    "CustomerRecord",
    "CustomerStatus",
    "Customers",
    "EverShopCustomer",
    "EverShopCustomerError",
    "Identity",
    "LoginResult",
    "NewCustomer",
    "OwnSessions",
    "PasswordResets",
    "RefreshTokens",
    "Refreshed",
    "SessionInfo",
    "Sessions",
    "Throttle",
    "TooManyRequests",
    "add_version_location",
    "address_created",
    "address_deleted",
    "address_updated",
    "admin_required",
    "current_customer",
    "customer_created",
    "customer_deleted",
    "customer_logged_in",
    "customer_logged_out",
    "customer_required",
    "customer_updated",
    "get_current_customer",
    "get_current_identity",
    "password_reset",
    "password_reset_requested",
    "same_origin_required",
]
