"""Password policy and password hashing.

The policy counts Unicode code points after NFKC normalisation, never trims or truncates,
and refuses common passwords and passwords equal to the email's local part or the full
name. Hashing is timed by counting calls to Werkzeug's hasher, never by a clock.
"""

from __future__ import annotations

import gzip
import unicodedata
from dataclasses import dataclass
from importlib import resources
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.security import check_password_hash, generate_password_hash
from werkzeug.test import TestResponse

from flask_evershop_customer import ConfigurationError
from flask_evershop_customer import passwords as passwords_module
from flask_evershop_customer.config import DEFAULTS
from flask_evershop_customer.passwords import PasswordHasher, common_passwords

from .conftest import PASSWORD, Api, AppFactory, customers, database_free, db, start_app, state_of

LIGATURE = "\ufb01"  # "ﬁ": one code point, two ("fi") after NFKC


@dataclass
class HasherSpy:
    """Counts the calls the extension makes to Werkzeug's hasher."""

    checks: int = 0
    hashes: int = 0

    def reset(self) -> None:
        self.checks = self.hashes = 0


@pytest.fixture
def hasher_spy(monkeypatch: pytest.MonkeyPatch) -> HasherSpy:
    spy = HasherSpy()
    real_check = check_password_hash
    real_generate = generate_password_hash

    def check(*args: Any, **kwargs: Any) -> bool:
        spy.checks += 1
        return real_check(*args, **kwargs)

    def generate(*args: Any, **kwargs: Any) -> str:
        spy.hashes += 1
        return real_generate(*args, **kwargs)

    monkeypatch.setattr(passwords_module, "check_password_hash", check)
    monkeypatch.setattr(passwords_module, "generate_password_hash", generate)
    return spy


def register(
    client: FlaskClient,
    password: str,
    email: str = "pat@example.com",
    full_name: str = "Pat Example",
) -> TestResponse:
    return client.post(
        "/api/customers", json={"email": email, "password": password, "full_name": full_name}
    )


def login(client: FlaskClient, email: str, password: str) -> TestResponse:
    return client.post("/api/customers/sessions", json={"email": email, "password": password})


def refused(response: TestResponse, message: str) -> None:
    assert response.status_code == 400, response.get_json()
    assert response.get_json() == {"error": {"status": 400, "message": message}}


def stored_hash(app: Flask, email: str) -> str:
    Customer = customers.models.Customer
    with app.app_context():
        stored = db.session.scalar(
            sa.select(Customer.password_hash).where(Customer.email_canonical == email)
        )
    assert stored is not None, email
    return stored


# -- policy: length -------------------------------------------------------------------

TOO_SHORT = "/password must NOT have fewer than 8 characters"
TOO_LONG = "/password must NOT have more than 128 characters"


ANY_COMPOSITION = [
    "qzvkwxjm",  # lower-case letters only
    "73918264",  # digits only
    "\U0001f40d" * 8,  # eight emoji: eight code points (32 UTF-8 bytes)
    "p\u00e4ss w\u00f6rd \u00e9t\u00e9",  # spaces and accents
    "\u5bc6\u7801\u662f\u5b89\u5168\u7684\u5417\u5462",  # CJK
    "ab\tcd\u00a0ef",  # a tab and a no-break space are just characters
]


def test_any_composition_is_accepted(client: FlaskClient) -> None:
    for number, password in enumerate(ANY_COMPOSITION):
        email = f"any{number}@example.com"
        assert register(client, password, email=email).status_code == 200, password
        assert login(client, email, password).status_code == 200, password


@database_free
def test_too_short_is_refused_and_says_so(client: FlaskClient) -> None:
    refused(register(client, "qzvkwxj"), TOO_SHORT)
    refused(register(client, ""), TOO_SHORT)


def test_length_is_counted_in_code_points_after_nfkc(client: FlaskClient) -> None:
    # Four code points as sent, eight after NFKC ("fifififi"): long enough.
    assert register(client, LIGATURE * 4).status_code == 200
    assert login(client, "pat@example.com", "fifififi").status_code == 200
    # 64 ligatures are 128 code points after NFKC: the maximum, accepted.
    assert register(client, LIGATURE * 64, email="max@example.com").status_code == 200
    # 65 ligatures are 65 code points as sent but 130 after NFKC: refused.
    refused(register(client, LIGATURE * 65, email="over@example.com"), TOO_LONG)


def test_the_maximum_is_128_code_points(client: FlaskClient) -> None:
    assert register(client, "k" * 127 + "z").status_code == 200
    refused(register(client, "k" * 128 + "z", email="b@example.com"), TOO_LONG)
    # Astral characters count once each, not by their UTF-8 or UTF-16 length.
    assert register(client, "\U0001f512" * 128, email="c@example.com").status_code == 200
    refused(register(client, "\U0001f512" * 129, email="d@example.com"), TOO_LONG)


def test_the_minimum_is_configurable(app_factory: AppFactory) -> None:
    client = app_factory(EVERSHOP_CUSTOMER_PASSWORD_MIN_LENGTH=12).test_client()
    refused(register(client, "qzvkwxjmbtr"), "/password must NOT have fewer than 12 characters")
    assert register(client, "qzvkwxjmbtrh").status_code == 200


def test_a_password_is_never_trimmed(client: FlaskClient) -> None:
    # Seven letters and a space: trimming would make it too short.
    assert register(client, "qzvkwxj ").status_code == 200
    refused(login(client, "pat@example.com", "qzvkwxj"), "Invalid email or password")
    assert register(client, "  padded secret  ", email="pad@example.com").status_code == 200
    refused(login(client, "pad@example.com", "padded secret"), "Invalid email or password")
    assert login(client, "pad@example.com", "  padded secret  ").status_code == 200


def test_a_password_is_never_truncated(client: FlaskClient) -> None:
    password = "".join(chr(0x61 + (i * 7) % 26) for i in range(128))
    assert register(client, password).status_code == 200
    for prefix in (password[:127], password[:72], password[:64]):
        refused(login(client, "pat@example.com", prefix), "Invalid email or password")
    assert login(client, "pat@example.com", password).status_code == 200


# -- policy: blocklist and context words ----------------------------------------------

COMMON = "/password is too common; choose a less predictable password"
COMMON_PASSWORDS = [
    "password",
    "PASSWORD",
    "PassWord",
    "12345678",
    "iloveyou",
    "trustno1",
    "baseball",
    "Friend of Emily",  # an entry with spaces: one entry, not three words
    "\uff50\uff41\uff53\uff53\uff57\uff4f\uff52\uff44",  # full-width "password"
]


@database_free
def test_common_passwords_are_refused(client: FlaskClient) -> None:
    for password in COMMON_PASSWORDS:
        refused(register(client, password), COMMON)


def test_the_blocklist_is_bundled_named_and_large_enough() -> None:
    blocklist = common_passwords()
    assert len(blocklist) >= 3000
    # The list must hold at least 3,000 entries that the default policy would otherwise
    # accept (ASVS 5.0 6.2.4: "which match the application's password policy").
    assert (
        sum(
            1
            for entry in blocklist
            if len(entry) >= DEFAULTS["EVERSHOP_CUSTOMER_PASSWORD_MIN_LENGTH"]
        )
        >= 3000
    )
    assert all(entry == unicodedata.normalize("NFKC", entry).casefold() for entry in blocklist)
    package = resources.files("flask_evershop_customer")
    raw = gzip.decompress(package.joinpath("data/common-passwords.txt.gz").read_bytes())
    lines = raw.decode("utf-8").splitlines()
    assert len(lines) == len(blocklist)
    # Entries with spaces are whole entries, not several words.
    assert "friend of emily" in blocklist and "emily" in blocklist and "of" not in blocklist
    notice = package.joinpath("data/README.md").read_text("utf-8")
    assert "Royce Williams" in notice and "BSD" in notice and "Django" in notice


CONTEXT_WORDS = [
    (
        "jonathan.smith@example.com",
        "J. S.",
        "Jonathan.Smith",
        "/password must not be the same as the email address",
    ),
    (
        "Grace.Hopper.1906@example.com",
        "G. H.",
        "grace.hopper.1906",
        "/password must not be the same as the email address",
    ),
    (
        "mh@example.com",
        "Margaret Hamilton",
        "margaret hamilton",
        "/password must not be the same as the full name",
    ),
    (
        "ada@example.com",
        "Ada Lovelace-King",
        "ADA LOVELACE-KING",
        "/password must not be the same as the full name",
    ),
]


@database_free
def test_context_words_are_refused(client: FlaskClient) -> None:
    for email, full_name, password, message in CONTEXT_WORDS:
        refused(register(client, password, email=email, full_name=full_name), message)


def test_a_password_containing_the_name_is_fine(client: FlaskClient) -> None:
    response = register(client, "Margaret Hamilton wrote it", full_name="Margaret Hamilton")
    assert response.status_code == 200


def test_updates_follow_the_policy_and_change_nothing_when_refused(
    api: Api, client: FlaskClient
) -> None:
    data = api.register("eve.long@example.com", full_name="Eve Longname")
    token = api.login("eve.long@example.com")
    url = f"/api/customers/{data['uuid']}"

    def patch(body: dict[str, Any]) -> TestResponse:
        return client.patch(url, json=body, headers=token.headers)

    refused(patch({"password": "football"}), COMMON)
    refused(patch({"password": "short"}), TOO_SHORT)
    refused(patch({"password": "x" * 129}), TOO_LONG)
    refused(patch({"password": "eve.long"}), "/password must not be the same as the email address")
    refused(patch({"password": "eve longname"}), "/password must not be the same as the full name")
    # The new name and email of the same request are the ones compared.
    refused(
        patch({"full_name": "Brand New Name", "password": "brand new name"}),
        "/password must not be the same as the full name",
    )
    refused(
        patch({"email": "fresh.start@example.com", "password": "Fresh.Start"}),
        "/password must not be the same as the email address",
    )
    # Nothing above changed anything: the old password, name and email still stand.
    assert patch({}).get_json()["data"]["full_name"] == "Eve Longname"
    api.login("eve.long@example.com", PASSWORD)


@database_free
def test_nul_in_a_new_password_is_refused(client: FlaskClient) -> None:
    refused(register(client, "abcd\x00efgh"), "/password must not contain the NUL character")


def test_a_trailing_nul_does_not_log_in(
    api: Api, client: FlaskClient, hasher_spy: HasherSpy
) -> None:
    """HMAC pads short keys with zero bytes, so PBKDF2 and scrypt alone would accept
    ``password + "\\x00"`` for ``password``: the exact password is required."""
    api.register("nul@example.com")
    hasher_spy.reset()
    for suffix in ("\x00", "\x00\x00\x00"):
        refused(login(client, "nul@example.com", PASSWORD + suffix), "Invalid email or password")
    assert (hasher_spy.checks, hasher_spy.hashes) == (2, 0)
    assert login(client, "nul@example.com", PASSWORD).status_code == 200


# -- policy: NFKC equivalence ---------------------------------------------------------


EQUIVALENT_FORMS = [
    ("cr\u00e8me br\u00fbl\u00e9e", "cre\u0300me bru\u0302le\u0301e"),  # NFC vs NFD
    ("cre\u0300me bru\u0302le\u0301e", "cr\u00e8me br\u00fbl\u00e9e"),  # NFD vs NFC
    ("\uff53\uff45\uff43\uff52\uff45\uff54 \uff50\uff41\uff53\uff53", "secret pass"),
    ("secret pass", "\uff53\uff45\uff43\uff52\uff45\uff54 \uff50\uff41\uff53\uff53"),
    (LIGATURE + "sh and chips", "fish and chips"),
    ("\u2167 legions march", "VIII legions march"),  # Roman numeral eight
]


def test_equivalent_forms_log_in(app: Flask, client: FlaskClient) -> None:
    for number, (registered, typed) in enumerate(EQUIVALENT_FORMS):
        email = f"nfkc{number}@example.com"
        assert register(client, registered, email=email).status_code == 200, registered
        assert login(client, email, typed).status_code == 200, typed
        # The hash is taken over the NFKC form.
        stored = stored_hash(app, email)
        assert check_password_hash(stored, unicodedata.normalize("NFKC", registered))


def test_case_is_not_folded_at_login(client: FlaskClient) -> None:
    assert register(client, "Case Matters Here").status_code == 200
    refused(login(client, "pat@example.com", "case matters here"), "Invalid email or password")


def test_login_does_not_apply_the_policy(app_factory: AppFactory) -> None:
    """A password accepted when it was set keeps working under a stricter policy."""
    old = app_factory()
    assert register(old.test_client(), "qzvkwxjm").status_code == 200
    stricter = app_factory(EVERSHOP_CUSTOMER_PASSWORD_MIN_LENGTH=16)
    assert login(stricter.test_client(), "pat@example.com", "qzvkwxjm").status_code == 200


# -- hashing --------------------------------------------------------------------------


def test_the_default_method_is_scrypt_at_owasps_floor() -> None:
    assert DEFAULTS["EVERSHOP_CUSTOMER_PASSWORD_HASH_METHOD"] == "scrypt:32768:8:3"
    app = start_app()
    state = state_of(app)
    assert state.settings.password_hash_method == "scrypt:32768:8:3"
    hasher = state.hasher
    stored = hasher.hash("a real scrypt hash")  # the one costly hash of this file
    assert stored.startswith("scrypt:32768:8:3$")
    assert not hasher.needs_rehash(stored)


@pytest.mark.parametrize(
    "method",
    [
        "scrypt",  # Werkzeug's scrypt:32768:8:1: N*p = 2^15, below 2^15*3
        "scrypt:16384:8:1",
        "scrypt:16384:8:5",  # N*p = 81,920 < 98,304
        "scrypt:32768:4:3",  # r below 8
        "scrypt:32768:8:2",
        "pbkdf2:sha256:599999",
        "pbkdf2:sha256:1",
        "pbkdf2:sha512:209999",
        "pbkdf2:sha1:1000000",
        "pbkdf2:md5:1000000",
    ],
)
def test_weak_methods_refuse_to_start(method: Any) -> None:
    with pytest.raises(ConfigurationError, match="EVERSHOP_CUSTOMER_PASSWORD_HASH_METHOD"):
        start_app(EVERSHOP_CUSTOMER_PASSWORD_HASH_METHOD=method)
    app = start_app(
        EVERSHOP_CUSTOMER_PASSWORD_HASH_METHOD=method,
        EVERSHOP_CUSTOMER_ALLOW_WEAK_PASSWORD_HASH=True,
    )
    assert state_of(app).settings.password_hash_method.startswith(method.split(":")[0])


@pytest.mark.parametrize(
    "method",
    [
        "scrypt:32768:8:3",
        "scrypt:16384:8:6",  # N*p = 98,304: the floor exactly
        "scrypt:65536:8:2",
        "scrypt:131072:8:1",
        "pbkdf2:sha256:600000",
        "pbkdf2",  # Werkzeug's default, 1,000,000 iterations
        "pbkdf2:sha512:210000",
    ],
)
def test_methods_at_or_above_the_floor_start(method: Any) -> None:
    start_app(EVERSHOP_CUSTOMER_PASSWORD_HASH_METHOD=method)


@pytest.mark.parametrize("method", ["md5", "bcrypt", "argon2", "scrypt:1000:8:1", "plain"])
def test_unknown_methods_refuse_to_start_even_when_weak_is_allowed(method: Any) -> None:
    with pytest.raises(ConfigurationError, match="EVERSHOP_CUSTOMER_PASSWORD_HASH_METHOD"):
        start_app(
            EVERSHOP_CUSTOMER_PASSWORD_HASH_METHOD=method,
            EVERSHOP_CUSTOMER_ALLOW_WEAK_PASSWORD_HASH=True,
        )


def test_starting_the_app_computes_no_hash(hasher_spy: HasherSpy) -> None:
    """The dummy hash for unknown emails costs nothing at start-up (and nothing extra on
    the first unknown-email login, which would otherwise be slower than the others)."""
    start_app()
    assert hasher_spy.hashes == 0 and hasher_spy.checks == 0


def test_one_verification_per_login_attempt(
    api: Api, client: FlaskClient, hasher_spy: HasherSpy
) -> None:
    api.register("on@example.com")
    api.register("off@example.com", status=0)
    attempts = [
        ("nobody@example.com", PASSWORD, 400),  # unknown email: a dummy check
        ("nobody2@example.com", PASSWORD, 400),
        ("on@example.com", "wrong password!", 400),
        ("off@example.com", PASSWORD, 400),  # disabled: checked all the same
        ("off@example.com", "wrong password!", 400),
        ("on@example.com", PASSWORD, 200),
    ]
    for email, password, status in attempts:
        hasher_spy.reset()
        assert login(client, email, password).status_code == status
        assert hasher_spy.checks == 1, email
        assert hasher_spy.hashes == 0, email


@database_free
def test_unknown_emails_are_checked_against_a_hash_of_the_configured_method(app: Flask) -> None:
    hasher = state_of(app).hasher
    assert hasher.dummy_hash.startswith("pbkdf2:sha256:1$")
    assert hasher.verify(None, PASSWORD) is False
    scrypt = PasswordHasher("scrypt:32768:8:3")
    assert scrypt.dummy_hash.startswith("scrypt:32768:8:3$")


@database_free
def test_a_malformed_login_request_checks_no_password(
    client: FlaskClient, hasher_spy: HasherSpy
) -> None:
    for body in ({"email": "not-an-email", "password": PASSWORD}, {"email": "a@example.com"}):
        assert client.post("/api/customers/sessions", json=body).status_code == 400
    assert hasher_spy.checks == 0 and hasher_spy.hashes == 0


def test_an_old_hash_is_upgraded_on_successful_login_only(
    app_factory: AppFactory, hasher_spy: HasherSpy
) -> None:
    old = app_factory()  # pbkdf2:sha256:1, the suite's cheap method
    Api(old, old.test_client()).register("r@example.com")
    assert stored_hash(old, "r@example.com").startswith("pbkdf2:sha256:1$")

    new = app_factory(EVERSHOP_CUSTOMER_PASSWORD_HASH_METHOD="pbkdf2:sha256:2")
    client = new.test_client()
    hasher_spy.reset()
    refused(login(client, "r@example.com", "wrong password!"), "Invalid email or password")
    assert hasher_spy.hashes == 0
    assert stored_hash(new, "r@example.com").startswith("pbkdf2:sha256:1$")

    hasher_spy.reset()
    assert login(client, "r@example.com", PASSWORD).status_code == 200
    assert (hasher_spy.checks, hasher_spy.hashes) == (1, 1)
    upgraded = stored_hash(new, "r@example.com")
    assert upgraded.startswith("pbkdf2:sha256:2$")

    hasher_spy.reset()
    assert login(client, "r@example.com", PASSWORD).status_code == 200
    assert (hasher_spy.checks, hasher_spy.hashes) == (1, 0)
    assert stored_hash(new, "r@example.com") == upgraded


def test_a_disabled_customer_is_never_rehashed(
    app_factory: AppFactory, hasher_spy: HasherSpy
) -> None:
    old = app_factory()
    Api(old, old.test_client()).register("d@example.com", status=0)
    new = app_factory(EVERSHOP_CUSTOMER_PASSWORD_HASH_METHOD="pbkdf2:sha256:2")
    hasher_spy.reset()
    refused(login(new.test_client(), "d@example.com", PASSWORD), "Invalid email or password")
    assert hasher_spy.hashes == 0
    assert stored_hash(new, "d@example.com").startswith("pbkdf2:sha256:1$")


@pytest.mark.parametrize(
    "stored",
    ["$2a$10$" + "x" * 53, "argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA", "plain text"],
)
def test_a_hash_of_an_unknown_method_fails_closed(
    app: Flask, api: Api, client: FlaskClient, stored: str
) -> None:
    """A hash written by another system in a form nothing here checks (a malformed
    bcrypt hash, an Argon2 hash, no hash at all) never logs in and never 500s."""
    api.register("imported@example.com")
    Customer = customers.models.Customer
    with app.app_context():
        db.session.execute(
            sa.update(Customer)
            .where(Customer.email_canonical == "imported@example.com")
            .values(password_hash=stored)
        )
        db.session.commit()
    refused(login(client, "imported@example.com", PASSWORD), "Invalid email or password")


def test_every_hash_is_salted(api: Api, app: Flask) -> None:
    api.register("s1@example.com")
    api.register("s2@example.com")
    first, second = stored_hash(app, "s1@example.com"), stored_hash(app, "s2@example.com")
    assert first != second
    assert len(first.split("$")[1]) >= 16  # Werkzeug's salt: 16 characters, > 32 bits
