"""Fixtures: a fresh app per test on each database, an API helper, and a leak check.

Every test that uses ``app`` runs on SQLite, PostgreSQL and MariaDB/MySQL. Each run makes
its own database on each server and drops it at the end. A server that does not answer
is skipped, except under CI (``CI=true``), where that is a failure.
``EVERSHOP_TEST_DATABASES=sqlite,postgresql`` limits the run to some backends.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from flask_sqlalchemy import SQLAlchemy
from werkzeug.security import check_password_hash, generate_password_hash
from werkzeug.test import TestResponse

from flask_evershop_customer import EverShopCustomer
from flask_evershop_customer import passwords as passwords_module
from flask_evershop_customer.state import AppState, get_state
from flask_evershop_customer.testing import wait_for_work_after_responses

BACKENDS = ("sqlite", "postgresql", "mysql")
SERVER_URLS = {
    "postgresql": os.environ.get(
        "EVERSHOP_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    ),
    "mysql": os.environ.get(
        "EVERSHOP_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test?charset=utf8mb4"
    ),
}
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
SECRET_KEY = "test-secret-key-that-is-long-enough-0123456789"
CHEAP_HASH = "pbkdf2:sha256:1"
PASSWORD = "correct horse battery"
OTHER_PASSWORD = "another fine password"
#: Every password the suite sends; none may ever come back in a response.
PASSWORDS = {PASSWORD, OTHER_PASSWORD}
HASH_PREFIXES = ("pbkdf2:", "scrypt:")

db = SQLAlchemy()
customers = EverShopCustomer(db=db)


#: ``app_factory(**config)``: an app on the test's database (see the fixture).
AppFactory = Callable[..., Flask]
AdminLoader = Callable[[str], bool]
#: The ``admin_loader`` fixture: registers a loader for one test.
AdminLoaderFixture = Callable[[AdminLoader], AdminLoader]


def selected_backends() -> list[str]:
    wanted = os.environ.get("EVERSHOP_TEST_DATABASES", "")
    return [b for b in BACKENDS if not wanted or b in wanted.split(",")]


# -- databases ------------------------------------------------------------------------


@dataclass
class Database:
    """One backend of this run: its URL and name."""

    backend: str
    url: str


def _create_server_database(backend: str) -> tuple[str, str]:
    """Create a fresh database on a server; return its URL and name."""
    name = f"efc_test_{os.getpid()}_{secrets.token_hex(4)}"
    server = sa.make_url(SERVER_URLS[backend])
    engine = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            if backend == "mysql":
                connection.exec_driver_sql(
                    f"CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
                )
            else:
                connection.exec_driver_sql(f"CREATE DATABASE {name}")
    finally:
        engine.dispose()
    return server.set(database=name).render_as_string(hide_password=False), name


def _drop_server_database(backend: str, name: str) -> None:
    engine = sa.create_engine(SERVER_URLS[backend], isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            if backend == "postgresql":
                connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            else:
                connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
    finally:
        engine.dispose()


@contextlib.contextmanager
def fresh_database(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An empty database of ``backend`` for this run, removed afterwards."""
    if backend == "sqlite":
        yield "sqlite:///" + str(tmp_path_factory.mktemp("sqlite") / "test.sqlite")
        return
    try:
        url, name = _create_server_database(backend)
    except sa.exc.OperationalError as exc:
        message = f"{backend} server is not reachable: {exc.orig}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield url
    finally:
        _drop_server_database(backend, name)


@pytest.fixture(scope="session", params=selected_backends())
def database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Database]:
    """A database per backend for the whole run, with the tables created once."""
    with fresh_database(request.param, tmp_path_factory) as url:
        engine = sa.create_engine(url)
        db.metadata.create_all(engine)
        engine.dispose()
        yield Database(request.param, url)


#: For a test that never touches a database (validation, routing, token checks): it
#: runs on one backend only instead of all of them.
database_free = pytest.mark.parametrize(
    "database", selected_backends()[:1], indirect=True, scope="session"
)


# -- apps -----------------------------------------------------------------------------


class CheckedClient(FlaskClient):
    """A test client that fails on any response leaking a password or a hash."""

    def open(self, *args: Any, **kwargs: Any) -> Any:
        response = super().open(*args, **kwargs)
        if response.request.path.endswith("/openapi.json"):
            return response  # the schema names the password field, and holds no data
        assert_no_secrets(response.get_data(as_text=True))
        for header in response.headers.getlist("Set-Cookie"):
            assert_no_secrets(header)
        response.close()  # as a server does once it is sent: work after the response runs
        wait_for_work_after_responses()
        return response


def assert_no_secrets(text: str) -> None:
    """Fail if ``text`` (a JSON body, or any text) carries a password or a hash."""
    try:
        value = json.loads(text)
    except ValueError:
        value = text
    for key, item in _walk(value):
        assert key not in ("password", "password_hash", "current_password"), text[:200]
        if isinstance(item, str):
            assert item not in PASSWORDS, f"a password in response: {text[:200]}"
            assert not item.startswith(HASH_PREFIXES), f"a hash in response: {text[:200]}"
            assert "$" not in item or not any(p in item for p in HASH_PREFIXES), text[:200]


def _walk(value: Any, key: str | None = None) -> Iterator[tuple[str | None, Any]]:
    yield key, value
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _walk(v, k)
    elif isinstance(value, list):
        for v in value:
            yield from _walk(v, key)


def make_app(url: str, *, set_up: bool = True, **config: Any) -> Flask:
    """A host app like a user's: its own db, the extension (unless ``set_up`` is false),
    a cheap hash for speed."""
    app = Flask("shop")
    app.test_client_class = CheckedClient
    app.config.update(
        TESTING=True,
        SECRET_KEY=SECRET_KEY,
        SQLALCHEMY_DATABASE_URI=url,
        EVERSHOP_CUSTOMER_PASSWORD_HASH_METHOD=CHEAP_HASH,
        EVERSHOP_CUSTOMER_ALLOW_WEAK_PASSWORD_HASH=True,
    )
    app.config.update(config)
    db.init_app(app)
    if set_up:
        customers.init_app(app)
    return app


@pytest.fixture
def bare_apps() -> Iterator[list[Flask]]:
    """Apps a test makes on in-memory databases it never uses (the OpenAPI document and
    page need none); their engines are disposed of afterwards."""
    apps: list[Flask] = []
    yield apps
    for app in apps:
        with app.app_context():
            db.engine.dispose()


def start_app(**config: Any) -> Flask:
    """An app with a db and an extension of its own on an in-memory database, set up with
    ``config`` over a valid ``SECRET_KEY``: enough for start-up and configuration checks."""
    sqla = SQLAlchemy()
    extension = EverShopCustomer(db=sqla)
    app = Flask("start-up")
    app.config.update(SQLALCHEMY_DATABASE_URI="sqlite://", SECRET_KEY=SECRET_KEY)
    app.config.update(config)
    sqla.init_app(app)
    extension.init_app(app)
    return app


def state_of(app: Flask) -> AppState:
    """What the extension built for ``app`` (settings, hasher, token codec): for the
    white-box tests that count hashes or forge tokens."""
    return get_state(app)


def clear_tables(app: Flask) -> None:
    with app.app_context():
        for table in reversed(db.metadata.sorted_tables):
            db.session.execute(table.delete())
        db.session.commit()


@pytest.fixture
def app_factory(database: Database) -> Iterator[AppFactory]:
    """``app_factory(**config)``: apps on this test's database, cleaned up afterwards."""
    made: list[Flask] = []

    def factory(**config: Any) -> Flask:
        app = make_app(database.url, **config)
        made.append(app)
        return app

    yield factory
    wait_for_work_after_responses()  # nothing of this test may write into the next one
    if made:
        clear_tables(made[0])
    for app in made:
        with app.app_context():
            db.engine.dispose()


@pytest.fixture
def app(app_factory: AppFactory) -> Flask:
    return app_factory()


@pytest.fixture
def hash_calls(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """How many password checks and hashes the extension makes."""
    calls = {"check": 0, "hash": 0}
    real_check, real_hash = check_password_hash, generate_password_hash

    def check(*args: Any, **kwargs: Any) -> bool:
        calls["check"] += 1
        return real_check(*args, **kwargs)

    def generate(*args: Any, **kwargs: Any) -> str:
        calls["hash"] += 1
        return real_hash(*args, **kwargs)

    monkeypatch.setattr(passwords_module, "check_password_hash", check)
    monkeypatch.setattr(passwords_module, "generate_password_hash", generate)
    return calls


@pytest.fixture
def admin_loader() -> Iterator[AdminLoaderFixture]:
    """``@admin_loader`` registers the host's admin loader for this test only (the
    extension instance is shared by the whole suite)."""
    yield customers.admin_loader
    customers.admin_loader(lambda _admin_id: True)  # accept every live session again


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A client without a cookie jar: every credential is passed explicitly."""
    return app.test_client(use_cookies=False)


@pytest.fixture
def cookie_client(app: Flask) -> FlaskClient:
    """A client that keeps cookies, like a browser."""
    return app.test_client()


# -- the API helper -------------------------------------------------------------------


@dataclass
class Login:
    token: str
    sid: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class TokenPair:
    """What ``POST /customer/tokens`` answered."""

    access: str
    refresh: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access}"}


class Api:
    """Shortcuts for the five endpoints, in the spirit of the Flask tutorial's ``auth``."""

    def __init__(self, app: Flask, client: FlaskClient, *, prefix: str = "/api") -> None:
        self.app = app
        self.client = client
        self.prefix = prefix
        self._count = 0

    def register(
        self,
        email: str | None = None,
        password: str = PASSWORD,
        full_name: str = "Alice Example",
        **extra: Any,
    ) -> dict[str, Any]:
        if email is None:
            self._count += 1
            email = f"customer{self._count}@example.com"
        body = {"email": email, "password": password, "full_name": full_name, **extra}
        if extra.get("status") in (0, "0"):  # only an admin may create a disabled account
            response = self.app.test_client(use_cookies=False).post(
                f"{self.prefix}/customers", json=body, headers=self.admin_headers()
            )
        else:
            response = self.client.post(f"{self.prefix}/customers", json=body)
        assert response.status_code == 200, response.get_json()
        return response.get_json()["data"]  # type: ignore[no-any-return]

    def login(self, email: str, password: str = PASSWORD) -> Login:
        response = self.client.post(
            f"{self.prefix}/customers/sessions", json={"email": email, "password": password}
        )
        assert response.status_code == 200, response.get_json()
        data = response.get_json()["data"]
        return Login(data["token"], data["sid"])

    def tokens(self, email: str, password: str = PASSWORD) -> TokenPair:
        """A headless client's login: an access token and a refresh token."""
        response = self.client.post(
            f"{self.prefix}/customer/tokens", json={"email": email, "password": password}
        )
        assert response.status_code == 200, response.get_json()
        data = response.get_json()["data"]
        return TokenPair(data["accessToken"], data["refreshToken"])

    def refresh(self, refresh_token: object) -> TestResponse:
        """``POST /customer/token/refresh`` with ``refresh_token``, as sent."""
        return self.client.post(
            f"{self.prefix}/customer/token/refresh", json={"refreshToken": refresh_token}
        )

    def admin_headers(self, admin_id: str = "admin") -> dict[str, str]:
        with self.app.app_context():
            value = self.app.extensions["evershop_customer"].admin_sessions.open(admin_id)
        return {"Cookie": f"asid={value}"}


@pytest.fixture
def api(app: Flask, client: FlaskClient) -> Api:
    return Api(app, client)


@pytest.fixture
def alice(api: Api) -> dict[str, Any]:
    """Alice, registered: her record as the API answered it."""
    return api.register("alice@example.com")


@pytest.fixture
def alice_login(api: Api, alice: dict[str, Any]) -> Login:
    """A live session of Alice's."""
    return api.login("alice@example.com")


# -- counting -------------------------------------------------------------------------


class StatementCounter:
    """Counts the SQL statements an engine executes (not BEGIN/COMMIT, even where
    SQLite's write lock is taken with an explicit ``BEGIN IMMEDIATE``)."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    def __call__(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if not statement.lstrip().upper().startswith("BEGIN"):
            self.statements.append(statement)

    @property
    def count(self) -> int:
        return len(self.statements)


@contextlib.contextmanager
def count_statements(app: Flask) -> Iterator[StatementCounter]:
    """Count the statements run on ``app``'s engine inside the block."""
    counter = StatementCounter()
    with app.app_context():
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", counter)
    try:
        yield counter
    finally:
        sa.event.remove(engine, "before_cursor_execute", counter)


# -- reading the tables ---------------------------------------------------------------


def table_contents(app: Flask) -> dict[str, list[dict[str, Any]]]:
    """Every row of the extension's tables, in primary-key order, as a connection of its
    own sees them (so only what is committed): compare two of these to show that a
    request changed nothing. (The example app has a ``db`` of its own.)"""
    sqla = app.extensions["sqlalchemy"]
    with app.app_context():
        engine = sqla.engine
    with engine.connect() as connection:
        return {
            table.name: [
                dict(row._mapping)
                for row in connection.execute(sa.select(table).order_by(*table.primary_key.columns))
            ]
            for table in sqla.metadata.sorted_tables
            if table.name.startswith("evershop_customer")
        }
