"""Configuration: every default in one place, validated once into a frozen object."""

from __future__ import annotations

import difflib
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import ConfigurationError
from .passwords import PASSWORD_MAX_LENGTH, is_weak, normalize_hash_method

#: Every configuration key the extension reads, with its default.
DEFAULTS: dict[str, Any] = {
    "EVERSHOP_CUSTOMER_URL_PREFIX": "/api",
    "EVERSHOP_CUSTOMER_ALLOW_REGISTRATION": True,
    "EVERSHOP_CUSTOMER_PASSWORD_HASH_METHOD": "scrypt:32768:8:3",
    "EVERSHOP_CUSTOMER_ALLOW_WEAK_PASSWORD_HASH": False,
    "EVERSHOP_CUSTOMER_PASSWORD_MIN_LENGTH": 8,
    "EVERSHOP_CUSTOMER_TOKEN_LIFETIME": 172800,
    "EVERSHOP_CUSTOMER_JWT_SECRET": None,
    "EVERSHOP_CUSTOMER_TOKEN_COOKIE_NAME": "token",
    "EVERSHOP_CUSTOMER_ADMIN_COOKIE_NAME": "asid",
    "EVERSHOP_CUSTOMER_ADMIN_COOKIE_LIFETIME": 86400,
    "EVERSHOP_CUSTOMER_RESET_TOKEN_LIFETIME": 3600,
    "EVERSHOP_CUSTOMER_COOKIE_SECURE": None,
    "EVERSHOP_CUSTOMER_MAX_CONTENT_LENGTH": 65536,
    "EVERSHOP_CUSTOMER_LOGIN_MAX_FAILURES": 5,
    "EVERSHOP_CUSTOMER_LOGIN_MAX_FAILURES_PER_IP": 100,
    "EVERSHOP_CUSTOMER_LOGIN_FAILURE_WINDOW": 900,
    "EVERSHOP_CUSTOMER_REGISTRATIONS_PER_IP": 20,
    "EVERSHOP_CUSTOMER_REAUTH_FOR_EMAIL_CHANGE": True,
    "EVERSHOP_CUSTOMER_ACCESS_TOKEN_LIFETIME": 1800,
    "EVERSHOP_CUSTOMER_REFRESH_TOKEN_LIFETIME": 108000,
    "EVERSHOP_CUSTOMER_REFRESH_TOKEN_ROTATION": True,
    "EVERSHOP_CUSTOMER_CHECK_SESSION_EACH_REQUEST": True,
    "EVERSHOP_CUSTOMER_STOREFRONT_ROUTES": False,
    "EVERSHOP_CUSTOMER_MAX_ADDRESSES": 50,
}

MIN_SECRET_BYTES = 32


@dataclass(frozen=True)
class Settings:
    """The validated configuration of one app. Built by :func:`load_settings`."""

    url_prefix: str
    allow_registration: bool
    password_hash_method: str
    password_min_length: int
    token_lifetime: int
    jwt_key: bytes
    #: Keys the digests of refresh tokens.
    refresh_key: bytes
    admin_key: bytes
    fingerprint_key: bytes
    token_cookie_name: str
    admin_cookie_name: str
    admin_cookie_lifetime: int
    reset_token_lifetime: int
    cookie_secure: bool
    max_content_length: int
    login_max_failures: int
    login_max_failures_per_ip: int
    login_failure_window: int
    registrations_per_ip: int
    #: Whether a customer's own email change needs ``current_password`` (a password
    #: change always does).
    reauth_for_email_change: bool
    #: Lifetime of the access tokens of ``POST /customer/tokens`` and of refreshes.
    access_token_lifetime: int
    #: Lifetime of a token session (``POST /customer/tokens``) and its refresh tokens.
    refresh_token_lifetime: int
    #: Whether every refresh spends its refresh token and answers a new one.
    refresh_token_rotation: bool
    #: False: a short-lived access token is trusted on its signature alone (no query).
    check_session_each_request: bool
    #: Whether ``POST /customer/login`` and ``GET|POST /customer/logout`` are served.
    storefront_routes: bool
    #: Most addresses one customer may have.
    max_addresses: int


def load_settings(config: Mapping[str, Any], *, debug: bool, testing: bool) -> Settings:
    """Validate the ``EVERSHOP_CUSTOMER_*`` keys of ``config`` (defaults already set).

    Raises :class:`ConfigurationError` naming the first bad key, also for a key of this
    prefix that the extension does not know (a misspelling would otherwise be ignored).
    Read once: changing ``app.config`` afterwards changes nothing.
    """
    _refuse_unknown_keys(config)
    prefix = _string(config, "EVERSHOP_CUSTOMER_URL_PREFIX", allow_empty=True)
    if prefix and (not prefix.startswith("/") or prefix.endswith("/")):
        raise ConfigurationError(
            "EVERSHOP_CUSTOMER_URL_PREFIX must start with '/' and not end with '/'"
            f" (or be empty), got {prefix!r}"
        )
    secure = config["EVERSHOP_CUSTOMER_COOKIE_SECURE"]
    if secure is None:
        secure = not (debug or testing)
    elif not isinstance(secure, bool):
        raise ConfigurationError(
            f"EVERSHOP_CUSTOMER_COOKIE_SECURE must be True, False or None, got {secure!r}"
        )
    secret = _secret(config)
    access_lifetime = _int(config, "EVERSHOP_CUSTOMER_ACCESS_TOKEN_LIFETIME", 60)
    refresh_lifetime = _int(config, "EVERSHOP_CUSTOMER_REFRESH_TOKEN_LIFETIME", 60)
    if access_lifetime > refresh_lifetime:
        raise ConfigurationError(
            "EVERSHOP_CUSTOMER_ACCESS_TOKEN_LIFETIME must not exceed"
            f" EVERSHOP_CUSTOMER_REFRESH_TOKEN_LIFETIME, got {access_lifetime} > {refresh_lifetime}"
        )
    return Settings(
        url_prefix=prefix,
        allow_registration=_bool(config, "EVERSHOP_CUSTOMER_ALLOW_REGISTRATION"),
        password_hash_method=_hash_method(config),
        password_min_length=_int(
            config, "EVERSHOP_CUSTOMER_PASSWORD_MIN_LENGTH", 1, PASSWORD_MAX_LENGTH
        ),
        token_lifetime=_int(config, "EVERSHOP_CUSTOMER_TOKEN_LIFETIME", 60),
        jwt_key=_derive(secret, b"jwt"),
        refresh_key=_derive(secret, b"refresh-token"),
        admin_key=_derive(secret, b"admin-cookie"),
        fingerprint_key=_derive(secret, b"fingerprint"),
        token_cookie_name=_cookie_name(config, "EVERSHOP_CUSTOMER_TOKEN_COOKIE_NAME"),
        admin_cookie_name=_cookie_name(config, "EVERSHOP_CUSTOMER_ADMIN_COOKIE_NAME"),
        admin_cookie_lifetime=_int(config, "EVERSHOP_CUSTOMER_ADMIN_COOKIE_LIFETIME", 60),
        reset_token_lifetime=_int(config, "EVERSHOP_CUSTOMER_RESET_TOKEN_LIFETIME", 60),
        cookie_secure=secure,
        max_content_length=_int(config, "EVERSHOP_CUSTOMER_MAX_CONTENT_LENGTH", 1024),
        login_max_failures=_int(config, "EVERSHOP_CUSTOMER_LOGIN_MAX_FAILURES", 0),
        login_max_failures_per_ip=_int(config, "EVERSHOP_CUSTOMER_LOGIN_MAX_FAILURES_PER_IP", 0),
        login_failure_window=_int(config, "EVERSHOP_CUSTOMER_LOGIN_FAILURE_WINDOW", 1),
        registrations_per_ip=_int(config, "EVERSHOP_CUSTOMER_REGISTRATIONS_PER_IP", 0),
        reauth_for_email_change=_bool(config, "EVERSHOP_CUSTOMER_REAUTH_FOR_EMAIL_CHANGE"),
        access_token_lifetime=access_lifetime,
        refresh_token_lifetime=refresh_lifetime,
        refresh_token_rotation=_bool(config, "EVERSHOP_CUSTOMER_REFRESH_TOKEN_ROTATION"),
        check_session_each_request=_bool(config, "EVERSHOP_CUSTOMER_CHECK_SESSION_EACH_REQUEST"),
        storefront_routes=_bool(config, "EVERSHOP_CUSTOMER_STOREFRONT_ROUTES"),
        max_addresses=_int(config, "EVERSHOP_CUSTOMER_MAX_ADDRESSES", 1, 10_000),
    )


KEY_PREFIX = "EVERSHOP_CUSTOMER_"
#: A cookie name is an RFC 6265 token: no spaces, separators or control characters.
_COOKIE_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def _refuse_unknown_keys(config: Mapping[str, Any]) -> None:
    for key in config:
        if isinstance(key, str) and key.startswith(KEY_PREFIX) and key not in DEFAULTS:
            close = difflib.get_close_matches(key, DEFAULTS, n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise ConfigurationError(f"{key} is not a setting of flask-evershop-customer{hint}")


def _cookie_name(config: Mapping[str, Any], key: str) -> str:
    name = _string(config, key)
    if not _COOKIE_NAME.fullmatch(name):
        raise ConfigurationError(
            f"{key} must be a cookie name (letters, digits and !#$%&'*+-.^_`|~), got {name!r}"
        )
    return name


def _bool(config: Mapping[str, Any], key: str) -> bool:
    value = config[key]
    if not isinstance(value, bool):
        raise ConfigurationError(f"{key} must be True or False, got {value!r}")
    return value


def _int(config: Mapping[str, Any], key: str, low: int, high: int | None = None) -> int:
    value = config[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigurationError(f"{key} must be an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ConfigurationError(f"{key} must be {bound}, got {value}")
    return value


def _string(config: Mapping[str, Any], key: str, *, allow_empty: bool = False) -> str:
    value = config[key]
    if not isinstance(value, str) or (not value and not allow_empty):
        raise ConfigurationError(f"{key} must be a non-empty string, got {value!r}")
    return value


def _secret(config: Mapping[str, Any]) -> bytes:
    key = "EVERSHOP_CUSTOMER_JWT_SECRET"
    value = config[key]
    if value is None:
        key, value = "SECRET_KEY", config.get("SECRET_KEY")
        if value is None:
            raise ConfigurationError(
                "Set EVERSHOP_CUSTOMER_JWT_SECRET or SECRET_KEY: the extension signs tokens"
                " and cookies with it"
            )
    if isinstance(value, str):
        value = value.encode()
    if not isinstance(value, bytes):
        raise ConfigurationError(f"{key} must be a string or bytes")
    if len(value) < MIN_SECRET_BYTES:
        raise ConfigurationError(
            f"{key} must be at least {MIN_SECRET_BYTES} bytes long to sign tokens"
            " (python -c 'import secrets; print(secrets.token_hex(32))' makes one)"
        )
    return value


def _derive(secret: bytes, purpose: bytes) -> bytes:
    """One independent key per purpose, so no two uses ever share a key."""
    return hmac.new(secret, b"flask-evershop-customer:" + purpose, hashlib.sha256).digest()


def _hash_method(config: Mapping[str, Any]) -> str:
    key = "EVERSHOP_CUSTOMER_PASSWORD_HASH_METHOD"
    raw = _string(config, key)
    method = normalize_hash_method(raw)
    if method is None:
        raise ConfigurationError(
            f"{key}: {raw!r} is not a Werkzeug password hash method"
            " ('scrypt:N:r:p' or 'pbkdf2:sha256:iterations')"
        )
    if not _bool(config, "EVERSHOP_CUSTOMER_ALLOW_WEAK_PASSWORD_HASH") and is_weak(method):
        raise ConfigurationError(
            f"{key}: {raw!r} is weaker than OWASP's floor (scrypt N*p >= 2^15*3 with r >= 8,"
            " or PBKDF2-HMAC-SHA256 >= 600,000 iterations); set"
            " EVERSHOP_CUSTOMER_ALLOW_WEAK_PASSWORD_HASH = True to allow it (tests only)"
        )
    return method
