"""Addresses' fields: validation against the data made for it, and the address object.
Pure functions, no Flask.

Countries and their subdivisions come from ISO 3166 as ``pycountry`` ships it, telephone
numbers are checked by ``phonenumbers`` (Google's libphonenumber data) and stored in
E.164. Messages name the field by its JSON key, in EverShop's style.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import phonenumbers
import pycountry

from .errors import ValidationError
from .models import ADDRESS_LINE_MAX_LENGTH, POSTCODE_MAX_LENGTH
from .schemas import TIMESTAMP_FORMAT, bounded_text, string_value

#: The fields of an address a request may set, in the order they are validated.
FIELDS = (
    "full_name",
    "address_1",
    "address_2",
    "city",
    "postcode",
    "telephone",
    "country",
    "province",
)
REQUIRED = ("full_name", "address_1", "postcode", "country")
#: Checked again when the country changes.
DEPENDS_ON_COUNTRY = frozenset({"province", "telephone"})
#: A telephone number as typed: longer input is refused before it is parsed.
TELEPHONE_INPUT_MAX_LENGTH = 32


@dataclass(frozen=True)
class AddressFields:
    """A complete, valid address: what a create or an update writes."""

    full_name: str
    address_1: str
    address_2: str | None
    city: str | None
    postcode: str
    #: E.164 (``+16502530000``), or None.
    telephone: str | None
    #: ISO 3166-1 alpha-2, upper case.
    country: str
    #: ISO 3166-2 (``US-CA``), or None for a country without subdivisions.
    province: str | None

    def values(self) -> dict[str, Any]:
        """The columns to write."""
        return {name: getattr(self, name) for name in FIELDS}


@dataclass(frozen=True)
class AddressRecord:
    """A snapshot of an address: what responses and signals carry."""

    customer_address_id: int
    uuid: str
    customer_id: int
    full_name: str
    telephone: str | None
    address_1: str
    address_2: str | None
    postcode: str
    city: str | None
    province: str | None
    country: str
    created_at: datetime
    updated_at: datetime
    is_default: bool

    @property
    def fields(self) -> AddressFields:
        """Its settable fields."""
        return AddressFields(**{name: getattr(self, name) for name in FIELDS})

    def public(self) -> dict[str, Any]:
        """The address object of the API, in EverShop's field order."""
        return {
            "customer_address_id": self.customer_address_id,
            "uuid": self.uuid,
            "customer_id": self.customer_id,
            "full_name": self.full_name,
            "telephone": self.telephone,
            "address_1": self.address_1,
            "address_2": self.address_2,
            "postcode": self.postcode,
            "city": self.city,
            "province": self.province,
            "country": self.country,
            "created_at": self.created_at.strftime(TIMESTAMP_FORMAT),
            "updated_at": self.updated_at.strftime(TIMESTAMP_FORMAT),
            "is_default": self.is_default,
        }


@dataclass(frozen=True)
class AddressRequest:
    """A validated create or update body: the address as it will be, and what the
    request said of ``is_default`` (None: nothing)."""

    fields: AddressFields
    is_default: bool | None
    #: The fields the request named (all of them on a create).
    named: frozenset[str]


def parse_address(body: Any, current: AddressFields | None = None) -> AddressRequest:
    """Validate a create body (``current`` None: the required fields must be there) or
    an update body over ``current``: the fields it names replace the stored ones and are
    checked, with those that depend on them (a new country needs a province of its own,
    and the telephone number is checked for it); the others are kept as stored, so an
    address stays editable even if the ISO data later retires one of its codes.
    Owner, ids, timestamps and unknown keys are ignored."""
    if not isinstance(body, dict):
        raise ValidationError("Request data must be object")
    named = frozenset(k for k in FIELDS if k in body)
    if current is None:
        for name in REQUIRED:
            if name not in body:
                raise ValidationError(f"Request data must have required property '{name}'")
        values: dict[str, Any] = {name: body.get(name) for name in FIELDS}
        checked = frozenset(FIELDS)
    else:
        values = {**current.values(), **{k: body[k] for k in named}}
        checked = named | (DEPENDS_ON_COUNTRY if "country" in named else frozenset())
    country = _country(values["country"]) if "country" in checked else values["country"]
    validators: dict[str, Callable[[Any], Any]] = {
        "full_name": lambda value: _required_line(value, "full_name"),
        "address_1": lambda value: _required_line(value, "address_1"),
        "address_2": lambda value: _optional_line(value, "address_2"),
        "city": lambda value: _optional_line(value, "city"),
        "postcode": lambda value: bounded_text(
            _required_line(value, "postcode"), "postcode", POSTCODE_MAX_LENGTH
        ),
        "telephone": lambda value: _telephone(value, country),
        "country": lambda _value: country,
        "province": lambda value: _province(value, country),
    }
    fields = AddressFields(
        **{
            name: validators[name](values[name]) if name in checked else values[name]
            for name in FIELDS
        }
    )
    is_default = body.get("is_default")
    if is_default is not None and not isinstance(is_default, bool):
        raise ValidationError("/is_default must be boolean")
    return AddressRequest(fields, is_default, named)


def _required_line(value: Any, name: str) -> str:
    text = string_value(value, name)
    if not text.strip():
        raise ValidationError(f"/{name} must NOT have fewer than 1 characters")
    return bounded_text(text, name, ADDRESS_LINE_MAX_LENGTH)


def _optional_line(value: Any, name: str) -> str | None:
    """Null or blank is stored as null."""
    if value is None:
        return None
    text = string_value(value, name)
    return bounded_text(text, name, ADDRESS_LINE_MAX_LENGTH) if text.strip() else None


def _code(value: Any, name: str) -> str:
    """A code as sent, upper-cased in ASCII only: Unicode's case mapping would make
    ASCII letters of others (the dotless ``ı`` is ``I``, ``ſ`` is ``S``, ``ß`` is ``SS``),
    so non-ASCII text is left as it is, and matches no code."""
    text = string_value(value, name)
    return text.upper() if text.isascii() else text


def _country(value: Any) -> str:
    code = _code(value, "country")
    if code not in _countries():
        raise ValidationError("/country must be an ISO 3166-1 alpha-2 code")
    return code


def _province(value: Any, country: str) -> str | None:
    """Required exactly when the country has subdivisions, and one of them."""
    subdivisions = _subdivisions(country)
    if value is None or (isinstance(value, str) and not value.strip()):
        if subdivisions:
            raise ValidationError("Request data must have required property 'province'")
        return None
    code = _code(value, "province")
    if code not in subdivisions:
        raise ValidationError(f"/province must be an ISO 3166-2 subdivision code of {country}")
    return code


def _telephone(value: Any, country: str) -> str | None:
    """A number valid for its country (or in international form, for any), in E.164."""
    if value is None:
        return None
    text = string_value(value, "telephone")
    if not text.strip():
        return None
    if len(text) > TELEPHONE_INPUT_MAX_LENGTH:
        raise ValidationError(
            f"/telephone must NOT have more than {TELEPHONE_INPUT_MAX_LENGTH} characters"
        )
    try:
        number = phonenumbers.parse(text, country)
    except phonenumbers.NumberParseException:
        raise ValidationError("/telephone must be a valid telephone number") from None
    if not phonenumbers.is_valid_number(number):
        raise ValidationError("/telephone must be a valid telephone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@functools.cache
def _countries() -> frozenset[str]:
    return frozenset(country.alpha_2 for country in pycountry.countries)


def _subdivisions(country: str) -> frozenset[str]:
    return _subdivisions_by_country().get(country, frozenset())


@functools.cache
def _subdivisions_by_country() -> dict[str, frozenset[str]]:
    found: dict[str, set[str]] = {}
    for subdivision in pycountry.subdivisions:
        found.setdefault(subdivision.country_code, set()).add(subdivision.code)
    return {country: frozenset(codes) for country, codes in found.items()}


def address_links(href: str) -> list[dict[str, Any]]:
    """The ``links`` of create and update: the address's own URL on the route used."""
    return [
        {"rel": "edit", "href": href, "action": "PATCH", "types": ["application/json"]},
        {"rel": "delete", "href": href, "action": "DELETE", "types": ["application/json"]},
    ]
