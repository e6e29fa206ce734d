"""The Python examples of the README and the manual, run as written (only their
placeholders filled in), each checked against what the prose around it promises.

Every block is fetched by its literal name, so ``tests/test_docs_blocks.py`` can tell that
it is run. The apps are on SQLite, in a file of the test's own.
"""

from __future__ import annotations

import importlib
import logging
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy
from flask import Blueprint, Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from flask_evershop_customer import EverShopCustomer, password_reset_requested
from flask_evershop_customer.signals import customer_created

from . import docs_blocks
from .conftest import (
    CHEAP_HASH,
    OTHER_PASSWORD,
    PASSWORD,
    SECRET_KEY,
    Api,
    CheckedClient,
)
from .docs_blocks import Block

#: What the examples' ``SECRET_KEY="...at least 32 random bytes..."`` stands for.
SECRET_PLACEHOLDER = '"...at least 32 random bytes..."'
SECURITY_LOGGER = "flask_evershop_customer.security"


def extension_tables() -> set[str]:
    """The names of the extension's tables, from a throwaway instance's metadata."""
    sqla = SQLAlchemy()
    EverShopCustomer(db=sqla)
    return set(sqla.metadata.tables)


def fill_secret(code: str) -> str:
    """The block with its ``SECRET_KEY`` placeholder replaced by a real key."""
    assert SECRET_PLACEHOLDER in code
    return code.replace(SECRET_PLACEHOLDER, repr(SECRET_KEY))


def run_block(block: Block, namespace: dict[str, Any], code: str | None = None) -> None:
    """Execute ``block`` (or ``code``, its text with placeholders filled in) in
    ``namespace``; tracebacks point at the block's place in the docs."""
    assert block.language == "python", block.where()
    exec(compile(code or block.text, block.where(), "exec"), namespace)


def table_names(path: Path) -> set[str]:
    """The tables of the SQLite database at ``path``."""
    assert path.exists(), path
    engine = sqlalchemy.create_engine(f"sqlite:///{path}")
    try:
        return set(sqlalchemy.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def outside_env() -> dict[str, str]:
    """This process's environment without the ``FLASK_*`` and ``EVERSHOP_*`` variables
    that would change a subprocess's app."""
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("FLASK_", "EVERSHOP_"))
    }


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


# -- a host app, built the way the examples assume ------------------------------------


@dataclass
class Host:
    """A host app with its own ``db`` and ``customers``: what the examples call them."""

    app: Flask
    db: SQLAlchemy
    customers: EverShopCustomer

    def namespace(self, **names: Any) -> dict[str, Any]:
        """The names the examples use, and ``names``."""
        return {"app": self.app, "db": self.db, "customers": self.customers, **names}

    def api(self) -> Api:
        return Api(self.app, self.app.test_client(use_cookies=False))

    def run(self, *blocks: Block, **names: Any) -> dict[str, Any]:
        """Run ``blocks`` as more of the factory's module, then register its ``shop``
        blueprint, as ``create_app`` does once the routes are defined."""
        namespace = self.namespace(shop=Blueprint("shop", __name__), **names)
        for block in blocks:
            run_block(block, namespace)
        self.app.register_blueprint(namespace["shop"])
        return namespace


class HostBuilder:
    """Hosts on SQLite files under one folder, their engines disposed at the end."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.made: list[Host] = []

    def bare(self, **config: Any) -> Host:
        """A configured app, its ``db`` and ``customers``: neither is set up on it yet."""
        sqla = SQLAlchemy()
        host = Host(Flask("shop"), sqla, EverShopCustomer(db=sqla))
        host.app.test_client_class = CheckedClient
        host.app.config.update(
            TESTING=True,
            SECRET_KEY=SECRET_KEY,
            SQLALCHEMY_DATABASE_URI=sqlite_url(self.folder / f"host{len(self.made)}.sqlite"),
            EVERSHOP_CUSTOMER_PASSWORD_HASH_METHOD=CHEAP_HASH,
            EVERSHOP_CUSTOMER_ALLOW_WEAK_PASSWORD_HASH=True,
        )
        host.app.config.update(config)
        self.made.append(host)
        return host

    def __call__(self, **config: Any) -> Host:
        """A host with the extension set up and its tables created."""
        host = self.bare(**config)
        host.db.init_app(host.app)
        host.customers.init_app(host.app)
        with host.app.app_context():
            host.db.create_all()
        return host

    def close(self) -> None:
        for host in self.made:
            if "sqlalchemy" in host.app.extensions:
                with host.app.app_context():
                    host.db.engine.dispose()


@pytest.fixture
def hosts(tmp_path: Path) -> Iterator[HostBuilder]:
    builder = HostBuilder(tmp_path)
    yield builder
    builder.close()


@pytest.fixture
def host(hosts: HostBuilder) -> Host:
    return hosts()


# -- the README -----------------------------------------------------------------------


def test_readme_smallest_app_registers_and_logs_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's smallest integration, a module of its own, serves ``POST
    /api/customers`` and ``POST /api/customers/sessions``, creates its tables itself, and
    keeps ``sqlite:///shop.db`` in the app's instance folder."""
    # As written but for the SECRET_KEY placeholder; sqlite:///shop.db stays as it is.
    (tmp_path / "readme_shop.py").write_text(
        fill_secret(docs_blocks.block("readme-smallest-app").text), "utf-8"
    )
    for key in list(os.environ):
        if key.startswith(("FLASK_", "EVERSHOP_")):
            monkeypatch.delenv(key)
    # A complete app as written: speed and test mode come the way a user's would, through
    # the variables that its from_prefixed_env() reads.
    monkeypatch.setenv("FLASK_TESTING", "true")
    monkeypatch.setenv("FLASK_EVERSHOP_CUSTOMER_PASSWORD_HASH_METHOD", CHEAP_HASH)
    monkeypatch.setenv("FLASK_EVERSHOP_CUSTOMER_ALLOW_WEAK_PASSWORD_HASH", "true")
    monkeypatch.syspath_prepend(str(tmp_path))
    module: ModuleType = importlib.import_module("readme_shop")
    monkeypatch.setitem(sys.modules, "readme_shop", module)  # removed again afterwards

    app: Flask = module.create_app()
    try:
        assert app.config["SECRET_KEY"] == SECRET_KEY
        # Flask-SQLAlchemy puts a relative SQLite path in the instance folder.
        assert extension_tables() <= table_names(tmp_path / "instance" / "shop.db")
        client = app.test_client(use_cookies=False)
        credentials = {"email": "ann@example.com", "password": PASSWORD}
        created = client.post("/api/customers", json={**credentials, "full_name": "Ann"})
        assert created.status_code == 200, created.get_json()
        session = client.post("/api/customers/sessions", json=credentials)
        assert session.status_code == 200, session.get_json()
        token = session.get_json()["data"]["token"]
        me = client.get("/api/customers/me", headers={"Authorization": f"Bearer {token}"})
        assert me.get_json()["data"]["uuid"] == created.get_json()["data"]["uuid"]
    finally:
        with app.app_context():
            module.db.engine.dispose()


# -- the integration chapter: the factory and migrations -------------------------------

#: The host's own model, added to the factory's module: Flask-Migrate writes no
#: revision while autogenerate finds nothing to change, as the chapter says.
HOST_MODEL = """

class Product(db.Model):
    __tablename__ = "shop_product"
    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.String(80), nullable=False)
"""


def run_flask(tmp_path: Path, console: Block, env: dict[str, str]) -> None:
    """Run every command of a console block as ``python -m flask --app shop ...`` in
    ``tmp_path`` (the docs' ``flask`` is the one of the host's environment)."""
    assert console.language == "console", console.where()
    commands = docs_blocks.commands(console.text)
    assert commands, console.where()
    for command in commands:
        program, *args = shlex.split(command)
        assert program == "flask", command
        result = subprocess.run(
            [sys.executable, "-m", "flask", "--app", "shop", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, (command, result.stdout, result.stderr)


def test_app_factory_with_the_documented_migration_commands(tmp_path: Path) -> None:
    """The chapter's factory is a working host: ``flask db init``, ``flask db upgrade
    heads`` create the extension's tables, and the host's first revision starts branch
    ``shop`` in the host's own ``migrations/versions``, leaving the extension's tables
    alone. ``FLASK_SQLALCHEMY_DATABASE_URI`` in the environment then wins over the
    factory's default database."""
    # As written but for the SECRET_KEY placeholder, plus a model of the host's own.
    code = fill_secret(docs_blocks.block("app-factory").text)
    (tmp_path / "shop.py").write_text(code + HOST_MODEL, "utf-8")
    env = outside_env()
    default_database = tmp_path / "instance" / "shop.db"

    run_flask(tmp_path, docs_blocks.block("db-init"), env)
    run_flask(tmp_path, docs_blocks.block("upgrade-heads"), env)
    assert table_names(default_database) == extension_tables() | {"alembic_version"}
    run_flask(tmp_path, docs_blocks.block("first-own-revision"), env)

    revisions = list((tmp_path / "migrations" / "versions").glob("*.py"))
    assert len(revisions) == 1, revisions
    revision = revisions[0].read_text("utf-8")
    assert "branch_labels = ('shop',)" in revision
    assert "down_revision = None" in revision
    assert "create_table('shop_product'" in revision
    assert "evershop_customer" not in revision  # autogenerate sees them as up to date

    other_database = tmp_path / "other.sqlite"
    run_flask(
        tmp_path,
        docs_blocks.block("upgrade-heads"),
        {**env, "FLASK_SQLALCHEMY_DATABASE_URI": sqlite_url(other_database)},
    )
    # Both branches land in the other database; the default one was left as it was.
    assert table_names(other_database) == extension_tables() | {
        "alembic_version",
        "shop_product",
    }
    assert "shop_product" not in table_names(default_database)


def test_register_blueprint_lines_under_api_and_v1(hosts: HostBuilder) -> None:
    """Each line of the block, on an app of its own, sets the extension up: the plain
    registration serves under the configured ``/api``, ``url_prefix="/v1"`` moves it."""
    block = docs_blocks.block("register-blueprint")
    lines = [line for line in block.text.splitlines() if line]
    assert len(lines) == 2
    for line, prefix, other in zip(lines, ["/api", "/v1"], ["/v1", "/api"], strict=True):
        host = hosts.bare()
        host.db.init_app(host.app)
        # Registering one blueprint twice on one app raises: one fresh app per line.
        run_block(block, host.namespace(), code=line)
        rules = [rule.rule for rule in host.app.url_map.iter_rules()]
        assert f"{prefix}/customers/sessions" in rules
        assert not any(rule.startswith(f"{other}/") for rule in rules)
        response = host.app.test_client().get(f"{prefix}/customers/openapi.json")
        assert response.status_code == 200


# -- the integration chapter: admins and protected routes ------------------------------


class HostModel(DeclarativeBase):
    """The host's own models (the extension's are on its ``db``)."""


class Admin(HostModel):
    """The host's admins, as the chapter's example assumes; a plain-text password is
    enough for a stub credential check."""

    __tablename__ = "shop_admin"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sqlalchemy.String(80), unique=True)
    password: Mapped[str] = mapped_column(sqlalchemy.String(80))


ADMIN_EMAIL, ADMIN_PASSWORD = "ops@example.com", "the admin's own password"


def admin_login_host(host: Host) -> None:
    """Run the chapter's own routes and admin blocks on ``host``, with one admin (id 1) in
    its table."""

    def check_your_admin_credentials(body: dict[str, Any]) -> Admin | None:
        admin = host.db.session.scalar(
            sqlalchemy.select(Admin).where(Admin.email == body.get("email"))
        )
        return admin if admin is not None and admin.password == body.get("password") else None

    with host.app.app_context():
        HostModel.metadata.create_all(host.db.engine)
        host.db.session.add(Admin(id=1, email=ADMIN_EMAIL, password=ADMIN_PASSWORD))
        host.db.session.commit()
    host.run(
        docs_blocks.block("own-routes"),
        docs_blocks.block("admin-login"),
        Admin=Admin,
        check_your_admin_credentials=check_your_admin_credentials,
    )


def test_admin_login_logout_and_protected_routes(host: Host) -> None:
    """The chapter's admin block: a wrong password is 400, the right one sets the admin
    cookie, which opens ``/admin/report`` (401 without it); a logout from another origin is
    403 and ends nothing; logout ends the session so the old cookie value stops working; a
    customer token opens ``/account``."""
    admin_login_host(host)
    app = host.app
    browser = app.test_client()
    wrong = browser.post("/admin/login", json={"email": ADMIN_EMAIL, "password": "wrong"})
    assert wrong.status_code == 400
    assert wrong.get_json() == {"error": {"status": 400, "message": "Invalid email or password"}}
    assert browser.get_cookie("asid") is None

    right = browser.post("/admin/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    assert right.status_code == 200 and right.get_json() == {"ok": True}
    cookie = browser.get_cookie("asid")
    assert cookie is not None
    assert browser.get("/admin/report").get_json() == {"report": "..."}
    assert app.test_client().get("/admin/report").status_code == 401

    elsewhere = {"Origin": "https://evil.example"}
    assert browser.post("/admin/logout", headers=elsewhere).status_code == 403
    assert browser.get("/admin/report").status_code == 200
    assert browser.post("/admin/logout").get_json() == {"ok": True}
    assert browser.get_cookie("asid") is None
    copied = app.test_client(use_cookies=False)
    old_cookie = {"Cookie": f"asid={cookie.value}"}
    assert copied.get("/admin/report", headers=old_cookie).status_code == 401

    api = host.api()
    api.register("ann@example.com")
    login = api.login("ann@example.com")
    assert copied.get("/account", headers=login.headers).get_json() == {"email": "ann@example.com"}
    assert copied.get("/account").status_code == 401


def test_admin_login_is_throttled(host: Host) -> None:
    """``customers.throttle.attempt`` limits the example's admin login per email: past
    ``EVERSHOP_CUSTOMER_LOGIN_MAX_FAILURES`` failures it answers 429 with ``Retry-After``
    through the block's error handler, even for the right password."""
    admin_login_host(host)
    client = host.app.test_client(use_cookies=False)
    limit = host.app.config["EVERSHOP_CUSTOMER_LOGIN_MAX_FAILURES"]
    wrong = {"email": ADMIN_EMAIL.upper(), "password": "wrong"}
    for _ in range(limit):
        assert client.post("/admin/login", json=wrong).status_code == 400
    throttled = client.post("/admin/login", json={"email": ADMIN_EMAIL, "password": "wrong"})
    assert throttled.status_code == 429
    assert throttled.get_json()["error"]["status"] == 429
    assert int(throttled.headers["Retry-After"]) > 0
    right = {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    assert client.post("/admin/login", json=right).status_code == 429


@pytest.mark.parametrize("admin_id", ["ops-1", "²", "1.0"])
def test_admin_loader_refuses_a_non_numeric_id(host: Host, admin_id: str) -> None:
    """The example's ``admin_loader`` checks the id before ``int()``: a live session of a
    non-numeric admin id (``"²"`` is a digit to ``str.isdigit`` but not to ``int``) is
    refused with 401, not a 500; the numeric id of an existing admin is accepted."""
    admin_login_host(host)
    with host.app.app_context():
        sessions = host.app.extensions["evershop_customer"].admin_sessions
        refused, accepted = sessions.open(admin_id), sessions.open("1")
    client = host.app.test_client(use_cookies=False)
    response = client.get("/admin/report", headers={"Cookie": f"asid={refused}"})
    assert response.status_code == 401
    assert client.get("/admin/report", headers={"Cookie": f"asid={accepted}"}).status_code == 200


def test_whoami_answers_the_identity(host: Host) -> None:
    """``/whoami`` answers the uuid and session id of the bearer token's session, and
    ``customer_required`` refuses a request without one."""
    host.run(docs_blocks.block("whoami"))
    api = host.api()
    customer = api.register("ann@example.com")
    login = api.login("ann@example.com")
    response = api.client.get("/whoami", headers=login.headers)
    assert response.get_json() == {"data": {"uuid": customer["uuid"], "sid": login.sid}}
    assert api.client.get("/whoami").status_code == 401


def test_current_customer_on_open_routes(host: Host, caplog: pytest.LogCaptureFixture) -> None:
    """``current_customer`` is falsy-anonymous without credentials and the customer with
    them; ``get_current_customer()`` is ``None`` or the record; asking on a request without
    credentials logs nothing."""
    calls: list[int] = []

    def your_orders_of(customer_id: int) -> list[str]:
        calls.append(customer_id)
        return ["order-1"]

    host.run(docs_blocks.block("current-customer"), your_orders_of=your_orders_of)
    api = host.api()
    customer = api.register("ann@example.com")
    login = api.login("ann@example.com")

    caplog.set_level(logging.INFO, logger=SECURITY_LOGGER)
    caplog.clear()
    assert api.client.get("/").get_json() == {"customer": None}
    assert api.client.get("/orders").get_json() == {"orders": []}
    assert [r for r in caplog.records if r.name == SECURITY_LOGGER] == []
    assert calls == []

    assert api.client.get("/", headers=login.headers).get_json() == {"customer": customer["uuid"]}
    assert api.client.get("/orders", headers=login.headers).get_json() == {"orders": ["order-1"]}
    assert calls == [customer["customer_id"]]


def test_signal_receiver_logs_new_customers(host: Host, caplog: pytest.LogCaptureFixture) -> None:
    """The ``customer_created`` receiver writes ``new customer <uuid>`` on the app's log
    when a customer registers."""
    namespace = host.namespace()
    run_block(docs_blocks.block("signal-receiver"), namespace)
    try:
        caplog.set_level(logging.INFO, logger=host.app.logger.name)
        customer = host.api().register("ann@example.com")
    finally:
        customer_created.disconnect(namespace["welcome"])
    messages = [r.getMessage() for r in caplog.records if r.name == host.app.logger.name]
    assert messages == [f"new customer {customer['uuid']}"]


# -- the HTTP API chapter --------------------------------------------------------------


def test_reset_receiver_mails_a_working_link(host: Host) -> None:
    """The ``password_reset_requested`` receiver gets the customer's email and the token
    (nothing for an unknown email); the link's token completes the reset through ``POST
    /api/customers/password``, after which the new password logs in and the old one not."""
    mails: list[tuple[str, str]] = []

    def send_mail(to: str, body: str) -> None:
        mails.append((to, body))

    namespace = host.namespace(send_mail=send_mail)
    run_block(docs_blocks.block("reset-receiver"), namespace)
    try:
        api = host.api()
        api.register("ann@example.com")
        for email in ("nobody@example.com", "ann@example.com"):
            response = api.client.post("/api/customers/reset-password", json={"email": email})
            assert response.get_json() == {"data": {}}
    finally:
        password_reset_requested.disconnect(namespace["mail_reset_link"])

    assert len(mails) == 1
    to, link = mails[0]
    assert to == "ann@example.com"
    url = urlsplit(link)
    assert (url.scheme, url.netloc, url.path) == ("https", "shop.example", "/reset-password")
    (token,) = parse_qs(url.query)["token"]
    completed = api.client.post(
        "/api/customers/password", json={"token": token, "password": OTHER_PASSWORD}
    )
    assert completed.get_json() == {"data": {}}
    api.login("ann@example.com", OTHER_PASSWORD)
    old = {"email": "ann@example.com", "password": PASSWORD}
    assert api.client.post("/api/customers/sessions", json=old).status_code == 400


# -- the security chapter --------------------------------------------------------------


def test_the_security_log_line_shown_is_what_a_login_writes(
    host: Host, caplog: pytest.LogCaptureFixture
) -> None:
    """A login's security log line has the shape the chapter shows: the event, then the
    same fields in the same order, a session as a 16-hex-digit digest."""
    shown = docs_blocks.block("security-log-line").text.strip()
    caplog.set_level(logging.INFO, logger=SECURITY_LOGGER)
    api = host.api()
    customer = api.register("ann@example.com")
    api.login("ann@example.com")
    (line,) = [
        record.getMessage()
        for record in caplog.records
        if record.name == SECURITY_LOGGER and record.getMessage().startswith("login ")
    ]
    assert re.sub(r'="[^"]*"', '=""', line) == re.sub(r'="[^"]*"', '=""', shown)
    assert f'customer="{customer["uuid"]}"' in line
    assert re.search(r'sid="[0-9a-f]{16}"', line) and re.search(r'sid="[0-9a-f]{16}"', shown)


def test_proxy_fix_counts_failures_per_forwarded_address(hosts: HostBuilder) -> None:
    """Behind ``ProxyFix``, failed logins count against the address in
    ``X-Forwarded-For``: one client over the per-address limit is throttled, while
    another client, and the proxy's own address, are not."""
    host = hosts(EVERSHOP_CUSTOMER_LOGIN_MAX_FAILURES_PER_IP=2)
    run_block(docs_blocks.block("proxy-fix"), host.namespace())
    client = host.app.test_client(use_cookies=False)

    def login_from(address: str | None, email: str) -> int:
        headers = {"X-Forwarded-For": address} if address else {}
        body = {"email": email, "password": "not the password"}
        return client.post("/api/customers/sessions", json=body, headers=headers).status_code

    assert login_from("203.0.113.7", "a@example.com") == 400
    assert login_from("203.0.113.7", "b@example.com") == 400
    assert login_from("203.0.113.7", "c@example.com") == 429
    assert login_from("198.51.100.9", "d@example.com") == 400
    assert login_from(None, "e@example.com") == 400


def test_security_log_handler_writes_utc_lines(
    host: Host, capsys: pytest.CaptureFixture[str]
) -> None:
    """The chapter's handler writes each security event as ``<UTC time>Z
    flask_evershop_customer.security <event> ...``: a login gives a ``login`` line naming
    the customer, stamped with the current UTC time."""
    security = logging.getLogger(SECURITY_LOGGER)
    level, handlers = security.level, list(security.handlers)
    try:
        run_block(docs_blocks.block("security-log-handler"), {})
        api = host.api()
        customer = api.register("ann@example.com")
        api.login("ann@example.com")
    finally:
        for handler in security.handlers[:]:
            if handler not in handlers:
                security.removeHandler(handler)
        security.setLevel(level)
    lines = [
        line
        for line in capsys.readouterr().err.splitlines()
        if f' login customer="{customer["uuid"]}"' in line
    ]
    assert len(lines) == 1, lines
    match = re.fullmatch(
        r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),\d{3}Z flask_evershop_customer\.security login .*",
        lines[0],
    )
    assert match, lines[0]
    stamped = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc)
    assert abs(datetime.now(timezone.utc) - stamped) < timedelta(minutes=1)


# -- the deployment chapter ------------------------------------------------------------


def test_sqlite_pragmas_take_effect(hosts: HostBuilder) -> None:
    """On a file-based SQLite, the block's connections wait 30 s for a lock, use WAL and
    enforce foreign keys, and the extension works on them."""
    host = hosts.bare()
    run_block(docs_blocks.block("sqlite-pragmas"), host.namespace())
    host.customers.init_app(host.app)
    with host.app.app_context():
        host.db.create_all()
        with host.db.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000
    api = host.api()
    api.register("ann@example.com")
    api.login("ann@example.com")


# -- the integration chapter: a host's own tests ---------------------------------------


def test_host_test_example_passes(tmp_path: Path) -> None:
    """The chapter's example of a host's own test passes under pytest in a process of its
    own (with a configuration of its own, not this suite's), against the module the
    chapter builds: the factory, then the own routes."""
    factory = fill_secret(docs_blocks.block("app-factory").text)
    (tmp_path / "shop.py").write_text(
        factory + "\n\n" + docs_blocks.block("own-routes").text, "utf-8"
    )
    (tmp_path / "test_shop.py").write_text(docs_blocks.block("host-test-example").text, "utf-8")
    (tmp_path / "pytest.ini").write_text("[pytest]\n", "utf-8")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-c",
            str(tmp_path / "pytest.ini"),
            "--rootdir",
            str(tmp_path),
            "--basetemp",
            str(tmp_path / "basetemp"),
            "test_shop.py",
        ],
        cwd=tmp_path,
        env=outside_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"\b1 passed\b", result.stdout), result.stdout
    assert "warning" not in result.stdout.lower(), result.stdout
