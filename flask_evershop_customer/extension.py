"""The extension object: ``EverShopCustomer(app=None, *, db)`` and ``init_app``."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable
from typing import cast

from flask import Flask, Response
from flask.blueprints import BlueprintSetupState
from flask_sqlalchemy import SQLAlchemy

from .addresses import Addresses
from .admins import AdminSessions
from .auth import admin_cookie_value, delete_credential_cookie, set_credential_cookie
from .cli import add_commands
from .clock import Clock
from .config import DEFAULTS, load_settings
from .customers import Customers
from .errors import ConfigurationError, Unauthorized
from .importer import EverShopImport
from .listing import CustomerListing
from .models import Models, build_models
from .own_sessions import OwnSessions
from .passwords import PasswordHasher
from .reauth import Reauthentication
from .refresh_tokens import RefreshTokens
from .resets import PasswordResets
from .sessions import Sessions
from .state import EXTENSION_KEY, AppState, get_state
from .throttle import Throttle
from .tokens import AdminCookieSigner, TokenCodec
from .unit_of_work import UnitOfWork
from .views import create_blueprint, create_storefront_blueprint

AdminLoader = Callable[[str], bool]


class EverShopCustomer:
    """EverShop's customer REST API on a Flask app.

    ``db`` is the host's Flask-SQLAlchemy instance: the models join its metadata (so the
    host's migrations see them). One instance may serve several apps, each with its own
    configuration; :meth:`init_app` (or registering :attr:`blueprint`) sets up each one.
    """

    def __init__(self, app: Flask | None = None, *, db: SQLAlchemy) -> None:
        self.db = db
        self.models: Models = build_models(db)
        self._admin_loader: AdminLoader | None = None
        #: Register it with ``app.register_blueprint`` (``url_prefix=`` moves it) or let
        #: :meth:`init_app` do so: either way sets the extension up on that app.
        self.blueprint = create_blueprint(self._set_up)
        #: EverShop's storefront session routes, registered by the set-up when
        #: ``EVERSHOP_CUSTOMER_STOREFRONT_ROUTES`` is on.
        self.storefront_blueprint = create_storefront_blueprint()
        add_commands(self.blueprint.cli)
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Set the extension up on ``app``: config defaults and validation, the routes
        under ``EVERSHOP_CUSTOMER_URL_PREFIX``, the error handlers and the CLI.

        Raises :class:`ConfigurationError` for bad configuration and
        :class:`RuntimeError` when the extension is already set up on ``app``.
        """
        if EXTENSION_KEY in app.extensions:
            raise RuntimeError("EverShopCustomer is already set up on this app")
        app.register_blueprint(self.blueprint)

    def _set_up(self, state: BlueprintSetupState) -> None:
        """Blueprint hook: runs before the blueprint's routes are added to the app."""
        app = cast(Flask, state.app)
        if EXTENSION_KEY in app.extensions:
            raise RuntimeError("EverShopCustomer is already set up on this app")
        if app.extensions.get("sqlalchemy") is not self.db:
            raise ConfigurationError(
                "Call db.init_app(app) with the SQLAlchemy instance given to"
                " EverShopCustomer(db=...) before setting up EverShopCustomer"
            )
        for key, value in DEFAULTS.items():
            app.config.setdefault(key, value)
        settings = load_settings(app.config, debug=app.debug, testing=app.testing)
        if "url_prefix" not in state.options:
            # A plain register_blueprint() follows the app's configured prefix.
            state.url_prefix = settings.url_prefix or None
        settings = dataclasses.replace(settings, url_prefix=state.url_prefix or "")
        clock = Clock()
        uow = UnitOfWork(self.db, sender=app)
        throttle = Throttle(
            uow=uow,
            model=self.models.LoginFailure,
            key=settings.fingerprint_key,
            window=settings.login_failure_window,
            email_limit=settings.login_max_failures,
            address_limit=settings.login_max_failures_per_ip,
            clock=clock,
        )
        hasher = PasswordHasher(settings.password_hash_method)
        tokens = TokenCodec(settings.jwt_key, settings.token_lifetime)
        refresh_tokens = RefreshTokens(
            uow=uow, models=self.models, settings=settings, tokens=tokens, clock=clock
        )
        admin_sessions = AdminSessions(
            uow=uow,
            model=self.models.AdminSession,
            signer=AdminCookieSigner(settings.admin_key, settings.admin_cookie_lifetime),
            clock=clock,
        )
        customers = Customers(
            uow=uow,
            models=self.models,
            settings=settings,
            hasher=hasher,
            throttle=throttle,
            reauth=Reauthentication(
                uow=uow, models=self.models, settings=settings, hasher=hasher, throttle=throttle
            ),
            clock=clock,
        )
        app.extensions[EXTENSION_KEY] = AppState(
            settings=settings,
            models=self.models,
            customers=customers,
            addresses=Addresses(
                uow=uow, models=self.models, settings=settings, customers=customers, clock=clock
            ),
            sessions=Sessions(
                uow=uow,
                models=self.models,
                settings=settings,
                hasher=hasher,
                tokens=tokens,
                refresh_tokens=refresh_tokens,
                throttle=throttle,
                clock=clock,
            ),
            refresh_tokens=refresh_tokens,
            own_sessions=OwnSessions(uow=uow, models=self.models, clock=clock),
            listing=CustomerListing(uow=uow, models=self.models),
            resets=PasswordResets(
                uow=uow,
                models=self.models,
                settings=settings,
                hasher=hasher,
                throttle=throttle,
                clock=clock,
            ),
            admin_sessions=admin_sessions,
            importer=EverShopImport(uow=uow, models=self.models, settings=settings, clock=clock),
            throttle=throttle,
            tokens=tokens,
            hasher=hasher,
            clock=clock,
            accepts_admin=self.accepts_admin,
        )
        if settings.storefront_routes:
            app.register_blueprint(self.storefront_blueprint)

    # -- admins -----------------------------------------------------------------------

    def admin_loader(self, callback: AdminLoader) -> AdminLoader:
        """Register ``callback(admin_id) -> bool``: whether that admin is still valid.

        Without one, a validly signed, unexpired admin cookie is enough.
        """
        self._admin_loader = callback
        return callback

    def accepts_admin(self, admin_id: str) -> bool:
        """Whether ``admin_id`` (of a live admin session) is accepted by the admin loader."""
        return self._admin_loader is None or bool(self._admin_loader(admin_id))

    def login_admin(self, response: Response, admin_id: str) -> Response:
        """Open an admin session for ``admin_id`` and set its cookie on ``response``,
        after the host's own admin login succeeded."""
        state = get_state()
        value = state.admin_sessions.open(admin_id)
        name, lifetime = state.settings.admin_cookie_name, state.settings.admin_cookie_lifetime
        set_credential_cookie(response, name, value, lifetime)
        return response

    def logout_admin(self, response: Response) -> Response:
        """End the admin session of the current request's cookie (if any) and clear the
        cookie on ``response``. The cookie's value no longer works afterwards."""
        state = get_state()
        value = admin_cookie_value()
        # A cookie that does not verify names no session to end.
        with contextlib.suppress(Unauthorized):
            if value:
                state.admin_sessions.revoke(state.admin_sessions.session_id(value))
        delete_credential_cookie(response, state.settings.admin_cookie_name)
        return response

    def end_admin_sessions(self, admin_id: str) -> int:
        """End every session of ``admin_id`` (when the host removes that admin or changes
        its password). Returns how many were live."""
        return get_state().admin_sessions.end_all(admin_id)

    @property
    def clock(self) -> Clock:
        """The current app's clock; tests move it with ``clock.travel(seconds)``."""
        return get_state().clock

    @property
    def throttle(self) -> Throttle:
        """The current app's :class:`~flask_evershop_customer.throttle.Throttle`: hosts
        limit their own logins with ``throttle.attempt(...)``."""
        return get_state().throttle

    @property
    def accounts(self) -> Customers:
        """The current app's customer rules (create, update, delete, reads), for use
        outside requests: the same rules and authorization as the HTTP API."""
        return get_state().customers

    @property
    def sessions(self) -> Sessions:
        """The current app's session rules (log in, log out, the token check), for use
        outside requests."""
        return get_state().sessions

    @property
    def addresses(self) -> Addresses:
        """The current app's address rules (list, add, change, delete a customer's
        addresses), with the same authorization as the HTTP API."""
        return get_state().addresses

    @property
    def refresh_tokens(self) -> RefreshTokens:
        """The current app's refresh token rules (refresh with rotation, purge)."""
        return get_state().refresh_tokens

    @property
    def listing(self) -> CustomerListing:
        """The current app's admin reads (a page of customers, filtered and sorted)."""
        return get_state().listing

    @property
    def resets(self) -> PasswordResets:
        """The current app's password reset rules (request a token, complete a reset)."""
        return get_state().resets

    @property
    def own_sessions(self) -> OwnSessions:
        """The current app's rules for a customer's own sessions (list them, end all but
        the current one)."""
        return get_state().own_sessions
