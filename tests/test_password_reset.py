"""Password reset on EverShop's paths: a single-use hashed token for an email, then a new
password with it."""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask, request
from flask.testing import FlaskClient
from werkzeug.test import Client, TestResponse

from flask_evershop_customer import password_reset, password_reset_requested
from flask_evershop_customer.testing import wait_for_work_after_responses

from .conftest import (
    OTHER_PASSWORD,
    PASSWORD,
    Api,
    AppFactory,
    Login,
    db,
    state_of,
    table_contents,
)
from .test_login_races import _in_thread

REQUEST = "/api/customers/reset-password"
COMPLETE = "/api/customers/password"
INVALID = {"error": {"status": 400, "message": "Token is invalid or expired"}}
NEW = "a brand new passphrase"


@contextlib.contextmanager
def mailbox(app: Flask) -> Iterator[list[dict[str, Any]]]:
    """What the host's ``password_reset_requested`` receiver would mail."""
    sent: list[dict[str, Any]] = []

    def receive(sender: Flask, **payload: Any) -> None:
        sent.append({**payload, "thread": threading.current_thread()})

    with password_reset_requested.connected_to(receive, sender=app):
        yield sent


def ask(client: FlaskClient, email: str, **kwargs: Any) -> TestResponse:
    return client.post(REQUEST, json={"email": email}, **kwargs)


def token_for(app: Flask, client: FlaskClient, email: str = "alice@example.com") -> str:
    with mailbox(app) as sent:
        assert ask(client, email).status_code == 200
    [mail] = sent
    return str(mail["token"])


def complete(client: FlaskClient, token: str, password: str = NEW) -> TestResponse:
    return client.post(COMPLETE, json={"token": token, "password": password})


def logs_in(client: FlaskClient, password: str, email: str = "alice@example.com") -> bool:
    body = {"email": email, "password": password}
    return bool(client.post("/api/customers/sessions", json=body).status_code == 200)


def test_a_reset_sets_the_password_and_ends_every_session(
    app: Flask, client: FlaskClient, api: Api, alice: dict[str, Any], alice_login: Login
) -> None:
    with mailbox(app) as sent:
        response = ask(client, "ALICE@example.com")
    assert response.status_code == 200 and response.get_json() == {"data": {}}
    [mail] = sent
    assert mail["customer"]["uuid"] == alice["uuid"] and "password" not in mail["customer"]
    token = mail["token"]
    assert len(token) >= 43  # 32 random bytes, URL-safe
    # Only the digest is stored.
    [row] = table_contents(app)["evershop_customer_reset_token"]
    assert row["digest"] == hashlib.sha256(token.encode()).hexdigest() and row["used_at"] is None
    client.post("/api/customers/sessions", json={"email": "alice@example.com", "password": "x"})
    reset: list[dict[str, Any]] = []
    with password_reset.connected_to(lambda sender, **p: reset.append(p), sender=app):
        done = complete(client, token)
    assert done.status_code == 200 and done.get_json() == {"data": {}}
    assert [event["customer"]["uuid"] for event in reset] == [alice["uuid"]]
    assert client.get("/api/customers/me", headers=alice_login.headers).status_code == 401
    assert not logs_in(client, PASSWORD)
    assert logs_in(client, NEW)
    # Single use: the same token again is refused.
    assert complete(client, token, OTHER_PASSWORD).get_json() == INVALID
    # The email's failed logins were forgotten (the wrong one above is gone).
    failures = table_contents(app)["evershop_customer_login_failure"]
    email_key = state_of(app).throttle.subject("email", "alice@example.com")
    assert [f for f in failures if f["subject"] == email_key] == []


def test_the_answer_is_the_same_for_any_email(
    app: Flask, api: Api, client: FlaskClient, alice: dict[str, Any]
) -> None:
    disabled = api.register("disabled@example.com")
    admin = api.admin_headers()
    client.patch(f"/api/customers/{disabled['uuid']}", json={"status": 0}, headers=admin)
    with mailbox(app) as sent:
        answers = [
            ask(client, email)
            for email in ("alice@example.com", "nobody@example.com", "disabled@example.com")
        ]
    assert [len(sent), [mail["customer"]["email"] for mail in sent]] == [1, ["alice@example.com"]]
    shapes = {
        (a.status_code, a.get_data(), tuple(sorted(k for k, _ in a.headers if k != "Date")))
        for a in answers
    }
    assert len(shapes) == 1


def test_a_newer_token_uses_up_the_older_one(
    app: Flask, client: FlaskClient, alice: dict[str, Any]
) -> None:
    first, second = token_for(app, client), token_for(app, client)
    assert complete(client, first).get_json() == INVALID
    assert complete(client, second).status_code == 200


def test_an_expired_token_is_refused(
    app: Flask, client: FlaskClient, alice: dict[str, Any]
) -> None:
    token = token_for(app, client)
    state_of(app).clock.travel(state_of(app).settings.reset_token_lifetime + 1)
    assert complete(client, token).get_json() == INVALID
    assert logs_in(client, PASSWORD)


def test_a_disabled_customers_token_is_refused(
    app: Flask, api: Api, client: FlaskClient, alice: dict[str, Any]
) -> None:
    token = token_for(app, client)
    client.patch(f"/api/customers/{alice['uuid']}", json={"status": 0}, headers=api.admin_headers())
    assert complete(client, token).get_json() == INVALID


def test_the_new_password_follows_the_policy_and_the_token_survives(
    app: Flask, client: FlaskClient, alice: dict[str, Any]
) -> None:
    token = token_for(app, client)
    short = complete(client, token, "short")
    assert short.get_json() == {
        "error": {"status": 400, "message": "/password must NOT have fewer than 8 characters"}
    }
    same_as_email = complete(client, token, "alice")
    assert same_as_email.status_code == 400
    assert complete(client, token).status_code == 200


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        (REQUEST, {}, "Request data must have required property 'email'"),
        (REQUEST, {"email": "not an email"}, '/email must match format "email"'),
        (REQUEST, {"email": 5}, "/email must be string"),
        (REQUEST, [], "Request data must be object"),
        (COMPLETE, {"password": NEW}, "Request data must have required property 'token'"),
        (COMPLETE, {"token": "x"}, "Request data must have required property 'password'"),
        (COMPLETE, {"token": 5, "password": NEW}, "/token must be string"),
        (COMPLETE, {"token": "x", "password": None}, "/password must be string"),
        (COMPLETE, {"token": "no such token", "password": NEW}, "Token is invalid or expired"),
    ],
)
def test_bad_bodies_are_400_naming_the_field(
    client: FlaskClient, path: str, body: Any, message: str
) -> None:
    response = client.post(path, json=body)
    assert response.get_json() == {"error": {"status": 400, "message": message}}


def test_requests_are_limited_per_email_known_or_not(app_factory: AppFactory) -> None:
    app = app_factory(EVERSHOP_CUSTOMER_LOGIN_MAX_FAILURES=2)
    client = app.test_client(use_cookies=False)
    Api(app, client).register("alice@example.com")
    for email in ("alice@example.com", "nobody@example.com"):
        assert [ask(client, email).status_code for _ in range(3)] == [200, 200, 429]
        refused = ask(client, email)
        assert int(refused.headers["Retry-After"]) > 0
    # Logging in is another counter.
    assert logs_in(client, PASSWORD)


def test_requests_are_limited_per_address(app_factory: AppFactory) -> None:
    app = app_factory(
        EVERSHOP_CUSTOMER_LOGIN_MAX_FAILURES=0, EVERSHOP_CUSTOMER_LOGIN_MAX_FAILURES_PER_IP=2
    )
    client = app.test_client(use_cookies=False)
    statuses = [ask(client, f"n{n}@example.com").status_code for n in range(3)]
    assert statuses == [200, 200, 429]
    other = {"REMOTE_ADDR": "198.51.100.7"}
    assert ask(client, "n9@example.com", environ_base=other).status_code == 200


def test_a_raising_receiver_changes_nothing_in_the_answer(
    app: Flask, client: FlaskClient, alice: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    def broken(sender: Flask, **payload: Any) -> None:
        raise RuntimeError("the mail server is down")

    with password_reset_requested.connected_to(broken, sender=app):
        response = ask(client, "alice@example.com")
    assert response.status_code == 200 and response.get_json() == {"data": {}}
    assert "the mail server is down" in caplog.text
    assert len(table_contents(app)["evershop_customer_reset_token"]) == 1


def test_two_completions_with_one_token_one_wins(
    app: Flask,
    client: FlaskClient,
    alice: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The second completion runs to its end while the first hashes its password (no
    lock is held then); the first then finds the token used."""
    token = token_for(app, client)
    hasher = state_of(app).hasher
    real_hash = hasher.hash
    answers: list[TestResponse] = []

    def hash_(password: str) -> str:
        stored = real_hash(password)
        if password == "the first one's password" and not answers:
            other = app.test_client(use_cookies=False)
            answers.append(_in_thread(lambda: complete(other, token, "the second's password")))
        return stored

    monkeypatch.setattr(hasher, "hash", hash_)
    first = complete(client, token, "the first one's password")
    [second] = answers
    assert second.status_code == 200
    assert first.get_json() == INVALID
    monkeypatch.undo()
    assert logs_in(client, "the second's password")


def test_purge_deletes_used_and_expired_tokens(
    app: Flask, client: FlaskClient, alice: dict[str, Any]
) -> None:
    used = token_for(app, client)
    complete(client, used)
    token_for(app, client)  # live
    result = app.test_cli_runner().invoke(args=["customers", "purge-sessions"])
    assert result.exit_code == 0, result.output
    assert "1 reset tokens" in result.output
    assert len(table_contents(app)["evershop_customer_reset_token"]) == 1


def test_two_requests_at_once_leave_one_live_token(
    app: Flask, client: FlaskClient, alice: dict[str, Any]
) -> None:
    """The first request holds its new token uncommitted until the second has reached
    the customer's row lock (or, without one, has used up the tokens it could see): the
    second then voids the first one's token, and only the newer one works."""
    with app.app_context():
        engine = db.engine
    if engine.dialect.name == "sqlite":
        pytest.skip("SQLite serialises writers: the second request cannot start meanwhile")
    # The token is issued after the answer, in a thread of its own: the first request's
    # is whichever writes a token first.
    first: list[threading.Thread] = []
    started: list[threading.Thread] = []
    answers: list[TestResponse] = []
    reached = threading.Event()

    def second() -> None:
        other = app.test_client(use_cookies=False)
        answers.append(ask(other, "alice@example.com"))

    def is_second() -> bool:
        return bool(first) and threading.current_thread() is not first[0]

    def before(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        locking = "FOR UPDATE" in statement and "evershop_customer.customer_id" in statement
        if is_second() and locking:
            reached.set()  # about to wait for the first request's lock

    def after(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        text = statement.lstrip()
        if not first and text.startswith("INSERT INTO evershop_customer_reset_token"):
            first.append(threading.current_thread())
            thread = threading.Thread(target=second, daemon=True)
            started.append(thread)
            thread.start()
            assert reached.wait(30)
        elif is_second() and text.startswith("UPDATE evershop_customer_reset_token"):
            reached.set()  # without a lock: it has used up what it could see

    with mailbox(app) as sent:
        sa.event.listen(engine, "before_cursor_execute", before)
        sa.event.listen(engine, "after_cursor_execute", after)
        try:
            assert ask(client, "alice@example.com").status_code == 200
        finally:
            sa.event.remove(engine, "before_cursor_execute", before)
            sa.event.remove(engine, "after_cursor_execute", after)
        [thread] = started
        thread.join(30)
        assert not thread.is_alive()
    assert [a.status_code for a in answers] == [200]
    # The second request committed last (it waited for the first one's lock); the two
    # mails may be sent in either order, so each token is told apart by its thread.
    tokens = {mail["thread"]: mail["token"] for mail in sent}
    [later] = [token for sender, token in tokens.items() if sender is not first[0]]
    live = [t for t in table_contents(app)["evershop_customer_reset_token"] if not t["used_at"]]
    assert [t["digest"] for t in live] == [hashlib.sha256(later.encode()).hexdigest()]
    assert complete(client, tokens[first[0]]).get_json() == INVALID
    assert complete(client, later).status_code == 200


# -- tokens that outlive their account or the address they were sent to ---------------


def test_a_deleted_customers_token_cannot_reset_the_next_customers_password(
    app: Flask, client: FlaskClient, api: Api, alice: dict[str, Any]
) -> None:
    """SQLite gives the next customer the deleted one's ``customer_id``."""
    token = token_for(app, client)
    assert client.delete(f"/api/customers/{alice['uuid']}", headers=api.admin_headers())
    assert table_contents(app)["evershop_customer_reset_token"] == []
    bob = api.register("bob@example.com")
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        assert bob["customer_id"] == alice["customer_id"]
    assert complete(client, token).get_json() == INVALID
    assert logs_in(client, PASSWORD, "bob@example.com")


def test_a_token_names_its_customers_uuid_not_only_the_reusable_id(
    app: Flask, client: FlaskClient, api: Api, alice: dict[str, Any]
) -> None:
    """A token whose row outlived its customer (deleted by a host's own SQL, on SQLite
    without foreign keys; elsewhere the foreign key removes it) does not act on the next
    customer, whom SQLite gives the same id."""
    token = token_for(app, client)
    with app.app_context():
        customers = state_of(app).models.Customer.__table__
        db.session.execute(sa.delete(customers).where(customers.c.uuid == alice["uuid"]))
        db.session.commit()
    api.register("bob@example.com")
    assert complete(client, token).get_json() == INVALID
    assert logs_in(client, PASSWORD, "bob@example.com")


def _own_change(api: Api, alice: dict[str, Any], body: dict[str, Any]) -> None:
    login = api.login("alice@example.com")
    body = {**body, "current_password": PASSWORD}
    response = api.client.patch("/api/customers/me", json=body, headers=login.headers)
    assert response.status_code == 200, response.get_json()


def _admin_change(api: Api, alice: dict[str, Any], *bodies: dict[str, Any]) -> None:
    for body in bodies:
        response = api.client.patch(
            f"/api/customers/{alice['uuid']}", json=body, headers=api.admin_headers()
        )
        assert response.status_code == 200, response.get_json()


CHANGES = {
    "own password": lambda api, alice: _own_change(api, alice, {"password": OTHER_PASSWORD}),
    "own email": lambda api, alice: _own_change(api, alice, {"email": "alice@new.example"}),
    "admin password": lambda api, alice: _admin_change(api, alice, {"password": OTHER_PASSWORD}),
    "admin email": lambda api, alice: _admin_change(api, alice, {"email": "alice@new.example"}),
    "disable, enable": lambda api, alice: _admin_change(api, alice, {"status": 0}, {"status": 1}),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_a_change_of_password_email_or_status_uses_up_pending_tokens(
    app: Flask, client: FlaskClient, api: Api, alice: dict[str, Any], change: str
) -> None:
    token = token_for(app, client)
    CHANGES[change](api, alice)
    assert complete(client, token).get_json() == INVALID
    [row] = table_contents(app)["evershop_customer_reset_token"]
    assert row["used_at"] is not None


def test_a_change_of_the_name_leaves_a_pending_token_usable(
    app: Flask, client: FlaskClient, api: Api, alice: dict[str, Any]
) -> None:
    token = token_for(app, client)
    _admin_change(api, alice, {"full_name": "Alice Renamed", "email": "ALICE@example.com"})
    assert complete(client, token).status_code == 200


# -- the answer's timing ---------------------------------------------------------------


def test_the_token_is_issued_once_the_answer_is_sent(
    app: Flask, alice: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    """A server closes the response once it has sent it: only then is the customer
    looked up, the token written and the signal sent, so the answer takes as long for
    an email with an account as for one without (the host's mail included)."""
    raw = Client(app)  # Werkzeug's own client: it leaves closing the response to us
    seen: list[str] = []

    def receive(sender: Flask, **payload: Any) -> None:
        seen.append(request.path)  # the request's context is there for the receiver

    with password_reset_requested.connected_to(receive, sender=app):
        response = raw.post(REQUEST, json={"email": "alice@example.com"})
        assert response.status_code == 200 and response.get_json() == {"data": {}}
        assert seen == [] and table_contents(app)["evershop_customer_reset_token"] == []
        response.close()
        wait_for_work_after_responses()
    assert seen == [REQUEST]
    assert len(table_contents(app)["evershop_customer_reset_token"]) == 1


def test_work_after_the_answer_that_fails_is_logged(
    app: Flask, client: FlaskClient, alice: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    def fail(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("the database went away")

    resets = state_of(app).resets
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(resets, "_issue", fail)
        response = ask(client, "alice@example.com")
    assert response.status_code == 200 and response.get_json() == {"data": {}}
    assert "Work after the response failed" in caplog.text
    assert "the database went away" in caplog.text


def test_a_customer_deleted_before_the_token_is_issued_gets_none(
    app: Flask, client: FlaskClient, api: Api, alice: dict[str, Any]
) -> None:
    raw = Client(app)
    with mailbox(app) as sent:
        response = raw.post(REQUEST, json={"email": "alice@example.com"})
        assert client.delete(f"/api/customers/{alice['uuid']}", headers=api.admin_headers())
        response.close()
        wait_for_work_after_responses()
    assert sent == []
    assert table_contents(app)["evershop_customer_reset_token"] == []


def test_the_limit_says_what_was_limited(app_factory: AppFactory) -> None:
    app = app_factory(EVERSHOP_CUSTOMER_LOGIN_MAX_FAILURES=1)
    client = app.test_client(use_cookies=False)
    assert ask(client, "n@example.com").status_code == 200
    refused = ask(client, "n@example.com")
    assert refused.status_code == 429
    assert refused.get_json() == {
        "error": {"status": 429, "message": "Too many password reset requests, try again later"}
    }


def test_a_response_closed_twice_issues_one_token(
    app: Flask, client: FlaskClient, alice: dict[str, Any]
) -> None:
    """Werkzeug runs the close callbacks at every ``close()``: the work still runs once."""
    with mailbox(app) as sent:
        with ask(client, "alice@example.com") as response:  # closed here and by the client
            response.close()
        wait_for_work_after_responses()
    assert len(sent) == 1
    assert len(table_contents(app)["evershop_customer_reset_token"]) == 1
