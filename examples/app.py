"""The whole library running on its own: ``flask --app examples.app run``.

Configuration comes from ``FLASK_*`` environment variables (``FLASK_SECRET_KEY``,
``FLASK_SQLALCHEMY_DATABASE_URI``, ``FLASK_EXAMPLE_ADMIN_EMAIL``, ...) or ``test_config``.
Without a database URL it uses SQLite in the instance folder. Missing secrets and admin
credentials are generated once, kept in the instance folder (so every worker of one
host agrees on them), and the admin credentials are printed.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
import sys
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask, Response, current_app, jsonify, request
from flask_migrate import Migrate, upgrade
from flask_sqlalchemy import SQLAlchemy

from flask_evershop_customer import MIGRATIONS_DIRECTORY, EverShopCustomer

db = SQLAlchemy()
customers = EverShopCustomer(db=db)
migrate = Migrate(directory=MIGRATIONS_DIRECTORY)


@customers.admin_loader
def load_admin(admin_id: str) -> bool:
    """The example has one admin: the configured one."""
    return admin_id == current_app.config["EXAMPLE_ADMIN_EMAIL"]


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Create the example shop. ``test_config`` overrides any key."""
    app = Flask(__name__, instance_relative_config=True)
    os.makedirs(app.instance_path, exist_ok=True)
    app.config.from_mapping(
        SQLALCHEMY_DATABASE_URI="sqlite:///" + os.path.join(app.instance_path, "shop.sqlite"),
        EXAMPLE_AUTO_UPGRADE=True,
        EXAMPLE_EXPOSE_WORKER_PID=False,
    )
    app.config.from_prefixed_env()
    if test_config is not None:
        app.config.from_mapping(test_config)
    _ensure_generated_settings(app)
    _configure_sqlite(app)

    db.init_app(app)
    customers.init_app(app)
    migrate.init_app(app, db)
    _add_admin_login(app)
    if app.config["EXAMPLE_EXPOSE_WORKER_PID"]:
        _expose_worker_pid(app)

    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            sa.event.listen(db.engine, "connect", _sqlite_pragmas)
        if app.config["EXAMPLE_AUTO_UPGRADE"]:
            upgrade(revision="heads")
            # No pooled connection outlives start-up: a pre-forking server (gunicorn
            # --preload) must not hand one connection to several workers.
            db.engine.dispose()
    return app


def _expose_worker_pid(app: Flask) -> None:
    """``X-Worker-Pid`` on every response: which process answered (for tests and demos
    of several workers; off by default)."""

    @app.after_request
    def add_worker_pid(response: Response) -> Response:
        response.headers["X-Worker-Pid"] = str(os.getpid())
        return response


def _ensure_generated_settings(app: Flask) -> None:
    """Fill in SECRET_KEY and the admin credentials when none are configured."""
    stored_path = Path(app.instance_path) / "generated-settings.json"
    missing = [
        key
        for key in ("SECRET_KEY", "EXAMPLE_ADMIN_EMAIL", "EXAMPLE_ADMIN_PASSWORD")
        if not app.config.get(key)
    ]
    if not missing:
        return
    stored = _load_or_create(stored_path)
    for key in missing:
        app.config[key] = stored[key]
    if "EXAMPLE_ADMIN_PASSWORD" in missing:
        print(
            f" * Example admin: {app.config['EXAMPLE_ADMIN_EMAIL']} /"
            f" {app.config['EXAMPLE_ADMIN_PASSWORD']} (generated, kept in {stored_path})",
            file=sys.stderr,
            flush=True,
        )


def _load_or_create(path: Path) -> dict[str, str]:
    """Read the generated settings, creating them once even with several workers: the
    file appears complete or not at all (a hard link cannot overwrite)."""
    if not path.exists():
        generated = {
            "SECRET_KEY": secrets.token_hex(32),
            "EXAMPLE_ADMIN_EMAIL": "admin@example.com",
            "EXAMPLE_ADMIN_PASSWORD": secrets.token_urlsafe(12),
        }
        draft = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        draft.write_text(json.dumps(generated), encoding="utf-8")
        os.chmod(draft, 0o600)
        try:
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return json.loads(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def _configure_sqlite(app: Flask) -> None:
    """Several workers on one SQLite file: wait up to 30 s for a lock instead of failing."""
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        options = app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {})
        options.setdefault("connect_args", {}).setdefault("timeout", 30)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL lets readers run beside the one writer; SQLite enforces foreign keys only
    when asked."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _add_admin_login(app: Flask) -> None:
    @app.post("/admin/login")
    def admin_login() -> Response | tuple[Response, int]:
        body = request.get_json(silent=True)
        email = body.get("email") if isinstance(body, dict) else None
        password = body.get("password") if isinstance(body, dict) else None
        expected_email = app.config["EXAMPLE_ADMIN_EMAIL"]
        expected_password = app.config["EXAMPLE_ADMIN_PASSWORD"]
        valid = (
            isinstance(email, str)
            and isinstance(password, str)
            and hmac.compare_digest(email.lower().encode(), expected_email.lower().encode())
            & hmac.compare_digest(password.encode(), expected_password.encode())
        )
        if not valid:
            error = {"error": {"status": 400, "message": "Invalid email or password"}}
            return jsonify(error), 400
        return customers.login_admin(jsonify({"data": {"admin": expected_email}}), expected_email)

    @app.post("/admin/logout")
    def admin_logout() -> Response:
        return customers.logout_admin(jsonify({"data": {}}))
