"""The blueprint: thin views that parse, make one call to the rules, and shape the answer."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Response, current_app, request
from flask.blueprints import BlueprintSetupState
from sqlalchemy.exc import DBAPIError, OperationalError
from werkzeug import exceptions as werkzeug_exceptions
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.routing import BaseConverter, RequestRedirect

from .address_schemas import address_links
from .after_response import run_after_response
from .api_reference import CONTENT_SECURITY_POLICY, reference_html
from .auth import (
    admin_cookie_value,
    authenticate,
    clear_token_cookie,
    cookie_claims,
    finish_response,
    presented_token,
    refuse_cross_site,
    set_credential_cookie,
)
from .config import DEFAULTS
from .errors import (
    UPGRADE_HINT,
    APIError,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    SchemaMissing,
    ServiceUnavailable,
    Unauthorized,
    error_response,
    from_http_exception,
    is_missing_schema,
)
from .openapi import document_text
from .schemas import (
    customer_body,
    customer_links,
    dump_json,
    own_profile_links,
    parse_credentials,
    parse_customer_query,
    parse_if_match,
    parse_json_body,
    parse_new_customer,
    parse_new_password,
    parse_refresh_request,
    parse_reset_request,
    parse_session_ids,
    session_item,
    undashed_uuid,
)
from .state import get_state

if TYPE_CHECKING:
    from .actors import Actor
    from .address_schemas import AddressRecord
    from .schemas import CustomerRecord
    from .sessions import LoginResult

BLUEPRINT_NAME = "evershop_customer"
STOREFRONT_BLUEPRINT_NAME = "evershop_customer_storefront"


def _json(body: Any, status: int = 200, etag: str | None = None) -> Response:
    response = Response(dump_json(body), status=status, mimetype="application/json")
    if etag is not None:
        response.headers["ETag"] = etag
    return response


def _body() -> Any:
    """The JSON body, read within the configured size limit: one byte more is read, so
    that a body without ``Content-Length`` (chunked) over the limit is refused, not cut."""
    limit = get_state().settings.max_content_length
    request.max_content_length = limit + 1
    data = request.get_data(cache=True)
    if len(data) > limit:
        raise PayloadTooLarge()
    return parse_json_body(
        data,
        request.mimetype,
        request.mimetype_params.get("charset"),
        request.headers.get("Content-Encoding"),
    )


def _customer_response(
    record: CustomerRecord, *, links: list[dict[str, Any]] | None = None
) -> Response:
    return _json(customer_body(record, links=links), etag=record.etag)


def create_customer() -> Response:
    """``POST /customers``: registration (or admin-only when registration is closed).
    Registrations are limited per client address, except an admin's."""
    state = get_state()
    by_admin = False
    if not state.settings.allow_registration:
        by_admin = authenticate(admin_only=True).is_admin
    elif admin_cookie_value():
        try:
            by_admin = authenticate(admin_only=True).is_admin
        except APIError:
            by_admin = False
    new = parse_new_customer(_body())
    record = state.customers.create(
        new, client_address=request.remote_addr or "", by_admin=by_admin
    )
    return _customer_response(record, links=customer_links(record.uuid))


def list_customers() -> Response:
    """``GET /customers``: a page of customers, for an admin."""
    actor = authenticate(admin_only=True)
    page = get_state().listing.page(actor, parse_customer_query(request.args))
    return _json(
        {
            "data": {
                "items": [record.public() for record in page.items],
                "total": page.total,
                "currentPage": page.page,
                "limit": page.limit,
            }
        }
    )


def read_customer(customer_id: str) -> Response:
    """``GET /customers/{id}``: an admin, or that customer."""
    record = get_state().customers.get(authenticate(), customer_id)
    return _customer_response(record)


def update_customer(customer_id: str) -> Response:
    """``PATCH /customers/{id}``: an admin, or the customer with their own token."""
    record = _update(authenticate(), customer_id)
    return _customer_response(record, links=customer_links(record.uuid))


def delete_customer(customer_id: str) -> Response:
    """``DELETE /customers/{id}``: answers with the customer as it was."""
    return _delete(authenticate(), customer_id)


def read_own_profile() -> Response:
    """``GET /customers/me``: the caller's own record (a customer credential only)."""
    return _customer_response(_own(authenticate(customer_only=True)))


def update_own_profile() -> Response:
    """``PATCH /customers/me``: as ``PATCH /customers/{own uuid}``, with EverShop's
    ``self`` link."""
    actor = authenticate(customer_only=True)
    record = _update(actor, _own(actor).uuid)
    links = own_profile_links(get_state().settings.url_prefix)
    return _customer_response(record, links=links)


def delete_own_account() -> Response:
    """``DELETE /customers/me``: as ``DELETE /customers/{own uuid}``."""
    actor = authenticate(customer_only=True)
    return _delete(actor, _own(actor).uuid)


def list_own_sessions() -> Response:
    """``GET /customers/me/sessions``: the caller's live sessions, newest first."""
    infos = get_state().own_sessions.live(authenticate(customer_only=True))
    return _json({"data": {"items": [session_item(info) for info in infos]}})


def end_other_sessions() -> Response:
    """``DELETE /customers/me/sessions``: end every live session of the caller but this
    one."""
    actor = authenticate(customer_only=True)
    _body()
    get_state().own_sessions.end_others(actor)
    return _json({"data": {}})


def list_own_addresses() -> Response:
    """``GET /customers/me/addresses``: the caller's addresses, oldest first."""
    actor = authenticate(customer_only=True)
    return _address_list(actor, _own(actor).uuid)


def create_own_address() -> Response:
    """``POST /customers/me/addresses``: add an address of the caller's."""
    actor = authenticate(customer_only=True)
    return _address_created(actor, _own(actor).uuid, "/customers/me/addresses")


def update_own_address(address_id: str) -> Response:
    """``PATCH /customers/me/addresses/{address_id}``."""
    actor = authenticate(customer_only=True)
    return _address_updated(actor, _own(actor).uuid, "/customers/me/addresses", address_id)


def delete_own_address(address_id: str) -> Response:
    """``DELETE /customers/me/addresses/{address_id}``: answers the address as it was."""
    actor = authenticate(customer_only=True)
    return _address_deleted(actor, _own(actor).uuid, address_id)


def list_addresses(customer_id: str) -> Response:
    """``GET /customers/{customer_id}/addresses``: an admin, or that customer."""
    return _address_list(authenticate(), customer_id)


def create_address(customer_id: str) -> Response:
    """``POST /customers/{customer_id}/addresses``: an admin, or that customer."""
    return _address_created(authenticate(), customer_id, f"/customers/{customer_id}/addresses")


def update_address(customer_id: str, address_id: str) -> Response:
    """``PATCH /customers/{customer_id}/addresses/{address_id}``."""
    base = f"/customers/{customer_id}/addresses"
    return _address_updated(authenticate(), customer_id, base, address_id)


def delete_address(customer_id: str, address_id: str) -> Response:
    """``DELETE /customers/{customer_id}/addresses/{address_id}``."""
    return _address_deleted(authenticate(), customer_id, address_id)


def _address_list(actor: Actor, customer_uuid: str) -> Response:
    records = get_state().addresses.of(actor, customer_uuid)
    return _json({"data": {"items": [record.public() for record in records]}})


def _address_created(actor: Actor, customer_uuid: str, base: str) -> Response:
    record = get_state().addresses.create(actor, customer_uuid, _body())
    return _address_response(record, base)


def _address_updated(actor: Actor, customer_uuid: str, base: str, address_id: str) -> Response:
    record = get_state().addresses.update(actor, customer_uuid, address_id, _body())
    return _address_response(record, base)


def _address_deleted(actor: Actor, customer_uuid: str, address_id: str) -> Response:
    _body()
    record = get_state().addresses.delete(actor, customer_uuid, address_id)
    return _json({"data": record.public()})


def _address_response(record: AddressRecord, base: str) -> Response:
    """The address with its ``links``, on the route the request used."""
    href = f"{get_state().settings.url_prefix}{base}/{record.uuid}"
    return _json({"data": {**record.public(), "links": address_links(href)}})


def _own(actor: Actor) -> CustomerRecord:
    assert actor.customer is not None  # authenticate(customer_only=True) saw to it
    return actor.customer


def _update(actor: Actor, customer_id: str) -> CustomerRecord:
    body = _body()
    expected = parse_if_match(request.headers.get("If-Match"), customer_id)
    return get_state().customers.update(actor, customer_id, body, expected_version=expected)


def _delete(actor: Actor, customer_id: str) -> Response:
    _body()
    expected = parse_if_match(request.headers.get("If-Match"), customer_id)
    record = get_state().customers.delete(actor, customer_id, expected_version=expected)
    response = _customer_response(record)
    claims = cookie_claims()
    if claims is not None and claims.customer_uuid == record.uuid:
        clear_token_cookie(response)  # the browser's session went with the customer
    return response


def create_session() -> Response:
    """``POST /customers/sessions``: log in; the token comes in the body and a cookie.
    Refused from another origin, as the storefront login is (login CSRF)."""
    result = _login()
    response = _json({"data": {"token": result.token, "sid": result.sid}})
    _set_token_cookie(response, result.token)
    return response


def issue_tokens() -> Response:
    """``POST /customer/tokens``: a login for headless clients, answering an access token
    and a refresh token (no cookie)."""
    result = _login(headless=True)
    return _json({"data": {"accessToken": result.token, "refreshToken": result.refresh_token}})


def refresh_tokens() -> Response:
    """``POST /customer/token/refresh``: a new access token and, with rotation, the next
    refresh token."""
    refreshed = get_state().refresh_tokens.refresh(parse_refresh_request(_body()))
    data = {"accessToken": refreshed.access_token}
    if refreshed.refresh_token is not None:
        data["refreshToken"] = refreshed.refresh_token
    return _json({"data": data})


def storefront_login() -> Response:
    """``POST /customer/login`` (a storefront route, outside the prefix): log in with the
    token cookie, answering ``{"data": {"sid"}}``. Refused from another origin: a page
    elsewhere must not log a browser into an account of its choosing."""
    result = _login()
    response = _json({"data": {"sid": result.sid}})
    _set_token_cookie(response, result.token)
    return response


def storefront_logout() -> Response:
    """``GET`` or ``POST /customer/logout`` (a storefront route): end the session of the
    request's token, if it is live, and clear the cookie; ``{"data": {}}`` either way.
    Refused from another origin, whatever the method."""
    refuse_cross_site()
    # Without a live customer session (or with only an admin's) there is nothing to end.
    with contextlib.suppress(Unauthorized, Forbidden):
        actor = authenticate(customer_only=True, quiet=True)
        if actor.sid is not None:
            get_state().sessions.logout([actor.sid], actor)
    response = _json({"data": {}})
    clear_token_cookie(response)
    return response


def _login(*, headless: bool = False) -> LoginResult:
    """Log in with the request's credentials. A login whose answer sets the token cookie
    (not ``headless``) is refused from another origin before anything is read: a page
    elsewhere must not log a browser into an account of its choosing."""
    if not headless:
        refuse_cross_site()
    credentials = parse_credentials(_body())
    return get_state().sessions.login(
        credentials,
        request.remote_addr or "",
        user_agent=request.headers.get("User-Agent"),
        headless=headless,
    )


def _set_token_cookie(response: Response, token: str) -> None:
    state = get_state()
    set_credential_cookie(response, state.settings.token_cookie_name, token, state.tokens.lifetime)


def request_password_reset() -> Response:
    """``POST /customers/reset-password``: always ``{}``, whether or not the email names
    an active customer (429 past the limits, for any email alike)."""
    email_canonical = parse_reset_request(_body())
    issue = get_state().resets.accept(email_canonical, request.remote_addr or "")
    response = _json({"data": {}})
    run_after_response(response, issue)
    return response


def complete_password_reset() -> Response:
    """``POST /customers/password``: a new password with a reset token."""
    get_state().resets.complete(parse_new_password(_body()))
    return _json({"data": {}})


def delete_sessions(ids: str) -> Response:
    """``DELETE`` (or ``POST``) ``/customers/sessions/{ids}``: log out.

    Logging out of one's own session that has already ended (elsewhere, or by a password
    change) succeeds and clears the cookie: the client is logged out either way.
    """
    requested = parse_session_ids(ids)
    try:
        actor = authenticate()
        _body()
        # A token trusted without a query has its session checked here, when read.
        ended = get_state().sessions.logout(requested, actor)
    except Unauthorized:
        if _names_own_ended_session(requested):
            response = _json({"data": {}})
            claims = cookie_claims()
            if claims is not None and claims.sid in requested:
                clear_token_cookie(response)
            return response
        raise
    response = _json({"data": {}})
    claims = cookie_claims()
    if claims is not None and claims.sid in ended:
        clear_token_cookie(response)  # the browser's own session has just ended
    return response


def _names_own_ended_session(requested: list[str]) -> bool:
    """Whether the request's token (whose session did not authenticate) verifies and
    names exactly the one session the path names."""
    try:
        presented = presented_token()
        if presented is None:
            return False
        claims = get_state().tokens.verify(presented[0])
    except Unauthorized:
        return False
    return requested == [claims.sid]


def openapi_document() -> Response:
    """``GET /customers/openapi.json``: the OpenAPI 3.1 document of these endpoints."""
    return Response(document_text(get_state().settings), mimetype="application/json")


def openapi_reference() -> Response:
    """``GET /customers/openapi.html``: the same document as a page for people."""
    response = Response(reference_html(get_state().settings), mimetype="text/html")
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


Routes = list[tuple[str, str, Callable[..., Response], tuple[str, ...]]]

ROUTES: Routes = [
    ("/customers", "create_customer", create_customer, ("POST",)),
    ("/customers", "list_customers", list_customers, ("GET",)),
    ("/customers/openapi.json", "openapi", openapi_document, ("GET",)),
    ("/customers/openapi.html", "openapi_reference", openapi_reference, ("GET",)),
    ("/customers/sessions", "create_session", create_session, ("POST",)),
    ("/customers/sessions/<path:ids>", "delete_sessions", delete_sessions, ("DELETE", "POST")),
    ("/customers/reset-password", "request_reset", request_password_reset, ("POST",)),
    ("/customers/password", "complete_reset", complete_password_reset, ("POST",)),
    ("/customers/me", "read_own_profile", read_own_profile, ("GET",)),
    ("/customers/me", "update_own_profile", update_own_profile, ("PATCH",)),
    ("/customers/me", "delete_own_account", delete_own_account, ("DELETE",)),
    ("/customers/me/sessions", "list_own_sessions", list_own_sessions, ("GET",)),
    ("/customers/me/sessions", "end_other_sessions", end_other_sessions, ("DELETE",)),
    ("/customers/me/addresses", "list_own_addresses", list_own_addresses, ("GET",)),
    ("/customers/me/addresses", "create_own_address", create_own_address, ("POST",)),
    (
        "/customers/me/addresses/<evershop_uuid:address_id>",
        "update_own_address",
        update_own_address,
        ("PATCH",),
    ),
    (
        "/customers/me/addresses/<evershop_uuid:address_id>",
        "delete_own_address",
        delete_own_address,
        ("DELETE",),
    ),
    (
        "/customers/<evershop_customer_id:customer_id>/addresses",
        "list_addresses",
        list_addresses,
        ("GET",),
    ),
    (
        "/customers/<evershop_customer_id:customer_id>/addresses",
        "create_address",
        create_address,
        ("POST",),
    ),
    (
        "/customers/<evershop_customer_id:customer_id>/addresses/<evershop_uuid:address_id>",
        "update_address",
        update_address,
        ("PATCH",),
    ),
    (
        "/customers/<evershop_customer_id:customer_id>/addresses/<evershop_uuid:address_id>",
        "delete_address",
        delete_address,
        ("DELETE",),
    ),
    ("/customer/tokens", "issue_tokens", issue_tokens, ("POST",)),
    ("/customer/token/refresh", "refresh_tokens", refresh_tokens, ("POST",)),
    ("/customers/<evershop_customer_id:customer_id>", "read_customer", read_customer, ("GET",)),
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


#: EverShop's storefront session routes, outside the prefix (``STOREFRONT_ROUTES``).
STOREFRONT_ROUTES: Routes = [
    ("/customer/login", "storefront_login", storefront_login, ("POST",)),
    ("/customer/logout", "storefront_logout", storefront_logout, ("GET", "POST")),
]


class UuidConverter(BaseConverter):
    """A path segment naming a customer or an address by its uuid. EverShop's dashed
    form (``9f1c…-…``), which clients that stored EverShop's ids send, names the same
    one. Malformed ids still reach the views, which answer 404."""

    def to_python(self, value: str) -> str:
        return undashed_uuid(value)


class CustomerIdConverter(UuidConverter):
    """A customer's uuid: anything but the fixed names beside it, so that a wrong method
    on ``/customers/sessions`` (or ``me``) is a 405, not a customer lookup."""

    regex = r"(?!sessions$|openapi\.json$|openapi\.html$|me$|reset-password$|password$)[^/]+"


def _add_converter(state: BlueprintSetupState) -> None:
    converters = state.app.url_map.converters
    converters.setdefault("evershop_customer_id", CustomerIdConverter)
    converters.setdefault("evershop_uuid", UuidConverter)


_SLASHES = re.compile(r"/{2,}")


def _routing_error() -> Response | None:
    """A path under ``{prefix}/customers`` or ``{prefix}/customer`` that matches no route
    (404) or not with this
    method (405) gets the envelope, and so does one with doubled slashes (never the
    redirect Werkzeug would build from the ``Host`` header). Routing errors happen before
    any blueprint is chosen, so this runs for every request of the app, and leaves every
    other path alone."""
    error = request.routing_exception
    if not isinstance(
        error,
        (werkzeug_exceptions.NotFound, werkzeug_exceptions.MethodNotAllowed, RequestRedirect),
    ):
        return None
    prefix = get_state().settings.url_prefix
    path = _SLASHES.sub("/", request.path)
    if not any(
        path == base or path.startswith(base + "/")
        for base in (prefix + "/customers", prefix + "/customer")
    ):
        return None
    if isinstance(error, RequestRedirect) or path != request.path:
        return error_response(NotFound())
    return error_response(from_http_exception(error))


def create_blueprint(set_up: Callable[[BlueprintSetupState], None]) -> Blueprint:
    """The blueprint of one extension instance. Registering it on an app (directly or
    through ``init_app``) runs ``set_up``, which sets the extension up on that app."""
    blueprint = Blueprint(
        BLUEPRINT_NAME,
        __name__,
        url_prefix=DEFAULTS["EVERSHOP_CUSTOMER_URL_PREFIX"],
        cli_group="customers",
    )
    # First in line: it may move the prefix before the rules below are added.
    blueprint.record(set_up)
    blueprint.record(_add_converter)
    _add_routes(blueprint, ROUTES)
    blueprint.before_app_request(_routing_error)
    _answer_in_envelopes(blueprint)
    return blueprint


def create_storefront_blueprint() -> Blueprint:
    """EverShop's storefront session routes (``POST /customer/login``, ``GET|POST
    /customer/logout``) at the app's root, registered by the extension when
    ``EVERSHOP_CUSTOMER_STOREFRONT_ROUTES`` is on."""
    blueprint = Blueprint(STOREFRONT_BLUEPRINT_NAME, __name__)
    _add_routes(blueprint, STOREFRONT_ROUTES)
    _answer_in_envelopes(blueprint)
    return blueprint


def _add_routes(blueprint: Blueprint, routes: Routes) -> None:
    """Add ``routes`` without Werkzeug's merge-slashes redirect: its ``Location`` is built
    from the ``Host`` header, which the client chooses (``GET /customer//logout`` with
    ``Host: evil.example`` would send the browser there). A doubled slash is a 404
    instead. No rule ends with a slash, so strict slashes never redirect either."""
    for path, endpoint, view, methods in routes:
        blueprint.add_url_rule(path, endpoint, view, methods=list(methods), merge_slashes=False)


def _answer_in_envelopes(blueprint: Blueprint) -> None:
    """EverShop's error envelope for every failure of the blueprint's routes, and
    ``no-store`` on every answer."""
    blueprint.after_request(finish_response)
    blueprint.register_error_handler(APIError, error_response)
    blueprint.register_error_handler(HTTPException, _http_error)
    blueprint.register_error_handler(DBAPIError, _database_error)
    blueprint.register_error_handler(SchemaMissing, _schema_missing)


def _http_error(exc: HTTPException) -> Response:
    """Werkzeug's errors, including the 500 Flask makes of an unhandled exception (it has
    logged it and sent ``got_request_exception`` already, or re-raised it for tests)."""
    if isinstance(exc, InternalServerError):
        return error_response(APIError())
    return error_response(from_http_exception(exc))


def _database_error(exc: DBAPIError) -> Response:
    """Tables or columns missing (the migrations were not run): 503, and a log line that
    says what to do. The database down, busy or locked: 503. Anything else is a bug:
    Flask's 500."""
    if is_missing_schema(exc):
        detail = f"{type(exc.orig).__name__}: {str(exc.orig).partition(chr(10))[0]}"
        return _schema_missing(SchemaMissing(detail))
    if isinstance(exc, OperationalError):
        return _database_unavailable(exc)
    raise exc


def _schema_missing(exc: SchemaMissing) -> Response:
    current_app.logger.error(
        "flask-evershop-customer's tables are missing or out of date (%s): %s",
        exc.detail,
        UPGRADE_HINT,
    )
    return error_response(exc)


def _database_unavailable(exc: OperationalError) -> Response:
    """The database is down, busy or locked: 503. Logged with the driver's message only
    (the statement's parameters could hold a password hash)."""
    current_app.logger.error(
        "Database unavailable in %s %s: %s: %s",
        request.method,
        request.path,
        type(exc.orig).__name__,
        str(exc.orig).partition("\n")[0],
    )
    return error_response(ServiceUnavailable())
