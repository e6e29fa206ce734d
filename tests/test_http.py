"""The HTTP edges: EverShop's envelope for every failure under the prefix, and only there."""

from __future__ import annotations

import re
from typing import Any, NoReturn

import pytest
from flask import Flask, abort, got_request_exception
from flask.json.provider import DefaultJSONProvider
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from flask_evershop_customer.views import BLUEPRINT_NAME, STOREFRONT_BLUEPRINT_NAME

from .conftest import PASSWORD, AppFactory, database_free, state_of


def envelope(response: TestResponse, status: int) -> str:
    assert response.status_code == status
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"error"}
    assert body["error"]["status"] == status
    message = body["error"]["message"]
    assert isinstance(message, str) and message
    return message


@database_free
@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("put", "/api/customers", "GET, HEAD, POST, OPTIONS"),
        ("delete", "/api/customers", "GET, HEAD, POST, OPTIONS"),
        ("put", "/api/customers/" + "a" * 32, "GET, HEAD, PATCH, DELETE, OPTIONS"),
        ("post", "/api/customers/" + "a" * 32, "GET, HEAD, PATCH, DELETE, OPTIONS"),
        ("put", "/api/customers/me", "GET, HEAD, PATCH, DELETE, OPTIONS"),
        ("post", "/api/customers/me", "GET, HEAD, PATCH, DELETE, OPTIONS"),
        ("get", "/api/customers/reset-password", "POST, OPTIONS"),
        ("patch", "/api/customers/password", "POST, OPTIONS"),
        ("get", "/api/customers/sessions", "POST, OPTIONS"),
        ("delete", "/api/customers/sessions", "POST, OPTIONS"),
        ("patch", "/api/customers/sessions", "POST, OPTIONS"),
        ("get", "/api/customers/sessions/abc", "DELETE, POST, OPTIONS"),
        ("patch", "/api/customers/sessions/abc", "DELETE, POST, OPTIONS"),
        ("post", "/api/customers/openapi.json", "GET, HEAD, OPTIONS"),
        ("delete", "/api/customers/openapi.json", "GET, HEAD, OPTIONS"),
    ],
)
def test_wrong_method_is_405_json_with_allow(
    client: FlaskClient, method: Any, path: Any, allowed: Any
) -> None:
    response = getattr(client, method)(path)
    envelope(response, 405)
    assert set(response.headers["Allow"].split(", ")) == set(allowed.split(", "))


@database_free
@pytest.mark.parametrize("method", ["PROPFIND", "FOO", "TRACE"])
def test_any_unknown_method_is_405_json(client: FlaskClient, method: Any) -> None:
    response = client.open("/api/customers/" + "a" * 32, method=method)
    envelope(response, 405)


@database_free
def test_options_lists_the_methods(client: FlaskClient) -> None:
    response = client.options("/api/customers/" + "a" * 32)
    assert response.status_code == 200
    allowed = {"GET", "HEAD", "PATCH", "DELETE", "OPTIONS"}
    assert set(response.headers["Allow"].split(", ")) == allowed


@database_free
def test_the_host_may_add_its_own_routes_under_our_paths(app: Flask) -> None:
    @app.get("/api/customers/<customer_id>/orders")
    def host_view(customer_id: str) -> dict[str, str]:
        return {"host": customer_id}

    client = app.test_client()
    assert client.get("/api/customers/abc/orders").get_json() == {"host": "abc"}
    assert client.put("/api/customers/abc/orders").status_code == 405


@database_free
@pytest.mark.parametrize(
    "path", ["/api/customers/", "/api/customers/a/b", "/api/customers/sessions/"]
)
def test_unknown_paths_under_our_prefix_are_404_json(client: FlaskClient, path: Any) -> None:
    for method in ("get", "post", "patch", "delete"):
        envelope(getattr(client, method)(path), 404 if not path.endswith("sessions/") else 404)


@database_free
def test_paths_outside_our_routes_keep_the_hosts_handlers(app_factory: AppFactory) -> None:
    app = app_factory()

    @app.errorhandler(404)
    def host_not_found(_: Exception) -> tuple[str, int]:
        return "host 404", 404

    @app.get("/api/orders")
    def orders() -> NoReturn:
        abort(404)

    client = app.test_client()
    assert client.get("/elsewhere").get_data(as_text=True) == "host 404"
    assert client.get("/api/orders").get_data(as_text=True) == "host 404"
    assert client.post("/api/orders").status_code == 405
    assert client.post("/api/orders").mimetype != "application/json"


@database_free
@pytest.mark.parametrize(
    ("content_type", "status"),
    [
        ("text/plain", 415),
        ("application/x-www-form-urlencoded", 415),
        ("multipart/form-data; boundary=x", 415),
        ("application/json; charset=latin1", 415),
        ("application/json; charset=utf-8", 400),
        ("application/vnd.api+json", 400),
    ],
)
def test_content_types(client: FlaskClient, content_type: Any, status: Any) -> None:
    response = client.post("/api/customers", data=b'{"email": 1}', content_type=content_type)
    envelope(response, status)


@database_free
def test_compressed_bodies_are_415(client: FlaskClient) -> None:
    response = client.post(
        "/api/customers",
        data=b"\x1f\x8b\x08\x00",
        content_type="application/json",
        headers={"Content-Encoding": "gzip"},
    )
    envelope(response, 415)


@database_free
@pytest.mark.parametrize(
    "body",
    [b"{", b'{"email": }', b"\xff\xfe", b'{"a": NaN}', b'{"a": 1, "a": 2}', b"[" * 60000],
)
def test_malformed_json_is_400(client: FlaskClient, body: Any) -> None:
    response = client.post("/api/customers", data=body, content_type="application/json")
    assert envelope(response, 400) == "Request data must be valid JSON"


@database_free
def test_body_over_the_limit_is_413(app_factory: AppFactory) -> None:
    app = app_factory(EVERSHOP_CUSTOMER_MAX_CONTENT_LENGTH=2048)
    client = app.test_client()
    big = b'{"full_name": "' + b"x" * 4096 + b'"}'
    envelope(client.post("/api/customers", data=big, content_type="application/json"), 413)
    envelope(
        client.post("/api/customers/sessions", data=big, content_type="application/json"),
        413,
    )


@database_free
def test_the_default_limit_is_64_kib(client: FlaskClient) -> None:
    big = b'{"full_name": "' + b"x" * 65536 + b'"}'
    envelope(client.post("/api/customers", data=big, content_type="application/json"), 413)


@database_free
def test_unexpected_errors_are_a_bare_500_envelope(
    app_factory: AppFactory, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    app = app_factory(PROPAGATE_EXCEPTIONS=False)
    client = app.test_client(use_cookies=False)
    rules = state_of(app).customers
    reported: list[BaseException] = []

    def explode(*_args: object, **_kwargs: object) -> NoReturn:
        raise RuntimeError("driver text that must not leak")

    def receiver(_sender: object, exception: BaseException, **_extra: object) -> None:
        reported.append(exception)

    monkeypatch.setattr(rules, "create", explode)
    body = {"email": "a@example.com", "password": PASSWORD, "full_name": "A"}
    with got_request_exception.connected_to(receiver, app):
        response = client.post("/api/customers", json=body)
    assert envelope(response, 500) == "Internal server error"
    assert response.headers["Cache-Control"] == "no-store"
    assert "driver text" not in response.get_data(as_text=True)
    assert "driver text" in caplog.text
    # Error trackers (Sentry, ...) listen to this signal: they hear of the bug.
    assert [type(error) for error in reported] == [RuntimeError]


@database_free
def test_a_bug_reaches_the_test_that_finds_it(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under ``TESTING`` Flask propagates exceptions: the blueprint must not swallow them."""
    rules = state_of(app).customers

    def explode(*_args: object, **_kwargs: object) -> NoReturn:
        raise RuntimeError("a bug")

    monkeypatch.setattr(rules, "create", explode)
    body = {"email": "a@example.com", "password": PASSWORD, "full_name": "A"}
    with pytest.raises(RuntimeError, match="a bug"):
        client.post("/api/customers", json=body)


def test_responses_keep_field_order_even_if_the_host_sorts_keys(
    app: Flask, client: FlaskClient
) -> None:
    assert isinstance(app.json, DefaultJSONProvider)
    app.json.sort_keys = True
    response = client.post(
        "/api/customers", json={"email": "a@example.com", "password": PASSWORD, "full_name": "A"}
    )
    assert list(response.get_json()["data"])[:2] == ["customer_id", "uuid"]


# -- caching, doubled slashes, bodies without a length ----------------------------------


def _answers_of_every_kind(app_factory: AppFactory) -> dict[int | str, TestResponse]:
    """One request per kind of answer the extension gives, success and failure."""
    app = app_factory(
        EVERSHOP_CUSTOMER_LOGIN_MAX_FAILURES=1, EVERSHOP_CUSTOMER_MAX_CONTENT_LENGTH=1024
    )
    client = app.test_client(use_cookies=False)
    body = {"email": "a@example.com", "password": PASSWORD, "full_name": "A"}
    created = client.post("/api/customers", json=body)
    uuid = created.get_json()["data"]["uuid"]
    wrong = {"email": "a@example.com", "password": "a wrong password"}
    return {
        200: created,
        400: client.post("/api/customers/sessions", json=wrong),
        429: client.post("/api/customers/sessions", json=wrong),
        401: client.patch(f"/api/customers/{uuid}", json={}),
        404: client.get("/api/customers/nothing/here"),
        405: client.put("/api/customers"),
        409: client.post("/api/customers", json=body),
        413: client.post(
            "/api/customers", data=b"[" + b" " * 2048 + b"]", content_type="application/json"
        ),
        415: client.post("/api/customers", data=b"email=a", content_type="text/plain"),
        "openapi": client.get("/api/customers/openapi.json"),
        "options": client.options("/api/customers/sessions"),
    }


def test_no_answer_of_the_extension_may_be_cached(app_factory: AppFactory) -> None:
    for kind, response in _answers_of_every_kind(app_factory).items():
        assert response.status_code == kind or isinstance(kind, str), kind
        assert response.headers["Cache-Control"] == "no-store", kind


@database_free
@pytest.mark.parametrize("method", ["get", "post", "patch", "delete", "put"])
@pytest.mark.parametrize(
    "path",
    [
        "/api//customers/sessions",
        "/api/customers//sessions",
        "/api//customers",
        "/api/customers//" + "a" * 32,
    ],
)
def test_doubled_slashes_are_a_json_404_never_a_redirect(
    client: FlaskClient, method: Any, path: Any
) -> None:
    # As the server hands it over (a test client would read "//api" as a host name).
    response = client.open(
        "/",
        method=method.upper(),
        json={},
        headers={"Host": "evil.example"},
        environ_overrides={"PATH_INFO": path},
    )
    assert envelope(response, 404) == "Not found"
    assert "Location" not in response.headers


def slash_variants(path: str) -> list[str]:
    """``path`` with one slash doubled (each in turn), and with a trailing slash or two:
    every spelling Werkzeug could answer with a redirect to the "right" one."""
    doubled = [path[:i] + "/" + path[i:] for i, char in enumerate(path) if char == "/"]
    return [*doubled, path + "/", path + "//"]


def owned_rules(app: Flask) -> list[tuple[str, list[str]]]:
    """Every path the extension's blueprints own (a sample value in each placeholder),
    with its methods."""
    own = (BLUEPRINT_NAME + ".", STOREFRONT_BLUEPRINT_NAME + ".")
    return [
        (re.sub(r"<[^>]+>", "a" * 32, rule.rule), sorted(rule.methods or ()))
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith(own)
    ]


@database_free
def test_no_path_of_the_extension_redirects_to_a_forged_host(app_factory: AppFactory) -> None:
    """Werkzeug's merge-slashes and strict-slashes redirects build an absolute URL from
    ``Host``: ``GET /customer//logout`` with ``Host: evil.example`` must not send the
    browser to evil.example (nor anywhere)."""
    app = app_factory(EVERSHOP_CUSTOMER_STOREFRONT_ROUTES=True)
    client = app.test_client()
    rules = owned_rules(app)
    assert {"/customer/login", "/customer/logout", "/api/customers"} <= {p for p, _ in rules}
    for path, methods in rules:
        for variant in slash_variants(path):
            for method in methods:
                response = client.open(
                    "/",
                    method=method,
                    headers={"Host": "evil.example"},
                    environ_overrides={"PATH_INFO": variant},
                )
                assert not 300 <= response.status_code < 400, (method, variant)
                assert "Location" not in response.headers, (method, variant)


@database_free
def test_a_host_route_with_doubled_slashes_keeps_flask_behaviour(
    app: Flask, client: FlaskClient
) -> None:
    @app.get("/shop/page")
    def page() -> str:
        return "page"

    assert client.get("/shop//page").status_code == 308


@database_free
@pytest.mark.parametrize("size", [1024, 1025, 100_000])
def test_a_body_without_a_length_is_refused_over_the_limit_not_cut(
    app_factory: AppFactory, size: Any
) -> None:
    import io

    app = app_factory(EVERSHOP_CUSTOMER_MAX_CONTENT_LENGTH=1024)
    client = app.test_client(use_cookies=False)
    padding = " " * (size - len('{"email":"a@example.com","password":"x"}'))
    data = ('{"email":"a@example.com","password":"x"}' + padding).encode()
    assert len(data) == size
    response = client.post(
        "/api/customers/sessions",
        input_stream=io.BytesIO(data),
        content_type="application/json",
        headers={"Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.request.content_length is None
    if size <= 1024:
        assert envelope(response, 400) == "Invalid email or password"
    else:
        assert envelope(response, 413) == "Request body is too large"
