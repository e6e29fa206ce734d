"""schemathesis against the OpenAPI document the app serves, in-process (WSGI, no network).

Each test loads ``/api/customers/openapi.json`` from a fresh app on one database and lets
schemathesis generate requests from it: its coverage phase (boundary values, missing and
wrong-typed parts, undocumented methods; deterministic), bounded random fuzzing, positive
and negative, and stateful runs that follow the document's links (create, update, delete,
log in, log out). Every response goes through ``CHECKS``: no server error; only
documented statuses, content types, bodies and headers; credentials really enforced
(``ignored_auth`` retries each authenticated success without and with bad credentials);
nothing still there after a delete (``use_after_free``); invalid input refused; no
password or hash in any answer. A failure is a bug in the library or in the document:
fix that, never the checks.

Credentials come from schemathesis auth providers: the admin cookie, or the bearer token
of a customer registered by the test. The cases are driven here rather than through
schemathesis's pytest plugin (``schemathesis.pytest.from_fixture`` does not run under
pytest 9.2), with the pieces its own runner uses: ``iter_coverage_cases``,
``set_on_generated_case``, ``as_strategy``, ``as_state_machine``.

Bounded (``MAX_EXAMPLES`` per operation and mode, short stateful runs, all derandomized):
about 30 s per database (SQLite pays the warm-up). It runs on every database of the run.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import (
    AuthContext,
    BaseSchema,
    Case,
    CheckContext,
    CheckFunction,
    GenerationMode,
    Response,
)
from schemathesis import checks as st_checks
from schemathesis.auths import set_on_generated_case
from schemathesis.generation.stateful import run_state_machine_as_test

from flask_evershop_customer.openapi import packaged_document

from .conftest import Api, AppFactory, assert_no_secrets, clear_tables

DOCUMENT = "/api/customers/openapi.json"
MAX_EXAMPLES = 25
STATEFUL_EXAMPLES = 12
STATEFUL_STEPS = 10
SECURED = (
    "/customers/{id}",
    "/customers/me",
    "/customers/me/sessions",
    "/customers/sessions/{ids}",
    "/customers/me/addresses",
    "/customers/me/addresses/{address_id}",
    "/customers/{id}/addresses",
    "/customers/{id}/addresses/{address_id}",
)
#: Positive and negative. (Listed once: mypy, set to Python 3.10, does not know the
#: ``enum.StrEnum`` this Python 3.11+ library derives ``GenerationMode`` from, and will not
#: iterate over the class itself.)
GENERATION_MODES: tuple[GenerationMode, ...] = tuple(GenerationMode)


def no_secrets(ctx: CheckContext, response: Response, case: Case[Any]) -> bool | None:
    """No password field, no known password and nothing shaped like a hash in the answer,
    body or cookies. The customer's own email and name are left out: they echo what the
    request sent, and schemathesis may well send a name that looks like a hash."""
    try:
        body = json.loads(response.text)
    except ValueError:
        body = response.text
    data = body.get("data") if isinstance(body, dict) else None
    if isinstance(data, dict):
        data = {k: v for k, v in data.items() if k not in ("email", "full_name")}
        body = {**body, "data": data}
    assert_no_secrets(json.dumps(body))
    for cookie in response.headers.get("set-cookie", []):
        assert_no_secrets(cookie)
    return None


CHECKS = [
    st_checks.not_a_server_error,
    st_checks.status_code_conformance,
    st_checks.content_type_conformance,
    st_checks.response_schema_conformance,
    st_checks.response_headers_conformance,
    st_checks.negative_data_rejection,
    st_checks.missing_required_header,
    st_checks.unsupported_method,
    st_checks.ignored_auth,
    st_checks.use_after_free,
    st_checks.ensure_resource_availability,
    no_secrets,
]

BOUNDED = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
    suppress_health_check=list(HealthCheck),
)


def operations(*, storefront: bool) -> list[str]:
    """The documented operations but the document's own: the storefront routes (served
    at the root, when enabled) or the others."""
    return [
        f"{method.upper()} {path}"
        for path, item in packaged_document()["paths"].items()
        for method in item
        if method in ("get", "post", "patch", "delete")
        and not path.endswith("openapi.json")
        and bool(item.get("x-storefront-route")) == storefront
    ]


OPERATIONS = operations(storefront=False)


def load(app: Flask, document: str = DOCUMENT) -> BaseSchema:
    return schemathesis.openapi.from_wsgi(document, app)


def admin_cookie(api: Api) -> str:
    return api.admin_headers()["Cookie"].partition("=")[2]


def with_credentials(
    schema: BaseSchema,
    *,
    cookie: str | None = None,
    token: str | None = None,
    paths: tuple[str, ...] = SECURED,
) -> BaseSchema:
    """Registers the admin cookie or a customer's bearer token for the operations on
    ``paths``, the way schemathesis applies any auth provider."""

    class Credentials:
        def get(self, case: Any, context: Any) -> str:
            return cookie or token or ""

        def set(self, case: Any, data: str, context: Any) -> None:
            if cookie is not None:
                case.cookies = {**(case.cookies or {}), "asid": data}
            else:
                case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}

    schema.auth(refresh_interval=None).apply_to(path=list(paths))(Credentials)
    return schema


def exercise(schema: BaseSchema, label: str) -> None:
    """schemathesis's coverage phase for one operation (boundary values, missing and
    wrong-typed parts, undocumented methods: deterministic), then bounded random
    fuzzing, positive and negative. Every response goes through ``CHECKS``."""
    operation = schema.find_operation_by_label(label)
    assert operation is not None, label
    coverage = schema.iter_coverage_cases(
        operation,
        generation_modes=list(GENERATION_MODES),
        generation_config=schema.config.generation_for(operation=operation, phase="coverage"),
    )
    context = AuthContext(operation=operation, app=operation.app)
    for case in coverage:
        set_on_generated_case(case, context, None)
        case.call_and_validate(checks=CHECKS)

    # A request with no parameters and no body has nothing negative fuzzing could make
    # invalid (Hypothesis would find no input at all).
    mutable = operation.body or list(operation.iter_parameters())
    modes = [m for m in GENERATION_MODES if mutable or m is GenerationMode.POSITIVE]
    for mode in modes:

        @BOUNDED
        @given(case=operation.as_strategy(generation_mode=mode))
        def fuzz(case: Any) -> None:
            case.call_and_validate(checks=CHECKS)

        fuzz()


@pytest.mark.parametrize("label", OPERATIONS)
def test_every_operation_as_an_admin(app: Flask, api: Api, label: Any) -> None:
    api.register("existing@example.com")
    exercise(with_credentials(load(app), cookie=admin_cookie(api)), label)


@pytest.mark.parametrize(
    "label",
    [
        "GET /customers/{id}",
        "PATCH /customers/{id}",
        "DELETE /customers/{id}",
        "GET /customers/me",
        "PATCH /customers/me",
        "DELETE /customers/me",
        "GET /customers/me/sessions",
        "DELETE /customers/me/sessions",
        "GET /customers/me/addresses",
        "POST /customers/me/addresses",
        "PATCH /customers/me/addresses/{address_id}",
        "DELETE /customers/me/addresses/{address_id}",
        "GET /customers/{id}/addresses",
        "POST /customers/{id}/addresses",
        "PATCH /customers/{id}/addresses/{address_id}",
    ],
)
def test_a_customer_on_their_own_record(app: Flask, api: Api, label: Any) -> None:
    """A well-formed generated id is replaced by the customer's own, so that updates
    (and the delete) really happen with their bearer token."""
    me = api.register("me@example.com", full_name="Me Myself")
    schema = with_credentials(load(app), token=api.login("me@example.com").token)

    @schema.hook
    def map_path_parameters(
        context: Any, path_parameters: dict[str, Any] | None
    ) -> dict[str, Any] | None:
        if path_parameters is None:  # /customers/me names no one
            return None
        value = path_parameters.get("id")
        if isinstance(value, str) and len(value) == 32 and value.isalnum():
            path_parameters["id"] = me["uuid"]
        return path_parameters

    exercise(schema, label)


def test_registration_closed(app_factory: AppFactory) -> None:
    app = app_factory(EVERSHOP_CUSTOMER_ALLOW_REGISTRATION=False)
    api = Api(app, app.test_client(use_cookies=False))
    schema = with_credentials(load(app), cookie=admin_cookie(api), paths=("/customers",))
    exercise(schema, "POST /customers")


@pytest.mark.parametrize("label", operations(storefront=True))
def test_the_storefront_routes(app_factory: AppFactory, label: str) -> None:
    """With an empty prefix the document's server is the root, where the storefront
    routes are: schemathesis then calls them where they are served."""
    app = app_factory(EVERSHOP_CUSTOMER_URL_PREFIX="", EVERSHOP_CUSTOMER_STOREFRONT_ROUTES=True)
    api = Api(app, app.test_client(use_cookies=False), prefix="")
    api.register("existing@example.com")
    schema = with_credentials(
        load(app, "/customers/openapi.json"),
        token=api.login("existing@example.com").token,
        paths=("/customer/logout",),
    )
    exercise(schema, label)


def run_links(app: Flask, schema: BaseSchema, *, examples: int, steps: int) -> None:
    """schemathesis's state machine over the document's links, every scenario on empty
    tables (so that Hypothesis can replay one), every response through ``CHECKS``."""
    base = schema.as_state_machine()

    class Machine(base):  # type: ignore[misc, valid-type]
        def setup(self) -> None:
            clear_tables(app)

        def validate_response(
            self,
            response: Response,
            case: Case[Any],
            additional_checks: list[CheckFunction] | None = None,
            **kwargs: Any,
        ) -> None:
            case.validate_response(
                response, checks=CHECKS, transport_kwargs=kwargs or None, recorder=self.recorder
            )

    run_state_machine_as_test(
        Machine,
        settings=settings(
            max_examples=examples,
            stateful_step_count=steps,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        ),
    )


def test_stateful_links(app: Flask, api: Api) -> None:
    """Every link, as an admin: create, then update, delete or log in, then log out."""
    schema = with_credentials(load(app), cookie=admin_cookie(api))
    run_links(app, schema, examples=STATEFUL_EXAMPLES, steps=STATEFUL_STEPS)


def test_stateful_customer_lifecycle(app: Flask, api: Api) -> None:
    """Create, update and delete only, so that a read after a delete (use after free)
    comes up within a few scenarios."""
    schema = with_credentials(load(app), cookie=admin_cookie(api))
    customers = schema.include(path_regex=r"^/customers(/\{id\})?$")
    run_links(app, customers, examples=STATEFUL_EXAMPLES, steps=STATEFUL_STEPS)
