"""Who is calling: credentials from the request, the CSRF rule, and the helpers the host
uses on its own routes (``admin_required``, ``customer_required``, ``current_customer``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from flask import g, request
from werkzeug.local import LocalProxy

from .errors import APIError, Forbidden, Unauthorized, error_response
from .logs import security_event
from .service import Actor
from .state import AppState, get_state

if TYPE_CHECKING:
    from .models import CustomerColumns

F = TypeVar("F", bound=Callable[..., Any])
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_ACTOR_KEY = "_evershop_customer_actor"


def _bearer_token() -> str | None:
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Authorization header must be 'Bearer <token>'")
    return token.strip()


def _admin_actor(state: AppState) -> Actor | None:
    value = request.cookies.get(state.settings.admin_cookie_name)
    if not value:
        return None
    try:
        admin_id = state.admin_cookies.unsign(value)
    except Unauthorized:
        security_event("admin_cookie_rejected", path=request.path)
        return None
    if not state.is_admin(admin_id):
        security_event("admin_rejected_by_loader", admin=admin_id)
        return None
    return Actor(admin_id=admin_id)


def _customer_actor(state: AppState) -> tuple[Actor, bool] | None:
    """The customer behind the bearer token or, without one, the token cookie."""
    try:
        token = _bearer_token()
        from_cookie = token is None
        if token is None:
            token = request.cookies.get(state.settings.token_cookie_name)
            if not token:
                return None
        customer, sid = state.service.authenticate(token)
    except Unauthorized as error:
        security_event(
            "token_rejected",
            path=request.path,
            client=request.remote_addr,
            reason=error.message,
        )
        raise
    return Actor(customer=customer, sid=sid), from_cookie


def _denied(
    event: str, actor: Actor | None, *, reason: str | None = None, origin: str | None = None
) -> None:
    """Log an authorization failure with who asked: customer uuid, hashed sid, admin."""
    security_event(
        event,
        customer=actor.customer.uuid if actor is not None and actor.customer else None,
        sid=actor.sid if actor is not None else None,
        admin=actor.admin_id if actor is not None else None,
        path=request.path,
        client=request.remote_addr,
        reason=reason,
        origin=origin,
    )


def authenticate(*, admin_only: bool = False, quiet: bool = False) -> Actor:
    """The caller of this request (cached for the request).

    An admin cookie wins over a customer token. :class:`Unauthorized` without valid
    credentials, :class:`Forbidden` for a customer where an admin is needed, or for a
    cookie-authenticated write sent from another site. Each refusal is logged on the
    security log; ``quiet`` leaves a request without any credentials unlogged (for
    :data:`current_customer`, which anonymous pages may consult).
    """
    cached = g.get(_ACTOR_KEY)
    if cached is None:
        state = get_state()
        actor = _admin_actor(state)
        via_cookie = actor is not None
        if actor is None:
            found = _customer_actor(state)
            if found is None:
                if not quiet:
                    _denied("unauthenticated", None)
                raise Unauthorized()
            actor, via_cookie = found
        if via_cookie and request.method not in SAFE_METHODS and _cross_site():
            _denied("cross_site_refused", actor, origin=_origin_hint())
            raise Forbidden("Cross-site requests with cookie credentials are not allowed")
        cached = actor
        setattr(g, _ACTOR_KEY, actor)
    if admin_only and not cached.is_admin:
        _denied("forbidden", cached, reason="admin only")
        raise Forbidden("Admin credentials are required")
    return cast(Actor, cached)


def _cross_site() -> bool:
    origin = request.headers.get("Origin")
    if origin is not None:
        return origin.rstrip("/").lower() != f"{request.scheme}://{request.host}".lower()
    return request.headers.get("Sec-Fetch-Site") == "cross-site"


def _origin_hint() -> str:
    return (request.headers.get("Origin") or request.headers.get("Sec-Fetch-Site") or "")[:200]


def _guard(admin_only: bool) -> Callable[[F], F]:
    def decorator(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                actor = authenticate(admin_only=admin_only)
                if not admin_only and actor.customer is None:
                    _denied("forbidden", actor, reason="customer only")
                    raise Forbidden("Customer credentials are required")
            except APIError as error:
                return error_response(error)
            return view(*args, **kwargs)

        return cast(F, wrapper)

    return decorator


#: Decorate a host view that only an admin (the ``asid`` cookie) may call.
admin_required = _guard(admin_only=True)
#: Decorate a host view that needs a logged-in customer (bearer token or token cookie).
customer_required = _guard(admin_only=False)


def _load_current_customer() -> CustomerColumns | None:
    try:
        return authenticate(quiet=True).customer
    except APIError:
        return None


#: The customer of the current request, or None: a ``Customer`` model instance.
current_customer: CustomerColumns | None = LocalProxy(_load_current_customer)  # type: ignore[assignment]
