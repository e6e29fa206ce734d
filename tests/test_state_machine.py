"""A Hypothesis state machine over the endpoints.

It creates, updates (email, full name, password, status), deletes, logs in (with a
login token, or with an access and a refresh token as a headless client) and logs out,
refreshes tokens (with the newest refresh token of a session, or a spent one: a replay),
adds, changes (the default) and deletes addresses of any customer,
reads one's own record, lists and ends one's own sessions, and resets passwords, in
random order, as an admin or with any token it holds (live or not, the customer's own
or someone else's; as a bearer token or in the token cookie), keeps a model of what
should be, and after every step checks:

- every token it ever got works exactly while its session is live and its customer
  exists and is active (``PATCH {}`` with it: 200, else 401);
- a session has at most one unspent refresh token;
- the address table holds exactly the model's addresses, each with its own customer (none
  leaks to another), and at most one default per customer;
- emails are unique by their canonical form, and the table holds exactly the model's;
- no response carries a password or a hash (conftest's ``CheckedClient`` checks every
  answer for the suite's passwords; this machine also for the wrong one it tries).

Each example starts on empty tables. Bounded: ``MAX_EXAMPLES`` scenarios of at most
``STEPS`` steps, derandomized: about 15 s on SQLite, 20 s on each server.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import jwt
import sqlalchemy as sa
from flask import Flask
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from flask_evershop_customer import password_reset_requested

from .conftest import OTHER_PASSWORD, PASSWORD, Api, AppFactory, clear_tables, customers, db

MAX_EXAMPLES = 30
STEPS = 20
MAX_SESSIONS = 8
WRONG_PASSWORD = "not the right one at all"
EMAILS = ["ann@example.com", "bob@example.org", "cy@example.net"]
SPELLINGS = {"lower": str.lower, "upper": str.upper, "title": str.title}
NAMES = ["Ann Example", "Bob Example", "Cy"]
STATUSES = [1, 0, "1", "0"]
ADDRESS = {
    "full_name": "Ann Example",
    "address_1": "1 Main Street",
    "postcode": "94043",
    "country": "US",
    "province": "US-CA",
}
#: Failed logins per email before 429 (the default of EVERSHOP_CUSTOMER_LOGIN_MAX_FAILURES).
MAX_FAILURES = 5


@dataclass
class Customer:
    uuid: str
    email: str
    password: str
    status: int
    deleted: bool = False
    #: Address uuid -> whether it is the default.
    addresses: dict[str, bool] = field(default_factory=dict)

    @property
    def canonical(self) -> str:
        return self.email.lower()


@dataclass
class Session:
    sid: str
    token: str
    uuid: str
    ended: bool = False
    #: A token session's newest refresh token, and those it spent.
    refresh: str | None = None
    spent: list[str] = field(default_factory=list)


@dataclass
class Model:
    customers: dict[str, Customer] = field(default_factory=dict)
    sessions: dict[str, Session] = field(default_factory=dict)
    failures: Counter[str] = field(default_factory=Counter)
    resets: Counter[str] = field(default_factory=Counter)

    def works(self, session: Session) -> bool:
        customer = self.customers[session.uuid]
        return not session.ended and not customer.deleted and customer.status == 1

    def holder(self, canonical: str) -> Customer | None:
        for customer in self.customers.values():
            if not customer.deleted and customer.canonical == canonical:
                return customer
        return None

    def end_sessions(self, uuid: str, keep: str | None = None) -> None:
        for session in self.sessions.values():
            if session.uuid == uuid and session.sid != keep:
                session.ended = True


class CustomerAPI(RuleBasedStateMachine):
    """Set ``app`` on a subclass before running it."""

    app: Flask

    def __init__(self) -> None:
        super().__init__()
        clear_tables(self.app)
        self.client = self.app.test_client(use_cookies=False)
        self.admin = Api(self.app, self.client).admin_headers()
        self.model = Model()
        self.mailed: list[str] = []
        password_reset_requested.connect(self._mail, sender=self.app)

    def _mail(self, sender: Flask, customer: dict[str, Any], token: str) -> None:
        self.mailed.append(token)

    # -- helpers ----------------------------------------------------------------------

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.client.open("/api" + path, method=method, **kwargs)
        text = response.get_data(as_text=True)
        assert WRONG_PASSWORD not in text
        return response

    def actor(self, data: Any) -> tuple[dict[str, str], Session | None]:
        """The admin cookie, or any token the machine holds, as a bearer token or in the
        token cookie."""
        sessions = list(self.model.sessions.values())
        choice = data.draw(st.sampled_from([None, *sessions]), label="actor")
        if choice is None:
            return self.admin, None
        if data.draw(st.booleans(), label="in the token cookie"):
            return {"Cookie": f"token={choice.token}"}, choice
        return {"Authorization": f"Bearer {choice.token}"}, choice

    def target(self, data: Any) -> Customer:
        customers = list(self.model.customers.values())
        return data.draw(st.sampled_from(customers), label="target")  # type: ignore[no-any-return]

    def denial(self, session: Session | None, target: Customer) -> int | None:
        """401, 404 or 403 in the order the API checks them, or None when allowed."""
        if session is not None and not self.model.works(session):
            return 401
        if target.deleted:
            return 404
        if session is not None and session.uuid != target.uuid:
            return 403
        return None

    # -- rules ------------------------------------------------------------------------

    @initialize()
    def two_customers_logged_in(self) -> None:
        """Every scenario starts with two active customers, each with a session (the
        first a login's, the second a headless client's), so that the random steps have
        tokens to use, refresh, end and invalidate from the start."""
        for email, name in zip(EMAILS[:2], NAMES[:2], strict=True):
            body = {"email": email, "password": PASSWORD, "full_name": name}
            data = self.call("POST", "/customers", json=body).get_json()["data"]
            self.model.customers[data["uuid"]] = Customer(data["uuid"], email, PASSWORD, 1)
        ann, bob = self.model.customers.values()
        body = {"email": ann.email, "password": PASSWORD}
        login = self.call("POST", "/customers/sessions", json=body).get_json()["data"]
        self.model.sessions[login["sid"]] = Session(login["sid"], login["token"], ann.uuid)
        body = {"email": bob.email, "password": PASSWORD}
        pair = self.call("POST", "/customer/tokens", json=body).get_json()["data"]
        self.add_token_session(bob, pair)

    def add_token_session(self, customer: Customer, pair: dict[str, str]) -> Session:
        access = pair["accessToken"]
        sid = jwt.decode(access, options={"verify_signature": False})["sid"]
        session = Session(sid, access, customer.uuid, refresh=pair["refreshToken"])
        self.model.sessions[sid] = session
        return session

    @rule(
        email=st.sampled_from(EMAILS),
        spelling=st.sampled_from(sorted(SPELLINGS)),
        name=st.sampled_from(NAMES),
        status=st.sampled_from(STATUSES),
    )
    def create(self, email: str, spelling: str, name: str, status: Any) -> None:
        email = SPELLINGS[spelling](email)
        body = {"email": email, "password": PASSWORD, "full_name": name, "status": status}
        # Only an admin may create a disabled account; anyone may register an active one.
        headers = self.admin if int(status) == 0 else {}
        response = self.call("POST", "/customers", json=body, headers=headers)
        if self.model.holder(email.lower()) is not None:
            assert response.status_code == 409, response.get_json()
            return
        assert response.status_code == 200, response.get_json()
        data = response.get_json()["data"]
        assert data["email"] == email and data["status"] == int(status)
        self.model.customers[data["uuid"]] = Customer(data["uuid"], email, PASSWORD, int(status))

    @rule(data=st.data(), change=st.sampled_from(["email", "full_name", "password", "status"]))
    def update(self, data: Any, change: str) -> None:
        if not self.model.customers:
            return
        headers, session = self.actor(data)
        target = self.target(data)
        if change == "email":
            value: Any = SPELLINGS[data.draw(st.sampled_from(sorted(SPELLINGS)))](
                data.draw(st.sampled_from(EMAILS))
            )
        elif change == "full_name":
            value = data.draw(st.sampled_from(NAMES))
        elif change == "password":
            value = data.draw(st.sampled_from([PASSWORD, OTHER_PASSWORD]))
        else:
            value = data.draw(st.sampled_from(STATUSES))
        body = {change: value}
        # A customer's own password or email change needs the current password: sent
        # or not (a wrong one would count against the login limit).
        reauthenticates = session is not None and data.draw(st.booleans())
        if reauthenticates:
            body["current_password"] = target.password
        response = self.call("PATCH", f"/customers/{target.uuid}", json=body, headers=headers)

        expected = self.denial(session, target)
        if expected is None and change == "status" and session is not None:
            expected = 403
        changes_credentials = change == "password" or (
            change == "email" and value.lower() != target.canonical
        )
        if expected is None and session is not None and changes_credentials:
            if not reauthenticates:
                expected = 400
        if expected is None and change == "email":
            holder = self.model.holder(value.lower())
            if holder is not None and holder is not target:
                expected = 409
        assert response.status_code == (expected or 200), (expected, response.get_json())
        if expected is not None:
            return

        if change == "email":
            target.email = value
        elif change == "password":
            target.password = value
            self.model.end_sessions(target.uuid, keep=session.sid if session else None)
        elif change == "status":
            target.status = int(value)
            if target.status == 0:
                self.model.end_sessions(target.uuid)
        answered = response.get_json()["data"]
        assert answered["email"] == target.email and answered["status"] == target.status

    @rule(data=st.data())
    def delete(self, data: Any) -> None:
        if not self.model.customers:
            return
        headers, session = self.actor(data)
        target = self.target(data)
        response = self.call("DELETE", f"/customers/{target.uuid}", headers=headers)
        expected = self.denial(session, target)
        assert response.status_code == (expected or 200), (expected, response.get_json())
        if expected is None:
            assert response.get_json()["data"]["uuid"] == target.uuid
            target.deleted = True
            self.model.end_sessions(target.uuid)

    @rule(data=st.data(), spelling=st.sampled_from(sorted(SPELLINGS)))
    def login(self, data: Any, spelling: str) -> None:
        """Mostly as a customer that exists, with the right password; sometimes with a
        wrong one, or for an email nobody has."""
        if len(self.model.sessions) >= MAX_SESSIONS:
            return
        known = [c for c in self.model.customers.values() if not c.deleted]
        who = data.draw(st.sampled_from([*known, None]), label="customer")
        email = who.email if who is not None else data.draw(st.sampled_from(EMAILS))
        email = SPELLINGS[spelling](email)
        guess = data.draw(st.sampled_from(["right", "other", "wrong"]), label="password")
        current = who.password if who is not None else PASSWORD
        password = {
            "right": current,
            "other": OTHER_PASSWORD if current == PASSWORD else PASSWORD,
            "wrong": WRONG_PASSWORD,
        }[guess]
        canonical = email.lower()
        headless = data.draw(st.booleans(), label="headless")
        path = "/customer/tokens" if headless else "/customers/sessions"
        response = self.call("POST", path, json={"email": email, "password": password})
        if self.model.failures[canonical] >= MAX_FAILURES:
            assert response.status_code == 429, response.get_json()
            assert int(response.headers["Retry-After"]) >= 1
            return
        customer = self.model.holder(canonical)
        if customer is None or customer.password != password or customer.status != 1:
            assert response.status_code == 400, response.get_json()
            assert response.get_json()["error"]["message"] == "Invalid email or password"
            self.model.failures[canonical] += 1
            return
        assert response.status_code == 200, response.get_json()
        answered = response.get_json()["data"]
        self.model.failures[canonical] = 0
        if headless:
            self.add_token_session(customer, answered)
        else:
            session = Session(answered["sid"], answered["token"], customer.uuid)
            self.model.sessions[session.sid] = session

    @rule(data=st.data())
    def refresh(self, data: Any) -> None:
        """With a token session's newest refresh token, or with one it spent."""
        headless = [s for s in self.model.sessions.values() if s.refresh is not None]
        if not headless:
            return
        session = data.draw(st.sampled_from(headless), label="token session")
        assert session.refresh is not None
        replay = bool(session.spent) and data.draw(st.booleans(), label="replay")
        token = data.draw(st.sampled_from(session.spent)) if replay else session.refresh
        response = self.call("POST", "/customer/token/refresh", json={"refreshToken": token})
        if not self.model.works(session) or replay:
            assert response.status_code == 401, response.get_json()
            assert response.get_json()["error"]["message"] == "Invalid refresh token"
            if replay:
                session.ended = True  # theft: the whole session ends
            return
        assert response.status_code == 200, response.get_json()
        answered = response.get_json()["data"]
        session.spent.append(token)
        session.token, session.refresh = answered["accessToken"], answered["refreshToken"]

    @rule(data=st.data(), method=st.sampled_from(["DELETE", "POST"]))
    def logout(self, data: Any, method: str) -> None:
        if not self.model.sessions:
            return
        headers, actor = self.actor(data)
        by_uuid = data.draw(st.booleans(), label="all sessions of a customer")
        if by_uuid:
            target = self.target(data)
            ids, owner, exists = target.uuid, target.uuid, not target.deleted
        else:
            sessions = list(self.model.sessions.values())
            session = data.draw(st.sampled_from(sessions), label="session")
            owner = session.uuid
            ids, exists = session.sid, self.model.works(session)
        response = self.call(method, f"/customers/sessions/{ids}", headers=headers)

        if actor is not None and not self.model.works(actor):
            # Logging out of one's own ended session (and of nothing else) is a no-op
            # success: the client is logged out either way.
            expected: int | None = 0 if not by_uuid and ids == actor.sid else 401
        elif not exists:
            expected = 404
        elif actor is not None and actor.uuid != owner:
            expected = 403
        else:
            expected = None
        assert response.status_code == (expected or 200), (expected, response.get_json())
        if expected == 0:
            assert response.get_json() == {"data": {}}
        elif expected is None:
            if by_uuid:
                self.model.end_sessions(owner)
            else:
                self.model.sessions[ids].ended = True

    def own(self, data: Any) -> tuple[dict[str, str], Session | None, int | None]:
        """An actor for a ``/customers/me`` route, and the refusal it should get."""
        headers, session = self.actor(data)
        if session is None:
            return headers, None, 403
        return headers, session, None if self.model.works(session) else 401

    @rule(data=st.data())
    def read_me(self, data: Any) -> None:
        headers, session, expected = self.own(data)
        response = self.call("GET", "/customers/me", headers=headers)
        assert response.status_code == (expected or 200), (expected, response.get_json())
        if session is not None and expected is None:
            answered = response.get_json()["data"]
            customer = self.model.customers[session.uuid]
            assert (answered["uuid"], answered["email"]) == (customer.uuid, customer.email)

    @rule(data=st.data())
    def list_own_sessions(self, data: Any) -> None:
        headers, session, expected = self.own(data)
        response = self.call("GET", "/customers/me/sessions", headers=headers)
        assert response.status_code == (expected or 200), (expected, response.get_json())
        if session is not None and expected is None:
            items = response.get_json()["data"]["items"]
            live = {
                s.sid
                for s in self.model.sessions.values()
                if s.uuid == session.uuid and self.model.works(s)
            }
            assert {item["sid"] for item in items} == live
            assert [item["sid"] for item in items if item["current"]] == [session.sid]

    @rule(data=st.data())
    def end_other_sessions(self, data: Any) -> None:
        headers, session, expected = self.own(data)
        response = self.call("DELETE", "/customers/me/sessions", headers=headers)
        assert response.status_code == (expected or 200), (expected, response.get_json())
        if session is not None and expected is None:
            self.model.end_sessions(session.uuid, keep=session.sid)

    @rule(data=st.data(), spelling=st.sampled_from(sorted(SPELLINGS)))
    def reset_password(self, data: Any, spelling: str) -> None:
        """Ask for a reset of any email, and complete it with the mailed token."""
        email = SPELLINGS[spelling](data.draw(st.sampled_from(EMAILS)))
        canonical = email.lower()
        self.mailed.clear()
        response = self.call("POST", "/customers/reset-password", json={"email": email})
        if self.model.resets[canonical] >= MAX_FAILURES:
            assert response.status_code == 429, response.get_json()
            return
        self.model.resets[canonical] += 1
        assert response.status_code == 200 and response.get_json() == {"data": {}}
        customer = self.model.holder(canonical)
        if customer is None or customer.status != 1:
            assert self.mailed == []
            return
        [token] = self.mailed
        new = data.draw(st.sampled_from([PASSWORD, OTHER_PASSWORD]), label="new password")
        done = self.call("POST", "/customers/password", json={"token": token, "password": new})
        assert done.status_code == 200, done.get_json()
        customer.password = new
        self.model.end_sessions(customer.uuid)
        self.model.failures[canonical] = 0
        again = self.call("POST", "/customers/password", json={"token": token, "password": new})
        assert again.get_json()["error"]["message"] == "Token is invalid or expired"

    @rule(data=st.data(), default=st.booleans())
    def add_address(self, data: Any, default: bool) -> None:
        headers, session = self.actor(data)
        target = self.target(data)
        body = {**ADDRESS, "is_default": default}
        response = self.call(
            "POST", f"/customers/{target.uuid}/addresses", json=body, headers=headers
        )
        expected = self.denial(session, target)
        assert response.status_code == (expected or 200), (expected, response.get_json())
        if expected is None:
            if default:
                target.addresses = dict.fromkeys(target.addresses, False)
            target.addresses[response.get_json()["data"]["uuid"]] = default

    def an_address(self, data: Any) -> tuple[Customer, str] | None:
        owned = [(c, a) for c in self.model.customers.values() for a in c.addresses]
        if not owned:
            return None
        return data.draw(st.sampled_from(owned), label="address")  # type: ignore[no-any-return]

    @rule(data=st.data(), default=st.booleans())
    def change_default(self, data: Any, default: bool) -> None:
        chosen = self.an_address(data)
        if chosen is None:
            return
        owner, address = chosen
        headers, session = self.actor(data)
        url = f"/customers/{owner.uuid}/addresses/{address}"
        response = self.call("PATCH", url, json={"is_default": default}, headers=headers)
        expected = self.denial(session, owner)
        assert response.status_code == (expected or 200), (expected, response.get_json())
        if expected is None:
            if default:
                owner.addresses = dict.fromkeys(owner.addresses, False)
            owner.addresses[address] = default
            assert response.get_json()["data"]["is_default"] is default

    @rule(data=st.data())
    def delete_address(self, data: Any) -> None:
        chosen = self.an_address(data)
        if chosen is None:
            return
        owner, address = chosen
        headers, session = self.actor(data)
        url = f"/customers/{owner.uuid}/addresses/{address}"
        response = self.call("DELETE", url, headers=headers)
        expected = self.denial(session, owner)
        assert response.status_code == (expected or 200), (expected, response.get_json())
        if expected is None:
            del owner.addresses[address]

    # -- invariants -------------------------------------------------------------------

    @invariant()
    def addresses_stay_with_their_customer_and_one_default_at_most(self) -> None:
        Address, Customer_ = customers.models.Address, customers.models.Customer
        with self.app.app_context():
            rows = db.session.execute(
                sa.select(Customer_.uuid, Address.uuid, Address.is_default).join(
                    Customer_, Customer_.customer_id == Address.customer_id
                )
            ).all()
        found = {(owner, address, bool(default)) for owner, address, default in rows}
        expected = {
            (c.uuid, address, default)
            for c in self.model.customers.values()
            if not c.deleted
            for address, default in c.addresses.items()
        }
        assert found == expected
        owners = Counter(owner for owner, _, default in found if default)
        assert all(count == 1 for count in owners.values())

    @invariant()
    def tokens_work_exactly_while_their_session_is_live(self) -> None:
        for session in self.model.sessions.values():
            headers = {"Authorization": f"Bearer {session.token}"}
            response = self.call("PATCH", f"/customers/{session.uuid}", json={}, headers=headers)
            if self.model.works(session):
                assert response.status_code == 200, (session, response.get_json())
                assert response.get_json()["data"]["uuid"] == session.uuid
            else:
                assert response.status_code == 401, (session, response.get_json())

    @invariant()
    def a_session_has_at_most_one_unspent_refresh_token(self) -> None:
        table = customers.models.RefreshToken.__table__
        with self.app.app_context():
            unspent = db.session.execute(
                sa.select(table.c.sid).where(table.c.spent_at.is_(None))
            ).scalars()
            counts = Counter(unspent)
        assert all(count == 1 for count in counts.values()), counts
        assert set(counts) <= {s.sid for s in self.model.sessions.values() if s.refresh}

    @invariant()
    def emails_are_unique_by_canonical_form(self) -> None:
        Customer = customers.models.Customer
        with self.app.app_context():
            rows = db.session.execute(sa.select(Customer.email, Customer.email_canonical)).all()
        canonical = [row.email_canonical for row in rows]
        assert len(set(canonical)) == len(canonical)
        assert len({row.email.lower() for row in rows}) == len(rows)
        assert all(row.email.lower() == row.email_canonical for row in rows)
        alive = {c.canonical for c in self.model.customers.values() if not c.deleted}
        assert set(canonical) == alive


def test_random_sequences_keep_the_invariants(app_factory: AppFactory) -> None:
    class Machine(CustomerAPI):
        pass

    # Every registration comes from one test client's address; their limit per address
    # has tests of its own (test_throttling.py), the login limit is modelled here.
    Machine.app = app_factory(EVERSHOP_CUSTOMER_REGISTRATIONS_PER_IP=0)
    run_state_machine_as_test(
        Machine,
        settings=settings(
            max_examples=MAX_EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            derandomize=True,
            database=None,
        ),
    )
