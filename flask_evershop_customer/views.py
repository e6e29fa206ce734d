"""The blueprint: thin views that parse, call the service, and shape the answer."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Response, current_app, request
from flask.blueprints import BlueprintSetupState
from sqlalchemy.exc import OperationalError, StatementError
from werkzeug import exceptions as werkzeug_exceptions
from werkzeug.exceptions import HTTPException
from werkzeug.routing import BaseConverter

from .auth import authenticate
from .config import DEFAULTS
from .errors import (
    APIError,
    ServiceUnavailable,
    error_response,
    from_http_exception,
)
from .openapi import document_text
from .schemas import (
    customer_body,
    dump_json,
    parse_credentials,
    parse_customer_changes,
    parse_if_match,
    parse_json_body,
    parse_new_customer,
    parse_session_ids,
)
from .service import Actor
from .state import get_state

if TYPE_CHECKING:
    from .extension import EverShopCustomer
    from .schemas import CustomerRecord

BLUEPRINT_NAME = "evershop_customer"


def _json(body: Any, status: int = 200, etag: str | None = None) -> Response:
    response = Response(dump_json(body), status=status, mimetype="application/json")
    if etag is not None:
        response.headers["ETag"] = etag
    # Tokens and personal data: no browser or shared cache may keep a copy.
    response.cache_control.no_store = True
    return response


def _body() -> Any:
    """The JSON body, read within the configured size limit."""
    request.max_content_length = get_state().settings.max_content_length
    data = request.get_data(cache=True)
    return parse_json_body(
        data,
        request.mimetype,
        request.mimetype_params.get("charset"),
        request.headers.get("Content-Encoding"),
    )


def _customer_response(record: CustomerRecord, *, links: bool) -> Response:
    return _json(customer_body(record, links=links), etag=record.etag)


def create_customer() -> Response:
    """``POST /customers``: registration (or admin-only when registration is closed)."""
    state = get_state()
    if not state.settings.allow_registration:
        authenticate(admin_only=True)
    new = parse_new_customer(_body(), min_password_length=state.settings.password_min_length)
    return _customer_response(state.service.create(new), links=True)


def update_customer(customer_id: str) -> Response:
    """``PATCH /customers/{id}``: an admin, or the customer with their own token."""
    actor = authenticate()
    state = get_state()
    customer = _target(actor, customer_id)
    changes = parse_customer_changes(
        _body(),
        min_password_length=state.settings.password_min_length,
        current_email=customer.email,
        current_full_name=customer.full_name,
    )
    expected = parse_if_match(request.headers.get("If-Match"), customer.uuid)
    record = state.service.update(customer, changes, actor, expected_version=expected)
    return _customer_response(record, links=True)


def delete_customer(customer_id: str) -> Response:
    """``DELETE /customers/{id}``: answers with the customer as it was."""
    actor = authenticate()
    customer = _target(actor, customer_id)
    _body()
    expected = parse_if_match(request.headers.get("If-Match"), customer.uuid)
    record = get_state().service.delete(customer, actor, expected_version=expected)
    response = _customer_response(record, links=False)
    if actor.customer is not None:
        _clear_token_cookie(response)
    return response


def _target(actor: Actor, customer_id: str) -> Any:
    """The customer the path names (404), if the caller may manage it (403). The
    caller's own record costs no query."""
    if actor.customer is not None and actor.customer.uuid == customer_id:
        return actor.customer
    service = get_state().service
    customer = service.get(customer_id)
    service.authorize(actor, customer)
    return customer


def create_session() -> Response:
    """``POST /customers/sessions``: log in; the token comes in the body and a cookie."""
    state = get_state()
    credentials = parse_credentials(_body())
    result = state.service.login(credentials, request.remote_addr or "")
    response = _json({"data": {"token": result.token, "sid": result.sid}})
    settings = state.settings
    response.set_cookie(
        settings.token_cookie_name,
        result.token,
        max_age=state.service.tokens.lifetime,
        path="/",
        secure=settings.cookie_secure,
        httponly=True,
        samesite="Lax",
    )
    return response


def delete_sessions(ids: str) -> Response:
    """``DELETE`` (or ``POST``) ``/customers/sessions/{ids}``: log out."""
    actor = authenticate()
    _body()
    ended = get_state().service.logout(parse_session_ids(ids), actor)
    response = _json({"data": {}})
    if actor.sid is not None and actor.sid in ended:
        _clear_token_cookie(response)
    return response


def _clear_token_cookie(response: Response) -> None:
    settings = get_state().settings
    response.delete_cookie(
        settings.token_cookie_name,
        path="/",
        secure=settings.cookie_secure,
        httponly=True,
        samesite="Lax",
    )


def openapi_document() -> Response:
    """``GET /customers/openapi.json``: the OpenAPI 3.1 document of these endpoints."""
    response = Response(document_text(get_state().settings), mimetype="application/json")
    response.cache_control.public = True
    response.cache_control.max_age = 3600
    return response


ROUTES: list[tuple[str, str, Callable[..., Response], tuple[str, ...]]] = [
    ("/customers", "create_customer", create_customer, ("POST",)),
    ("/customers/openapi.json", "openapi", openapi_document, ("GET",)),
    ("/customers/sessions", "create_session", create_session, ("POST",)),
    ("/customers/sessions/<path:ids>", "delete_sessions", delete_sessions, ("DELETE", "POST")),
    (
        "/customers/<evershop_customer_id:customer_id>",
        "update_customer",
        update_customer,
        ("PATCH",),
    ),
    (
        "/customers/<evershop_customer_id:customer_id>",
        "delete_customer",
        delete_customer,
        ("DELETE",),
    ),
]


class CustomerIdConverter(BaseConverter):
    """A path segment naming a customer: anything but the two fixed names beside it, so
    that a wrong method on ``/customers/sessions`` is a 405, not a customer lookup.
    Malformed ids still reach the views, which answer 404 ``Invalid customer id``."""

    regex = r"(?!sessions$|openapi\.json$)[^/]+"


def _add_converter(state: BlueprintSetupState) -> None:
    state.app.url_map.converters.setdefault("evershop_customer_id", CustomerIdConverter)


def _routing_error() -> Response | None:
    """A path under ``{prefix}/customers`` that matches no route (404) or not with this
    method (405) gets the envelope. Routing errors happen before any blueprint is chosen,
    so this runs for every request of the app, and leaves every other path alone."""
    error = request.routing_exception
    if not isinstance(error, (werkzeug_exceptions.NotFound, werkzeug_exceptions.MethodNotAllowed)):
        return None
    base = get_state().settings.url_prefix + "/customers"
    if request.path != base and not request.path.startswith(base + "/"):
        return None
    return error_response(from_http_exception(error))


def create_blueprint(extension: EverShopCustomer) -> Blueprint:
    """The blueprint of one extension instance. Registering it on an app (directly or
    through ``init_app``) sets the extension up on that app."""
    blueprint = Blueprint(
        BLUEPRINT_NAME,
        __name__,
        url_prefix=DEFAULTS["EVERSHOP_CUSTOMER_URL_PREFIX"],
        cli_group="customers",
    )
    # First in line: it may move the prefix before the rules below are added.
    blueprint.record(extension._on_register)
    blueprint.record(_add_converter)
    for path, endpoint, view, methods in ROUTES:
        blueprint.add_url_rule(path, endpoint, view, methods=list(methods))
    blueprint.before_app_request(_routing_error)
    blueprint.register_error_handler(APIError, error_response)
    blueprint.register_error_handler(HTTPException, _http_error)
    blueprint.register_error_handler(Exception, _unexpected_error)
    return blueprint


def _http_error(exc: HTTPException) -> Response:
    return error_response(from_http_exception(exc))


def _unexpected_error(exc: Exception) -> Response:
    if isinstance(exc, StatementError):
        # Its text carries the statement's parameters (a password hash among them):
        # log the driver's own message only.
        current_app.logger.error(
            "Database error in %s %s: %s: %s",
            request.method,
            request.path,
            type(exc.orig).__name__,
            exc.orig,
        )
        if isinstance(exc, OperationalError):
            return error_response(ServiceUnavailable())
    else:
        current_app.logger.error(
            "Unexpected error in %s %s", request.method, request.path, exc_info=exc
        )
    return error_response(APIError())
