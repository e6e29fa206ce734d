"""The pure layers, called directly (no app, no database, so each runs once): request
parsing, canonical emails, tokens, the admin cookie, the password and hash-method
policies, the clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from flask_evershop_customer.address_schemas import parse_address
from flask_evershop_customer.clock import Clock, utcnow
from flask_evershop_customer.errors import Unauthorized, UnsupportedMediaType, ValidationError
from flask_evershop_customer.passwords import (
    PasswordHasher,
    is_weak,
    normalize_hash_method,
    policy_violation,
)
from flask_evershop_customer.schemas import (
    CustomerChanges,
    bounded_text,
    canonical_email,
    parse_credentials,
    parse_customer_changes,
    parse_if_match,
    parse_json_body,
    parse_new_customer,
    parse_session_ids,
)
from flask_evershop_customer.tokens import AdminCookieSigner, TokenCodec

KEY = b"k" * 32
UUID = "0" * 32


@pytest.mark.parametrize(
    ("data", "mimetype", "error"),
    [
        (b'{"a": 1, "a": 2}', "application/json", ValidationError),
        (b"NaN", "application/json", ValidationError),
        (b"1" * 30, "application/json", ValidationError),
        (b"[" * 100_000, "application/json", ValidationError),
        (b"\xff", "application/json", ValidationError),
        (b"{}", "text/plain", UnsupportedMediaType),
    ],
)
def test_parse_json_body_refuses(data: Any, mimetype: Any, error: Any) -> None:
    with pytest.raises(error):
        parse_json_body(data, mimetype, None, None)


def test_parse_json_body_reads_empty_as_an_object_and_json_suffixes() -> None:
    assert parse_json_body(b"", "text/plain", None, None) == {}
    assert parse_json_body(b'{"a": 1}', "application/merge-patch+json", "utf-8", None) == {"a": 1}
    with pytest.raises(UnsupportedMediaType):
        parse_json_body(b"{}", "application/json", "latin-1", None)
    with pytest.raises(UnsupportedMediaType):
        parse_json_body(b"{}", "application/json", None, "gzip")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "Request data must be object"),
        ({}, "Request data must have required property 'email'"),
        ({"email": "a@b.co"}, "Request data must have required property 'password'"),
        ({"email": 1, "password": "x", "full_name": "A"}, "/email must be string"),
        ({"email": "nope", "password": "x", "full_name": "A"}, '/email must match format "email"'),
        (
            {"email": "a@b.co", "password": "x", "full_name": "A", "status": 2},
            "/status must be equal to one of the allowed values",
        ),
        (
            {"email": "a@b.co", "password": "x", "full_name": "A\x07"},
            "/full_name must not contain control characters",
        ),
    ],
)
def test_parse_new_customer_names_the_field(body: Any, message: Any) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_new_customer(body)
    assert caught.value.message == message


def test_parse_new_customer_keeps_the_password_as_sent() -> None:
    new = parse_new_customer(
        {"email": "Ann@Example.COM", "password": "\ufb01" * 4, "full_name": "Ann", "status": "0"}
    )
    assert (new.email, new.email_canonical, new.status) == ("Ann@Example.COM", "ann@example.com", 0)
    assert new.password == "\ufb01" * 4  # hashed in its NFKC form, "fifififi"


def test_parse_customer_changes_sets_only_what_was_named() -> None:
    assert parse_customer_changes({"unknown": 1}) == CustomerChanges()
    changes = parse_customer_changes({"full_name": "B", "status": 1})
    assert (changes.full_name, changes.status, changes.email, changes.password) == (
        "B",
        1,
        None,
        None,
    )


def test_parse_credentials_applies_no_policy() -> None:
    credentials = parse_credentials({"email": "A@b.co", "password": "x"})
    assert (credentials.email_canonical, credentials.password) == ("a@b.co", "x")


@pytest.mark.parametrize(
    ("header", "version"),
    [
        (None, None),
        ("*", None),
        (f'"{UUID}.3"', 3),
        (f'W/"{UUID}.3"', -1),
        (f'"{"1" * 32}.3"', -1),
        (f'"{UUID}.x"', -1),
        (f'"other", "{UUID}.7"', 7),
    ],
)
def test_parse_if_match(header: Any, version: Any) -> None:
    assert parse_if_match(header, UUID) == version


def test_parse_session_ids() -> None:
    assert parse_session_ids("a,b,,a") == ["a", "b"]
    assert parse_session_ids(",".join(str(n) for n in range(51))) == []


@pytest.mark.parametrize(
    ("email", "canonical"),
    [
        ("Zoe@Example.COM", "zoe@example.com"),
        ("\uff5a\uff4f\uff45@example.com", "zoe@example.com"),
        ("STRA\u1e9eE@x.de", "strasse@x.de"),
        ("z\u043ee@example.com", "z\u043ee@example.com"),
        ("not an email", None),
        ("a" * 250 + "@b.co", None),
    ],
)
def test_canonical_email(email: Any, canonical: Any) -> None:
    assert canonical_email(email) == canonical


def test_tokens_round_trip_and_refuse_tampering_and_other_keys() -> None:
    codec = TokenCodec(KEY, 60)
    now = utcnow()
    token = codec.issue(UUID, "sid", now)
    claims = codec.verify(token)
    assert (claims.customer_uuid, claims.sid) == (UUID, "sid")
    for bad in (token[:-2] + "xx", TokenCodec(b"o" * 32, 60).issue(UUID, "sid", now), "x" * 3000):
        with pytest.raises(Unauthorized):
            codec.verify(bad)
    expired = codec.issue(UUID, "sid", now - timedelta(seconds=3600))
    with pytest.raises(Unauthorized, match="expired"):
        codec.verify(expired)


def test_the_admin_cookie_signs_a_session_id() -> None:
    signer = AdminCookieSigner(KEY, 60)
    value = signer.sign("session-1")
    assert signer.unsign(value) == "session-1"
    for bad in (value + "x", AdminCookieSigner(b"o" * 32, 60).sign("session-1"), "x" * 3000):
        with pytest.raises(Unauthorized):
            signer.unsign(bad)


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short", "must NOT have fewer than 8 characters"),
        ("x" * 129, "must NOT have more than 128 characters"),
        ("a fine password\x00", "must not contain the NUL character"),
        ("password123", "is too common; choose a less predictable password"),
        ("ann.example", "must not be the same as the email address"),
        ("Ann Example Person", "must not be the same as the full name"),
        ("\ufb01" * 4, None),  # eight code points after NFKC
        ("a perfectly fine one", None),
    ],
)
def test_policy_violation(password: Any, reason: Any) -> None:
    found = policy_violation(
        password, min_length=8, email="ann.example@x.co", full_name="ann example person"
    )
    assert found == reason


@pytest.mark.parametrize(
    ("method", "normalized", "weak"),
    [
        ("scrypt", "scrypt:32768:8:1", True),
        ("scrypt:32768:8:3", "scrypt:32768:8:3", False),
        ("pbkdf2", None, None),  # Werkzeug's default iterations: normalized below
        ("pbkdf2:sha256:600000", "pbkdf2:sha256:600000", False),
        ("pbkdf2:sha256:1", "pbkdf2:sha256:1", True),
        ("scrypt:1000:8:1", None, None),
        ("md5", None, None),
    ],
)
def test_hash_methods(method: Any, normalized: Any, weak: Any) -> None:
    found = normalize_hash_method(method)
    if method == "pbkdf2":
        assert found is not None and found.startswith("pbkdf2:sha256:")
        return
    assert found == normalized
    if normalized is not None:
        assert is_weak(normalized) is weak


def test_the_hasher_counts_one_check_and_knows_when_to_rehash() -> None:
    hasher = PasswordHasher("pbkdf2:sha256:1")
    stored = hasher.hash("\ufb01" * 4)
    assert hasher.verify(stored, "fifififi")  # NFKC on both sides
    assert not hasher.verify(stored, "fifififi\x00")
    assert not hasher.verify(None, "anything")
    assert not hasher.verify("unknown$method$hash", "anything")
    assert not hasher.needs_rehash(stored)
    assert PasswordHasher("pbkdf2:sha256:2").needs_rehash(stored)


def test_the_clock_freezes_travels_and_resets() -> None:
    clock = Clock()
    frozen = clock.freeze(datetime(2030, 1, 1))
    assert clock() == frozen == datetime(2030, 1, 1)
    clock.travel(90)
    assert clock() == datetime(2030, 1, 1, 0, 1, 30)
    clock.reset()
    assert abs(clock() - utcnow()) < timedelta(seconds=5)


# -- text a person can see ----------------------------------------------------------------

ADDRESS = {
    "full_name": "Alice Example",
    "address_1": "1600 Amphitheatre Parkway",
    "postcode": "94043",
    "country": "US",
    "province": "US-CA",
}


def address_with(name: str) -> Callable[[str], object]:
    """A parser of ``ADDRESS`` with the field ``name`` set to the text it is given."""
    return lambda text: parse_address({**ADDRESS, name: text})


#: Every text field of a customer and of an address, with a parser that checks it alone.
TEXT_FIELDS: dict[str, Callable[[str], object]] = {
    "customer full_name": lambda text: parse_customer_changes({"full_name": text}),
    "new customer full_name": lambda text: parse_new_customer(
        {"email": "a@b.co", "password": "x", "full_name": text}
    ),
    **{
        f"address {name}": address_with(name)
        for name in ("full_name", "address_1", "address_2", "city", "postcode")
    },
}
#: Text that shows nothing: zero-width characters, Hangul fillers, other default-ignorable
#: code points, alone or with whitespace.
INVISIBLE_ONLY = [
    "\u200b",
    "\u3164",
    "\u115f",
    "\u1160",
    "\uffa0",
    "\u200d",
    "\u200c\u200d",
    "\u2060",
    "\ufeff",
    "\u00ad",
    "\u034f",
    "\ufe0f",
    "\U000e0041",
    " \u200b ",
    "\u3000\u3164",
]
#: Characters that control rather than show: controls, line and paragraph separators,
#: bidirectional controls (``U+202E`` shows ``gpj.exe`` as ``exe.jpg``).
CONTROLS = [
    "\x7f",
    "\x85",
    "\u2028",
    "\u2029",
    "\u061c",
    "\u200e",
    "\u200f",
    "\u202a",
    "\u202b",
    "\u202c",
    "\u202d",
    "\u202e",
    "\u2066",
    "\u2067",
    "\u2068",
    "\u2069",
]
#: Legitimate text with joiners among visible characters.
VISIBLE = [
    "\U0001f469\u200d\U0001f4bb Ann",  # woman technologist: a ZWJ emoji sequence
    "\u0915\u094d\u200d\u0937",  # Devanagari half form through ZWJ
    "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",  # Persian, with a ZWNJ
    "\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f",  # Scotland
    "Zo\u00eb \u540d\u524d",
]


@pytest.mark.parametrize("field", TEXT_FIELDS)
@pytest.mark.parametrize("text", INVISIBLE_ONLY)
def test_text_fields_must_show_something(field: str, text: str) -> None:
    with pytest.raises(ValidationError) as caught:
        TEXT_FIELDS[field](text)
    name = field.rpartition(" ")[2]
    assert caught.value.message == f"/{name} must contain visible characters"


@pytest.mark.parametrize("field", TEXT_FIELDS)
@pytest.mark.parametrize("control", CONTROLS)
@pytest.mark.parametrize("where", ["a{}", "{}b", "a{}b"])
def test_text_fields_hold_no_control_characters(field: str, control: str, where: str) -> None:
    """Among visible characters (alone, a separator is blank: an address's optional
    line is then null, a required one too short, as for a lone newline)."""
    with pytest.raises(ValidationError) as caught:
        TEXT_FIELDS[field](where.format(control))
    name = field.rpartition(" ")[2]
    assert caught.value.message == f"/{name} must not contain control characters"


@pytest.mark.parametrize("field", [f for f in TEXT_FIELDS if not f.endswith("postcode")])
@pytest.mark.parametrize("text", VISIBLE)
def test_joiners_among_visible_characters_are_text(field: str, text: str) -> None:
    TEXT_FIELDS[field](text)


def test_bounded_text_keeps_its_messages_and_returns_the_text() -> None:
    assert bounded_text("Ann\u200dB", "full_name", 10) == "Ann\u200dB"
    with pytest.raises(ValidationError, match="^/x must NOT have more than 2 characters$"):
        bounded_text("\u200b" * 3, "x", 2)
    with pytest.raises(ValidationError, match="^/x must not contain control characters$"):
        bounded_text("\u200b\n", "x", 2)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        # Each one's Unicode upper case is a real code: IT, ES, FI, US-SC, ES-SS, IT-FI.
        ({"country": "\u0131t", "province": None}, "/country must be an ISO 3166-1 alpha-2 code"),
        ({"country": "e\u017f", "province": None}, "/country must be an ISO 3166-1 alpha-2 code"),
        ({"country": "\ufb01", "province": None}, "/country must be an ISO 3166-1 alpha-2 code"),
        ({"province": "US-\u017fC"}, "/province must be an ISO 3166-2 subdivision code of US"),
        ({"province": "u\u017f-ca"}, "/province must be an ISO 3166-2 subdivision code of US"),
        (
            {"country": "ES", "province": "es-\u00df"},
            "/province must be an ISO 3166-2 subdivision code of ES",
        ),
        (
            {"country": "IT", "province": "IT-\ufb01"},
            "/province must be an ISO 3166-2 subdivision code of IT",
        ),
    ],
)
def test_codes_are_matched_in_ascii_only(change: dict[str, Any], message: str) -> None:
    """Unicode case mapping turns the dotless ``ı``, the long ``ſ``, ``ß`` and the ``ﬁ``
    ligature into ASCII letters: a code must be ASCII as sent, in either case."""
    with pytest.raises(ValidationError) as caught:
        parse_address({**ADDRESS, **change})
    assert caught.value.message == message


def test_codes_in_lower_case_ascii_are_upper_cased() -> None:
    fields = parse_address({**ADDRESS, "country": "es", "province": "es-ss"}).fields
    assert (fields.country, fields.province) == ("ES", "ES-SS")
