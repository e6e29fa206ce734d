"""The customer's own account: ``/customers/me`` and ``GET /customers/{id}``."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from flask_evershop_customer import customer_logged_out

from .conftest import OTHER_PASSWORD, PASSWORD, Api, Login, db, state_of, table_contents
from .test_login_races import _in_thread

ME = "/api/customers/me"


def tag(customer: dict[str, Any], version: int = 1) -> str:
    return f'"{customer["uuid"]}.{version}"'


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def record(customer: dict[str, Any]) -> dict[str, Any]:
    """The customer object as a read answers it: registration's, without its links."""
    return {key: value for key, value in customer.items() if key != "links"}


# -- reading ----------------------------------------------------------------------------


def test_get_me_answers_the_callers_own_record(
    client: FlaskClient, alice: dict[str, Any], alice_login: Login
) -> None:
    response = client.get(ME, headers=alice_login.headers)
    assert response.status_code == 200
    assert response.get_json() == {"data": record(alice)}
    assert response.headers["ETag"] == tag(alice)
    assert response.headers["Cache-Control"] == "no-store"


def test_get_me_with_the_token_cookie(api: Api, cookie_client: FlaskClient) -> None:
    customer = api.register("cookie@example.com")
    body = {"email": "cookie@example.com", "password": PASSWORD}
    assert cookie_client.post("/api/customers/sessions", json=body).status_code == 200
    response = cookie_client.get(ME)
    assert response.status_code == 200
    assert response.get_json()["data"]["uuid"] == customer["uuid"]


def test_me_needs_a_customer_credential(api: Api, client: FlaskClient) -> None:
    assert client.get(ME).status_code == 401
    for method in ("get", "patch", "delete"):
        response = getattr(client, method)(ME, headers=api.admin_headers())
        assert response.status_code == 403, method
        assert response.get_json() == {
            "error": {"status": 403, "message": "Customer credentials are required"}
        }


def test_on_me_a_customer_credential_wins_over_an_admin_cookie(
    api: Api, client: FlaskClient, alice: dict[str, Any], alice_login: Login
) -> None:
    headers = {**alice_login.headers, **api.admin_headers()}
    response = client.get(ME, headers=headers)
    assert response.status_code == 200
    assert response.get_json()["data"]["uuid"] == alice["uuid"]
    # Elsewhere the admin cookie wins: an admin may change the status.
    url = f"/api/customers/{alice['uuid']}"
    assert client.patch(url, json={"status": 1}, headers=headers).status_code == 200
    assert client.patch(ME, json={"status": 1}, headers=headers).status_code == 403


def test_a_bad_token_on_me_is_401_even_beside_an_admin_cookie(
    api: Api, client: FlaskClient
) -> None:
    headers = {"Authorization": "Bearer not-a-token", **api.admin_headers()}
    assert client.get(ME, headers=headers).status_code == 401


def test_get_customer_by_id_for_an_admin_or_that_customer(
    api: Api, client: FlaskClient, alice: dict[str, Any], alice_login: Login
) -> None:
    url = f"/api/customers/{alice['uuid']}"
    for headers in (alice_login.headers, api.admin_headers()):
        response = client.get(url, headers=headers)
        assert response.status_code == 200
        assert response.get_json() == {"data": record(alice)}
        assert response.headers["ETag"] == tag(alice)
    assert client.head(url, headers=alice_login.headers).status_code == 200


def test_get_customer_checks_401_then_404_then_403(
    api: Api, client: FlaskClient, alice: dict[str, Any]
) -> None:
    bob = api.register("bob@example.com")
    bobs = api.login("bob@example.com")
    url = f"/api/customers/{alice['uuid']}"
    assert client.get(url).status_code == 401
    assert client.get("/api/customers/" + "0" * 32, headers=bobs.headers).status_code == 404
    assert client.get("/api/customers/not-a-uuid", headers=bobs.headers).status_code == 404
    refused = client.get(url, headers=bobs.headers)
    assert refused.status_code == 403
    assert "ETag" not in refused.headers
    assert bob["uuid"] not in refused.get_data(as_text=True)


# -- writing ----------------------------------------------------------------------------


def test_patch_me_changes_the_callers_record_with_evershops_self_link(
    client: FlaskClient, alice: dict[str, Any], alice_login: Login
) -> None:
    response = client.patch(ME, json={"full_name": "Alice Renamed"}, headers=alice_login.headers)
    assert response.status_code == 200
    data = response.get_json()["data"]
    assert data["full_name"] == "Alice Renamed" and data["uuid"] == alice["uuid"]
    assert data["links"] == [
        {
            "rel": "self",
            "href": "/api/customers/me",
            "action": "PATCH",
            "types": ["application/json"],
        }
    ]
    assert response.headers["ETag"] == tag(alice, 2)


def test_patch_me_keeps_the_rules_of_patch_by_id(
    app: Any, client: FlaskClient, alice: dict[str, Any], alice_login: Login
) -> None:
    headers = alice_login.headers
    before = table_contents(app)["evershop_customer"]
    refused = client.patch(ME, json={"status": 0}, headers=headers)
    assert refused.status_code == 403
    invalid = client.patch(ME, json={"email": "nope"}, headers=headers)
    assert invalid.get_json() == {
        "error": {"status": 400, "message": '/email must match format "email"'}
    }
    stale = client.patch(
        ME, json={"full_name": "X"}, headers={**headers, "If-Match": tag(alice, 7)}
    )
    assert stale.status_code == 412
    assert table_contents(app)["evershop_customer"] == before
    fresh = client.patch(ME, json={"full_name": "X"}, headers={**headers, "If-Match": tag(alice)})
    assert fresh.status_code == 200


def test_a_password_change_through_me_ends_the_other_sessions(
    api: Api, client: FlaskClient, alice: dict[str, Any], alice_login: Login
) -> None:
    other = api.login("alice@example.com")
    body = {"password": OTHER_PASSWORD, "current_password": PASSWORD}
    response = client.patch(ME, json=body, headers=alice_login.headers)
    assert response.status_code == 200
    assert client.get(ME, headers=other.headers).status_code == 401
    assert client.get(ME, headers=alice_login.headers).status_code == 200


def test_delete_me_deletes_the_callers_account(
    app: Any, client: FlaskClient, alice: dict[str, Any], alice_login: Login
) -> None:
    response = client.delete(ME, headers=alice_login.headers)
    assert response.status_code == 200
    assert response.get_json() == {"data": record(alice)}
    assert table_contents(app)["evershop_customer"] == []
    assert client.get(ME, headers=alice_login.headers).status_code == 401


def test_a_cookie_write_to_me_from_another_site_is_refused(
    api: Api, cookie_client: FlaskClient
) -> None:
    api.register("cookie@example.com")
    body = {"email": "cookie@example.com", "password": PASSWORD}
    assert cookie_client.post("/api/customers/sessions", json=body).status_code == 200
    forged = {"Origin": "https://evil.example"}
    assert cookie_client.patch(ME, json={"full_name": "X"}, headers=forged).status_code == 403
    assert cookie_client.delete(ME, headers=forged).status_code == 403
    assert cookie_client.get(ME, headers=forged).status_code == 200  # a read changes nothing


# -- routing ----------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["post", "put"])
def test_me_is_never_a_customer_id(client: FlaskClient, alice_login: Login, method: str) -> None:
    response = getattr(client, method)(ME, json={}, headers=alice_login.headers)
    assert response.status_code == 405
    assert set(response.headers["Allow"].split(", ")) == {
        "GET",
        "HEAD",
        "PATCH",
        "DELETE",
        "OPTIONS",
    }


def test_an_admin_patch_of_me_is_not_a_lookup_of_a_customer_named_me(
    api: Api, client: FlaskClient
) -> None:
    response = client.patch(ME, json={"full_name": "X"}, headers=api.admin_headers())
    assert response.get_json()["error"]["message"] == "Customer credentials are required"


def test_the_fixed_names_keep_their_own_methods(client: FlaskClient) -> None:
    assert client.get("/api/customers/sessions").status_code == 405
    assert client.get("/api/customers/openapi.json").status_code == 200
    assert client.delete("/api/customers/openapi.json").status_code == 405


# -- one's own sessions -----------------------------------------------------------------

SESSIONS = "/api/customers/me/sessions"


def test_the_session_list_shows_live_sessions_newest_first(
    app: Any, api: Api, client: FlaskClient, alice: dict[str, Any]
) -> None:
    clock = state_of(app).clock
    # In the past: a token's iat may not lie ahead of the real time.
    start = datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0) - timedelta(hours=1)
    clock.freeze(start)
    lifetime = timedelta(seconds=state_of(app).tokens.lifetime)
    body = {"email": "alice@example.com", "password": PASSWORD}
    phone = client.post("/api/customers/sessions", json=body, headers={"User-Agent": "Phone/1"})
    clock.travel(60)
    laptop = client.post("/api/customers/sessions", json=body, headers={"User-Agent": "L" * 300})
    clock.travel(60)
    ended = api.login("alice@example.com")
    client.delete(f"/api/customers/sessions/{ended.sid}", headers=ended.headers)
    token = laptop.get_json()["data"]["token"]
    response = client.get(SESSIONS, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    items = response.get_json()["data"]["items"]
    assert items == [
        {
            "sid": laptop.get_json()["data"]["sid"],
            "created_at": stamp(start + timedelta(seconds=60)),
            "expires_at": stamp(start + timedelta(seconds=60) + lifetime),
            "current": True,
            "user_agent": "L" * 255,
        },
        {
            "sid": phone.get_json()["data"]["sid"],
            "created_at": stamp(start),
            "expires_at": stamp(start + lifetime),
            "current": False,
            "user_agent": "Phone/1",
        },
    ]


def test_a_session_without_a_user_agent_lists_null(
    app: Any, client: FlaskClient, alice: dict[str, Any]
) -> None:
    with app.app_context():
        opened = state_of(app).sessions.open_session(alice["uuid"])
    headers = {"Authorization": f"Bearer {opened.token}"}
    [item] = client.get(SESSIONS, headers=headers).get_json()["data"]["items"]
    assert item["sid"] == opened.sid and item["user_agent"] is None


def test_the_session_list_is_ones_own(api: Api, client: FlaskClient, alice_login: Login) -> None:
    api.register("bob@example.com")
    bob = api.login("bob@example.com")
    items = client.get(SESSIONS, headers=bob.headers).get_json()["data"]["items"]
    assert [item["sid"] for item in items] == [bob.sid]
    assert client.get(SESSIONS).status_code == 401
    assert client.get(SESSIONS, headers=api.admin_headers()).status_code == 403


def test_ending_the_other_sessions_keeps_the_current_one(
    api: Api, client: FlaskClient, alice_login: Login
) -> None:
    others = [api.login("alice@example.com") for _ in range(2)]
    api.register("bob@example.com")
    bob = api.login("bob@example.com")
    ended: list[dict[str, Any]] = []

    def record(sender: Any, **payload: Any) -> None:
        ended.append(payload)

    with customer_logged_out.connected_to(record):
        response = client.delete(SESSIONS, headers=alice_login.headers)
    assert response.status_code == 200 and response.get_json() == {"data": {}}
    assert [sorted(event["sids"]) for event in ended] == [sorted(o.sid for o in others)]
    for other in others:
        assert client.get(ME, headers=other.headers).status_code == 401
    assert client.get(ME, headers=alice_login.headers).status_code == 200
    assert client.get(ME, headers=bob.headers).status_code == 200
    # Nothing left to end: still 200, and no signal.
    assert client.delete(SESSIONS, headers=alice_login.headers).status_code == 200
    assert len(ended) == 1


def test_ending_the_other_sessions_needs_a_customer_and_a_same_site_cookie(
    api: Api, client: FlaskClient, cookie_client: FlaskClient
) -> None:
    assert client.delete(SESSIONS).status_code == 401
    assert client.delete(SESSIONS, headers=api.admin_headers()).status_code == 403
    api.register("cookie@example.com")
    body = {"email": "cookie@example.com", "password": PASSWORD}
    assert cookie_client.post("/api/customers/sessions", json=body).status_code == 200
    forged = {"Origin": "https://evil.example"}
    assert cookie_client.delete(SESSIONS, headers=forged).status_code == 403


def test_a_login_while_the_others_are_ended_stays_live(
    app: Any, api: Api, client: FlaskClient, alice_login: Login
) -> None:
    """Ending the other sessions ends those live when it locked them; a login that
    commits meanwhile (held at that point) opens a session that stays."""
    with app.app_context():
        engine = db.engine
    if engine.dialect.name == "sqlite":
        pytest.skip("SQLite serialises writers: the login cannot commit meanwhile")
    older = api.login("alice@example.com")
    main = threading.current_thread()
    logins: list[Login] = []
    waiting: list[threading.Thread] = []

    def log_in() -> None:
        logins.append(Api(app, app.test_client()).login("alice@example.com"))

    def hold(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        locking = "FOR UPDATE" in statement and "evershop_customer_session" in statement
        if threading.current_thread() is main and locking and not (logins or waiting):
            if engine.dialect.name == "postgresql":
                _in_thread(log_in)  # commits while the others are held
            else:
                # InnoDB's next-key lock on the customer's sessions makes the new session
                # wait for this request: it commits after, still a session of its own.
                waiting.append(threading.Thread(target=log_in, daemon=True))
                waiting[0].start()

    sa.event.listen(engine, "after_cursor_execute", hold)
    try:
        response = client.delete(SESSIONS, headers=alice_login.headers)
    finally:
        sa.event.remove(engine, "after_cursor_execute", hold)
    assert response.status_code == 200
    for thread in waiting:
        thread.join(30)
        assert not thread.is_alive()
    [newer] = logins
    assert client.get(ME, headers=older.headers).status_code == 401
    assert client.get(ME, headers=newer.headers).status_code == 200
    assert client.get(ME, headers=alice_login.headers).status_code == 200
