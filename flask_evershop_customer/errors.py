"""One exception ladder; every HTTP failure is an :class:`APIError` with its status.

The handlers that turn these into EverShop's envelope live in :mod:`.views`; they are
scoped to the extension's routes and never catch the host app's own errors.
"""

from __future__ import annotations

import json
import re
from typing import Any

from flask import Response
from werkzeug import exceptions as werkzeug_exceptions
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge


class EverShopCustomerError(Exception):
    """Root of every exception the extension raises."""


class ConfigurationError(EverShopCustomerError):
    """The app's ``EVERSHOP_CUSTOMER_*`` configuration is invalid (raised by ``init_app``)."""


class DatabaseError(EverShopCustomerError):
    """The database refused a statement for a reason that is not the client's (a bug or
    a schema problem). Carries the driver's first line only, never the statement's
    parameters, so a password hash cannot reach a log through it."""

    @classmethod
    def from_driver(cls, exc: Exception) -> DatabaseError:
        """The error for a SQLAlchemy ``DBAPIError`` (or any driver exception)."""
        orig = getattr(exc, "orig", exc)
        first_line = str(orig).strip().partition("\n")[0]
        return cls(f"{type(orig).__name__}: {_HASH.sub('[hash]', first_line)}")


#: A Werkzeug password hash, wherever a driver might quote one.
_HASH = re.compile(r"\b(?:pbkdf2|scrypt)[:$][^\s'\",)]*")


class APIError(EverShopCustomerError):
    """A failure that becomes ``{"error": {"status", "message"}}`` with this status."""

    status: int = 500
    message: str = "Internal server error"

    def __init__(self, message: str | None = None) -> None:
        if message is not None:
            self.message = message
        super().__init__(self.message)

    @property
    def headers(self) -> dict[str, str]:
        """Extra response headers (``Retry-After``, ``Allow``, ...)."""
        return {}


class ValidationError(APIError):
    """400: the request body is malformed or a field is invalid."""

    status = 400
    message = "Invalid request"


class InvalidCredentials(ValidationError):
    """400: a failed login, always with the same message whatever the cause."""

    message = "Invalid email or password"


class Unauthorized(APIError):
    """401: no credentials, or credentials that do not (or no longer) verify."""

    status = 401
    message = "Unauthorized"


class Forbidden(APIError):
    """403: authenticated, but not allowed to do this."""

    status = 403
    message = "Forbidden"


class NotFound(APIError):
    """404: no such customer, session or route."""

    status = 404
    message = "Not found"


class MethodNotAllowed(APIError):
    """405: the path exists but not with this method."""

    status = 405
    message = "Method not allowed"

    def __init__(self, allowed: list[str]) -> None:
        super().__init__()
        self.allowed = allowed

    @property
    def headers(self) -> dict[str, str]:
        return {"Allow": ", ".join(self.allowed)}


class Conflict(APIError):
    """409: the email is already used by another customer."""

    status = 409
    message = "Email is already used"


class PreconditionFailed(APIError):
    """412: ``If-Match`` names a version that is no longer current."""

    status = 412
    message = "The customer was changed by another request; fetch it again"


class PayloadTooLarge(APIError):
    """413: the body is over ``EVERSHOP_CUSTOMER_MAX_CONTENT_LENGTH``."""

    status = 413
    message = "Request body is too large"


class UnsupportedMediaType(APIError):
    """415: a body that is not ``application/json`` (UTF-8, not compressed)."""

    status = 415
    message = "Request body must be application/json"


class TooManyRequests(APIError):
    """429: too many failed logins; ``Retry-After`` says when to try again."""

    status = 429
    message = "Too many failed login attempts, try again later"

    def __init__(self, retry_after: int, message: str | None = None) -> None:
        super().__init__(message)
        self.retry_after = max(1, retry_after)

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class ServiceUnavailable(APIError):
    """503: the database is busy or unreachable; nothing was changed."""

    status = 503
    message = "Service temporarily unavailable, try again"

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": "1"}


class SchemaMissing(ServiceUnavailable):
    """503: the extension's tables or columns are missing (its migrations were not run).
    ``detail`` is the driver's first line, for the log."""

    def __init__(self, detail: str) -> None:
        super().__init__()
        self.detail = detail


#: What the operator must do when the tables are missing or out of date.
UPGRADE_HINT = "run `flask db upgrade heads` (or check with `flask customers check-schema`)"
#: PostgreSQL's undefined table and column; MySQL's unknown table and column.
_MISSING_SQLSTATES = frozenset({"42P01", "42703"})
_MISSING_MYSQL_ERRORS = frozenset({1146, 1054})


def is_missing_schema(exc: Exception) -> bool:
    """Whether a database error says a table or column does not exist: the extension's
    migrations have not been run (or not all of them)."""
    orig: Any = getattr(exc, "orig", exc)
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if sqlstate in _MISSING_SQLSTATES:
        return True
    args = getattr(orig, "args", ())
    if args and args[0] in _MISSING_MYSQL_ERRORS:
        return True
    return str(orig).startswith(("no such table", "no such column"))


def error_response(error: APIError) -> Response:
    """EverShop's envelope for ``error``, with its status and headers."""
    body = {"error": {"status": error.status, "message": error.message}}
    response = Response(
        json.dumps(body, separators=(",", ":")),
        status=error.status,
        headers=error.headers,
        mimetype="application/json",
    )
    # Like every answer of the extension: no browser or shared cache keeps a copy.
    response.cache_control.no_store = True
    return response


def from_http_exception(exc: HTTPException) -> APIError:
    """The API error for a Werkzeug exception raised while serving one of our routes."""
    if isinstance(exc, RequestEntityTooLarge):
        return PayloadTooLarge()
    if isinstance(exc, werkzeug_exceptions.MethodNotAllowed):
        return MethodNotAllowed(sorted(exc.valid_methods or ()))
    if isinstance(exc, werkzeug_exceptions.NotFound):
        return NotFound()
    status = exc.code or 500
    if status >= 500:
        return APIError()
    error = APIError(exc.name)
    error.status = status
    return error
