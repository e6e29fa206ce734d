"""Token hardening: one regression test per known attack on JWTs.

In the spirit of PyJWT's own advisory tests (and RFC 8725): the algorithm is pinned to
HS256, the key is ours alone, every claim is required, and a valid signature is not
enough: the session row behind ``sid`` must still be live. ``forge`` builds tokens with
the app's real key, so each negative test differs from a working token in one respect.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from typing import Any

import jwt
import pytest
from flask import Flask
from flask.testing import FlaskClient

from flask_evershop_customer import ConfigurationError
from flask_evershop_customer.tokens import AUDIENCE, ISSUER, LEEWAY_SECONDS

from .conftest import (
    OTHER_PASSWORD,
    PASSWORD,
    SECRET_KEY,
    Api,
    AppFactory,
    Login,
    database_free,
    start_app,
    state_of,
)

#: A public key as a server using RS256 would publish it: the classic key-confusion bait.
PUBLIC_KEY_PEM = (
    b"-----BEGIN PUBLIC KEY-----\n"
    b"MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAu1SU1LfVLPHCozMxH2Mo\n"
    b"-----END PUBLIC KEY-----\n"
)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segment(value: dict[str, Any]) -> str:
    return b64(json.dumps(value, separators=(",", ":")).encode())


def hand_made(
    header: dict[str, Any],
    claims: dict[str, Any],
    key: bytes | None = None,
    digest: str = "sha256",
) -> str:
    """A compact JWS built by hand, for what PyJWT itself refuses to write."""
    signing_input = f"{segment(header)}.{segment(claims)}"
    signature = b"" if key is None else hmac.new(key, signing_input.encode(), digest).digest()
    return f"{signing_input}.{b64(signature)}"


class Victim:
    """A customer with a live session, and a way to forge tokens with the app's key."""

    def __init__(
        self, app: Flask, client: FlaskClient, api: Api, email: str = "alice@example.com"
    ) -> None:
        self.app, self.client = app, client
        self.customer = api.register(email)
        self.login = api.login(email)
        self.url = f"/api/customers/{self.customer['uuid']}"

    @property
    def key(self) -> bytes:
        return state_of(self.app).settings.jwt_key

    def claims(self, **changes: Any) -> dict[str, Any]:
        now = int(time.time())
        claims = {
            "sub": self.customer["uuid"],
            "sid": self.login.sid,
            "iat": now,
            "exp": now + 3600,
            "iss": ISSUER,
            "aud": AUDIENCE,
        }
        claims.update(changes)
        return {name: value for name, value in claims.items() if value is not None}

    def forge(self, key: bytes | None = None, algorithm: str = "HS256", **changes: Any) -> str:
        return jwt.encode(self.claims(**changes), key or self.key, algorithm=algorithm)

    def status(self, token: str | None = None, **request: Any) -> int:
        """The status of a PATCH of the victim's record with ``token``."""
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        response = self.client.patch(self.url, json={}, headers=headers, **request)
        if response.status_code == 401:
            assert response.get_json()["error"]["status"] == 401
            assert response.mimetype == "application/json"
        return response.status_code


@pytest.fixture
def victim(app: Flask, client: FlaskClient, api: Api) -> Victim:
    return Victim(app, client, api)


def test_a_forged_token_with_the_real_key_and_all_claims_works(victim: Victim) -> None:
    """The control: every refusal below is about the one thing that differs."""
    assert victim.status(victim.login.token) == 200
    assert victim.status(victim.forge()) == 200
    assert (
        victim.status(hand_made({"alg": "HS256", "typ": "JWT"}, victim.claims(), victim.key)) == 200
    )


# -- the signature and its algorithm ----------------------------------------------------


@database_free
def test_alg_none_is_refused(victim: Victim) -> None:
    assert victim.status(jwt.encode(victim.claims(), None, algorithm="none")) == 401
    for alg in ("none", "None", "NONE", "nOnE"):
        assert victim.status(hand_made({"alg": alg, "typ": "JWT"}, victim.claims())) == 401
        # With a signature appended too (some libraries ignore it for "none").
        signed = hand_made({"alg": alg, "typ": "JWT"}, victim.claims(), key=victim.key)
        assert victim.status(signed) == 401, alg


@database_free
def test_another_hmac_algorithm_with_the_right_key_is_refused(victim: Victim) -> None:
    for alg, digest in (("HS384", "sha384"), ("HS512", "sha512")):
        header = {"alg": alg, "typ": "JWT"}
        token = hand_made(header, victim.claims(), key=victim.key, digest=digest)
        assert victim.status(token) == 401, alg


@database_free
def test_asymmetric_algorithm_names_are_refused(victim: Victim) -> None:
    """Key confusion: an 'RS256' token MAC'd with a public key, or with our own key."""
    for alg in ("RS256", "ES256", "PS256", "EdDSA"):
        for key in (PUBLIC_KEY_PEM, victim.key):
            assert victim.status(hand_made({"alg": alg}, victim.claims(), key=key)) == 401, alg


@database_free
def test_a_public_key_used_as_the_hmac_secret_is_refused(victim: Victim) -> None:
    token = hand_made({"alg": "HS256", "typ": "JWT"}, victim.claims(), key=PUBLIC_KEY_PEM)
    assert victim.status(token) == 401


@database_free
def test_a_token_signed_with_another_key_is_refused(victim: Victim) -> None:
    assert victim.status(victim.forge(key=secrets.token_bytes(32))) == 401


@database_free
def test_the_raw_secret_key_does_not_sign_tokens(victim: Victim) -> None:
    """The JWT key is derived from SECRET_KEY; SECRET_KEY itself is not the key."""
    assert victim.status(victim.forge(key=SECRET_KEY.encode())) == 401


@database_free
def test_the_admin_cookie_key_does_not_sign_tokens(victim: Victim) -> None:
    admin_key = state_of(victim.app).settings.admin_key
    assert admin_key != victim.key
    assert victim.status(victim.forge(key=admin_key)) == 401


@database_free
def test_a_token_from_an_app_with_another_secret_is_refused(
    app_factory: AppFactory, api: Api, victim: Victim
) -> None:
    other = app_factory(EVERSHOP_CUSTOMER_JWT_SECRET="o" * 32)
    other_key = state_of(other).settings.jwt_key
    assert victim.status(victim.forge(key=other_key)) == 401


KEY_HEADERS: list[dict[str, Any]] = [
    {"alg": "HS256", "jwk": {"kty": "oct", "k": b64(b"k" * 32)}},
    {"alg": "HS256", "jku": "https://attacker.example/jwks.json"},
    {"alg": "HS256", "x5u": "https://attacker.example/cert.pem"},
    {"alg": "HS256", "kid": "../../../../dev/null"},
]


@database_free
def test_key_material_named_in_the_header_is_ignored(victim: Victim) -> None:
    """The token cannot choose its own key (ASVS 9.1.3)."""
    for header in KEY_HEADERS:
        assert victim.status(hand_made(header, victim.claims(), key=b"k" * 32)) == 401, header
        assert victim.status(hand_made(header, victim.claims(), key=b"")) == 401, header


def test_a_tampered_payload_is_refused(api: Api, victim: Victim) -> None:
    bob = api.register("bob@example.com")
    header, _, signature = victim.login.token.split(".")
    swapped = f"{header}.{segment(victim.claims(sub=bob['uuid']))}.{signature}"
    assert victim.status(swapped) == 401


# -- the claims ---------------------------------------------------------------------------


@database_free
def test_each_missing_claim_is_refused(victim: Victim) -> None:
    for claim in ("sub", "sid", "iat", "exp", "iss", "aud"):
        missing: dict[str, Any] = {claim: None}
        assert victim.status(victim.forge(**missing)) == 401, claim


WRONG_CLAIMS: list[dict[str, Any]] = [
    {"iss": "someone-else"},
    {"aud": "another-service"},
    {"aud": ["another-service"]},
    {"iss": [ISSUER]},
    {"sub": 12345},
    {"sid": ["a", "b"]},
    {"sid": "not-a-session-id"},
    {"exp": "tomorrow"},
    {"iat": "now"},
    {"nbf": int(time.time()) + 3600},
    {"iat": int(time.time()) + 3600},
]


@database_free
def test_wrong_claim_values_are_refused(victim: Victim) -> None:
    for changes in WRONG_CLAIMS:
        claims = victim.claims(**changes)
        token = hand_made({"alg": "HS256", "typ": "JWT"}, claims, key=victim.key)
        assert victim.status(token) == 401, changes


@database_free
def test_an_expired_token_is_refused(victim: Victim) -> None:
    now = int(time.time())
    expired = victim.forge(iat=now - 7200, exp=now - LEEWAY_SECONDS - 5)
    assert victim.status(expired) == 401
    assert LEEWAY_SECONDS <= 10  # "a few seconds at most"


def test_a_token_is_verified_once_and_its_expiry_judged_on_every_use(
    alice: dict[str, Any],
    alice_login: Login,
    client: FlaskClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A client sends its token with every request: the signature is checked the first
    time; ``exp`` is checked every time, and the session row stays the authority."""
    decoded: list[str] = []
    real_decode = jwt.decode

    def counting_decode(token: str, *args: Any, **kwargs: Any) -> Any:
        decoded.append(token)
        return real_decode(token, *args, **kwargs)

    monkeypatch.setattr(jwt, "decode", counting_decode)
    url = f"/api/customers/{alice['uuid']}"
    for _ in range(3):
        assert client.patch(url, json={}, headers=alice_login.headers).status_code == 200
    assert decoded == [alice_login.token]

    exp = jwt.decode(alice_login.token, options={"verify_signature": False})["exp"]
    monkeypatch.setattr(time, "time", lambda: exp + LEEWAY_SECONDS + 1)
    response = client.patch(url, json={}, headers=alice_login.headers)
    assert response.status_code == 401
    assert response.get_json()["error"]["message"] == "Token has expired"


@database_free
def test_a_refused_token_is_never_remembered(
    victim: Victim, monkeypatch: pytest.MonkeyPatch
) -> None:
    decoded: list[str] = []
    real_decode = jwt.decode

    def counting_decode(token: str, *args: Any, **kwargs: Any) -> Any:
        decoded.append(token)
        return real_decode(token, *args, **kwargs)

    monkeypatch.setattr(jwt, "decode", counting_decode)
    forged = victim.forge(aud="someone-else")
    assert [victim.status(forged), victim.status(forged)] == [401, 401]
    assert decoded == [forged, forged]


def test_the_leeway_never_keeps_an_expired_session_alive(
    app: Flask, api: Api, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A token inside the JWT leeway passes PyJWT, but its session row has expired."""
    tokens = state_of(app).tokens
    clock = state_of(app).clock
    customer = api.register("leeway@example.com")
    clock.travel(-(tokens.lifetime + 2))
    login = api.login("leeway@example.com")
    clock.reset()
    tokens.verify(login.token)  # inside the leeway: the signature layer accepts it
    response = client.patch(f"/api/customers/{customer['uuid']}", json={}, headers=login.headers)
    assert response.status_code == 401


def test_a_sid_of_another_customer_is_refused(api: Api, victim: Victim) -> None:
    api.register("bob@example.com")
    bob = api.login("bob@example.com")
    assert victim.status(victim.forge(sid=bob.sid)) == 401
    # Bob's own token is fine, and so is Alice's.
    assert victim.status(victim.login.token) == 200
    response = victim.client.patch(victim.url, json={}, headers=bob.headers)
    assert response.status_code == 403


def test_an_unknown_sid_is_refused(victim: Victim) -> None:
    assert victim.status(victim.forge(sid="00000000-0000-4000-8000-000000000000")) == 401


# -- revocation ---------------------------------------------------------------------------


def test_a_token_after_logout_is_refused(victim: Victim) -> None:
    response = victim.client.delete(
        f"/api/customers/sessions/{victim.login.sid}", headers=victim.login.headers
    )
    assert response.status_code == 200
    assert victim.status(victim.login.token) == 401
    assert victim.status(victim.forge()) == 401


def test_a_token_after_a_password_change_is_refused(api: Api, victim: Victim) -> None:
    other = api.login("alice@example.com")
    response = victim.client.patch(
        victim.url,
        json={"password": OTHER_PASSWORD, "current_password": PASSWORD},
        headers=victim.login.headers,
    )
    assert response.status_code == 200
    assert victim.status(other.token) == 401
    # The session that made the change goes on.
    assert victim.status(victim.login.token) == 200


def test_an_admin_password_change_ends_every_session(api: Api, victim: Victim) -> None:
    response = victim.client.patch(
        victim.url, json={"password": OTHER_PASSWORD}, headers=api.admin_headers()
    )
    assert response.status_code == 200
    assert victim.status(victim.login.token) == 401


def test_a_token_after_disable_is_refused_and_stays_refused(api: Api, victim: Victim) -> None:
    admin = api.admin_headers()
    response = victim.client.patch(victim.url, json={"status": 0}, headers=admin)
    assert response.status_code == 200
    assert victim.status(victim.login.token) == 401
    # Enabling the customer again does not bring the old sessions back.
    assert victim.client.patch(victim.url, json={"status": 1}, headers=admin).status_code == 200
    assert victim.status(victim.login.token) == 401
    assert victim.status(api.login("alice@example.com").token) == 200


@pytest.mark.parametrize("by", ["admin", "self"])
def test_a_token_after_delete_is_refused(api: Api, victim: Victim, by: Any) -> None:
    other = api.login("alice@example.com")
    headers = api.admin_headers() if by == "admin" else victim.login.headers
    assert victim.client.delete(victim.url, headers=headers).status_code == 200
    # Another (dead) token cannot end that session; its own token "logs out" of its
    # ended session as a no-op success, and stays refused everywhere else.
    response = victim.client.delete(
        "/api/customers/sessions/" + victim.login.sid,
        headers={"Authorization": f"Bearer {other.token}"},
    )
    assert response.status_code == 401
    response = victim.client.delete(
        "/api/customers/sessions/" + victim.login.sid, headers=victim.login.headers
    )
    assert response.status_code == 200 and response.get_json() == {"data": {}}
    assert victim.status(victim.login.token) == 401
    assert victim.status(other.token) == 401
    # Someone registering the same email again gets a new uuid: the old token is dead.
    api.register("alice@example.com")
    assert victim.status(victim.login.token) == 401


# -- where a token may come from ----------------------------------------------------------


@database_free
def test_a_token_in_the_query_string_is_ignored(victim: Victim) -> None:
    for name in ("token", "access_token", "jwt", "authorization"):
        query = {name: victim.login.token}
        response = victim.client.patch(victim.url, json={}, query_string=query)
        assert response.status_code == 401, name


@database_free
def test_a_token_in_the_body_is_ignored(victim: Victim) -> None:
    response = victim.client.patch(victim.url, json={"token": victim.login.token})
    assert response.status_code == 401


def test_an_admin_cookie_value_is_not_a_token_and_a_token_is_not_an_admin_cookie(
    api: Api, victim: Victim
) -> None:
    admin_value = api.admin_headers()["Cookie"].partition("=")[2]
    assert victim.status(admin_value) == 401
    response = victim.client.patch(
        victim.url, json={"status": 0}, headers={"Cookie": f"asid={victim.login.token}"}
    )
    assert response.status_code == 401


JUNK_AUTHORIZATION = [
    "Bearer " + "A" * 10240,
    "A" * 10240,
    "Bearer " + ("eyJhbGciOiJIUzI1NiJ9." * 500),
    "Bearer " + "." * 10240,
    "Bearer " + b64(b"[" * 1500) + ".e30.sig",  # deeply nested header JSON
    "Bearer " + b64(b'{"alg":"HS256"') + ".e30.sig",
    "Bearer " + b64(b"\xff\xfe") + ".e30.sig",
    "Bearer a.b.c",
    "Bearer \u00e9\u00e8\u00ff.\u00e9.\u00e9",  # Latin-1 bytes in the header
    "Bearer",
    "Bearer ",
    "Basic YWxpY2U6c2VjcmV0",
    "Token " + "x" * 40,
    "Bearer a b c",
]


@database_free
def test_junk_authorization_headers_are_401_never_500(victim: Victim) -> None:
    for header in JUNK_AUTHORIZATION:
        response = victim.client.patch(victim.url, json={}, headers={"Authorization": header})
        assert response.status_code == 401, header[:40]
        assert response.get_json()["error"]["status"] == 401


@database_free
def test_a_junk_token_cookie_is_401(victim: Victim) -> None:
    for value in ("A" * 4000, "a.b.c", victim.login.token[:-4] + "AAAA"):
        response = victim.client.patch(victim.url, json={}, headers={"Cookie": f"token={value}"})
        assert response.status_code == 401


# -- the secret -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "config",
    [
        {"EVERSHOP_CUSTOMER_JWT_SECRET": "s" * 31},
        {"EVERSHOP_CUSTOMER_JWT_SECRET": b"s" * 31, "SECRET_KEY": "k" * 64},
        {"EVERSHOP_CUSTOMER_JWT_SECRET": "\u00e9" * 15},  # 30 bytes in UTF-8
        {"SECRET_KEY": "k" * 31},
        {"SECRET_KEY": "dev"},
        {"SECRET_KEY": ""},
        {},
    ],
)
def test_a_secret_shorter_than_32_bytes_refuses_to_start(config: Any) -> None:
    with pytest.raises(ConfigurationError, match="32 bytes|JWT_SECRET or SECRET_KEY"):
        start_app(**{"SECRET_KEY": None, **config})


def test_a_32_byte_secret_starts_and_keys_differ_per_secret() -> None:
    first = start_app(EVERSHOP_CUSTOMER_JWT_SECRET="s" * 32)
    second = start_app(EVERSHOP_CUSTOMER_JWT_SECRET=b"t" * 32)
    keys = {state_of(app).settings.jwt_key for app in (first, second)}
    assert len(keys) == 2
    assert all(len(key) == hashlib.sha256().digest_size for key in keys)


@database_free
def test_tokens_carry_nothing_personal(api: Api, victim: Victim) -> None:
    claims = jwt.decode(victim.login.token, options={"verify_signature": False})
    assert set(claims) == {"sub", "sid", "iat", "exp", "iss", "aud"}
    text = json.dumps(claims)
    assert "alice" not in text and PASSWORD not in text
    assert jwt.get_unverified_header(victim.login.token) == {"alg": "HS256", "typ": "JWT"}


def test_responses_carrying_a_token_or_personal_data_are_never_stored(
    api: Api, client: FlaskClient
) -> None:
    """RFC 8725 and OWASP's session cheat sheet: a token must not linger in a cache."""
    data = api.register("cache@example.com")
    login = client.post(
        "/api/customers/sessions", json={"email": "cache@example.com", "password": PASSWORD}
    )
    update = client.patch(f"/api/customers/{data['uuid']}", json={}, headers=api.admin_headers())
    created = client.post(
        "/api/customers",
        json={"email": "cache2@example.com", "password": PASSWORD, "full_name": "C"},
    )
    for response in (login, update, created):
        assert response.status_code == 200
        assert response.headers["Cache-Control"] == "no-store"
