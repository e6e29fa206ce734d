"""examples/app.py: the whole library running on its own."""

from __future__ import annotations

import importlib
import io
import json
import re
from pathlib import Path
from typing import Any, NoReturn

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from flask_evershop_customer.testing import wait_for_work_after_responses

from .conftest import CHEAP_HASH, PASSWORD, state_of

FAST = {
    "TESTING": True,
    "EVERSHOP_CUSTOMER_PASSWORD_HASH_METHOD": CHEAP_HASH,
    "EVERSHOP_CUSTOMER_ALLOW_WEAK_PASSWORD_HASH": True,
}


@pytest.fixture
def instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the example's instance folder at a temporary one."""
    monkeypatch.setattr(Flask, "auto_find_instance_path", lambda self: str(tmp_path))
    for key in ("FLASK_SECRET_KEY", "FLASK_EXAMPLE_ADMIN_EMAIL", "FLASK_EXAMPLE_ADMIN_PASSWORD"):
        monkeypatch.delenv(key, raising=False)
    return tmp_path


def test_importing_the_module_creates_no_app() -> None:
    module = importlib.import_module("examples.app")
    assert not any(isinstance(value, Flask) for value in vars(module).values())


def test_defaults_sqlite_in_the_instance_folder_and_generated_admin(
    instance: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from examples.app import create_app

    app = create_app(FAST)
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{instance / 'shop.sqlite'}"
    assert (instance / "shop.sqlite").exists()
    printed = capsys.readouterr().err
    email, password = app.config["EXAMPLE_ADMIN_EMAIL"], app.config["EXAMPLE_ADMIN_PASSWORD"]
    assert f"{email} / {password}" in printed
    stored = json.loads((instance / "generated-settings.json").read_text())
    assert stored["EXAMPLE_ADMIN_PASSWORD"] == password
    assert len(app.config["SECRET_KEY"]) >= 32
    again = create_app(FAST)
    assert again.config["SECRET_KEY"] == app.config["SECRET_KEY"]
    assert again.config["EXAMPLE_ADMIN_PASSWORD"] == password
    # Printed the first time only, not on every app creation (each CLI call makes one).
    assert password not in capsys.readouterr().err


def test_the_schema_is_brought_up_to_date_and_the_api_works(instance: Path) -> None:
    from examples.app import create_app

    client = create_app(FAST).test_client(use_cookies=False)
    body = {"email": "alice@example.com", "password": PASSWORD, "full_name": "Alice"}
    created = client.post("/api/customers", json=body)
    assert created.status_code == 200
    login = client.post("/api/customers/sessions", json=body)
    assert login.status_code == 200


def test_admin_login_sets_the_admin_cookie(instance: Path) -> None:
    from examples.app import create_app

    app = create_app(
        {
            **FAST,
            "EXAMPLE_ADMIN_EMAIL": "boss@example.com",
            "EXAMPLE_ADMIN_PASSWORD": "s3cret-admin",
        }
    )
    client = app.test_client()
    wrong = client.post("/admin/login", json={"email": "boss@example.com", "password": "nope"})
    assert wrong.status_code == 400
    assert wrong.get_json() == {"error": {"status": 400, "message": "Invalid email or password"}}
    ok = client.post("/admin/login", json={"email": "boss@example.com", "password": "s3cret-admin"})
    assert ok.status_code == 200
    assert ok.headers["Set-Cookie"].startswith("asid=")
    created = client.post(
        "/api/customers", json={"email": "c@example.com", "password": PASSWORD, "full_name": "C"}
    ).get_json()["data"]
    response = client.patch(f"/api/customers/{created['uuid']}", json={"status": 0})
    assert response.status_code == 200
    client.post("/admin/logout")
    assert client.patch(f"/api/customers/{created['uuid']}", json={}).status_code == 401


def test_a_cookie_for_another_admin_id_is_refused(instance: Path) -> None:
    from examples.app import create_app

    app = create_app(FAST)
    with app.app_context():
        value = state_of(app).admin_sessions.open("someone-else")
    client = app.test_client(use_cookies=False)
    created = client.post(
        "/api/customers", json={"email": "d@example.com", "password": PASSWORD, "full_name": "D"}
    ).get_json()["data"]
    response = client.delete(
        f"/api/customers/{created['uuid']}", headers={"Cookie": f"asid={value}"}
    )
    assert response.status_code == 401


def test_environment_variables_and_test_config(
    instance: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from examples.app import create_app

    monkeypatch.setenv("FLASK_EXAMPLE_ADMIN_EMAIL", "env@example.com")
    monkeypatch.setenv("FLASK_EVERSHOP_CUSTOMER_TOKEN_LIFETIME", "3600")
    url = f"sqlite:///{tmp_path / 'other.sqlite'}"
    app = create_app({**FAST, "SQLALCHEMY_DATABASE_URI": url})
    assert app.config["EXAMPLE_ADMIN_EMAIL"] == "env@example.com"
    assert app.config["EVERSHOP_CUSTOMER_TOKEN_LIFETIME"] == 3600
    assert app.config["SQLALCHEMY_DATABASE_URI"] == url
    assert (tmp_path / "other.sqlite").exists()


def test_sqlite_waits_for_locks_in_wal_mode(instance: Path) -> None:
    from examples.app import create_app, db

    app = create_app(FAST)
    with app.app_context():
        mode = db.session.execute(db.text("PRAGMA journal_mode")).scalar()
        assert mode == "wal"
    assert app.config["SQLALCHEMY_ENGINE_OPTIONS"]["connect_args"]["timeout"] >= 5


# -- the admin login: limits, throttling and JSON errors --------------------------------

ADMIN = {"email": "boss@example.com", "password": "s3cret-admin"}
WRONG = {"email": "boss@example.com", "password": "nope"}


@pytest.fixture
def admin_app(instance: Path) -> Flask:
    from examples.app import create_app

    return create_app(
        {**FAST, "EXAMPLE_ADMIN_EMAIL": ADMIN["email"], "EXAMPLE_ADMIN_PASSWORD": ADMIN["password"]}
    )


@pytest.fixture
def admin_client(admin_app: Flask) -> FlaskClient:
    return admin_app.test_client()


def assert_envelope(response: TestResponse, status: int, message: str | None = None) -> None:
    """An error answer is EverShop's JSON envelope, never a page, and is not cached."""
    assert response.status_code == status
    assert response.mimetype == "application/json"
    error = response.get_json()["error"]
    assert error["status"] == status
    assert isinstance(error["message"], str)
    if message is not None:
        assert error["message"] == message
    assert response.cache_control.no_store
    assert "Set-Cookie" not in response.headers


def over_limit_body(app: Flask) -> bytes:
    """A JSON object one byte over the admin login's size limit."""
    limit: int = app.config["EXAMPLE_ADMIN_LOGIN_MAX_CONTENT_LENGTH"]
    body = json.dumps({**WRONG, "pad": ""}).encode()
    return body[:-2] + b"x" * (limit + 1 - len(body)) + b'"}'


def test_admin_login_refuses_a_body_over_the_limit(
    admin_app: Flask, admin_client: FlaskClient
) -> None:
    data = over_limit_body(admin_app)
    response = admin_client.post("/admin/login", data=data, content_type="application/json")
    assert_envelope(response, 413)
    at_the_limit = data[:-3] + b'"}'
    response = admin_client.post("/admin/login", data=at_the_limit, content_type="application/json")
    assert_envelope(response, 400, "Invalid email or password")


def test_admin_login_refuses_a_chunked_body_over_the_limit(
    admin_app: Flask, admin_client: FlaskClient
) -> None:
    response = admin_client.post(
        "/admin/login",
        input_stream=io.BytesIO(over_limit_body(admin_app)),
        content_type="application/json",
        # As a server passes a chunked body on: no length, read to the end of the stream.
        headers={"Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.request.content_length is None
    assert_envelope(response, 413)


@pytest.mark.parametrize("depth", [4000, 100_000])
def test_admin_login_answers_deeply_nested_json_with_400(instance: Path, depth: Any) -> None:
    from examples.app import create_app

    # Deep enough to exhaust the recursion limit even within the default 4 KiB; the
    # 100,000 of the report needs a larger limit to reach the parser at all.
    app = create_app({**FAST, "EXAMPLE_ADMIN_LOGIN_MAX_CONTENT_LENGTH": 200_000})
    response = app.test_client().post(
        "/admin/login", data="[" * depth, content_type="application/json"
    )
    assert_envelope(response, 400, "Request data must be valid JSON")


def test_admin_login_answers_the_report_s_body_with_json_under_the_default_limit(
    admin_client: FlaskClient,
) -> None:
    response = admin_client.post(
        "/admin/login", data="[" * 100_000, content_type="application/json"
    )
    assert_envelope(response, 413)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"data": "not json"},
        {"data": json.dumps(ADMIN), "content_type": "text/plain"},
        {"data": ADMIN},
    ],
    ids=["no-content-type", "text-plain", "form"],
)
def test_admin_login_refuses_a_body_that_is_not_json_with_415(
    admin_client: FlaskClient, kwargs: Any
) -> None:
    assert_envelope(admin_client.post("/admin/login", **kwargs), 415)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"{", "Request data must be valid JSON"),
        (b"", "Request data must be valid JSON"),
        (b"\xff", "Request data must be valid JSON"),
        (b"[]", "Request data must be object"),
        (b'"boss@example.com"', "Request data must be object"),
        (b"{}", "Invalid email or password"),
        (b'{"email": "boss@example.com"}', "Invalid email or password"),
        (b'{"email": ["boss@example.com"], "password": "x"}', "Invalid email or password"),
        (b'{"email": "boss@example.com", "password": 1}', "Invalid email or password"),
        # Lone surrogates: strings to JSON, but not text (no UTF-8 encoding exists).
        (b'{"email": "\\ud800", "password": "x"}', "Invalid email or password"),
        (b'{"email": "boss@example.com", "password": "\\udfff"}', "Invalid email or password"),
        (
            b'{"email": "\\ud800boss@example.com", "password": "\\ud800"}',
            "Invalid email or password",
        ),
    ],
)
def test_admin_login_refuses_a_bad_body_with_400(
    admin_client: FlaskClient, data: Any, message: Any
) -> None:
    response = admin_client.post("/admin/login", data=data, content_type="application/json")
    assert_envelope(response, 400, message)


def test_admin_routes_answer_a_wrong_method_with_json(admin_client: FlaskClient) -> None:
    for path in ("/admin/login", "/admin/logout"):
        response = admin_client.get(path)
        assert_envelope(response, 405)
        assert "POST" in response.headers["Allow"]


def test_admin_login_is_throttled_even_for_the_right_password(
    admin_app: Flask, admin_client: FlaskClient
) -> None:
    limit = admin_app.config["EVERSHOP_CUSTOMER_LOGIN_MAX_FAILURES"]
    window = admin_app.config["EVERSHOP_CUSTOMER_LOGIN_FAILURE_WINDOW"]
    for attempt in range(limit):
        # The email's case does not make a new counter.
        email = WRONG["email"].upper() if attempt % 2 else WRONG["email"]
        response = admin_client.post("/admin/login", json={**WRONG, "email": email})
        assert_envelope(response, 400, "Invalid email or password")
    response = admin_client.post("/admin/login", json=ADMIN)
    assert_envelope(response, 429)
    assert 1 <= int(response.headers["Retry-After"]) <= window


def test_admin_login_is_throttled_per_client_address(instance: Path) -> None:
    from examples.app import create_app

    app = create_app({**FAST, "EVERSHOP_CUSTOMER_LOGIN_MAX_FAILURES_PER_IP": 3})
    client = app.test_client()
    for n in range(3):
        response = client.post("/admin/login", json={"email": f"guess{n}@example.com"})
        assert_envelope(response, 400, "Invalid email or password")
    assert_envelope(client.post("/admin/login", json={"email": "guess9@example.com"}), 429)
    elsewhere = {"REMOTE_ADDR": "10.0.0.9"}
    other = client.post("/admin/login", json={"email": "guess9@x.com"}, environ_base=elsewhere)
    assert_envelope(other, 400, "Invalid email or password")


def test_a_successful_admin_login_is_not_counted_and_clears_no_failure(
    admin_app: Flask, admin_client: FlaskClient
) -> None:
    limit = admin_app.config["EVERSHOP_CUSTOMER_LOGIN_MAX_FAILURES"]
    for _ in range(limit + 2):
        assert admin_client.post("/admin/login", json=ADMIN).status_code == 200
    for _ in range(limit - 1):
        assert_envelope(admin_client.post("/admin/login", json=WRONG), 400)
    assert admin_client.post("/admin/login", json=ADMIN).status_code == 200
    assert_envelope(admin_client.post("/admin/login", json=WRONG), 400)
    # The success neither counted nor cleared the failures before it: this is one too many.
    assert_envelope(admin_client.post("/admin/login", json=ADMIN), 429)


def test_admin_login_answers_are_not_cached(admin_client: FlaskClient) -> None:
    response = admin_client.post("/admin/login", json=ADMIN)
    assert response.status_code == 200
    assert response.cache_control.no_store
    assert admin_client.post("/admin/logout").cache_control.no_store


def test_admin_logout_ends_the_session_of_the_old_cookie(
    admin_app: Flask, admin_client: FlaskClient
) -> None:
    assert admin_client.post("/admin/login", json=ADMIN).status_code == 200
    asid = admin_client.get_cookie("asid")
    assert asid is not None
    old_cookie = {"Cookie": f"asid={asid.value}"}
    api = admin_app.test_client(use_cookies=False)
    created = api.post(
        "/api/customers", json={"email": "e@example.com", "password": PASSWORD, "full_name": "E"}
    ).get_json()["data"]
    path = f"/api/customers/{created['uuid']}"
    assert api.patch(path, json={"status": 0}, headers=old_cookie).status_code == 200
    assert admin_client.post("/admin/logout").status_code == 200
    assert admin_client.get_cookie("asid") is None
    response = api.patch(path, json={"status": 1}, headers=old_cookie)
    assert response.status_code == 401


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "http://localhost:8080"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
    ],
)
def test_another_origin_can_neither_log_the_admin_in_nor_out(
    admin_app: Flask, admin_client: FlaskClient, headers: dict[str, str]
) -> None:
    """A form elsewhere posting to /admin/logout must not end the admin's session (nor a
    page elsewhere open one): the library's cross-site rule, through
    ``same_origin_required``."""
    assert_envelope(
        admin_client.post("/admin/login", json=ADMIN, headers=headers),
        403,
        "Cross-site requests are not allowed here",
    )
    assert admin_client.post("/admin/login", json=ADMIN).status_code == 200
    asid = admin_client.get_cookie("asid")
    assert asid is not None
    response = admin_client.post("/admin/logout", headers=headers)
    assert_envelope(response, 403, "Cross-site requests are not allowed here")
    assert admin_client.get_cookie("asid") == asid
    listing = admin_app.test_client(use_cookies=False).get(
        "/api/customers", headers={"Cookie": f"asid={asid.value}"}
    )
    assert listing.status_code == 200
    same_origin = {"Origin": "http://localhost", "Sec-Fetch-Site": "same-origin"}
    assert admin_client.post("/admin/logout", headers=same_origin).status_code == 200
    assert admin_client.get_cookie("asid") is None


def test_a_crash_in_the_admin_login_answers_json_and_other_paths_keep_flask_s_pages(
    admin_app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    import examples.app

    def crash(*_args: object) -> NoReturn:
        raise RuntimeError("boom")

    monkeypatch.setattr(examples.app, "_is_admin", crash)
    admin_app.testing = False  # let Flask turn the exception into its 500
    client = admin_app.test_client()
    assert_envelope(client.post("/admin/login", json=ADMIN), 500, "Internal server error")
    elsewhere = client.get("/no-such-page")
    assert elsewhere.status_code == 404
    assert elsewhere.mimetype == "text/html"


def reset_link(client: FlaskClient, caplog: pytest.LogCaptureFixture, **options: Any) -> str:
    """The link the example logs for a reset requested by ``client`` (``options``: the
    test client's, such as ``base_url``)."""
    body = {"email": "reset@example.com", "password": "a fine password", "full_name": "R"}
    client.post("/api/customers", json=body)
    caplog.clear()
    with client.post(
        "/api/customers/reset-password", json={"email": body["email"]}, **options
    ) as request:
        assert request.status_code == 200
    wait_for_work_after_responses()  # the token is issued once the answer is sent
    [line] = [r.getMessage() for r in caplog.records if "reset link" in r.getMessage()]
    prefix = "Password reset link for reset@example.com: "
    assert line.startswith(prefix)
    return line.removeprefix(prefix)


def test_a_reset_link_is_written_on_the_log(
    admin_client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    """``make run`` shows the whole reset by hand: the link appears on the log, and opens
    the storefront page of the server the reset was asked of, whatever its port."""
    link = reset_link(admin_client, caplog, base_url="http://127.0.0.1:5123")
    assert link.startswith("http://127.0.0.1:5123/reset-password?token=")
    token = link.rpartition("token=")[2]
    with admin_client.get(link) as page:
        assert page.status_code == 200 and page.mimetype == "text/html"
    new = {"token": token, "password": "another fine password"}
    assert admin_client.post("/api/customers/password", json=new).status_code == 200


@pytest.mark.parametrize(
    "base_url", ["http://localhost", "http://LOCALHOST:8000", "https://[::1]:8443"]
)
def test_a_reset_link_follows_a_loopback_host(
    admin_client: FlaskClient, caplog: pytest.LogCaptureFixture, base_url: str
) -> None:
    link = reset_link(admin_client, caplog, base_url=base_url)
    assert link.startswith(f"{base_url.lower()}/reset-password?token=")


@pytest.mark.parametrize(
    "base_url",
    ["http://evil.example", "http://127.0.0.1.evil.example", "http://localhost.:5000"],
)
def test_a_reset_link_never_follows_another_host(
    admin_client: FlaskClient, caplog: pytest.LogCaptureFixture, base_url: str
) -> None:
    """Anyone may send a reset request with the Host of their choice: the customer's link
    must not lead there. Without a configured link, it is a path alone."""
    link = reset_link(admin_client, caplog, base_url=base_url)
    assert link.startswith("/reset-password?token=")


def test_a_configured_reset_link_wins(instance: Path, caplog: pytest.LogCaptureFixture) -> None:
    from examples.app import create_app

    template = "https://shop.example/account/reset?token={token}"
    client = create_app({**FAST, "EXAMPLE_RESET_LINK": template}).test_client()
    link = reset_link(client, caplog)
    assert link.startswith("https://shop.example/account/reset?token=")


# -- the storefront page ----------------------------------------------------------------

STRICT_POLICY = {
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "connect-src 'self'",
    "img-src 'self'",
    "form-action 'none'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
}


@pytest.mark.parametrize("path", ["/", "/reset-password?token=abc", "/reset-password"])
def test_the_storefront_page_is_served_with_a_strict_policy(instance: Path, path: str) -> None:
    from examples.app import create_app

    with create_app(FAST).test_client().get(path) as response:
        page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert set(response.headers["Content-Security-Policy"].split("; ")) == STRICT_POLICY
    # The reset link's token is in the address: kept by no cache, sent on in no Referer.
    assert response.cache_control.no_store
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert '<script src="/storefront.js" defer></script>' in page
    assert 'id="status" role="status"' in page


def test_the_storefront_page_has_no_inline_code(instance: Path) -> None:
    """script-src and style-src 'self' refuse inline code: the page must have none."""
    from examples.app import create_app

    with create_app(FAST).test_client().get("/") as response:
        page = response.get_data(as_text=True)
    assert re.findall(r"<script\b[^>]*>", page) == ['<script src="/storefront.js" defer>']
    assert "<style" not in page
    assert re.search(r"\s(?:style|on[a-z]+)=", page) is None


@pytest.mark.parametrize(
    ("path", "mimetype"),
    [("/storefront.js", "text/javascript"), ("/storefront.css", "text/css")],
)
def test_the_storefront_files(instance: Path, path: str, mimetype: str) -> None:
    from examples.app import create_app

    with create_app(FAST).test_client().get(path) as response:
        assert response.status_code == 200
    # Python before 3.12 names JavaScript application/javascript.
    assert response.mimetype in {mimetype, mimetype.replace("text/", "application/")}
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.cache_control.no_cache


def test_the_storefront_script_renders_no_markup() -> None:
    """What comes from the API is shown with textContent: the script never writes HTML."""
    script = (Path(__file__).parent.parent / "examples/storefront/storefront.js").read_text()
    assert (
        re.search(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(", script) is None
    )


def test_the_storefront_page_writes_only_to_the_api(instance: Path) -> None:
    """The page is not an API: only GET (and HEAD, OPTIONS) are answered."""
    from examples.app import create_app

    client = create_app(FAST).test_client()
    assert client.post("/").status_code == 405
    assert client.post("/reset-password").status_code == 405


def test_the_storefront_routes_and_a_customer_only_host_route(instance: Path) -> None:
    """The example serves EverShop's storefront login and logout, and ``GET /whoami``:
    a host route that needs only who is calling."""
    from examples.app import create_app

    client = create_app(FAST).test_client()
    body = {"email": "alice@example.com", "password": PASSWORD, "full_name": "Alice"}
    uuid = client.post("/api/customers", json=body).get_json()["data"]["uuid"]
    assert client.get("/whoami").status_code == 401
    login = client.post("/customer/login", json=body)
    assert login.status_code == 200
    whoami = client.get("/whoami")
    assert whoami.get_json() == {"data": {"uuid": uuid, "sid": login.get_json()["data"]["sid"]}}
    assert whoami.headers["Cache-Control"] == "no-store"
    assert client.post("/customer/logout").get_json() == {"data": {}}
    assert client.get("/whoami").status_code == 401
