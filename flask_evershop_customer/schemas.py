"""Request parsing and validation, response shaping: pure functions, no Flask.

Validation follows EverShop's order and wording (as its server answers): the body must be
an object, then the required fields in order, then each field in schema order, and the
message names the field (``/email must match format "email"``).
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from email_validator import EmailNotValidError, validate_email

from .errors import UnsupportedMediaType, ValidationError
from .models import EMAIL_MAX_LENGTH, FULL_NAME_MAX_LENGTH

if TYPE_CHECKING:
    from .own_sessions import SessionInfo

TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"
#: Longer integer literals are refused before Python converts them.
MAX_INTEGER_DIGITS = 20
UUID_PATTERN = re.compile(r"[0-9a-f]{32}")
SID_PATTERN = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
#: Logout takes a handful of ids at most; a longer list is refused rather than queried.
MAX_IDS = 50
STATUS_VALUES: dict[Any, int] = {0: 0, 1: 1, "0": 0, "1": 1}


@dataclass(frozen=True)
class NewCustomer:
    """A validated create request. ``password`` is as sent (hashed in its NFKC form)."""

    email: str
    email_canonical: str
    password: str
    full_name: str
    status: int


@dataclass(frozen=True)
class CustomerChanges:
    """A validated update: only the fields the request named are set."""

    email: str | None = None
    email_canonical: str | None = None
    password: str | None = field(default=None, repr=False)
    full_name: str | None = None
    status: int | None = None
    #: The customer's current password, which their own password or email change needs
    #: (checked, never stored).
    current_password: str | None = field(default=None, repr=False)

    @property
    def is_empty(self) -> bool:
        """Whether nothing would change (``current_password`` alone changes nothing)."""
        return dataclasses.replace(self, current_password=None) == CustomerChanges()


@dataclass(frozen=True)
class Credentials:
    """A validated login request."""

    email_canonical: str
    password: str


@dataclass(frozen=True)
class CustomerRecord:
    """A snapshot of a customer's public fields: what responses and signals carry.

    It has no password hash, so nothing built from it can leak one.
    """

    customer_id: int
    uuid: str
    status: int
    group_id: int
    email: str
    email_canonical: str
    full_name: str
    created_at: datetime
    updated_at: datetime
    version: int

    #: True for every customer (Flask-Login's name); see :data:`current_customer`.
    is_authenticated: ClassVar[bool] = True

    def public(self) -> dict[str, Any]:
        """The customer object of the API, in EverShop's field order."""
        return {
            "customer_id": self.customer_id,
            "uuid": self.uuid,
            "status": self.status,
            "group_id": self.group_id,
            "email": self.email,
            "full_name": self.full_name,
            "created_at": self.created_at.strftime(TIMESTAMP_FORMAT),
            "updated_at": self.updated_at.strftime(TIMESTAMP_FORMAT),
        }

    @property
    def etag(self) -> str:
        """A strong entity tag naming this version of this customer."""
        return f'"{self.uuid}.{self.version}"'


# -- request bodies -------------------------------------------------------------------


def parse_json_body(data: bytes, mimetype: str, charset: str | None, encoding: str | None) -> Any:
    """Decode a request body. An empty body is ``{}`` (as EverShop treats it).

    415 for a body that is not uncompressed UTF-8 ``application/json``; 400 for
    malformed JSON, duplicate keys, NaN/Infinity, and oversized numbers.
    """
    if not data:
        return {}
    if mimetype != "application/json" and not mimetype.endswith("+json"):
        raise UnsupportedMediaType()
    if charset is not None and charset.lower() not in ("utf-8", "utf8"):
        raise UnsupportedMediaType("Request body must be UTF-8 encoded JSON")
    if encoding not in (None, "", "identity"):
        raise UnsupportedMediaType("Compressed request bodies are not supported")
    try:
        text = data.decode("utf-8")
        return json.loads(
            text,
            object_pairs_hook=_unique_keys,
            parse_constant=_reject_constant,
            parse_int=_bounded_int,
            parse_float=_finite_float,
        )
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ValidationError("Request data must be valid JSON") from None


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate key")
    return result


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _bounded_int(literal: str) -> int:
    if len(literal) > MAX_INTEGER_DIGITS:
        raise ValueError("number too long")
    return int(literal)


def _finite_float(literal: str) -> float:
    if len(literal) > MAX_INTEGER_DIGITS * 2:
        raise ValueError("number too long")
    value = float(literal)
    if not math.isfinite(value):
        raise ValueError("number out of range")
    return value


def _require_object(body: Any, required: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ValidationError("Request data must be object")
    for name in required:
        if name not in body:
            raise ValidationError(f"Request data must have required property '{name}'")
    return body


def _string(body: dict[str, Any], name: str) -> str:
    return string_value(body[name], name)


def string_value(value: Any, name: str) -> str:
    """``value`` if it is a string of valid Unicode; :class:`ValidationError` naming the
    field ``name`` otherwise."""
    if not isinstance(value, str):
        raise ValidationError(f"/{name} must be string")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(f"/{name} must be valid Unicode text") from None
    return value


def _status(body: dict[str, Any]) -> int:
    value = body["status"]
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValidationError("/status must be string,integer")
    if value not in STATUS_VALUES:
        raise ValidationError("/status must be equal to one of the allowed values")
    return STATUS_VALUES[value]


def canonical_email(email: str) -> str | None:
    """The one form an address is compared in everywhere (uniqueness, login, throttling,
    ``unlock``), or None if ``email`` is not a valid address. No DNS look-up is made.

    NFKC first, so compatibility forms (full-width ``ｚｏｅ``, ligatures) are the
    address they stand for; then the validator's normalization (IDNA for the domain);
    then case folding (``ß`` is ``ss``). Confusable letters of other scripts (a Cyrillic
    ``о`` in a Latin name) are different letters, so different addresses.
    """
    if len(email) > EMAIL_MAX_LENGTH:
        return None
    try:
        valid = validate_email(unicodedata.normalize("NFKC", email), check_deliverability=False)
    except EmailNotValidError:
        return None
    canonical = unicodedata.normalize("NFKC", valid.normalized.casefold())
    # Folding can lengthen an address (ß -> ss): keep what the column holds.
    return canonical if len(canonical) <= EMAIL_MAX_LENGTH else None


def _email(body: dict[str, Any]) -> tuple[str, str]:
    email = _string(body, "email")
    if len(email) > EMAIL_MAX_LENGTH:
        raise ValidationError(f"/email must NOT have more than {EMAIL_MAX_LENGTH} characters")
    canonical = canonical_email(email)
    if canonical is None:
        raise ValidationError('/email must match format "email"')
    return email, canonical


def _full_name(body: dict[str, Any]) -> str:
    name = _string(body, "full_name")
    if not name:
        raise ValidationError("/full_name must NOT have fewer than 1 characters")
    return bounded_text(name, "full_name", FULL_NAME_MAX_LENGTH)


#: Controls (``Cc``), line and paragraph separators: no field is more than one line.
_CONTROL_CATEGORIES = frozenset({"Cc", "Zl", "Zp"})
#: Bidirectional controls: they reorder what is shown around them (``U+202E`` shows
#: ``gpj.exe`` as ``exe.jpg``), so another name could be read than the one stored.
_BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
#: Format characters (zero-width spaces and joiners, the soft hyphen, tags) and
#: separators show nothing on their own.
_INVISIBLE_CATEGORIES = frozenset({"Cf", "Zs"})
#: The rest of Unicode's Default_Ignorable_Code_Point (the Hangul fillers U+115F, U+1160,
#: U+3164 and U+FFA0, the combining grapheme joiner, variation selectors, ...): shown as
#: nothing too.
_IGNORABLE = re.compile(
    "[\u034f\u115f\u1160\u17b4\u17b5\u180b-\u180f\u2065\u3164\ufe00-\ufe0f\uffa0"
    "\ufff0-\ufff8\U000e0000-\U000e0fff]"
)


def _controls(char: str) -> bool:
    return unicodedata.category(char) in _CONTROL_CATEGORIES or char in _BIDI_CONTROLS


def _shows(char: str) -> bool:
    return not (
        char.isspace()
        or unicodedata.category(char) in _INVISIBLE_CATEGORIES
        or _IGNORABLE.match(char)
    )


def bounded_text(text: str, name: str, limit: int) -> str:
    """``text`` if it is a line a person can read; :class:`ValidationError` naming the
    field ``name`` otherwise: when it is longer than ``limit`` characters, holds a
    character that controls rather than shows (a control character, a line or paragraph
    separator, a bidirectional control), or shows nothing at all (only whitespace,
    format characters, Hangul fillers or other default-ignorable code points). Joiners
    among visible characters are text: emoji sequences, Indic and Persian names need
    them."""
    if len(text) > limit:
        raise ValidationError(f"/{name} must NOT have more than {limit} characters")
    if any(_controls(char) for char in text):
        raise ValidationError(f"/{name} must not contain control characters")
    if not any(_shows(char) for char in text):
        raise ValidationError(f"/{name} must contain visible characters")
    return text


def _password(body: dict[str, Any]) -> str:
    """The password as sent. The policy is applied by the rules, which know the
    customer's stored email and name when only the password changes; hashing uses its
    NFKC form."""
    return _string(body, "password")


def parse_new_customer(body: Any) -> NewCustomer:
    """Validate a create request: ``email``, ``password``, ``full_name``, ``status``."""
    body = _require_object(body, ("email", "password", "full_name"))
    status = _status(body) if "status" in body else 1
    email, canonical = _email(body)
    password = _password(body)
    return NewCustomer(
        email=email,
        email_canonical=canonical,
        password=password,
        full_name=_full_name(body),
        status=status,
    )


def parse_customer_changes(body: Any) -> CustomerChanges:
    """Validate an update. Fields other than these four (and ``current_password``, which
    is checked, never written) are ignored."""
    body = _require_object(body, ())
    status = _status(body) if "status" in body else None
    email, canonical = _email(body) if "email" in body else (None, None)
    full_name = _full_name(body) if "full_name" in body else None
    password = _password(body) if "password" in body else None
    current = _string(body, "current_password") if "current_password" in body else None
    return CustomerChanges(
        email=email,
        email_canonical=canonical,
        password=password,
        full_name=full_name,
        status=status,
        current_password=current,
    )


def parse_credentials(body: Any) -> Credentials:
    """Validate a login request. The password policy is not applied here: whatever was
    accepted when it was set must still log in."""
    body = _require_object(body, ("email", "password"))
    _, canonical = _email(body)
    return Credentials(email_canonical=canonical, password=_string(body, "password"))


#: The sorts of the admin list, and the column each sorts by.
SORTS = ("created_at", "email", "full_name", "customer_id")
MAX_PAGE_SIZE = 100
#: Deeper pages are refused: their OFFSET would only scan further for nothing useful.
MAX_PAGE = 1_000_000


@dataclass(frozen=True)
class CustomerQuery:
    """A validated admin list request: a page, filters and a sort."""

    page: int = 1
    limit: int = 20
    #: A prefix of the canonical email (NFKC, case-folded), or None.
    email_prefix: str | None = None
    status: int | None = None
    sort: str = "created_at"
    descending: bool = True


def parse_customer_query(args: Mapping[str, str]) -> CustomerQuery:
    """Validate the query string of ``GET /customers``; unknown parameters are ignored."""
    page = _query_int(args, "page", 1, 1, MAX_PAGE)
    limit = _query_int(args, "limit", 20, 1, MAX_PAGE_SIZE)
    status = None
    if "status" in args:
        if args["status"] not in ("0", "1"):
            raise ValidationError("/status must be equal to one of the allowed values")
        status = int(args["status"])
    sort = args.get("sort", "created_at")
    if sort not in SORTS:
        raise ValidationError("/sort must be equal to one of the allowed values")
    order = args.get("order", "desc")
    if order not in ("asc", "desc"):
        raise ValidationError("/order must be equal to one of the allowed values")
    prefix = None
    if args.get("email"):
        prefix = unicodedata.normalize("NFKC", args["email"]).casefold()
        if len(prefix) > EMAIL_MAX_LENGTH:
            raise ValidationError(f"/email must NOT have more than {EMAIL_MAX_LENGTH} characters")
        if "\x00" in prefix:
            raise ValidationError("/email must not contain the NUL character")
    return CustomerQuery(page, limit, prefix, status, sort, order == "desc")


def _query_int(args: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = args.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 9:
        raise ValidationError(f"/{name} must be integer")
    value = int(raw)
    if value < low:
        raise ValidationError(f"/{name} must be >= {low}")
    if value > high:
        raise ValidationError(f"/{name} must be <= {high}")
    return value


@dataclass(frozen=True)
class NewPassword:
    """A validated reset completion: the token from the link and the new password."""

    token: str = field(repr=False)
    password: str = field(repr=False)


def parse_reset_request(body: Any) -> str:
    """Validate ``{"email"}`` of a reset request; its canonical email."""
    body = _require_object(body, ("email",))
    return _email(body)[1]


def parse_refresh_request(body: Any) -> str:
    """Validate ``{"refreshToken"}`` (EverShop's messages); the token as sent. Whether it
    is one is for the rules to say (401), not the parser."""
    if not isinstance(body, dict):
        raise ValidationError("Request data must be object")
    token = body.get("refreshToken")
    if token is None or token == "":
        raise ValidationError("Refresh token is required")
    if not isinstance(token, str):
        raise ValidationError("Refresh token must be a string")
    return token


def parse_new_password(body: Any) -> NewPassword:
    """Validate ``{"token", "password"}`` of a reset completion (the policy is applied by
    the rules, which know the customer)."""
    body = _require_object(body, ("token", "password"))
    return NewPassword(token=_string(body, "token"), password=_password(body))


def parse_session_ids(ids: str) -> list[str]:
    """Split the ``{ids}`` of logout: session ids or a customer uuid, comma-separated.

    Malformed items are kept: they simply match nothing (404).
    """
    items = [item for item in ids.split(",") if item]
    if not items or len(items) > MAX_IDS:
        return []
    return list(dict.fromkeys(items))


def undashed_uuid(value: str) -> str:
    """A uuid in EverShop's dashed form (``9f1c2e4a-…``, as PostgreSQL writes a UUID) as
    the extension writes it, 32 lowercase hex digits; anything else unchanged (other
    forms, such as upper case, stay malformed: 404)."""
    if SID_PATTERN.fullmatch(value):
        return value.replace("-", "")
    return value


def is_uuid(value: str) -> bool:
    """Whether ``value`` has the form of a customer uuid (32 lowercase hex digits)."""
    return UUID_PATTERN.fullmatch(value) is not None


def is_sid(value: str) -> bool:
    """Whether ``value`` has the form of a session id (a dashed lowercase UUID)."""
    return SID_PATTERN.fullmatch(value) is not None


# -- responses ------------------------------------------------------------------------


def customer_links(uuid: str) -> list[dict[str, Any]]:
    """The two ``links`` of create and update, exactly as EverShop's docs show them."""
    return [
        {"rel": "customerGrid", "href": "/admin/customers", "action": "GET", "types": ["text/xml"]},
        {
            "rel": "edit",
            "href": f"/admin/customers/edit/{uuid}",
            "action": "GET",
            "types": ["text/xml"],
        },
    ]


def session_item(info: SessionInfo) -> dict[str, Any]:
    """One entry of ``GET /customers/me/sessions``."""
    return {
        "sid": info.sid,
        "created_at": info.created_at.strftime(TIMESTAMP_FORMAT),
        "expires_at": info.expires_at.strftime(TIMESTAMP_FORMAT),
        "current": info.current,
        "user_agent": info.user_agent,
    }


def own_profile_links(prefix: str) -> list[dict[str, Any]]:
    """The ``links`` of ``PATCH /customers/me``, as EverShop answers it."""
    return [
        {
            "rel": "self",
            "href": f"{prefix}/customers/me",
            "action": "PATCH",
            "types": ["application/json"],
        }
    ]


def customer_body(
    record: CustomerRecord, *, links: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """``{"data": customer}``, with ``links`` when given."""
    data = record.public()
    if links is not None:
        data["links"] = links
    return {"data": data}


def parse_if_match(header: str | None, uuid: str) -> int | None:
    """The version an ``If-Match`` header asks for; None when there is no header.

    ``*`` matches any version (None as well). A weak tag, a tag naming another customer,
    or garbage can match nothing: -1.
    """
    if header is None or header.strip() == "*":
        return None
    for tag in header.split(","):
        tag = tag.strip()
        if len(tag) > 1 and tag.startswith('"') and tag.endswith('"'):
            owner, _, version = tag[1:-1].partition(".")
            if owner == uuid and version.isascii() and version.isdigit() and len(version) < 10:
                return int(version)
    return -1


def dump_json(body: Any) -> str:
    """Compact JSON in the order the body was built (the host's ``sort_keys`` aside)."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)
