"""Who is calling: credentials from the request, the CSRF rule, and the helpers the host
uses on its own routes (``admin_required``, ``customer_required``,
``same_origin_required``, ``current_customer``, ``get_current_customer``).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar, cast

from flask import Response, current_app, g, request
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.local import LocalProxy

from .actors import Actor, Identity
from .errors import APIError, Forbidden, Unauthorized, error_response
from .logs import security_event
from .state import AppState, get_state
from .tokens import Claims

if TYPE_CHECKING:
    from .schemas import CustomerRecord

F = TypeVar("F", bound=Callable[..., Any])
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_ACTOR_KEY = "_evershop_customer_actor"
#: Set when the request's token cookie was refused: its 401 clears the cookie.
_BAD_COOKIE_KEY = "_evershop_customer_bad_token_cookie"


def _bearer_token() -> str | None:
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Authorization header must be 'Bearer <token>'")
    return token.strip()


def admin_cookie_value() -> str | None:
    """The admin cookie of the current request, as sent (not yet verified)."""
    return request.cookies.get(get_state().settings.admin_cookie_name) or None


def token_cookie_value() -> str | None:
    """The token cookie of the current request, as sent (not yet verified)."""
    return request.cookies.get(get_state().settings.token_cookie_name) or None


def _admin_actor(state: AppState) -> Actor | None:
    value = admin_cookie_value()
    if not value:
        return None
    try:
        admin_id, _session_id = state.admin_sessions.check(value)
    except Unauthorized as error:
        security_event("admin_cookie_rejected", path=request.path, reason=error.message)
        return None
    if not state.accepts_admin(admin_id):
        security_event("admin_rejected_by_loader", admin=admin_id)
        return None
    return Actor(admin_id=admin_id)


def presented_token() -> tuple[str, bool] | None:
    """The customer token of the request and whether it came from the cookie: the
    bearer token or, without one, the token cookie."""
    token = _bearer_token()
    if token is not None:
        return token, False
    cookie = token_cookie_value()
    return (cookie, True) if cookie else None


def _customer_actor(state: AppState) -> tuple[Actor, bool] | None:
    """The customer behind the bearer token or, without one, the token cookie. A token
    the settings trust on its own (:meth:`Sessions.trusts`) costs no query: its session
    is checked only if the request needs the customer's record."""
    with _refusals_noted(from_cookie=False):
        presented = presented_token()
    if presented is None:
        return None
    token, from_cookie = presented
    sessions = state.sessions
    with _refusals_noted(from_cookie):
        claims = sessions.verify(token)
        if not sessions.trusts(claims):
            return Actor.of_customer(sessions.check(claims), claims.sid), from_cookie

    def load() -> CustomerRecord:
        with _refusals_noted(from_cookie):
            return sessions.check(claims)

    identity = Identity(claims.customer_uuid, claims.sid)
    return Actor(identity=identity, load=load), from_cookie


@contextlib.contextmanager
def _refusals_noted(from_cookie: bool) -> Iterator[None]:
    """Log a refused customer credential; a refused cookie is cleared by the 401."""
    try:
        yield
    except Unauthorized as error:
        if from_cookie:
            setattr(g, _BAD_COOKIE_KEY, True)
        security_event(
            "token_rejected",
            path=request.path,
            client=request.remote_addr,
            reason=error.message,
        )
        raise


def _denied(
    event: str, actor: Actor | None, *, reason: str | None = None, origin: str | None = None
) -> None:
    """Log an authorization failure with who asked: customer uuid, hashed sid, admin."""
    security_event(
        event,
        customer=actor.customer_uuid if actor is not None else None,
        sid=actor.sid if actor is not None else None,
        admin=actor.admin_id if actor is not None else None,
        path=request.path,
        client=request.remote_addr,
        reason=reason,
        origin=origin,
    )


def authenticate(
    *, admin_only: bool = False, customer_only: bool = False, quiet: bool = False
) -> Actor:
    """The caller of this request (cached for the request).

    An admin cookie wins over a customer token, except with ``customer_only`` (the
    ``/customers/me`` routes), where a customer credential wins and an admin cookie alone
    is :class:`Forbidden`. :class:`Unauthorized` without valid credentials,
    :class:`Forbidden` for a customer where an admin is needed, or for a
    cookie-authenticated write sent from another origin. Each refusal is logged on the
    security log; ``quiet`` leaves a request without any credentials unlogged (for
    :data:`current_customer`, which anonymous pages may consult).
    """
    cached = g.get(_ACTOR_KEY)
    if cached is None or (customer_only and cached.is_admin):
        cached = _identify(get_state(), prefer_customer=customer_only, quiet=quiet)
        setattr(g, _ACTOR_KEY, cached)
    if admin_only and not cached.is_admin:
        _denied("forbidden", cached, reason="admin only")
        raise Forbidden("Admin credentials are required")
    if customer_only and cached.is_admin:
        _denied("forbidden", cached, reason="customer only")
        raise Forbidden("Customer credentials are required")
    return cast(Actor, cached)


def _identify(state: AppState, *, prefer_customer: bool, quiet: bool) -> Actor:
    found = _customer_actor(state) if prefer_customer else None
    if found is None:
        admin = _admin_actor(state)
        if admin is not None:
            found = admin, True
        elif not prefer_customer:
            found = _customer_actor(state)
    if found is None:
        if not quiet:
            _denied("unauthenticated", None)
        raise Unauthorized()
    actor, via_cookie = found
    if via_cookie and request.method not in SAFE_METHODS and _cross_site():
        _denied("cross_site_refused", actor, origin=_origin_hint())
        raise Forbidden("Cross-site requests with cookie credentials are not allowed")
    return actor


def refuse_cross_site() -> None:
    """:class:`Forbidden` when ``Origin`` (or ``Sec-Fetch-Site``) shows another origin,
    whatever the credentials: for routes that set or end a browser's session."""
    if _cross_site():
        _denied("cross_site_refused", None, origin=_origin_hint())
        raise Forbidden("Cross-site requests are not allowed here")


def _cross_site() -> bool:
    origin = request.headers.get("Origin")
    if origin is not None:
        return origin.rstrip("/").lower() != f"{request.scheme}://{request.host}".lower()
    # "same-site" is another origin too (another port, a sibling subdomain), which the
    # Origin rule above refuses: a GET logout from its <img> carries no Origin.
    return request.headers.get("Sec-Fetch-Site") in ("cross-site", "same-site")


def _origin_hint() -> str:
    return (request.headers.get("Origin") or request.headers.get("Sec-Fetch-Site") or "")[:200]


def finish_response(response: Response) -> Response:
    """Mark the answer ``no-store``, and clear a token cookie that cannot work any more:
    on a 401 to a request whose token cookie was refused, and after an admin's write that
    ended the session of a token cookie the same request carries."""
    state = get_state()
    # Tokens and personal data: no browser or shared cache may keep any answer.
    response.cache_control.no_store = True
    if response.status_code == 401 and g.get(_BAD_COOKIE_KEY):
        clear_token_cookie(response)
        return response
    actor = g.get(_ACTOR_KEY)
    cookie = token_cookie_value()
    if (
        cookie
        and isinstance(actor, Actor)
        and actor.is_admin
        and request.method not in SAFE_METHODS
        and response.status_code < 300
    ):
        try:
            state.sessions.authenticate(cookie)
        except Unauthorized:
            clear_token_cookie(response)
        except SQLAlchemyError as error:
            # The write is committed: a database hiccup here must not make it a 500.
            current_app.logger.warning(
                "Token cookie not checked after a write: %s", type(error).__name__
            )
    return response


def cookie_claims() -> Claims | None:
    """The claims of the request's token cookie, if its signature and claims verify
    (no database query): which session and customer the browser holds."""
    cookie = token_cookie_value()
    if not cookie:
        return None
    try:
        return get_state().tokens.verify(cookie)
    except Unauthorized:
        return None


def set_credential_cookie(response: Response, name: str, value: str, max_age: int) -> None:
    """Set a credential cookie (the token or the admin cookie) with the attributes every
    one of them has: HttpOnly, SameSite=Lax, Path=/, Secure as configured."""
    secure = get_state().settings.cookie_secure
    response.set_cookie(
        name, value, max_age=max_age, path="/", secure=secure, httponly=True, samesite="Lax"
    )


def delete_credential_cookie(response: Response, name: str) -> None:
    """Tell the browser to drop a credential cookie (same attributes as it was set)."""
    secure = get_state().settings.cookie_secure
    response.delete_cookie(name, path="/", secure=secure, httponly=True, samesite="Lax")


def clear_token_cookie(response: Response) -> None:
    """Tell the browser to drop the token cookie."""
    delete_credential_cookie(response, get_state().settings.token_cookie_name)


def _guard(check: Callable[[], object], doc: str) -> Callable[[F], F]:
    """A decorator (documented by ``doc``) running ``check`` before the view: its
    :class:`APIError` is the answer, in EverShop's envelope."""

    def decorator(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                check()
            except APIError as error:
                return finish_response(error_response(error))
            # Flask's way to run a view that may be ``async def``.
            return current_app.ensure_sync(view)(*args, **kwargs)

        return cast(F, wrapper)

    decorator.__doc__ = doc
    return decorator


def _require_customer() -> None:
    actor = authenticate()
    if not actor.is_customer:
        _denied("forbidden", actor, reason="customer only")
        raise Forbidden("Customer credentials are required")


admin_required = _guard(
    functools.partial(authenticate, admin_only=True),
    "Decorate a host view that only an admin (the ``asid`` cookie) may call.",
)
customer_required = _guard(
    _require_customer,
    "Decorate a host view that needs a logged-in customer (bearer token or token cookie).",
)
same_origin_required = _guard(
    refuse_cross_site,
    """Decorate a host view that sets or ends a browser's session (your admin login and
    logout around ``login_admin``/``logout_admin``): 403 in EverShop's envelope when
    ``Origin`` (or, without it, ``Sec-Fetch-Site``) shows another origin, the rule of the
    storefront login; requests without those headers (curl, servers) pass.""",
)


class AnonymousCustomer:
    """What :data:`current_customer` is without a logged-in customer: falsy, and
    ``is_authenticated`` is False (as Flask-Login's anonymous user)."""

    is_authenticated = False

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "<AnonymousCustomer>"


ANONYMOUS = AnonymousCustomer()


def get_current_customer() -> CustomerRecord | None:
    """The customer of the current request (bearer token or token cookie), or None.

    An admin cookie is not a customer: with one, this is None too.
    """
    try:
        return authenticate(quiet=True).customer
    except APIError:
        return None


def get_current_identity() -> Identity | None:
    """Whose customer token the current request carries (uuid and session id), or None.

    With ``EVERSHOP_CUSTOMER_CHECK_SESSION_EACH_REQUEST = False`` and an access token,
    this reads nothing from the database; otherwise the session is checked as for
    :func:`get_current_customer`. An admin cookie is not a customer: None.
    """
    try:
        return authenticate(quiet=True).identity
    except APIError:
        return None


def _current_customer_or_anonymous() -> CustomerRecord | AnonymousCustomer:
    customer = get_current_customer()
    return ANONYMOUS if customer is None else customer


#: The customer of the current request (a :class:`CustomerRecord`), or
#: :class:`AnonymousCustomer`. Test it with ``current_customer.is_authenticated`` (or
#: ``if not current_customer``); it is a proxy, so ``current_customer is None`` is never
#: true: use :func:`get_current_customer` for a real None.
current_customer: CustomerRecord = LocalProxy(_current_customer_or_anonymous)  # type: ignore[assignment]
