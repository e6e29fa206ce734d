"""The security log: logger ``flask_evershop_customer.security``.

Every login success and failure, every logout and every refused request is one line
``event key=value ...``, naming the customer by uuid and the session by a digest of its
id. No password and no whole token is ever logged (by any logger), and values are
escaped so that a client cannot forge a line.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from flask_evershop_customer.logs import fingerprint, security_event

from .conftest import (
    OTHER_PASSWORD,
    PASSWORD,
    AdminLoaderFixture,
    Api,
    AppFactory,
    customers,
    database_free,
    db,
)

LOGGER = "flask_evershop_customer.security"
#: ``event key=<JSON> key=<JSON> ...`` on one line of printable ASCII.
LINE = re.compile(r'[a-z_]+( [a-z_]+=(null|-?\d+|"([^"\\]|\\.)*"))*')


#: ``security_log(event=None)``: the security records of a test, as dicts.
SecurityLog = Callable[..., list[dict[str, Any]]]


@pytest.fixture
def security_log(caplog: pytest.LogCaptureFixture) -> SecurityLog:
    """The security records of the test, as (event, fields) pairs."""
    caplog.set_level(logging.INFO, logger=LOGGER)

    def events(name: str | None = None) -> list[dict[str, Any]]:
        found = []
        for record in caplog.records:
            if record.name == LOGGER:
                assert LINE.fullmatch(record.getMessage()), record.getMessage()
                extra = vars(record)  # where ``extra=`` put the event and its fields
                if name is None or extra["security_event"] == name:
                    found.append({"event": extra["security_event"], **extra["security_fields"]})
        return found

    return events


def test_a_login_is_logged_with_the_uuid_and_a_hashed_sid(
    api: Api, client: FlaskClient, security_log: SecurityLog
) -> None:
    customer = api.register("alice@example.com")
    login = api.login("alice@example.com")
    [event] = security_log("login")
    assert event["customer"] == customer["uuid"]
    assert event["sid"] == fingerprint(login.sid) and event["sid"] != login.sid
    assert event["client"] == "127.0.0.1"


def test_failed_logins_are_logged_alike_but_usefully(
    api: Api, client: FlaskClient, security_log: SecurityLog
) -> None:
    alice = api.register("alice@example.com")
    api.register("off@example.com", status=0)
    for email, password in [
        ("nobody@example.com", PASSWORD),
        ("alice@example.com", "wrong password!"),
        ("ALICE@Example.com", "wrong password!"),
        ("off@example.com", PASSWORD),
    ]:
        client.post("/api/customers/sessions", json={"email": email, "password": password})
    unknown, wrong, wrong_again, disabled = security_log("login_failed")
    assert unknown["customer"] is None
    assert wrong["customer"] == alice["uuid"] == wrong_again["customer"]
    assert disabled["customer"] is not None
    # One account, one email digest, whatever the case it was typed in.
    assert wrong["email_hash"] == wrong_again["email_hash"] != unknown["email_hash"]
    assert all(event["client"] == "127.0.0.1" for event in (unknown, wrong, disabled))


def test_a_throttled_login_is_logged(
    api: Api, client: FlaskClient, security_log: SecurityLog
) -> None:
    api.register("alice@example.com")
    for _ in range(6):
        client.post(
            "/api/customers/sessions", json={"email": "alice@example.com", "password": "nope"}
        )
    [event] = security_log("login_throttled")
    assert event["scope"] == "email" and event["client"] == "127.0.0.1"
    assert event["email_hash"] == security_log("login_failed")[0]["email_hash"]


def test_logouts_are_logged_with_the_uuid_and_hashed_sids(
    api: Api, client: FlaskClient, security_log: SecurityLog
) -> None:
    alice = api.register("alice@example.com")
    bob = api.register("bob@example.com")
    first, second = api.login("alice@example.com"), api.login("alice@example.com")
    bobs = api.login("bob@example.com")
    client.delete(f"/api/customers/sessions/{first.sid}", headers=first.headers)
    # An admin ends every session of Alice and of Bob at once.
    ids = f"{alice['uuid']},{bob['uuid']}"
    client.delete(f"/api/customers/sessions/{ids}", headers=api.admin_headers("admin-9"))
    own, *by_admin = security_log("logout")
    assert own == {
        "event": "logout",
        "customer": alice["uuid"],
        "sid": fingerprint(first.sid),
        "by_admin": None,
    }
    assert {(event["customer"], event["sid"]) for event in by_admin} == {
        (alice["uuid"], fingerprint(second.sid)),
        (bob["uuid"], fingerprint(bobs.sid)),
    }
    assert all(event["by_admin"] == "admin-9" for event in by_admin)


def test_logout_signals_name_each_customers_own_sessions(
    app: Flask, api: Api, client: FlaskClient
) -> None:
    alice, bob = api.register("alice@example.com"), api.register("bob@example.com")
    alices, bobs = api.login("alice@example.com"), api.login("bob@example.com")
    seen: dict[str, list[str]] = {}

    def receiver(sender: Flask, customer: dict[str, Any], sids: list[str]) -> None:
        seen[customer["uuid"]] = sids

    from flask_evershop_customer import signals

    with signals.customer_logged_out.connected_to(receiver, sender=app):
        ids = f"{alice['uuid']},{bob['uuid']}"
        response = client.delete(f"/api/customers/sessions/{ids}", headers=api.admin_headers())
    assert response.status_code == 200
    assert seen == {alice["uuid"]: [alices.sid], bob["uuid"]: [bobs.sid]}


def test_authorization_failures_are_logged_with_who_asked(
    app: Flask, api: Api, client: FlaskClient, security_log: SecurityLog
) -> None:
    alice = api.register("alice@example.com")
    bob = api.register("bob@example.com")
    login = api.login("alice@example.com")
    bobs = api.login("bob@example.com")
    expected = {"customer": alice["uuid"], "sid": fingerprint(login.sid)}

    # Another customer's record, and status from a customer.
    client.patch(f"/api/customers/{bob['uuid']}", json={}, headers=login.headers)
    client.patch(f"/api/customers/{alice['uuid']}", json={"status": 0}, headers=login.headers)
    record, status = security_log("forbidden")
    assert record | expected == record and record["target"] == bob["uuid"]
    assert status | expected == status and status["reason"] == "status is admin-only"

    # Another customer's session.
    client.delete(f"/api/customers/sessions/{bobs.sid}", headers=login.headers)
    [logout] = security_log("logout_forbidden")
    assert logout | expected == logout

    # A cookie write from another site.
    browser = app.test_client()
    browser.set_cookie("token", login.token)
    browser.patch(
        f"/api/customers/{alice['uuid']}", json={}, headers={"Origin": "https://evil.example"}
    )
    [cross] = security_log("cross_site_refused")
    assert cross | expected == cross and cross["origin"] == "https://evil.example"


def test_admin_only_refusals_are_logged(app_factory: AppFactory, security_log: SecurityLog) -> None:
    app = app_factory(EVERSHOP_CUSTOMER_ALLOW_REGISTRATION=False)
    client = app.test_client(use_cookies=False)
    admin_api = Api(app, client)
    body = {"email": "c@example.com", "password": PASSWORD, "full_name": "C"}
    client.post("/api/customers", json=body, headers=admin_api.admin_headers())
    login = admin_api.login("c@example.com")
    body = {**body, "email": "d@example.com"}
    assert client.post("/api/customers", json=body, headers=login.headers).status_code == 403
    [event] = security_log("forbidden")
    assert event["reason"] == "admin only" and event["sid"] == fingerprint(login.sid)
    assert event["customer"] is not None and event["path"] == "/api/customers"


def test_refused_credentials_are_logged(
    api: Api, client: FlaskClient, security_log: SecurityLog
) -> None:
    alice = api.register("alice@example.com")
    url = f"/api/customers/{alice['uuid']}"
    client.patch(url, json={})
    client.patch(url, json={}, headers={"Authorization": "Bearer not.a.token"})
    client.patch(url, json={}, headers={"Authorization": "Basic YWxpY2U6c2VjcmV0"})
    client.patch(url, json={}, headers={"Cookie": "asid=forged"})
    [missing, _] = security_log("unauthenticated")
    assert missing["path"] == url and missing["client"] == "127.0.0.1"
    bad_token, bad_scheme = security_log("token_rejected")
    assert bad_token["reason"] == "Invalid token" and bad_token["path"] == url
    assert bad_scheme["reason"].startswith("Authorization header must be")
    assert security_log("admin_cookie_rejected")


def test_a_revoked_token_is_logged(
    api: Api, client: FlaskClient, security_log: SecurityLog
) -> None:
    alice = api.register("alice@example.com")
    login = api.login("alice@example.com")
    client.delete(f"/api/customers/sessions/{login.sid}", headers=login.headers)
    client.patch(f"/api/customers/{alice['uuid']}", json={}, headers=login.headers)
    [event] = security_log("token_rejected")
    assert event["reason"] == "Session has ended"


@database_free
def test_anonymous_use_of_current_customer_logs_nothing(
    app: Flask, security_log: SecurityLog
) -> None:
    from flask_evershop_customer import current_customer

    @app.get("/shop")
    def shop() -> dict[str, str | None]:
        return {"customer": current_customer.uuid if current_customer else None}

    assert app.test_client().get("/shop").get_json() == {"customer": None}
    assert security_log() == []


# -- what must never be logged ----------------------------------------------------------


def test_no_password_hash_or_whole_token_reaches_any_log(
    app: Flask, api: Api, client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, every level
    alice = api.register("alice@example.com")
    login = api.login("alice@example.com")
    url = f"/api/customers/{alice['uuid']}"
    client.patch(url, json={"password": OTHER_PASSWORD}, headers=login.headers)
    client.post(
        "/api/customers/sessions", json={"email": "alice@example.com", "password": PASSWORD}
    )
    client.post(
        "/api/customers/sessions", json={"email": "nobody@example.com", "password": PASSWORD}
    )
    client.patch(url, json={}, headers={"Authorization": f"Bearer {login.token}x"})
    client.patch(url, json={}, headers={"Cookie": f"token={login.token}"})
    with app.app_context():
        hashes = db.session.scalars(db.select(customers.models.Customer.password_hash)).all()
    client.delete(f"/api/customers/sessions/{login.sid}", headers=login.headers)
    client.delete(url, headers=api.admin_headers())
    secrets = [PASSWORD, OTHER_PASSWORD, login.token, login.token.rsplit(".", 1)[1], login.sid]
    secrets += [value.rsplit("$", 1)[1] for value in hashes]  # the digest part of each hash
    assert caplog.records
    for record in caplog.records:
        if record.name.startswith("sqlalchemy."):
            continue  # the host's SQL echo: see the security chapter on hide_parameters
        text = record.getMessage() + repr(vars(record))
        for secret in secrets:
            assert secret not in text, (record.name, record.getMessage())


# -- escaping ---------------------------------------------------------------------------


def test_values_are_escaped_onto_one_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    forged = 'admin@example.com\r\nlogin customer="someone" sid="x"\u2028\x1b[31m\u00e9'
    security_event("probe", admin=forged, count=3, nothing=None)
    [record] = caplog.records
    message = record.getMessage()
    assert "\r" not in message and "\n" not in message and "\x1b" not in message
    assert message.isascii() and message.isprintable()
    assert LINE.fullmatch(message)
    # Each value reads back exactly.
    pairs = re.findall(r' ([a-z_]+)=(null|-?\d+|"(?:[^"\\]|\\.)*")', message)
    assert {key: json.loads(value) for key, value in pairs} == {
        "admin": forged,
        "count": 3,
        "nothing": None,
    }


def test_a_crlf_in_an_admin_email_is_escaped(
    api: Api,
    client: FlaskClient,
    caplog: pytest.LogCaptureFixture,
    security_log: SecurityLog,
    admin_loader: AdminLoaderFixture,
) -> None:
    """Hosts may use emails as admin ids; one with CR/LF cannot forge a log line."""
    forged = 'boss@example.com\r\nlogin customer="00000000000000000000000000000000"'

    @admin_loader
    def refuse(admin_id: str) -> bool:
        return False

    alice = api.register("alice@example.com")
    client.patch(f"/api/customers/{alice['uuid']}", json={}, headers=api.admin_headers(forged))
    [event] = security_log("admin_rejected_by_loader")  # (the fixture checks each line)
    assert event["admin"] == forged  # the structured field keeps the value as it was
    [line] = [r.getMessage() for r in caplog.records if r.message.startswith("admin_rejected")]
    assert '\\r\\nlogin customer=\\"0000' in line and "\n" not in line


def test_a_crlf_in_a_login_email_or_a_path_forges_no_line(
    api: Api, client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    alice = api.register("alice@example.com")
    client.post(
        "/api/customers/sessions",
        json={"email": 'x@example.com\r\nlogin customer="forged"', "password": PASSWORD},
    )
    client.patch(
        f"/api/customers/{alice['uuid']}%0D%0Alogin%20customer=forged",
        json={},
        headers={"Authorization": "Bearer junk"},
    )
    messages = [record.getMessage() for record in caplog.records if record.name == LOGGER]
    assert messages  # the bad token was logged
    for message in messages:
        assert "\r" not in message and "\n" not in message
        assert LINE.fullmatch(message)
    assert any("\\r\\nlogin customer=forged" in message for message in messages)


def test_session_ids_in_logged_paths_are_fingerprints(
    api: Api, client: FlaskClient, security_log: SecurityLog
) -> None:
    api.register("alice@example.com")
    login = api.login("alice@example.com")
    sid = login.sid
    client.delete(f"/api/customers/sessions/{sid}", headers={"Authorization": "Bearer bad"})
    client.delete(
        f"/api/customers/sessions/{sid.upper()},{sid}",
        headers={"Cookie": f"token={login.token}", "Origin": "https://evil.example"},
    )
    events = security_log("token_rejected") + security_log("cross_site_refused")
    assert len(events) == 2
    for event in events:
        assert sid not in event["path"] and sid.upper() not in event["path"]
        assert f"sid:{fingerprint(sid)}" in event["path"]


def test_registrations_and_email_conflicts_are_logged(
    app_factory: AppFactory, security_log: SecurityLog
) -> None:
    app = app_factory(EVERSHOP_CUSTOMER_REGISTRATIONS_PER_IP=1)
    client = app.test_client(use_cookies=False)
    api = Api(app, client)
    bob = api.register("bob@example.com")
    body = {"email": "eve@example.com", "password": "a fine password", "full_name": "Eve"}
    assert client.post("/api/customers", json=body).status_code == 429
    [event] = security_log("registration_throttled")
    assert event["client"] == "127.0.0.1" and event["scope"] == "ip"
    login = api.login("bob@example.com")
    admin = api.admin_headers()
    assert client.post("/api/customers", json=body, headers=admin).status_code == 200
    url = f"/api/customers/{bob['uuid']}"
    body = {"email": "EVE@example.com", "current_password": PASSWORD}
    response = client.patch(url, json=body, headers=login.headers)
    assert response.status_code == 409
    [event] = security_log("email_conflict")
    assert event["customer"] == bob["uuid"] and event["sid"] == fingerprint(login.sid)
