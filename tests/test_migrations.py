"""The shipped Alembic branch: on each database it builds exactly the models' schema,
downgrades to nothing and upgrades again; a host with its own migrations picks it up;
and the wheel carries it (with the other data files)."""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Flask
from flask_migrate import Migrate
from flask_migrate.cli import db as db_command
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import Mapped, mapped_column

from flask_evershop_customer import MIGRATIONS_DIRECTORY, EverShopCustomer, add_version_location

from . import docs_blocks
from .conftest import (
    CHEAP_HASH,
    PASSWORD,
    SECRET_KEY,
    db,
    fresh_database,
    make_app,
    selected_backends,
)

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "flask_evershop_customer" / "migrations" / "versions"
OUR_TABLES = {
    "evershop_customer",
    "evershop_customer_session",
    "evershop_customer_login_failure",
    "evershop_customer_admin_session",
    "evershop_customer_reset_token",
    "evershop_customer_refresh_token",
    "evershop_customer_address",
}
#: The head of the shipped branch.
HEAD = "evershop_customer_0008"


@pytest.fixture(params=selected_backends())
def empty_database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A database of its own, with nothing in it."""
    with fresh_database(request.param, tmp_path_factory) as url:
        yield url


def flask_db(app: Flask, *args: str) -> str:
    """Run ``flask db ARGS`` on ``app``; its output."""
    result = app.test_cli_runner().invoke(db_command, list(args))
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def differences(app: Flask, metadata: sa.MetaData) -> list[Any]:
    """What Alembic's autogenerate would change to make the database match ``metadata``
    (types and server defaults compared too)."""
    sqla = app.extensions["sqlalchemy"]
    with app.app_context(), sqla.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "compare_server_default": True}
        )
        diffs: list[Any] = compare_metadata(context, metadata)  # typed "-> Any" by Alembic
        return diffs


def schema(app: Flask) -> dict[str, Any]:
    """Tables, indexes, unique constraints and foreign keys, as the database reports them."""
    sqla = app.extensions["sqlalchemy"]
    found = {}
    with app.app_context(), sqla.engine.connect() as connection:
        inspector = sa.inspect(connection)
        for table in inspector.get_table_names():
            if table == "alembic_version":
                continue
            unique = inspector.get_unique_constraints(table)
            # MySQL reports a unique constraint as a unique index as well.
            constraint_names = {u["name"] for u in unique}
            found[table] = {
                "indexes": sorted(
                    (i["name"], tuple(i["column_names"]), bool(i["unique"]))
                    for i in inspector.get_indexes(table)
                    if not i.get("duplicates_constraint") and i["name"] not in constraint_names
                ),
                "unique": sorted((u["name"], tuple(u["column_names"])) for u in unique),
                "foreign_keys": sorted(
                    (f["name"], tuple(f["constrained_columns"]), f["referred_table"])
                    for f in inspector.get_foreign_keys(table)
                ),
            }
    return found


def _expected_schema() -> dict[str, Any]:
    expected = {}
    for table in db.metadata.sorted_tables:
        expected[table.name] = {
            "indexes": sorted(
                (i.name, tuple(c.name for c in i.columns), bool(i.unique)) for i in table.indexes
            ),
            "unique": sorted(
                (c.name, tuple(col.name for col in c.columns))
                for c in table.constraints
                if isinstance(c, sa.UniqueConstraint)
            ),
            "foreign_keys": sorted(
                (f.name, tuple(col.name for col in f.columns), f.referred_table.name)
                for f in table.foreign_key_constraints
            ),
        }
    return expected


def test_upgrade_builds_the_models_schema_and_downgrade_removes_it(empty_database: str) -> None:
    app = make_app(empty_database)
    Migrate(app, db, directory=MIGRATIONS_DIRECTORY)
    try:
        flask_db(app, "upgrade", "heads")
        assert differences(app, db.metadata) == []
        # The comparison is not blind: against no models it would drop our tables.
        blind = differences(app, sa.MetaData())
        assert {diff[1].name for diff in blind if diff[0] == "remove_table"} == OUR_TABLES
        # No implicit index (MySQL makes one for a foreign key without its own index),
        # no unnamed constraint: exactly what the models declare.
        assert schema(app) == _expected_schema()
        with app.app_context():
            dialect = db.engine.dialect.name
        if dialect == "mysql":
            _assert_mysql_charsets(app)
        with app.app_context():
            version = db.session.execute(sa.text("SELECT version_num FROM alembic_version"))
            assert version.scalars().all() == [HEAD]

        flask_db(app, "downgrade", "base")
        assert schema(app) == {}
        with app.app_context():
            assert db.session.execute(sa.text("SELECT * FROM alembic_version")).all() == []

        flask_db(app, "upgrade", "heads")
        assert differences(app, db.metadata) == []
        # And the schema works: the API on the migrated database.
        client = app.test_client()
        body = {"email": "alice@example.com", "password": PASSWORD, "full_name": "Alice"}
        assert client.post("/api/customers", json=body).status_code == 200
        assert client.post("/api/customers/sessions", json=body).status_code == 200
    finally:
        with app.app_context():
            db.engine.dispose()


def _assert_mysql_charsets(app: Flask) -> None:
    with app.app_context():
        rows = db.session.execute(
            sa.text(
                "SELECT table_name, column_name, collation_name FROM information_schema.columns"
                " WHERE table_schema = DATABASE() AND collation_name IS NOT NULL"
            )
        ).all()
    collations = {(table, column): collation for table, column, collation in rows}
    assert collations[("evershop_customer", "email_canonical")] == "utf8mb4_bin"
    assert collations[("evershop_customer", "email")] == "utf8mb4_unicode_ci"
    assert all(c.startswith("utf8mb4_") for c in collations.values()), collations


# -- a host with migrations of its own ------------------------------------------------

host_db = SQLAlchemy()
host_customers = EverShopCustomer(db=host_db)


class Product(host_db.Model):  # type: ignore[name-defined,misc]
    """A table of the host's own."""

    __tablename__ = "host_product"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(80))


@contextlib.contextmanager
def logging_restored() -> Iterator[None]:
    """``flask db init``'s env.py configures logging from alembic.ini (and disables every
    other logger); undo that for the rest of the run."""
    manager = logging.Logger.manager
    saved = {
        name: (logger.disabled, logger.level, list(logger.handlers), logger.propagate)
        for name, logger in [("", logging.root), *manager.loggerDict.items()]
        if isinstance(logger, logging.Logger)
    }
    try:
        yield
    finally:
        for name, logger in [("", logging.root), *manager.loggerDict.items()]:
            if not isinstance(logger, logging.Logger):
                continue
            disabled, level, handlers, propagate = saved.get(name, (False, 0, [], True))
            logger.disabled, logger.propagate = disabled, propagate
            logger.setLevel(level)
            logger.handlers[:] = handlers


# Flask-Migrate's own env.py template calls db.get_engine() first (its fallback for
# Flask-SQLAlchemy < 3); that warning is the template's, not this package's.
@pytest.mark.filterwarnings("ignore:'get_engine' is deprecated:DeprecationWarning")
def test_a_host_with_its_own_migrations_gets_our_tables(
    empty_database: str, tmp_path: Path
) -> None:
    app = Flask("host")
    app.config.update(
        TESTING=True,
        SECRET_KEY=SECRET_KEY,
        SQLALCHEMY_DATABASE_URI=empty_database,
        EVERSHOP_CUSTOMER_PASSWORD_HASH_METHOD=CHEAP_HASH,
        EVERSHOP_CUSTOMER_ALLOW_WEAK_PASSWORD_HASH=True,
    )
    host_db.init_app(app)
    host_customers.init_app(app)
    migrate = Migrate(app, host_db, directory=str(tmp_path / "migrations"))

    @migrate.configure  # type: ignore[untyped-decorator]  # flask_migrate is untyped
    def configure_alembic(config: Any) -> Any:
        return add_version_location(config)

    versions = tmp_path / "migrations" / "versions"
    shipped = set(SHIPPED.iterdir())
    try:
        with logging_restored():
            flask_db(app, "init")
            flask_db(app, "upgrade", "heads")
            assert set(schema(app)) == OUR_TABLES
            # The host's first revision starts a branch of its own, in its own folder
            # (without --version-path Alembic would write it next to our head, inside
            # the installed package). Autogenerate sees our tables as up to date.
            flask_db(
                app,
                "migrate",
                "-m",
                "products",
                "--head",
                "base",
                "--branch-label",
                "shop",
                "--version-path",
                str(versions),
            )
            (first,) = versions.glob("*_products.py")
            text = first.read_text()
            assert "host_product" in text and "evershop_customer" not in text
            assert "down_revision = None" in text
            # Its next revisions continue that branch, and land in its folder by themselves.
            flask_db(app, "revision", "-m", "more", "--head", "shop@head")
            (second,) = versions.glob("*_more.py")
            assert f"down_revision = '{first.name.split('_')[0]}'" in second.read_text()
            flask_db(app, "upgrade", "heads")
            with app.app_context():
                script = ScriptDirectory.from_config(migrate.get_config())
                heads = {script.get_revision(head).revision for head in script.get_heads()}
            assert heads == {HEAD, second.name.split("_")[0]}
        assert set(schema(app)) == OUR_TABLES | {"host_product"}
        assert differences(app, host_db.metadata) == []
        client = app.test_client()
        body = {"email": "host@example.com", "password": PASSWORD, "full_name": "Host"}
        assert client.post("/api/customers", json=body).status_code == 200
    finally:
        with app.app_context():
            host_db.engine.dispose()
        stray = set(SHIPPED.iterdir()) - shipped
        for path in stray:  # never leave a host's revision among ours
            if path.is_file():
                path.unlink()
        assert not stray, f"a host revision was written into the package: {stray}"


#: The same host before it added the library: only its own table.
legacy_db = SQLAlchemy()


class LegacyProduct(legacy_db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "host_product"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(80))


def flask_db_fails(app: Flask, *args: str) -> str:
    """Run ``flask db ARGS``, which must fail; what it said."""
    result = app.test_cli_runner().invoke(db_command, list(args))
    assert result.exit_code != 0, result.output
    return result.output + str(result.exception)


@pytest.mark.filterwarnings("ignore:'get_engine' is deprecated:DeprecationWarning")
def test_a_host_with_an_unlabelled_history_labels_it_and_upgrades_heads(
    empty_database: str, tmp_path: Path
) -> None:
    """The integration chapter's path for a shop whose migrations predate the library:
    its history has no branch label, so adding ours makes two heads, and a plain
    ``flask db upgrade`` or ``flask db migrate`` refuses. Label the shop's first revision,
    then upgrade every head and base the shop's next revisions on its own branch: the
    chapter's own lines, as written there."""
    label = docs_blocks.block("label-existing-branch").text.split("#")[0].strip()
    upgrade, migrate_next = (
        shlex.split(command.replace('"..."', "next"))[2:]
        for command in docs_blocks.commands(docs_blocks.block("existing-history-upgrade").text)
    )
    assert upgrade == ["upgrade", "heads"]
    config = {
        "TESTING": True,
        "SECRET_KEY": SECRET_KEY,
        "SQLALCHEMY_DATABASE_URI": empty_database,
        "EVERSHOP_CUSTOMER_PASSWORD_HASH_METHOD": CHEAP_HASH,
        "EVERSHOP_CUSTOMER_ALLOW_WEAK_PASSWORD_HASH": True,
    }
    directory = tmp_path / "migrations"
    before = Flask("shop-before")
    before.config.update(config)
    legacy_db.init_app(before)
    Migrate(before, legacy_db, directory=str(directory))
    app = Flask("shop")
    app.config.update(config)
    host_db.init_app(app)
    host_customers.init_app(app)
    migrate = Migrate(app, host_db, directory=str(directory))

    @migrate.configure  # type: ignore[untyped-decorator]  # flask_migrate is untyped
    def configure_alembic(alembic_config: Any) -> Any:
        return add_version_location(alembic_config)

    shipped = set(SHIPPED.iterdir())
    try:
        with logging_restored():
            flask_db(before, "init")
            flask_db(before, "migrate", "-m", "products")
            flask_db(before, "upgrade")
            (first,) = (directory / "versions").glob("*_products.py")
            # The library added: two heads, and the plain commands refuse.
            assert "Multiple head" in flask_db_fails(app, "upgrade")
            # The chapter's steps: label the shop's first revision, upgrade every head...
            text = first.read_text()
            assert "branch_labels = None" in text
            first.write_text(text.replace("branch_labels = None", label))
            flask_db(app, *upgrade)
            # ...and base the shop's next revisions on its own branch: a plain migrate
            # cannot tell which head to continue.
            assert "Multiple heads" in flask_db_fails(app, "migrate", "-m", "next")
            flask_db(app, *migrate_next)
            (second,) = (directory / "versions").glob("*_next.py")
            assert f"down_revision = '{first.name.split('_')[0]}'" in second.read_text()
            assert "evershop_customer" not in second.read_text()
            flask_db(app, "upgrade", "heads")
        assert set(schema(app)) == OUR_TABLES | {"host_product"}
        assert differences(app, host_db.metadata) == []
    finally:
        for each in (before, app):
            with each.app_context():
                each.extensions["sqlalchemy"].engine.dispose()
        stray = set(SHIPPED.iterdir()) - shipped
        for path in stray:
            if path.is_file():
                path.unlink()
        assert not stray, f"a host revision was written into the package: {stray}"


def test_add_version_location_keeps_the_hosts_list_and_separator() -> None:
    from alembic.config import Config

    legacy = Config()
    legacy.set_main_option("script_location", "/app/migrations")
    add_version_location(legacy)
    assert legacy.get_version_locations_list() == ["/app/migrations/versions", str(SHIPPED)]

    listed = Config()
    listed.set_main_option("path_separator", "newline")
    listed.set_main_option("version_locations", "/a/versions\n/b/versions")
    add_version_location(add_version_location(listed))  # twice: added once
    assert listed.get_version_locations_list() == ["/a/versions", "/b/versions", str(SHIPPED)]


# -- packaging ------------------------------------------------------------------------


def test_the_wheel_carries_migrations_openapi_passwords_and_py_typed(tmp_path: Path) -> None:
    source = tmp_path / "source"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "instance", ".*cache"
        ),
    )
    out = tmp_path / "wheels"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (wheel,) = out.glob("flask_evershop_customer-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    package = "flask_evershop_customer/"
    for required in [
        "py.typed",
        "openapi.json",
        "data/common-passwords.txt.gz",
        "migrations/__init__.py",
        "migrations/env.py",
        *(
            f"migrations/versions/{p.name}"
            for p in (ROOT / "flask_evershop_customer/migrations/versions").glob("*.py")
        ),
    ]:
        assert package + required in names, required
    assert not any(name.startswith(("tests/", "examples/")) for name in names)


def test_the_second_revision_recomputes_canonical_emails_without_merging(
    empty_database: str,
) -> None:
    """Rows written before NFKC and case folding get the new canonical form, unless it
    is already another customer's: that row keeps its old form, nothing is merged."""
    app = make_app(empty_database)
    Migrate(app, db, directory=MIGRATIONS_DIRECTORY)
    try:
        _recompute_and_check(app)
    finally:
        with app.app_context():
            db.engine.dispose()


def _recompute_and_check(app: Flask) -> None:
    flask_db(app, "upgrade", "evershop_customer_0001")
    customers = sa.table(
        "evershop_customer",
        *(sa.column(name) for name in ("customer_id", "uuid", "status", "group_id", "email")),
        *(sa.column(name) for name in ("email_canonical", "full_name", "password_hash")),
        *(sa.column(name) for name in ("version", "created_at", "updated_at")),
    )
    now = sa.func.current_timestamp()
    rows = [
        # (email, canonical as 0.1.0 wrote it)
        ("Straße@example.com", "straße@example.com"),
        ("ｚｏｅ@example.com", "ｚｏｅ@example.com"),
        ("zoe@example.com", "zoe@example.com"),  # the full-width one's new form is taken
        ("plain@example.com", "plain@example.com"),
        # ASCII, but its punycode domain is decoded, then folded: it changes too.
        ("anna@xn--fa-hia.de", "anna@faß.de"),
    ]
    with app.app_context():
        for n, (email, canonical) in enumerate(rows):
            db.session.execute(
                customers.insert().values(
                    uuid=f"{n:032x}",
                    status=1,
                    group_id=1,
                    email=email,
                    email_canonical=canonical,
                    full_name="Old",
                    password_hash="x",
                    version=1,
                    created_at=now,
                    updated_at=now,
                )
            )
        db.session.commit()
    output = flask_db(app, "upgrade", "heads")
    with app.app_context():
        found = dict(
            db.session.execute(sa.select(customers.c.email, customers.c.email_canonical)).all()
        )
    assert found == {
        "Straße@example.com": "strasse@example.com",
        "ｚｏｅ@example.com": "ｚｏｅ@example.com",
        "zoe@example.com": "zoe@example.com",
        "plain@example.com": "plain@example.com",
        "anna@xn--fa-hia.de": "anna@fass.de",
    }
    assert "customer 2 keeps its old canonical email" in output
    flask_db(app, "downgrade", "base")


def test_the_eighth_revision_marks_the_customers_whose_hash_is_evershops(
    empty_database: str,
) -> None:
    """Customers imported before the ``imported`` column are those still holding a bcrypt
    hash (nothing else writes one); the others stay unmarked."""
    app = make_app(empty_database)
    Migrate(app, db, directory=MIGRATIONS_DIRECTORY)
    customers = sa.table(
        "evershop_customer",
        *(sa.column(name) for name in ("uuid", "status", "group_id", "email", "full_name")),
        *(sa.column(name) for name in ("email_canonical", "password_hash", "version")),
        *(sa.column(name) for name in ("created_at", "updated_at", "imported")),
    )
    hashes = {
        "imported@example.com": "$2a$10$" + "a" * 21 + "u" + "b" * 31,
        "registered@example.com": "pbkdf2:sha256:1$salt$digest",
    }
    try:
        flask_db(app, "upgrade", "evershop_customer_0007")
        now = sa.func.current_timestamp()
        with app.app_context():
            for n, (email, password_hash) in enumerate(hashes.items()):
                db.session.execute(
                    customers.insert().values(
                        uuid=f"{n:032x}",
                        status=1,
                        group_id=1,
                        email=email,
                        email_canonical=email,
                        full_name="Old",
                        password_hash=password_hash,
                        version=1,
                        created_at=now,
                        updated_at=now,
                    )
                )
            db.session.commit()
        flask_db(app, "upgrade", "heads")
        with app.app_context():
            query = sa.select(customers.c.email, customers.c.imported)
            marked = db.session.execute(query).all()
        assert {email: bool(flag) for email, flag in marked} == {
            "imported@example.com": True,
            "registered@example.com": False,
        }
        assert dict(marked)["registered@example.com"] is None
        flask_db(app, "downgrade", "base")
    finally:
        with app.app_context():
            db.engine.dispose()
