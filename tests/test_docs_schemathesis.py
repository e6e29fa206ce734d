"""The manual's schemathesis commands, as written there, against a live server of the
example app: they pass against a correct deployment."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

from . import docs_blocks
from .conftest import PASSWORD


@pytest.fixture
def live_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[BaseWSGIServer, Flask]]:
    from examples.app import create_app, db

    monkeypatch.setattr(Flask, "auto_find_instance_path", lambda self: str(tmp_path))
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'shop.sqlite'}",
            "EVERSHOP_CUSTOMER_REGISTRATIONS_PER_IP": 0,
        }
    )
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, app
    finally:
        server.shutdown()
        thread.join(10)
        with app.app_context():
            db.engine.dispose()


def test_the_documented_schemathesis_commands_pass(
    live_server: tuple[BaseWSGIServer, Flask], tmp_path: Path
) -> None:
    commands = docs_blocks.commands(docs_blocks.block("schemathesis-runs").text)
    assert len(commands) == 2, commands
    server, app = live_server
    base = f"http://127.0.0.1:{server.server_port}"
    client = app.test_client(use_cookies=False)
    body = {"email": "st@example.com", "password": PASSWORD, "full_name": "St"}
    assert client.post("/api/customers", json=body).status_code == 200
    token = client.post("/api/customers/sessions", json=body).get_json()["data"]["token"]
    from examples.app import customers

    with app.app_context():
        answer = customers.login_admin(app.response_class(), app.config["EXAMPLE_ADMIN_EMAIL"])
    cookie = re.search(r"asid=([^;]+)", answer.headers["Set-Cookie"])
    assert cookie is not None
    st = Path(sys.executable).parent / "st"
    for command in commands:
        line = (
            command.replace(docs_blocks.DOCS_BASE, base)
            .replace("$ASID", cookie.group(1))
            .replace("$TOKEN", token)
        )
        args = shlex.split(line)
        result = subprocess.run(
            # In a folder of its own: st keeps a cache in the working directory.
            [str(st), *args[1:]],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=tmp_path,
        )
        assert result.returncode == 0, result.stdout[-4000:]
