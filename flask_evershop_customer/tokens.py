"""Signing: the customer JWT (PyJWT, HS256 only) and the admin cookie (itsdangerous);
and the opaque tokens (refresh and reset tokens), of which only a digest is stored."""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timezone

import jwt
from itsdangerous import BadSignature, URLSafeTimedSerializer

from .errors import Unauthorized

ALGORITHM = "HS256"
ISSUER = "flask-evershop-customer"
AUDIENCE = "evershop-customer"
REQUIRED_CLAIMS = ["sub", "sid", "iat", "exp", "iss", "aud"]
#: Clock skew allowed between hosts. The session row's own expiry stays exact.
LEEWAY_SECONDS = 5
#: Longer than any token we issue (about 300 bytes); anything larger is junk.
MAX_TOKEN_LENGTH = 2048
ADMIN_SALT = "flask-evershop-customer.admin-cookie"
#: The ``token_use`` claim of an access token.
ACCESS_USE = "access"
#: Verified tokens each app remembers. A client sends its token with every request; a
#: repeat then costs a dictionary lookup instead of the HMAC and the JSON parse.
REMEMBERED_TOKENS = 4096
#: Random bytes in an opaque token: 43 characters of URL-safe base64.
OPAQUE_TOKEN_BYTES = 32


def new_opaque_token() -> str:
    """A new random, URL-safe opaque token (a refresh or a reset token)."""
    return secrets.token_urlsafe(OPAQUE_TOKEN_BYTES)


def opaque_digest(token: str, key: bytes | None = None) -> str:
    """What is stored of an opaque token, in hex: its SHA-256 or, with ``key``, its
    HMAC-SHA256 (so that an app with another secret finds no match on a shared
    database). The token is random, so either way a lookup by digest is safe."""
    data = token.encode("utf-8", "surrogatepass")
    if key is None:
        return hashlib.sha256(data).hexdigest()
    return hmac.new(key, data, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Claims:
    """The verified claims of a customer token."""

    customer_uuid: str
    sid: str
    #: The ``exp`` claim, in seconds since the epoch.
    expires: int
    #: The ``iat`` claim, in seconds since the epoch.
    issued: int
    #: Whether it is an access token of a token session (``POST /customer/tokens``).
    access: bool = False

    @property
    def lifetime(self) -> int:
        """Seconds from issue to expiry: what the token was issued for."""
        return self.expires - self.issued


class TokenCodec:
    """Issues and verifies customer JWTs with claims ``sub``, ``sid``, ``iat``, ``exp``,
    ``iss`` and ``aud``: nothing personal, nothing that could go stale."""

    def __init__(self, key: bytes, lifetime: int) -> None:
        self._key = key
        self.lifetime = lifetime
        # Only tokens that verified are remembered (an exception is never cached), and
        # their expiry is judged again on every use.
        self._verified = functools.lru_cache(maxsize=REMEMBERED_TOKENS)(self._decode)

    def issue(
        self,
        customer_uuid: str,
        sid: str,
        now: datetime,
        lifetime: int | None = None,
        *,
        access: bool = False,
    ) -> str:
        """A signed token for session ``sid`` of ``customer_uuid``, issued at ``now`` (UTC),
        valid for ``lifetime`` seconds (the login token's lifetime by default). An
        ``access`` token (of a token session) says so in its ``token_use`` claim."""
        issued = int(now.replace(tzinfo=timezone.utc).timestamp())
        payload: dict[str, object] = {
            "sub": customer_uuid,
            "sid": sid,
            "iat": issued,
            "exp": issued + (self.lifetime if lifetime is None else lifetime),
            "iss": ISSUER,
            "aud": AUDIENCE,
        }
        if access:
            payload["token_use"] = ACCESS_USE
        return jwt.encode(payload, self._key, algorithm=ALGORITHM)

    def verify(self, token: str) -> Claims:
        """The claims of a valid token; :class:`Unauthorized` for anything else."""
        if len(token) > MAX_TOKEN_LENGTH:
            raise Unauthorized("Invalid token")
        claims = self._verified(token)
        # PyJWT's own rule and time source, for a token it verified on an earlier request.
        if claims.expires <= time.time() - LEEWAY_SECONDS:
            raise Unauthorized("Token has expired")
        return claims

    def _decode(self, token: str) -> Claims:
        try:
            payload = jwt.decode(
                token,
                self._key,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=ISSUER,
                leeway=LEEWAY_SECONDS,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("Token has expired") from None
        except jwt.InvalidTokenError:
            raise Unauthorized("Invalid token") from None
        sub, sid = payload["sub"], payload["sid"]
        if not isinstance(sub, str) or not isinstance(sid, str):
            raise Unauthorized("Invalid token")
        return Claims(
            customer_uuid=sub,
            sid=sid,
            expires=int(payload["exp"]),
            issued=int(payload["iat"]),
            access=payload.get("token_use") == ACCESS_USE,
        )


class AdminCookieSigner:
    """The ``asid`` cookie: a timestamped admin session id signed with itsdangerous."""

    def __init__(self, key: bytes, max_age: int) -> None:
        self._serializer = URLSafeTimedSerializer(key, salt=ADMIN_SALT)
        self.max_age = max_age

    def sign(self, session_id: str) -> str:
        """The cookie value naming admin session ``session_id``."""
        return self._serializer.dumps(session_id)

    def unsign(self, value: str) -> str:
        """The session id in a valid, unexpired cookie; :class:`Unauthorized` otherwise."""
        if len(value) > MAX_TOKEN_LENGTH:
            raise Unauthorized()
        try:
            session_id = self._serializer.loads(value, max_age=self.max_age)
        except BadSignature:
            raise Unauthorized() from None
        if not isinstance(session_id, str):
            raise Unauthorized()
        return session_id
