"""Configuration: every key under its name with its default, validated once."""

from __future__ import annotations

from typing import Any

import pytest

from flask_evershop_customer import ConfigurationError
from flask_evershop_customer.config import DEFAULTS

from .conftest import start_app, state_of

CONTRACT = {
    "EVERSHOP_CUSTOMER_URL_PREFIX": "/api",
    "EVERSHOP_CUSTOMER_ALLOW_REGISTRATION": True,
    "EVERSHOP_CUSTOMER_PASSWORD_HASH_METHOD": "scrypt:32768:8:3",
    "EVERSHOP_CUSTOMER_ALLOW_WEAK_PASSWORD_HASH": False,
    "EVERSHOP_CUSTOMER_PASSWORD_MIN_LENGTH": 8,
    "EVERSHOP_CUSTOMER_TOKEN_LIFETIME": 172800,
    "EVERSHOP_CUSTOMER_JWT_SECRET": None,
    "EVERSHOP_CUSTOMER_TOKEN_COOKIE_NAME": "token",
    "EVERSHOP_CUSTOMER_ADMIN_COOKIE_NAME": "asid",
    "EVERSHOP_CUSTOMER_MAX_CONTENT_LENGTH": 65536,
    "EVERSHOP_CUSTOMER_LOGIN_MAX_FAILURES": 5,
    "EVERSHOP_CUSTOMER_LOGIN_MAX_FAILURES_PER_IP": 100,
    "EVERSHOP_CUSTOMER_LOGIN_FAILURE_WINDOW": 900,
}


def test_every_contract_key_has_its_default() -> None:
    for key, value in CONTRACT.items():
        assert DEFAULTS[key] == value, key
    app = start_app()
    for key, value in CONTRACT.items():
        assert app.config[key] == value, key


def test_the_admin_cookie_lifetime_defaults_to_a_day() -> None:
    assert start_app().config["EVERSHOP_CUSTOMER_ADMIN_COOKIE_LIFETIME"] == 86400


def test_host_values_are_kept() -> None:
    app = start_app(EVERSHOP_CUSTOMER_TOKEN_LIFETIME=3600, EVERSHOP_CUSTOMER_PASSWORD_MIN_LENGTH=12)
    settings = state_of(app).settings
    assert settings.token_lifetime == 3600
    assert settings.password_min_length == 12


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("EVERSHOP_CUSTOMER_URL_PREFIX", "api"),
        ("EVERSHOP_CUSTOMER_URL_PREFIX", "/api/"),
        ("EVERSHOP_CUSTOMER_URL_PREFIX", None),
        ("EVERSHOP_CUSTOMER_ALLOW_REGISTRATION", "yes"),
        ("EVERSHOP_CUSTOMER_ALLOW_WEAK_PASSWORD_HASH", 1),
        ("EVERSHOP_CUSTOMER_PASSWORD_HASH_METHOD", "md5"),
        ("EVERSHOP_CUSTOMER_PASSWORD_HASH_METHOD", "scrypt:1000:8"),
        ("EVERSHOP_CUSTOMER_PASSWORD_HASH_METHOD", "pbkdf2:nope:600000"),
        ("EVERSHOP_CUSTOMER_PASSWORD_HASH_METHOD", "pbkdf2:sha256:1000"),
        ("EVERSHOP_CUSTOMER_PASSWORD_MIN_LENGTH", 0),
        ("EVERSHOP_CUSTOMER_PASSWORD_MIN_LENGTH", 129),
        ("EVERSHOP_CUSTOMER_PASSWORD_MIN_LENGTH", "8"),
        ("EVERSHOP_CUSTOMER_TOKEN_LIFETIME", 0),
        ("EVERSHOP_CUSTOMER_TOKEN_LIFETIME", True),
        ("EVERSHOP_CUSTOMER_JWT_SECRET", "short"),
        ("EVERSHOP_CUSTOMER_JWT_SECRET", 12345),
        ("EVERSHOP_CUSTOMER_TOKEN_COOKIE_NAME", ""),
        ("EVERSHOP_CUSTOMER_ADMIN_COOKIE_NAME", 5),
        ("EVERSHOP_CUSTOMER_ADMIN_COOKIE_LIFETIME", -1),
        ("EVERSHOP_CUSTOMER_COOKIE_SECURE", "no"),
        ("EVERSHOP_CUSTOMER_MAX_CONTENT_LENGTH", 10),
        ("EVERSHOP_CUSTOMER_LOGIN_MAX_FAILURES", -1),
        ("EVERSHOP_CUSTOMER_LOGIN_MAX_FAILURES_PER_IP", 1.5),
        ("EVERSHOP_CUSTOMER_LOGIN_FAILURE_WINDOW", 0),
    ],
)
def test_bad_values_fail_at_start_naming_the_key(key: Any, value: Any) -> None:
    with pytest.raises(ConfigurationError, match=key):
        start_app(**{key: value})


def test_no_secret_at_all_refuses_to_start() -> None:
    with pytest.raises(ConfigurationError, match="EVERSHOP_CUSTOMER_JWT_SECRET or SECRET_KEY"):
        start_app(SECRET_KEY=None)


def test_a_short_secret_key_refuses_to_start() -> None:
    with pytest.raises(ConfigurationError, match="SECRET_KEY must be at least 32 bytes"):
        start_app(SECRET_KEY="dev")


def test_a_jwt_secret_replaces_the_secret_key() -> None:
    app = start_app(SECRET_KEY="dev", EVERSHOP_CUSTOMER_JWT_SECRET="j" * 32)
    assert state_of(app).settings.jwt_key


def test_throttling_keys_accept_zero_to_turn_it_off() -> None:
    app = start_app(
        EVERSHOP_CUSTOMER_LOGIN_MAX_FAILURES=0, EVERSHOP_CUSTOMER_LOGIN_MAX_FAILURES_PER_IP=0
    )
    settings = state_of(app).settings
    assert settings.login_max_failures == 0 and settings.login_max_failures_per_ip == 0


def test_the_weak_hash_switch_allows_a_cheap_method() -> None:
    app = start_app(
        EVERSHOP_CUSTOMER_PASSWORD_HASH_METHOD="pbkdf2:sha256:1",
        EVERSHOP_CUSTOMER_ALLOW_WEAK_PASSWORD_HASH=True,
    )
    assert state_of(app).settings.password_hash_method == "pbkdf2:sha256:1"


@pytest.mark.parametrize(
    ("method", "normalized"),
    [
        ("scrypt:32768:8:3", "scrypt:32768:8:3"),
        ("scrypt:65536:8:2", "scrypt:65536:8:2"),
        ("pbkdf2:sha256:600000", "pbkdf2:sha256:600000"),
        ("pbkdf2:sha512:210000", "pbkdf2:sha512:210000"),
    ],
)
def test_methods_at_the_floor_are_accepted(method: Any, normalized: Any) -> None:
    app = start_app(EVERSHOP_CUSTOMER_PASSWORD_HASH_METHOD=method)
    assert state_of(app).settings.password_hash_method == normalized


def test_secure_cookies_by_default_outside_debug_and_testing() -> None:
    assert state_of(start_app()).settings.cookie_secure is True
    assert state_of(start_app(TESTING=True)).settings.cookie_secure is False
    forced = start_app(TESTING=True, EVERSHOP_CUSTOMER_COOKIE_SECURE=True)
    assert state_of(forced).settings.cookie_secure is True


def test_a_misspelt_key_of_our_prefix_is_refused_naming_it() -> None:
    with pytest.raises(ConfigurationError) as refused:
        start_app(EVERSHOP_CUSTOMER_ALLOW_REGISTRATON=False)
    assert str(refused.value) == (
        "EVERSHOP_CUSTOMER_ALLOW_REGISTRATON is not a setting of flask-evershop-customer;"
        " did you mean EVERSHOP_CUSTOMER_ALLOW_REGISTRATION?"
    )
    with pytest.raises(ConfigurationError, match="EVERSHOP_CUSTOMER_NOTHING_LIKE_IT is not"):
        start_app(EVERSHOP_CUSTOMER_NOTHING_LIKE_IT=1)


@pytest.mark.parametrize("name", ["my token", "tok;en", "tök", "", "a=b", "x\r\n"])
@pytest.mark.parametrize(
    "key", ["EVERSHOP_CUSTOMER_TOKEN_COOKIE_NAME", "EVERSHOP_CUSTOMER_ADMIN_COOKIE_NAME"]
)
def test_a_cookie_name_that_is_not_a_token_is_refused(key: str, name: str) -> None:
    with pytest.raises(ConfigurationError, match=key):
        start_app(**{key: name})


def test_host_prefixed_cookie_names_are_accepted() -> None:
    app = start_app(
        EVERSHOP_CUSTOMER_TOKEN_COOKIE_NAME="__Host-token",
        EVERSHOP_CUSTOMER_ADMIN_COOKIE_NAME="__Host-asid",
    )
    assert state_of(app).settings.token_cookie_name == "__Host-token"


def test_settings_are_read_once_at_set_up() -> None:
    """Changing ``app.config`` after ``init_app`` changes nothing (as the manual says)."""
    app = start_app(TESTING=True)
    app.config["EVERSHOP_CUSTOMER_ALLOW_REGISTRATION"] = False
    app.config["EVERSHOP_CUSTOMER_PASSWORD_MIN_LENGTH"] = 30
    settings = state_of(app).settings
    assert settings.allow_registration is True and settings.password_min_length == 8
