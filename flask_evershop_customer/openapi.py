"""The OpenAPI 3.1 document of the endpoints, as one app serves them.

``openapi.json`` beside this module describes the default configuration. An app serves it
adapted to its own settings: its URL prefix, cookie names, password minimum, whether
registration is open, and whether the storefront routes are served.
"""

from __future__ import annotations

import copy
import functools
import json
from importlib import resources
from typing import Any

from .config import Settings

DOCUMENT_FILE = "openapi.json"
#: Marks the path items of the storefront routes (served at the root, when enabled).
STOREFRONT_MARK = "x-storefront-route"


@functools.cache
def packaged_document() -> dict[str, Any]:
    """The document as shipped (do not modify the returned object)."""
    text = resources.files(__package__).joinpath(DOCUMENT_FILE).read_text("utf-8")
    return json.loads(text)  # type: ignore[no-any-return]


def build_document(settings: Settings) -> dict[str, Any]:
    """The document for an app with these ``settings``."""
    from . import __version__

    document = copy.deepcopy(packaged_document())
    document["info"]["version"] = __version__
    server = document["servers"][0]
    # An empty prefix puts the routes at the root, which OpenAPI spells "/".
    server["url"] = settings.url_prefix or "/"
    schemes = document["components"]["securitySchemes"]
    schemes["tokenCookie"]["name"] = settings.token_cookie_name
    schemes["adminCookie"]["name"] = settings.admin_cookie_name
    password = document["components"]["schemas"]["Password"]
    password["x-min-length-after-nfkc"] = settings.password_min_length
    if not settings.storefront_routes:
        for path in [p for p, item in document["paths"].items() if item.get(STOREFRONT_MARK)]:
            del document["paths"][path]
    if not settings.allow_registration:
        create = document["paths"]["/customers"]["post"]
        create["security"] = [{"adminCookie": []}]
        create["responses"]["401"] = {
            "$ref": "#/components/responses/RegistrationClosedUnauthorized"
        }
        create["responses"]["403"] = {"$ref": "#/components/responses/RegistrationClosedForbidden"}
    return document


@functools.lru_cache(maxsize=32)
def document_text(settings: Settings) -> str:
    """:func:`build_document` as compact JSON, made once per configuration."""
    return json.dumps(build_document(settings), separators=(",", ":"), ensure_ascii=False)
