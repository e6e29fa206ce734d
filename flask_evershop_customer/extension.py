"""The extension object: ``EverShopCustomer(app=None, *, db)`` and ``init_app``."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import cast

from flask import Flask, Response
from flask.blueprints import BlueprintSetupState
from flask_sqlalchemy import SQLAlchemy

from .cli import add_commands
from .config import DEFAULTS, load_settings
from .errors import ConfigurationError
from .models import Models, build_models
from .passwords import PasswordHasher
from .service import CustomerService
from .state import EXTENSION_KEY, AppState, get_state
from .tokens import AdminCookieSigner, TokenCodec
from .views import create_blueprint

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
        self.blueprint = create_blueprint(self)
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

    def _on_register(self, state: BlueprintSetupState) -> None:
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
        service = CustomerService(
            db=self.db,
            models=self.models,
            settings=settings,
            hasher=PasswordHasher(settings.password_hash_method),
            tokens=TokenCodec(settings.jwt_key, settings.token_lifetime),
            sender=app,
        )
        admin_cookies = AdminCookieSigner(settings.admin_key, settings.admin_cookie_lifetime)
        app.extensions[EXTENSION_KEY] = AppState(settings, service, admin_cookies, self.is_admin)

    # -- admins -----------------------------------------------------------------------

    def admin_loader(self, callback: AdminLoader) -> AdminLoader:
        """Register ``callback(admin_id) -> bool``: whether that admin is still valid.

        Without one, a validly signed, unexpired admin cookie is enough.
        """
        self._admin_loader = callback
        return callback

    def is_admin(self, admin_id: str) -> bool:
        """Whether ``admin_id`` (from a valid cookie) is accepted by the admin loader."""
        return self._admin_loader is None or bool(self._admin_loader(admin_id))

    def login_admin(self, response: Response, admin_id: str) -> Response:
        """Set the admin cookie on ``response``, after the host's own admin login."""
        state = get_state()
        response.set_cookie(
            state.settings.admin_cookie_name,
            state.admin_cookies.sign(admin_id),
            max_age=state.settings.admin_cookie_lifetime,
            path="/",
            secure=state.settings.cookie_secure,
            httponly=True,
            samesite="Lax",
        )
        return response

    def logout_admin(self, response: Response) -> Response:
        """Clear the admin cookie on ``response``."""
        state = get_state()
        response.delete_cookie(
            state.settings.admin_cookie_name,
            path="/",
            secure=state.settings.cookie_secure,
            httponly=True,
            samesite="Lax",
        )
        return response

    @property
    def service(self) -> CustomerService:
        """The current app's :class:`CustomerService`, for use outside requests."""
        return get_state().service
