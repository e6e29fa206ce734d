"""Hostile input: every field is type-strict, the limits hold on every
database, and malformed bodies, numbers and ids get a 4xx in EverShop's envelope, never a
500. A failed request leaves the data as it was.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from .conftest import PASSWORD, Api, AppFactory, database_free, table_contents

NOT_STRINGS = [123, 1.5, 0, True, False, None, [], ["x"], {}, {"a": "b"}]


def envelope(response: TestResponse, status: int | None = None) -> str:
    """Assert a 4xx in the envelope (of ``status`` if given); return the message."""
    assert 400 <= response.status_code < 500, (response.status_code, response.get_data()[:200])
    if status is not None:
        assert response.status_code == status, response.get_json()
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"error"} and body["error"]["status"] == response.status_code
    message: str = body["error"]["message"]
    return message


def post_raw(
    client: FlaskClient, url: str, data: bytes, method: str = "post", **kwargs: Any
) -> TestResponse:
    response: TestResponse = getattr(client, method)(
        url, data=data, content_type="application/json", **kwargs
    )
    return response


def accounts(app: Flask) -> dict[str, list[dict[str, Any]]]:
    """The customers and their sessions (not the throttling records: a wrong password
    is still an attempt that counts)."""
    contents = table_contents(app)
    del contents["evershop_customer_login_failure"]
    return contents


class Target:
    """A registered, logged-in customer; the state of the database to compare with."""

    def __init__(self, app: Flask, client: FlaskClient, api: Api) -> None:
        self.app, self.client, self.api = app, client, api
        self.customer = api.register("target@example.com", full_name="Target Person")
        self.login = api.login("target@example.com")
        self.url = f"/api/customers/{self.customer['uuid']}"
        self.admin = api.admin_headers()
        self.before = accounts(app)

    def assert_unchanged(self) -> None:
        assert accounts(self.app) == self.before


@pytest.fixture
def target(app: Flask, client: FlaskClient, api: Api) -> Target:
    return Target(app, client, api)


VALID = {"email": "new@example.com", "password": PASSWORD, "full_name": "New Person"}


# -- types ------------------------------------------------------------------------------


def test_create_fields_are_type_strict(target: Target) -> None:
    for field in ("email", "password", "full_name"):
        for value in NOT_STRINGS:
            response = target.client.post("/api/customers", json={**VALID, field: value})
            assert envelope(response, 400) == f"/{field} must be string", (field, value)
    target.assert_unchanged()


def test_update_fields_are_type_strict(target: Target) -> None:
    for headers in (target.login.headers, target.admin):
        for field in ("email", "password", "full_name"):
            for value in NOT_STRINGS:
                response = target.client.patch(target.url, json={field: value}, headers=headers)
                assert envelope(response, 400) == f"/{field} must be string", (field, value)
    target.assert_unchanged()


def test_login_fields_are_type_strict(target: Target) -> None:
    for field in ("email", "password"):
        for value in NOT_STRINGS:
            body = {"email": "target@example.com", "password": PASSWORD, field: value}
            response = target.client.post("/api/customers/sessions", json=body)
            assert envelope(response, 400) == f"/{field} must be string", (field, value)
    target.assert_unchanged()


BAD_STATUSES = [True, False, None, 1.0, 0.0, [1], {"s": 1}, "true", " 1", "1 ", "01", "\u0661", 2]


def test_status_is_type_strict_and_true_is_not_a_status(target: Target) -> None:
    for value in BAD_STATUSES:
        create = target.client.post(
            "/api/customers", json={**VALID, "status": value}, headers=target.admin
        )
        envelope(create, 400)
        update = target.client.patch(target.url, json={"status": value}, headers=target.admin)
        assert envelope(update, 400).startswith("/status must be"), value
    target.assert_unchanged()


def test_a_body_that_is_not_an_object_is_400(target: Target) -> None:
    for body in (b"[]", b'"text"', b"1", b"null", b"true", b"[{}]"):
        for url, method, headers in (
            ("/api/customers", "post", {}),
            ("/api/customers/sessions", "post", {}),
            (target.url, "patch", target.login.headers),
        ):
            response = post_raw(target.client, url, body, method=method, headers=headers)
            assert envelope(response, 400) == "Request data must be object", (url, body)
    target.assert_unchanged()


# -- limits, on every database ----------------------------------------------------------


def test_the_limits_hold_and_round_trip_on_every_database(client: FlaskClient, api: Api) -> None:
    astral_name = "\U0001f600" * 255  # 255 code points, 1,020 UTF-8 bytes
    created = api.register("limits@example.com", full_name=astral_name, password="\U0001f511" * 128)
    assert created["full_name"] == astral_name
    api.login("limits@example.com", "\U0001f511" * 128)

    local, domain = "a" * 64, ".".join(["b" * 63, "c" * 63, "d" * 57]) + ".com"
    longest = f"{local}@{domain}"
    assert len(longest) == 254
    assert api.register(longest)["email"] == longest
    api.login(longest.upper())

    international = "\u7528\u6237@\u4f8b\u5b50.\u5e7f\u544a"
    assert api.register(international)["email"] == international
    api.login(international)

    too_long = [
        ({**VALID, "full_name": astral_name + "x"}, "/full_name must NOT have more than 255"),
        ({**VALID, "email": "e" + longest}, "/email must NOT have more than 254 characters"),
        ({**VALID, "password": "\U0001f511" * 129}, "/password must NOT have more than 128"),
    ]
    for body, message in too_long:
        assert envelope(client.post("/api/customers", json=body), 400).startswith(message)


def test_sql_and_markup_metacharacters_are_plain_data(client: FlaskClient, api: Api) -> None:
    """Every query is parameterised: quotes, comments and wildcards are just characters."""
    name = 'Robert\'); DROP TABLE evershop_customer;-- %_\\ <script>alert(1)</script> "x"'
    created = api.register("o'brien+%_@example.com", full_name=name)
    assert created["full_name"] == name and created["email"] == "o'brien+%_@example.com"
    api.login("O'BRIEN+%_@example.com")
    # A LIKE-style wildcard matches nobody.
    response = client.post(
        "/api/customers/sessions", json={"email": "%@example.com", "password": PASSWORD}
    )
    assert envelope(response, 400) == "Invalid email or password"


def test_the_limits_hold_on_update(target: Target) -> None:
    for body in (
        {"full_name": "n" * 256},
        {"full_name": ""},
        {"email": "e" * 250 + "@x.io"},
        {"password": "p" * 129},
    ):
        envelope(target.client.patch(target.url, json=body, headers=target.login.headers), 400)
    target.assert_unchanged()


# -- hostile characters -----------------------------------------------------------------


def test_nul_is_refused_in_every_field(target: Target) -> None:
    bodies = [
        {**VALID, "email": "new\x00@example.com"},
        {**VALID, "full_name": "New\x00Person"},
        {**VALID, "password": PASSWORD + "\x00"},
    ]
    for body in bodies:
        envelope(target.client.post("/api/customers", json=body), 400)
        changes = {key: value for key, value in body.items() if "\x00" in value}
        response = target.client.patch(target.url, json=changes, headers=target.login.headers)
        envelope(response, 400)
    for body in (
        {"email": "target\x00@example.com", "password": PASSWORD},
        {"email": "target@example.com", "password": PASSWORD + "\x00"},
    ):
        envelope(target.client.post("/api/customers/sessions", json=body), 400)
    target.assert_unchanged()


LONE_SURROGATES = [b"\\ud800", b"\\udfff", b"a\\udc00b", b"\\ud83d", b"\\ude00\\ud83d"]


def test_lone_surrogates_are_refused_in_every_field(target: Target) -> None:
    for surrogate in LONE_SURROGATES:
        for field in (b"email", b"password", b"full_name"):
            fields = {b"email": b"new@example.com", b"password": b"long enough", b"full_name": b"N"}
            fields[field] = surrogate + fields[field]
            body = b"{" + b",".join(b'"%s":"%s"' % item for item in fields.items()) + b"}"
            message = envelope(post_raw(target.client, "/api/customers", body), 400)
            assert message == f"/{field.decode()} must be valid Unicode text", body
            patch = b'{"%s":"%s"}' % (field, fields[field])
            response = post_raw(
                target.client, target.url, patch, method="patch", headers=target.login.headers
            )
            envelope(response, 400)
        for body in (
            b'{"email":"t%s@example.com","password":"x"}' % surrogate,
            b'{"email":"target@example.com","password":"%s"}' % surrogate,
        ):
            envelope(post_raw(target.client, "/api/customers/sessions", body), 400)
    target.assert_unchanged()


def test_an_escaped_surrogate_pair_is_a_real_character(client: FlaskClient) -> None:
    body = b'{"email":"pair@example.com","password":"long enough pw","full_name":"\\ud83d\\ude00"}'
    response = post_raw(client, "/api/customers", body)
    assert response.status_code == 200
    assert response.get_json()["data"]["full_name"] == "\U0001f600"


@pytest.mark.parametrize(
    "body",
    [
        b'{"full_name":"\xed\xa0\x80"}',  # a surrogate encoded in UTF-8 (CESU-8)
        b'{"full_name":"\xc0\xaf"}',  # an overlong encoding
        b'{"full_name":"\xff"}',
        b"\xef\xbb\xbf{}",  # a byte-order mark
        b'{"full_name":"a\x00b"}',  # a raw NUL inside a JSON string
        b'{"full_name":"a\nb"}',  # a raw newline inside a JSON string
    ],
)
def test_invalid_utf8_and_raw_control_bytes_are_400(target: Target, body: Any) -> None:
    message = envelope(post_raw(target.client, "/api/customers", body), 400)
    assert message == "Request data must be valid JSON"
    response = post_raw(
        target.client, target.url, body, method="patch", headers=target.login.headers
    )
    envelope(response, 400)
    target.assert_unchanged()


# -- hostile JSON -----------------------------------------------------------------------


HOSTILE_JSON = [
    b'{"email":"n@example.com","password":"long enough","full_name":"N","status":NaN}',
    b'{"email":"n@example.com","password":"long enough","full_name":"N","x":Infinity}',
    b'{"email":"n@example.com","password":"long enough","full_name":"N","x":-Infinity}',
    b'{"email":"n@example.com","password":"long enough","full_name":"N","status":1e999}',
    b'{"email":"n@example.com","password":"long enough","full_name":"N","x":-1e999}',
    b'{"email":"a@example.com","email":"n@example.com","password":"long enough","full_name":"N"}',
    b'{"email":"n@example.com","password":"long enough","full_name":"N","x":{"k":1,"k":2}}',
    b'{"email":"n@example.com","password":"long enough","full_name":"N","status":'
    + b"1" * 5000
    + b"}",
    b'{"email":"n@example.com","password":"long enough","full_name":"N","x":-' + b"9" * 5000 + b"}",
    b'{"email":"n@example.com","password":"long enough","full_name":"N","x":0.'
    + b"1" * 5000
    + b"}",
    b'{"email":"n@example.com","password":"long enough","full_name":"N","x":1e'
    + b"9" * 5000
    + b"}",
    b'{"email":"n@example.com","password":"long enough","full_name":"N","x":' + b"[" * 20000,
    b'{"email":' + b"[" * 20000 + b"]" * 20000 + b"}",
]


def test_hostile_json_is_400_everywhere(target: Target) -> None:
    for body in HOSTILE_JSON:
        for url, method, headers in (
            ("/api/customers", "post", {}),
            ("/api/customers/sessions", "post", {}),
            (target.url, "patch", target.login.headers),
            (target.url, "delete", target.login.headers),
            (f"/api/customers/sessions/{target.login.sid}", "post", target.login.headers),
            ("/api/customers/me/addresses", "post", target.login.headers),
            ("/api/customer/tokens", "post", {}),
            ("/api/customer/token/refresh", "post", {}),
        ):
            response = post_raw(target.client, url, body, method=method, headers=headers)
            message = envelope(response, 400)
            assert message == "Request data must be valid JSON", (url, body[:80])
    target.assert_unchanged()


@database_free
def test_deeply_nested_json_is_a_4xx(app_factory: AppFactory) -> None:
    deep_array = b"[" * 100_000
    deep_object = b'{"a":' * 100_000
    small = app_factory()
    for body in (deep_array, deep_object):
        envelope(post_raw(small.test_client(), "/api/customers", body), 413)
    roomy = app_factory(EVERSHOP_CUSTOMER_MAX_CONTENT_LENGTH=1_000_000)
    for body in (deep_array, deep_object, deep_array + b"]" * 100_000):
        message = envelope(post_raw(roomy.test_client(), "/api/customers", body), 400)
        assert message == "Request data must be valid JSON"


# -- size -------------------------------------------------------------------------------


def test_oversized_bodies_are_413_on_every_route(target: Target) -> None:
    big = b'{"full_name":"' + b"x" * 70_000 + b'"}'
    for url, method, headers in (
        ("/api/customers", "post", {}),
        ("/api/customers/sessions", "post", {}),
        (target.url, "patch", target.login.headers),
        (target.url, "delete", target.login.headers),
        (f"/api/customers/sessions/{target.login.sid}", "post", target.login.headers),
        (f"/api/customers/sessions/{target.login.sid}", "delete", target.login.headers),
    ):
        response = post_raw(target.client, url, big, method=method, headers=headers)
        assert envelope(response, 413) == "Request body is too large", url
    target.assert_unchanged()


def test_a_body_without_content_length_is_limited_too(target: Target) -> None:
    """A chunked upload has no Content-Length: the limit is enforced while reading."""
    big = b'{"full_name":"' + b"x" * 70_000 + b'"}'
    response = target.client.patch(
        target.url,
        input_stream=io.BytesIO(big),
        content_type="application/json",
        headers=target.login.headers,
        environ_overrides={"wsgi.input_terminated": True},
    )
    envelope(response, 413)
    target.assert_unchanged()


# -- ids --------------------------------------------------------------------------------


def digits_from(zero: int, also_hex: bool = False) -> dict[int, int]:
    """A translation table from ASCII digits (and a-f) to another script's."""
    table = {ord("0") + n: zero + n for n in range(10)}
    if also_hex:
        table.update({ord("a") + n: 0xFF41 + n for n in range(6)})  # full-width a-f
    return table


ARABIC_INDIC = digits_from(0x0660)
FULL_WIDTH = digits_from(0xFF10, also_hex=True)
DEVANAGARI = digits_from(0x0966)


def odd_ids(uuid: str) -> list[str]:
    return [
        "a" * 10_000,
        uuid.translate(ARABIC_INDIC),
        uuid.translate(FULL_WIDTH),
        uuid.translate(DEVANAGARI),
        "\u0660" * 32,
        "\u00b2" * 32,  # superscript two: str.isdigit() says yes
        uuid.upper(),
        uuid + "%0A",
        uuid + "%00",
        uuid[:-1],
        uuid + "0",
        "%ED%A0%80" * 4,  # a UTF-8 encoded surrogate in the path
        "..%2F..%2Fetc%2Fpasswd",
        "x%2Fy%0A",  # a newline below the prefix: still the JSON 404
        "-1",
        "0",
        "1e3",
    ]


def test_odd_customer_ids_are_404(target: Target) -> None:
    kwargs: dict[str, Any]
    for odd in odd_ids(target.customer["uuid"]):
        for method, kwargs in (("patch", {"json": {}}), ("delete", {})):
            url = f"/api/customers/{odd}"
            response = getattr(target.client, method)(url, headers=target.admin, **kwargs)
            envelope(response, 404)
            # Without credentials: 401 wherever the path names a customer route.
            anonymous = getattr(target.client, method)(url, **kwargs)
            assert envelope(anonymous) and anonymous.status_code in (401, 404)
    target.assert_unchanged()


def test_odd_session_ids_are_404(target: Target) -> None:
    sid = target.login.sid
    odd = [
        *odd_ids(sid.replace("-", "")),
        sid.translate(ARABIC_INDIC),
        ",".join([sid] * 10) + "," + "x" * 10_000,
        ",".join(["00000000-0000-4000-8000-000000000000"] * 500),
        ",,,,," * 2000,
    ]
    for ids in odd:
        for method in ("delete", "post"):
            response = getattr(target.client, method)(
                f"/api/customers/sessions/{ids}", headers=target.login.headers
            )
            envelope(response, 404)
    target.assert_unchanged()


def test_non_ascii_digits_in_if_match_match_nothing(target: Target) -> None:
    uuid = target.customer["uuid"]
    for tag in (f'"{uuid}.\u0661"', f'"{uuid}.\u00b9"', f'"{uuid}.\uff11"'):
        response = target.client.patch(
            target.url,
            json={"full_name": "Changed"},
            headers={**target.login.headers, "If-Match": tag},
        )
        envelope(response, 412)
    target.assert_unchanged()


def test_a_huge_if_match_header_is_412(target: Target) -> None:
    response = target.client.patch(
        target.url,
        json={"full_name": "Changed"},
        headers={**target.login.headers, "If-Match": ", ".join(['"x.1"'] * 2000)},
    )
    envelope(response, 412)
    target.assert_unchanged()
