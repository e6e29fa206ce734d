"""What an operator meets with a database whose tables are missing: a 503 and a log line
that says what to do, one line from the CLI, and a command that checks the schema."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask

from .conftest import PASSWORD, db, fresh_database, make_app, selected_backends

HINT = "flask db upgrade heads"


@pytest.fixture(params=selected_backends())
def tableless_app(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Flask]:
    """An app on a database where nobody has run the migrations."""
    with fresh_database(request.param, tmp_path_factory) as url:
        app = make_app(url)
        app.config["PROPAGATE_EXCEPTIONS"] = False  # the answer production gets
        yield app
        with app.app_context():
            db.engine.dispose()


def test_requests_answer_503_and_the_log_says_what_to_do(
    tableless_app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    client = tableless_app.test_client(use_cookies=False)
    body = {"email": "alice@example.com", "password": PASSWORD, "full_name": "Alice"}
    for response in (
        client.post("/api/customers", json=body),
        client.post("/api/customers/sessions", json=body),
        client.get("/api/customers/me", headers={"Authorization": "Bearer x.y.z"}),
    ):
        if response.status_code == 401:
            continue  # a token that does not verify never reaches the database
        assert response.status_code == 503, response.get_json()
        assert response.get_json()["error"]["status"] == 503
    lines = [r.getMessage() for r in caplog.records if "tables are missing" in r.getMessage()]
    assert lines and all(HINT in line for line in lines)
    assert PASSWORD not in caplog.text and "pbkdf2" not in caplog.text
    # The document needs no table.
    assert client.get("/api/customers/openapi.json").status_code == 200


def test_the_cli_says_so_in_one_line(tableless_app: Flask) -> None:
    runner = tableless_app.test_cli_runner()
    for args in (["purge-sessions"], ["unlock", "alice@example.com"]):
        result = runner.invoke(args=["customers", *args])
        assert result.exit_code == 1, result.output
        assert HINT in result.output and "Traceback" not in result.output
        assert len(result.output.strip().splitlines()) == 1


def test_check_schema_names_what_is_missing_then_says_current(tableless_app: Flask) -> None:
    runner = tableless_app.test_cli_runner()
    missing = runner.invoke(args=["customers", "check-schema"])
    assert missing.exit_code == 1
    assert "table evershop_customer," in missing.output and HINT in missing.output
    with tableless_app.app_context():
        engine = db.engine
    db.metadata.create_all(engine)
    current = runner.invoke(args=["customers", "check-schema"])
    assert current.exit_code == 0, current.output
    assert "schema is current" in current.output
    table = db.metadata.tables["evershop_customer"]
    [index] = [i for i in table.indexes if i.name == "ix_evershop_customer_full_name"]
    index.drop(engine)
    stale = runner.invoke(args=["customers", "check-schema"])
    assert stale.exit_code == 1 and "index ix_evershop_customer_full_name" in stale.output
