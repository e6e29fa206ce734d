"""What the extension keeps per app, in ``app.extensions["evershop_customer"]``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask, current_app

from .addresses import Addresses
from .admins import AdminSessions
from .clock import Clock
from .config import Settings
from .customers import Customers
from .importer import EverShopImport
from .listing import CustomerListing
from .models import Models
from .own_sessions import OwnSessions
from .passwords import PasswordHasher
from .refresh_tokens import RefreshTokens
from .resets import PasswordResets
from .sessions import Sessions
from .throttle import Throttle
from .tokens import TokenCodec

EXTENSION_KEY = "evershop_customer"


@dataclass(frozen=True)
class AppState:
    """The validated settings and the collaborators built from them for one app."""

    settings: Settings
    #: The mapped classes on the app's ``db``.
    models: Models
    customers: Customers
    addresses: Addresses
    sessions: Sessions
    refresh_tokens: RefreshTokens
    own_sessions: OwnSessions
    listing: CustomerListing
    resets: PasswordResets
    admin_sessions: AdminSessions
    importer: EverShopImport
    throttle: Throttle
    tokens: TokenCodec
    hasher: PasswordHasher
    clock: Clock
    #: The admin loader: whether an admin id of a live admin session is still accepted.
    accepts_admin: Callable[[str], bool]


def get_state(app: Flask | None = None) -> AppState:
    """The extension's state on ``app`` (the current app by default); a clear error if
    it was never set up there."""
    target = current_app if app is None else app
    try:
        return target.extensions[EXTENSION_KEY]  # type: ignore[no-any-return]
    except KeyError:
        raise RuntimeError(
            "EverShopCustomer is not set up on this app. Did you forget to call"
            " customers.init_app(app) (or app.register_blueprint(customers.blueprint))?"
        ) from None
