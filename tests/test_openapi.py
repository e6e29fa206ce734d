"""The OpenAPI document: valid OpenAPI 3.1, served under the prefix, in step with the routes,
and true of what the endpoints really answer."""

from __future__ import annotations

import json
import re
from importlib import resources
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # no stubs installed (types-jsonschema)
import pytest
from flask import Flask
from flask.testing import FlaskClient
from openapi_spec_validator import OpenAPIV31SpecValidator
from sqlalchemy.exc import OperationalError
from werkzeug.routing import Rule

import flask_evershop_customer
from flask_evershop_customer.views import ROUTES, STOREFRONT_ROUTES

from . import docs_blocks
from .conftest import (
    OTHER_PASSWORD,
    PASSWORD,
    Api,
    AppFactory,
    CheckedClient,
    database_free,
    make_app,
    state_of,
)

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
ALL_METHODS = {m.upper() for m in METHODS}


def packaged() -> dict[str, Any]:
    text = resources.files("flask_evershop_customer").joinpath("openapi.json").read_text("utf-8")
    return json.loads(text)  # type: ignore[no-any-return]


def assert_valid_openapi_31(document: dict[str, Any]) -> None:
    errors = [e.message for e in OpenAPIV31SpecValidator(document).iter_errors()]
    assert not errors, errors
    assert document["openapi"] == "3.1.0"


def served(app: Flask, path: str = "/api/customers/openapi.json") -> dict[str, Any]:
    """The document an app serves. Fetched without conftest's leak check: a schema
    naming the ``password`` field is no leak."""
    response = FlaskClient(app, app.response_class).get(path)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    document = response.get_json()
    assert_valid_openapi_31(document)
    return document  # type: ignore[no-any-return]


def bare_app(apps: list[Flask], **config: Any) -> Flask:
    """A host app on an in-memory database, without the extension yet."""
    app = make_app("sqlite://", set_up=False, **config)
    apps.append(app)
    return app


# -- the document itself --------------------------------------------------------------


def test_the_packaged_document_is_valid_openapi_31() -> None:
    document = packaged()
    assert_valid_openapi_31(document)
    assert document["servers"] == [
        {"url": "/api", "description": document["servers"][0]["description"]}
    ]


def test_it_is_served_under_the_default_prefix(bare_apps: list[Flask]) -> None:
    from .conftest import customers

    app = bare_app(bare_apps)
    customers.init_app(app)
    response = app.test_client().get("/api/customers/openapi.json")
    document = served(app)
    assert document["servers"][0]["url"] == "/api"
    assert document["info"]["version"] == flask_evershop_customer.__version__
    # Like every answer of the extension (settings can change it between deployments).
    assert response.headers["Cache-Control"] == "no-store"
    head = app.test_client().head("/api/customers/openapi.json")
    assert head.status_code == 200 and head.data == b""
    # Apart from what the app's settings change, it is the packaged document.
    document["info"]["version"] = packaged()["info"]["version"]
    document["servers"][0]["url"] = "/api"
    expected = packaged()
    # The storefront routes are off by default: their paths are left out.
    storefront = ["/customer/login", "/customer/logout"]
    assert all(expected["paths"][path]["x-storefront-route"] for path in storefront)
    expected["paths"] = {p: item for p, item in expected["paths"].items() if p not in storefront}
    assert document == expected


@pytest.mark.parametrize(
    ("how", "prefix", "url"),
    [
        ("config", "/shop/v2", "/shop/v2"),
        ("config", "", "/"),
        ("register_blueprint", "/v1", "/v1"),
    ],
)
def test_it_follows_a_moved_prefix(bare_apps: list[Flask], how: Any, prefix: Any, url: Any) -> None:
    from .conftest import customers

    if how == "config":
        app = bare_app(bare_apps, EVERSHOP_CUSTOMER_URL_PREFIX=prefix)
        customers.init_app(app)
    else:
        app = bare_app(bare_apps)
        app.register_blueprint(customers.blueprint, url_prefix=prefix)
    client = app.test_client()
    document = served(app, f"{prefix}/customers/openapi.json")
    assert document["servers"][0]["url"] == url
    assert client.get("/api/customers/openapi.json").status_code == 404


def test_it_follows_the_configuration(bare_apps: list[Flask]) -> None:
    from .conftest import customers

    app = bare_app(
        bare_apps,
        EVERSHOP_CUSTOMER_TOKEN_COOKIE_NAME="shop_token",
        EVERSHOP_CUSTOMER_ADMIN_COOKIE_NAME="shop_admin",
        EVERSHOP_CUSTOMER_PASSWORD_MIN_LENGTH=12,
        EVERSHOP_CUSTOMER_ALLOW_REGISTRATION=False,
    )
    customers.init_app(app)
    document = served(app)
    components = document["components"]
    assert components["securitySchemes"]["tokenCookie"]["name"] == "shop_token"
    assert components["securitySchemes"]["adminCookie"]["name"] == "shop_admin"
    assert components["schemas"]["Password"]["x-min-length-after-nfkc"] == 12
    create = document["paths"]["/customers"]["post"]
    assert create["security"] == [{"adminCookie": []}]
    assert {"401", "403"} <= set(create["responses"])


def test_open_registration_needs_no_credentials(bare_apps: list[Flask]) -> None:
    from .conftest import customers

    app = bare_app(bare_apps)
    customers.init_app(app)
    document = served(app)
    assert document["paths"]["/customers"]["post"]["security"] == []
    responses = document["paths"]["/customers"]["post"]["responses"]
    assert "401" not in responses
    # Only a disabled account (status 0) needs an admin.
    assert responses["403"] == {"$ref": "#/components/responses/DisabledRegistrationForbidden"}
    assert document["paths"]["/customers/sessions"]["post"]["security"] == []


# -- the document and the routes ------------------------------------------------------


def template(path: str) -> str:
    """A path with its variables blanked: ``/customers/<customer_id>`` and
    ``/customers/{id}`` both become ``/customers/{}``."""
    return re.sub(r"<[^>]+>|\{[^}]+\}", "{}", path)


def documented_operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method.upper(), template(path))
        for path, item in document["paths"].items()
        for method in item
        if method in METHODS
    }


def routed_operations(app: Flask) -> set[tuple[str, str]]:
    """The (method, path) pairs the extension's views serve (the storefront routes at
    the root, the others under the prefix)."""
    endpoints = {f"evershop_customer.{endpoint}" for _, endpoint, _, _ in ROUTES}
    storefront = {f"evershop_customer_storefront.{e}" for _, e, _, _ in STOREFRONT_ROUTES}
    prefix = state_of(app).settings.url_prefix
    found = set()
    rule: Rule
    for rule in app.url_map.iter_rules():
        if rule.endpoint not in endpoints | storefront:
            continue
        path = rule.rule
        if rule.endpoint in endpoints:
            assert path.startswith((prefix + "/customers", prefix + "/customer/"))
            path = path[len(prefix) :]
        methods = set(rule.methods or ()) - {"OPTIONS"}
        if "GET" in methods:
            methods.discard("HEAD")  # Flask adds HEAD to every GET
        found |= {(method, template(path)) for method in methods}
    return found


def test_every_route_is_documented_and_every_operation_routed(bare_apps: list[Flask]) -> None:
    from .conftest import customers

    app = bare_app(bare_apps)
    customers.init_app(app)
    document = served(app)
    assert documented_operations(document) == routed_operations(app)
    assert len(routed_operations(app)) == 27


def test_the_storefront_routes_are_documented_when_served(bare_apps: list[Flask]) -> None:
    from .conftest import customers

    app = bare_app(bare_apps, EVERSHOP_CUSTOMER_STOREFRONT_ROUTES=True)
    customers.init_app(app)
    document = served(app)
    assert_valid_openapi_31(document)
    assert documented_operations(document) == routed_operations(app)
    assert {("POST", "/customer/login"), ("GET", "/customer/logout")} <= routed_operations(app)
    assert len(routed_operations(app)) == 30
    # They sit at the root whatever the prefix: their path items say so.
    assert document["paths"]["/customer/login"]["servers"][0]["url"] == "/"


def test_undocumented_methods_are_405_with_allow(bare_apps: list[Flask]) -> None:
    """Exactly the documented methods are allowed; any other gets the 405 envelope."""
    from .conftest import customers

    app = bare_app(bare_apps)
    customers.init_app(app)
    client = app.test_client()
    document = served(app)
    examples = {"{id}": "a" * 32, "{ids}": "abc", "{address_id}": "b" * 32}
    for path, item in document["paths"].items():
        url = "/api" + re.sub(r"\{[^}]+\}", lambda m: examples[m.group(0)], path)
        documented = {m.upper() for m in item if m in METHODS}
        if "GET" in documented:
            documented.add("HEAD")
        options = client.options(url)
        assert options.status_code == 200
        allowed = {m.strip() for m in options.headers["Allow"].split(",")}
        assert allowed == documented | {"OPTIONS"}, path
        for method in sorted(ALL_METHODS - allowed):
            response = client.open(url, method=method)
            assert response.status_code == 405, (method, path)
            assert response.mimetype == "application/json"
            assert {m.strip() for m in response.headers["Allow"].split(",")} == allowed


# -- real responses against the document ----------------------------------------------


class Contract:
    """Checks a response against the operation the document gives for its request."""

    def __init__(self, document: dict[str, Any], prefix: str) -> None:
        self.document = document
        self.prefix = prefix
        self.seen: set[tuple[str, str, int]] = set()

    def resolve(self, item: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in item:
            node: Any = self.document
            for part in item["$ref"].removeprefix("#/").split("/"):
                node = node[part]
            item = node
        return item

    def operation(self, method: str, path: str) -> tuple[str, dict[str, Any]]:
        """The documented operation for a request. A concrete path wins over a template,
        as OpenAPI says; a concrete path without this method falls to the template."""
        assert path.startswith(self.prefix + "/"), path
        path = path[len(self.prefix) :]
        candidates = []
        for template_path, item in self.document["paths"].items():
            pattern = re.escape(template_path)
            pattern = pattern.replace(r"\{ids\}", ".+").replace(r"\{id\}", "[^/]+")
            pattern = pattern.replace(r"\{address_id\}", "[^/]+")
            if re.fullmatch(pattern, path) and method.lower() in item:
                candidates.append(("{" in template_path, template_path, item[method.lower()]))
        assert candidates, f"{method} {path} is not documented"
        _, template_path, operation = min(candidates, key=lambda c: c[0])
        return template_path, operation

    def schema_validator(self, schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
        # The schema at the root, with the components beside it, resolves "#/components/...".
        root = {**schema, "components": self.document["components"]}
        return jsonschema.Draft202012Validator(root)

    def check(self, method: str, path: str, response: Any) -> None:
        template_path, operation = self.operation(method, path)
        status = response.status_code
        assert str(status) in operation["responses"], (
            f"{method} {template_path} answered {status}, which it does not document"
        )
        documented = self.resolve(operation["responses"][str(status)])
        self.seen.add((method, template_path, status))
        if method == "HEAD":
            return
        assert response.mimetype in documented["content"], response.mimetype
        media = documented["content"][response.mimetype]
        errors = sorted(
            self.schema_validator(media["schema"]).iter_errors(response.get_json()),
            key=lambda e: list(e.path),
        )
        assert not errors, (method, template_path, status, [e.message for e in errors])
        for name, header in documented.get("headers", {}).items():
            header = self.resolve(header)
            value = response.headers.get(name)
            if value is None:
                assert not header.get("required"), f"{name} missing on {status}"
                continue
            schema = header["schema"]
            if schema.get("type") == "integer":
                assert value.isascii() and value.isdigit(), value
                value = int(value)
            self.schema_validator(schema).validate(value)


class ContractClient(CheckedClient):
    """A test client that holds every response under the prefix to the document."""

    contract: Contract

    def open(self, *args: Any, **kwargs: Any) -> Any:
        response = super().open(*args, **kwargs)
        request = response.request
        prefix = self.contract.prefix
        if request.path.startswith((prefix + "/customers", prefix + "/customer/")):
            self.contract.check(request.method, request.path, response)
        return response


@pytest.fixture
def contract(app: Flask) -> Contract:
    document = served(app)
    return Contract(document, "/api")


@pytest.fixture
def checked(app: Flask, contract: Contract) -> tuple[Api, ContractClient]:
    client = ContractClient(app, app.response_class, use_cookies=False)
    client.contract = contract
    return Api(app, client), client


def test_typical_calls_answer_as_documented(
    checked: tuple[Api, ContractClient], contract: Contract
) -> None:
    api, client = checked
    admin = api.admin_headers()
    alice = api.register("alice@example.com")
    bob = api.register("bob@example.com", full_name="Bob Example", status="1")
    alice_login = api.login("alice@example.com")
    bob_login = api.login("bob@example.com")
    alice_url = f"/api/customers/{alice['uuid']}"

    # create: invalid, duplicate, wrong media type, too large
    client.post("/api/customers", json={"email": "x@example.com"})
    client.post(
        "/api/customers",
        json={"email": "ALICE@example.com", "password": PASSWORD, "full_name": "A"},
    )
    client.post("/api/customers", data="email=x", content_type="text/plain")
    client.post("/api/customers", data=b"{" + b" " * 70000 + b"}", content_type="application/json")

    # update: herself, an admin with the ETag, stale, someone else, nobody, unknown, reserved ids
    response = client.patch(alice_url, json={}, headers=alice_login.headers)
    etag = response.headers["ETag"]
    client.patch(alice_url, json={"full_name": "Alice Again"}, headers={**admin, "If-Match": etag})
    client.patch(alice_url, json={"full_name": "Stale"}, headers={**admin, "If-Match": etag})
    client.patch(alice_url, json={"status": 0}, headers=alice_login.headers)
    client.patch(alice_url, json={}, headers=bob_login.headers)
    client.patch(alice_url, json={})
    client.patch(alice_url, json={}, headers={"Authorization": "Bearer nonsense"})
    client.patch("/api/customers/" + "0" * 32, json={}, headers=admin)
    client.patch("/api/customers/not-a-uuid", json={}, headers=admin)
    client.patch("/api/customers/sessions", json={}, headers=admin)
    client.patch("/api/customers/openapi.json", json={}, headers=admin)
    own = alice_login.headers
    client.patch(alice_url, json={"email": "bob@example.com"}, headers=own)
    client.patch(alice_url, json={"email": "bob@example.com", "current_password": "x"}, headers=own)
    moved = {"email": "bob@example.com", "current_password": PASSWORD}
    client.patch(alice_url, json=moved, headers=own)
    client.patch(alice_url, json={"password": "short"}, headers=own)
    client.patch(alice_url, data="[", content_type="application/json", headers=admin)
    new_password = {"password": OTHER_PASSWORD, "current_password": PASSWORD}
    client.patch(alice_url, json=new_password, headers=own)
    client.get(alice_url, headers=own)
    client.get(alice_url, headers=bob_login.headers)
    client.get("/api/customers/me", headers=own)
    client.get("/api/customers/me", headers=admin)
    client.patch("/api/customers/me", json={"full_name": "Alice Me"}, headers=own)
    client.get("/api/customers/me/sessions", headers=own)
    client.delete("/api/customers/me/sessions", headers=own)

    # login: wrong password until throttled
    client.post("/api/customers/sessions", json={"email": "nobody@example.com", "password": "x"})
    for _ in range(6):
        client.post("/api/customers/sessions", json={"email": "bob@example.com", "password": "no"})
    client.post("/api/customers/sessions", json={"email": "not an email", "password": "x"})

    # logout, both methods: someone else's, unknown, own, already ended, by an admin
    client.delete(f"/api/customers/sessions/{alice_login.sid}", headers=bob_login.headers)
    client.delete(f"/api/customers/sessions/{'0' * 8}-0000-0000-0000-{'0' * 12}", headers=admin)
    client.post(f"/api/customers/sessions/{bob_login.sid}", headers=bob_login.headers)
    client.delete(f"/api/customers/sessions/{bob_login.sid}", headers=admin)
    again = api.login("alice@example.com", OTHER_PASSWORD)
    client.delete(f"/api/customers/sessions/{again.sid}", headers=again.headers)
    client.post(f"/api/customers/sessions/{alice['uuid']}", headers=admin)

    # delete: someone else's, her own, again, by an admin
    carol = api.register("carol@example.com")
    carol_login = api.login("carol@example.com")
    client.delete(f"/api/customers/{bob['uuid']}", headers=carol_login.headers)
    client.delete(f"/api/customers/{carol['uuid']}", headers=carol_login.headers)
    client.delete(f"/api/customers/{carol['uuid']}", headers=admin)
    client.delete(f"/api/customers/{bob['uuid']}", headers=admin)
    client.delete("/api/customers/sessions", headers=admin)

    # addresses: add (valid, invalid), list, change, delete, unknown, an admin's
    new_address = {
        "full_name": "Alice",
        "address_1": "1 Main St",
        "postcode": "94043",
        "country": "US",
        "province": "US-CA",
        "is_default": True,
    }
    mine = "/api/customers/me/addresses"
    again_alice = api.login("alice@example.com", OTHER_PASSWORD)
    address = client.post(mine, json=new_address, headers=again_alice.headers).get_json()["data"]
    client.post(mine, json={**new_address, "country": "XX"}, headers=again_alice.headers)
    client.get(mine, headers=again_alice.headers)
    client.patch(f"{mine}/{address['uuid']}", json={"city": "X"}, headers=again_alice.headers)
    client.patch(f"{mine}/{'0' * 32}", json={}, headers=again_alice.headers)
    admin_base = f"/api/customers/{alice['uuid']}/addresses"
    client.get(admin_base, headers=admin)
    client.post(admin_base, json=new_address, headers=admin)
    client.delete(f"{admin_base}/{address['uuid']}", headers=admin)

    # headless tokens: a pair, a refresh, a replay, no token, a bad body
    pair = api.tokens("alice@example.com", OTHER_PASSWORD)
    client.post("/api/customer/tokens", json={"email": "alice@example.com", "password": "no"})
    rotated = client.post("/api/customer/token/refresh", json={"refreshToken": pair.refresh})
    client.post("/api/customer/token/refresh", json={"refreshToken": pair.refresh})
    client.post("/api/customer/token/refresh", json={})
    client.post("/api/customer/token/refresh", data="x", content_type="text/plain")
    assert rotated.status_code == 200

    expected = {
        ("POST", "/customers", 200),
        ("POST", "/customers", 400),
        ("POST", "/customers", 409),
        ("POST", "/customers", 413),
        ("POST", "/customers", 415),
        ("PATCH", "/customers/{id}", 200),
        ("PATCH", "/customers/{id}", 400),
        ("PATCH", "/customers/{id}", 401),
        ("PATCH", "/customers/{id}", 403),
        ("PATCH", "/customers/{id}", 404),
        ("PATCH", "/customers/{id}", 405),
        ("PATCH", "/customers/{id}", 409),
        ("PATCH", "/customers/{id}", 412),
        ("DELETE", "/customers/{id}", 200),
        ("DELETE", "/customers/{id}", 403),
        ("DELETE", "/customers/{id}", 404),
        ("DELETE", "/customers/{id}", 405),
        ("POST", "/customers/sessions", 200),
        ("POST", "/customers/sessions", 400),
        ("POST", "/customers/sessions", 429),
        ("DELETE", "/customers/sessions/{ids}", 200),
        ("DELETE", "/customers/sessions/{ids}", 403),
        ("DELETE", "/customers/sessions/{ids}", 404),
        ("POST", "/customers/sessions/{ids}", 200),
        ("POST", "/customers/me/addresses", 200),
        ("POST", "/customers/me/addresses", 400),
        ("GET", "/customers/me/addresses", 200),
        ("PATCH", "/customers/me/addresses/{address_id}", 200),
        ("PATCH", "/customers/me/addresses/{address_id}", 404),
        ("GET", "/customers/{id}/addresses", 200),
        ("POST", "/customers/{id}/addresses", 200),
        ("DELETE", "/customers/{id}/addresses/{address_id}", 200),
        ("POST", "/customer/tokens", 200),
        ("POST", "/customer/tokens", 400),
        ("POST", "/customer/token/refresh", 200),
        ("POST", "/customer/token/refresh", 400),
        ("POST", "/customer/token/refresh", 401),
        ("POST", "/customer/token/refresh", 415),
    }
    assert expected <= contract.seen, sorted(expected - contract.seen)


def test_registration_closed_answers_as_documented(app_factory: AppFactory) -> None:
    app = app_factory(EVERSHOP_CUSTOMER_ALLOW_REGISTRATION=False)
    contract = Contract(served(app), "/api")
    client = ContractClient(app, app.response_class, use_cookies=False)
    client.contract = contract
    api = Api(app, client)
    body = {"email": "closed@example.com", "password": PASSWORD, "full_name": "Closed"}
    client.post("/api/customers", json=body)
    client.post("/api/customers", json=body, headers=api.admin_headers())
    login = api.login("closed@example.com")
    client.post("/api/customers", json={**body, "email": "o@example.com"}, headers=login.headers)
    assert {status for _, _, status in contract.seen} >= {200, 401, 403}


@database_free
@pytest.mark.parametrize(
    ("error", "status"),
    [
        (RuntimeError("boom"), 500),
        (OperationalError("SELECT 1", {}, Exception("database is locked")), 503),
    ],
)
def test_server_failures_answer_as_documented(
    checked: tuple[Api, ContractClient],
    contract: Contract,
    monkeypatch: pytest.MonkeyPatch,
    error: Any,
    status: Any,
) -> None:
    api, client = checked
    api.app.config["PROPAGATE_EXCEPTIONS"] = False  # the 500 envelope, as in production
    state = state_of(api.app)

    def fail(*_: Any, **__: Any) -> Any:
        raise error

    monkeypatch.setattr(state.customers, "create", fail)
    monkeypatch.setattr(state.sessions, "login", fail)
    body = {"email": "x@example.com", "password": PASSWORD, "full_name": "X"}
    assert client.post("/api/customers", json=body).status_code == status
    response = client.post("/api/customers/sessions", json=body)
    assert response.status_code == status
    if status == 503:
        assert response.headers["Retry-After"] == "1"


def test_the_manual_lists_every_operation_of_the_document() -> None:
    """The HTTP API chapter's endpoint table and the packaged document name the same
    operations (with the storefront routes, which the document describes too)."""
    chapter = (docs_blocks.ROOT / "docs" / "api.md").read_text("utf-8")
    rows = re.findall(r"^\| `(GET|POST|PATCH|DELETE) (/[^`]*)` \|", chapter, re.M)
    assert {(method, template(path)) for method, path in rows} == documented_operations(packaged())
    assert len(rows) == len(documented_operations(packaged()))
