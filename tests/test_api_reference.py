"""``GET {prefix}/customers/openapi.html``: the OpenAPI document an app serves, rendered as
a page for people: every operation, as configured, escaped, under a strict CSP."""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from flask_evershop_customer.api_reference import render

from .conftest import customers, make_app


def page_of(apps: list[Flask], url_prefix: str | None = None, **config: Any) -> tuple[str, Any]:
    """The page an app with this configuration serves, and its document."""
    app = make_app("sqlite://", set_up=False, **config)
    apps.append(app)
    if url_prefix is None:
        customers.init_app(app)
        prefix = "/api"
    else:
        app.register_blueprint(customers.blueprint, url_prefix=url_prefix)
        prefix = url_prefix
    client = FlaskClient(app, app.response_class)
    response = client.get(f"{prefix}/customers/openapi.html")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert response.mimetype_params["charset"] == "utf-8"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    html = response.get_data(as_text=True)
    (style,) = re.findall(r"<style>(.*?)</style>", html, re.S)
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    policy = response.headers["Content-Security-Policy"]
    assert policy.startswith(f"default-src 'none'; style-src 'sha256-{digest}'")
    return html, client.get(f"{prefix}/customers/openapi.json").get_json()


def operations(document: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [
        (method.upper(), path, operation["operationId"])
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in ("get", "post", "patch", "delete")
    ]


def test_every_operation_of_the_served_document_is_on_the_page(bare_apps: list[Flask]) -> None:
    html, document = page_of(bare_apps)
    assert len(operations(document)) == 27
    for method, path, operation_id in operations(document):
        assert f'<section id="{operation_id}">' in html
        assert f"<code>{method} {path}</code>" in html
        assert f'href="#{operation_id}"' in html
    assert "<script" not in html
    assert 'href="openapi.json"' in html  # relative: beside the page, under any prefix
    assert "Paths are relative to <code>/api</code>" in html


def test_the_page_shows_fields_credentials_and_answers(bare_apps: list[Flask]) -> None:
    html, _ = page_of(bare_apps)
    create = html[html.index('<section id="createCustomer">') :]
    create = create[: create.index("</section>")]
    assert "Credentials: none." in create
    assert (
        "<td>email</td><td>string, format email, at most 254 characters</td><td>yes</td>" in create
    )
    status_type = "integer or string, one of 0, 1, &quot;0&quot;, &quot;1&quot;, default 1"
    assert f"<td>status</td><td>{status_type}</td><td>no</td>" in create
    assert "<td>409</td>" in create and "<td>429</td>" in create
    read = html[html.index('<section id="readCustomer">') :]
    read = read[: read.index("</section>")]
    assert "<code>Authorization: Bearer</code>" in read
    assert "the <code>token</code> cookie" in read and "the <code>asid</code> cookie" in read
    assert "<td>id</td><td>path</td><td>yes</td>" in read
    assert "<td>password</td><td>string, 8 to 128 code points after NFKC</td>" in create
    listing = html[html.index('<section id="listCustomers">') :]
    assert (
        "<td>limit</td><td>query</td><td>no</td><td>integer, 1 to 100, default 20</td>"
        in (listing[: listing.index("</section>")])
    )


def test_the_page_follows_the_configuration(bare_apps: list[Flask]) -> None:
    html, document = page_of(
        bare_apps,
        url_prefix="/v1",
        EVERSHOP_CUSTOMER_TOKEN_COOKIE_NAME="shop_token",
        EVERSHOP_CUSTOMER_ALLOW_REGISTRATION=False,
        EVERSHOP_CUSTOMER_STOREFRONT_ROUTES=True,
        EVERSHOP_CUSTOMER_PASSWORD_MIN_LENGTH=15,
    )
    assert "<td>password</td><td>string, 15 to 128 code points after NFKC</td>" in html
    assert "Paths are relative to <code>/v1</code>" in html
    assert "the <code>shop_token</code> cookie" in html
    create = html[html.index('<section id="createCustomer">') :]
    assert create[: create.index("</section>")].count("<code>asid</code>") == 1
    assert "<code>POST /customer/login</code>" in html
    assert "Served at <code>/</code>, not under the prefix." in html
    logout = html[html.index('<section id="storefrontLogout">') :]
    assert "Credentials: " in logout and " or none." in logout[: logout.index("</section>")]
    assert len(operations(document)) == 30


def test_the_storefront_routes_are_left_out_when_not_served(bare_apps: list[Flask]) -> None:
    html, _ = page_of(bare_apps)
    assert "/customer/login" not in html


def test_everything_from_the_document_is_escaped() -> None:
    document = {
        "info": {"title": "<b>T</b>", "version": "1", "description": "a & <script>x</script>"},
        "servers": [{"url": "/api"}],
        "paths": {
            "/x/{id}": {
                "parameters": [{"name": "<id>", "in": "path", "required": True}],
                "get": {
                    "operationId": 'op"><script>',
                    "summary": "<i>s</i>",
                    "responses": {"200": {"description": "<img src=x>"}},
                },
            }
        },
        "components": {"securitySchemes": {}},
    }
    html = render(document)
    assert "<script" not in html and "<img" not in html and "<b>T" not in html
    assert "&lt;script&gt;" in html and "&lt;img src=x&gt;" in html
    assert 'id="op&quot;&gt;&lt;script&gt;"' in html


def test_other_methods_are_405(bare_apps: list[Flask]) -> None:
    app = make_app("sqlite://", set_up=False)
    bare_apps.append(app)
    customers.init_app(app)
    response = FlaskClient(app, app.response_class).post("/api/customers/openapi.html")
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, HEAD, OPTIONS"
