"""The whole library running on its own: ``flask --app examples.app run``.

Configuration comes from ``FLASK_*`` environment variables (``FLASK_SECRET_KEY``,
``FLASK_SQLALCHEMY_DATABASE_URI``, ``FLASK_EXAMPLE_ADMIN_EMAIL``, ...) or ``test_config``.
Without a database URL it uses SQLite in the instance folder. Missing secrets and admin
credentials are generated once, kept in the instance folder (so every worker of one
host agrees on them), and the admin credentials are printed.

``POST /admin/login`` is the example of a host's own login: a body of at most
``EXAMPLE_ADMIN_LOGIN_MAX_CONTENT_LENGTH`` bytes, throttled by the library like customer
logins, and answering errors in EverShop's JSON envelope; it and ``POST /admin/logout`` are
refused from another origin (``same_origin_required``). ``GET /whoami`` is the example
of a host's own customer-only route: it needs only who is calling, so with
``EVERSHOP_CUSTOMER_CHECK_SESSION_EACH_REQUEST = False`` an access token costs it no
query. EverShop's storefront routes (``POST /customer/login``, ``GET|POST
/customer/logout``) are on, as a shop running EverShop's storefront code would want.

``GET /`` is a small storefront account page (``examples/storefront/``: plain HTML and
``fetch``, no build step) that uses the API with the token cookie, as a browser-based shop
would: register, log in, the profile, addresses, sessions, a password reset and log out.
``GET /reset-password`` is the same page, opening its "choose a new password" form with the
``token`` of its query. The page is sent with a strict Content-Security-Policy (scripts,
styles and requests of this origin only, no inline code, no framing, no native form
submission), ``Referrer-Policy: no-referrer`` (the reset link's query holds a token) and
``Cache-Control: no-store``.

A password reset link is written on the log (a real shop mails it). ``EXAMPLE_RESET_LINK``,
a template with ``{token}``, says where it points. Unset (the default), the link is this
app's own ``/reset-password`` at the address the reset request was sent to, but only when
that address is a loopback one (``127.0.0.1``, ``localhost``, ``[::1]``), so that ``make
run`` on any port links to itself. On any other host the request's ``Host`` header is the
client's to choose (a reset requested with ``Host: evil.example`` would put the customer's
token in a link to another site), so the link is then only the path, and a deployment sets
``EXAMPLE_RESET_LINK`` to its public address.
"""

from __future__ import annotations

import hmac
import json
import os
import re
import secrets
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import sqlalchemy as sa
from flask import (
    Flask,
    Response,
    current_app,
    has_request_context,
    jsonify,
    request,
    send_from_directory,
)
from flask_migrate import Migrate, upgrade
from flask_sqlalchemy import SQLAlchemy
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from flask_evershop_customer import (
    MIGRATIONS_DIRECTORY,
    EverShopCustomer,
    customer_required,
    get_current_identity,
    password_reset_requested,
    same_origin_required,
)
from flask_evershop_customer.errors import (
    APIError,
    InvalidCredentials,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationError,
    error_response,
    from_http_exception,
)
from flask_evershop_customer.schemas import string_value

db = SQLAlchemy()
customers = EverShopCustomer(db=db)
migrate = Migrate(directory=MIGRATIONS_DIRECTORY)

#: Throttling counters of the admin login, apart from the customers' logins.
ADMIN_LOGIN_SCOPE = "admin-login"
ADMIN_PATHS = frozenset({"/admin/login", "/admin/logout"})
#: Hosts (with any port) whose reset links may be built from the request itself.
LOOPBACK_HOST = re.compile(r"(?:127\.0\.0\.1|localhost|\[::1\])(?::[0-9]{1,5})?", re.IGNORECASE)
#: The storefront page and its two files, served by ``_add_storefront_page``.
STOREFRONT_DIRECTORY = Path(__file__).resolve().parent / "storefront"
STOREFRONT_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "img-src 'self'",
        # The forms are sent by the script only: without it, none is sent at all.
        "form-action 'none'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ]
)


@customers.admin_loader
def load_admin(admin_id: str) -> bool:
    """The example has one admin: the configured one."""
    admin_email: str = current_app.config["EXAMPLE_ADMIN_EMAIL"]
    return admin_id == admin_email


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Create the example shop. ``test_config`` overrides any key."""
    app = Flask(__name__, instance_relative_config=True)
    os.makedirs(app.instance_path, exist_ok=True)
    app.config.from_mapping(
        SQLALCHEMY_DATABASE_URI="sqlite:///" + os.path.join(app.instance_path, "shop.sqlite"),
        EXAMPLE_AUTO_UPGRADE=True,
        EXAMPLE_EXPOSE_WORKER_PID=False,
        EXAMPLE_ADMIN_LOGIN_MAX_CONTENT_LENGTH=4096,
        # Where the storefront's "choose a new password" page lives; {token} is filled in.
        # None: this app's own page, at a loopback address only (see the module's doc).
        EXAMPLE_RESET_LINK=None,
        EVERSHOP_CUSTOMER_STOREFRONT_ROUTES=True,
    )
    app.config.from_prefixed_env()
    if test_config is not None:
        app.config.from_mapping(test_config)
    _ensure_generated_settings(app)
    _configure_sqlite(app)

    db.init_app(app)
    customers.init_app(app)
    migrate.init_app(app, db)
    _add_admin_login(app)
    app.add_url_rule("/whoami", "whoami", _whoami)
    _add_storefront_page(app)
    password_reset_requested.connect(_log_reset_link, sender=app)
    if app.config["EXAMPLE_EXPOSE_WORKER_PID"]:
        _expose_worker_pid(app)

    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            sa.event.listen(db.engine, "connect", _sqlite_pragmas)
        if app.config["EXAMPLE_AUTO_UPGRADE"]:
            upgrade(revision="heads")
            # No pooled connection outlives start-up: a pre-forking server (gunicorn
            # --preload) must not hand one connection to several workers.
            db.engine.dispose()
    return app


def _log_reset_link(app: Flask, customer: dict[str, Any], token: str) -> None:
    """A real shop mails the link; the example writes it on its log, so that the whole
    reset can be tried by hand with ``make run``."""
    template: str | None = app.config["EXAMPLE_RESET_LINK"]
    if template is not None:
        link = template.format(token=token)
    else:
        link = f"{_own_base_url()}/reset-password?{urlencode({'token': token})}"
    app.logger.warning("Password reset link for %s: %s", customer["email"], link)


def _own_base_url() -> str:
    """``scheme://host:port`` of the request when its host is a loopback one, else ``""``
    (a path alone): anywhere else the ``Host`` header cannot be trusted to be ours."""
    if has_request_context() and LOOPBACK_HOST.fullmatch(request.host):
        return f"{request.scheme}://{request.host}"
    return ""


def _add_storefront_page(app: Flask) -> None:
    """``GET /`` and ``GET /reset-password``: the storefront page; its script and style."""
    app.add_url_rule("/", "storefront", _storefront_page)
    app.add_url_rule("/reset-password", "storefront_reset_password", _storefront_page)
    for name in ("storefront.js", "storefront.css"):
        app.add_url_rule(f"/{name}", name, _storefront_response, defaults={"name": name})


def _storefront_page() -> Response:
    """The page, whose script decides what to show (the reset form when the query has a
    token). Never cached: its address may hold a reset token."""
    response = _storefront_response("index.html")
    response.cache_control.no_store = True
    response.headers["Content-Security-Policy"] = STOREFRONT_POLICY
    # A token in the address must not travel on in a Referer.
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _storefront_response(name: str) -> Response:
    """One of the page's files, checked again on every use (an edited script is seen at
    the next reload), and never taken for another type."""
    response = send_from_directory(STOREFRONT_DIRECTORY, name)
    response.cache_control.no_cache = True
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _expose_worker_pid(app: Flask) -> None:
    """``X-Worker-Pid`` on every response: which process answered (for tests and demos
    of several workers; off by default)."""

    @app.after_request
    def add_worker_pid(response: Response) -> Response:
        response.headers["X-Worker-Pid"] = str(os.getpid())
        return response


def _ensure_generated_settings(app: Flask) -> None:
    """Fill in SECRET_KEY and the admin credentials when none are configured."""
    stored_path = Path(app.instance_path) / "generated-settings.json"
    missing = [
        key
        for key in ("SECRET_KEY", "EXAMPLE_ADMIN_EMAIL", "EXAMPLE_ADMIN_PASSWORD")
        if not app.config.get(key)
    ]
    if not missing:
        return
    stored, created = _load_or_create(stored_path)
    for key in missing:
        app.config[key] = stored[key]
    if created and "EXAMPLE_ADMIN_PASSWORD" in missing:  # once, not on every CLI call
        print(
            f" * Example admin: {app.config['EXAMPLE_ADMIN_EMAIL']} /"
            f" {app.config['EXAMPLE_ADMIN_PASSWORD']} (generated, kept in {stored_path})",
            file=sys.stderr,
            flush=True,
        )


def _load_or_create(path: Path) -> tuple[dict[str, str], bool]:
    """Read the generated settings, creating them once even with several workers: the
    file appears complete or not at all (a hard link cannot overwrite). Also says
    whether this call created them."""
    created = False
    if not path.exists():
        generated = {
            "SECRET_KEY": secrets.token_hex(32),
            "EXAMPLE_ADMIN_EMAIL": "admin@example.com",
            "EXAMPLE_ADMIN_PASSWORD": secrets.token_urlsafe(12),
        }
        draft = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        draft.write_text(json.dumps(generated), encoding="utf-8")
        os.chmod(draft, 0o600)
        try:
            os.link(draft, path)
            created = True
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return json.loads(path.read_text(encoding="utf-8")), created


def _configure_sqlite(app: Flask) -> None:
    """Several workers on one SQLite file: wait up to 30 s for a lock instead of failing."""
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        options = app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {})
        options.setdefault("connect_args", {}).setdefault("timeout", 30)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL lets readers run beside the one writer; SQLite enforces foreign keys only
    when asked."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _add_admin_login(app: Flask) -> None:
    """The host's own admin login and logout, throttled and answering JSON only."""
    app.add_url_rule("/admin/login", "admin_login", _admin_login, methods=["POST"])
    app.add_url_rule("/admin/logout", "admin_logout", _admin_logout, methods=["POST"])
    # The library's errors raised here (throttling, bad input): EverShop's envelope.
    app.register_error_handler(APIError, error_response)
    app.register_error_handler(HTTPException, _admin_http_error)


@same_origin_required
def _admin_login() -> Response:
    """``POST /admin/login`` with ``{"email", "password"}``: the admin cookie. Refused from
    another origin, as the storefront login is."""
    body = _json_object(current_app.config["EXAMPLE_ADMIN_LOGIN_MAX_CONTENT_LENGTH"])
    email, password = _text(body, "email"), _text(body, "password")
    # Recorded before the comparison, so that parallel guesses cannot all slip under
    # the limit; without an email it still counts against the client's address.
    attempt = customers.throttle.attempt(
        ADMIN_LOGIN_SCOPE,
        key=email.lower() if email is not None else None,
        client=request.remote_addr,
    )
    admin_email: str = current_app.config["EXAMPLE_ADMIN_EMAIL"]
    if not _is_admin(email, password, admin_email, current_app.config["EXAMPLE_ADMIN_PASSWORD"]):
        raise InvalidCredentials()
    attempt.succeeded()
    return customers.login_admin(_no_store_json({"data": {"admin": admin_email}}), admin_email)


@same_origin_required
def _admin_logout() -> Response:
    """``POST /admin/logout``: ends the request's admin session and clears its cookie.
    Refused from another origin: a form elsewhere must not log the admin out."""
    return customers.logout_admin(_no_store_json({"data": {}}))


@customer_required
def _whoami() -> Response:
    """``GET /whoami``: the calling customer's uuid and session id (a storefront's header
    needs no more)."""
    identity = get_current_identity()
    assert identity is not None  # customer_required saw to it
    return _no_store_json({"data": {"uuid": identity.customer_uuid, "sid": identity.sid}})


def _text(body: dict[str, Any], name: str) -> str | None:
    """The field ``name`` of ``body`` if it is text: a string of valid Unicode (JSON can
    carry a lone surrogate, which no encoding has). Anything else is no credential."""
    try:
        return string_value(body.get(name), name)
    except ValidationError:
        return None


def _is_admin(
    email: str | None, password: str | None, admin_email: str, admin_password: str
) -> bool:
    """Whether the credentials are the admin's, in constant time: both halves are always
    compared, so the answer's timing tells nothing about which one was wrong."""
    if email is None or password is None:
        return False
    email_matches = hmac.compare_digest(email.lower().encode(), admin_email.lower().encode())
    password_matches = hmac.compare_digest(password.encode(), admin_password.encode())
    return email_matches & password_matches


def _json_object(limit: int) -> dict[str, Any]:
    """The request's JSON object body, at most ``limit`` bytes."""
    # One byte over the limit is read, so that a body without Content-Length (chunked)
    # that is too large is refused instead of silently cut at the limit.
    request.max_content_length = limit + 1
    try:
        data = request.get_data(cache=False)
    except RequestEntityTooLarge:
        raise PayloadTooLarge() from None
    if len(data) > limit:
        raise PayloadTooLarge()
    if not request.is_json:
        raise UnsupportedMediaType()
    try:
        body = json.loads(data)
    except (ValueError, RecursionError):  # RecursionError: deeply nested arrays
        raise ValidationError("Request data must be valid JSON") from None
    if not isinstance(body, dict):
        raise ValidationError("Request data must be object")
    return body


def _no_store_json(body: dict[str, Any]) -> Response:
    """A JSON answer no cache keeps: it comes with (or ends) an admin session."""
    response = jsonify(body)
    response.cache_control.no_store = True
    return response


def _admin_http_error(error: HTTPException) -> Response | HTTPException:
    """Werkzeug's errors on the admin paths (a GET's 405, a crash's 500) as the JSON
    envelope too; elsewhere Flask's own page. The library's routes have handlers of
    their own, which come first."""
    if request.path not in ADMIN_PATHS:
        return error
    return error_response(from_http_exception(error))
