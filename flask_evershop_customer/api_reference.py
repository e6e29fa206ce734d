"""The OpenAPI document rendered as one HTML page for people, served beside it.

Everything on the page comes from the document an app serves (its prefix, cookie names,
settings), escaped; the page needs no script and loads nothing from elsewhere.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
from collections.abc import Iterator
from html import escape
from typing import Any

from .config import Settings
from .openapi import build_document

METHODS = ("get", "post", "patch", "put", "delete")
#: The limits a schema may set, in pairs, and what they count.
LIMITS = (
    ("minimum", "maximum", ""),
    ("minLength", "maxLength", " characters"),
    # The password's, as configured: counted after NFKC, which JSON Schema cannot say.
    ("x-min-length-after-nfkc", "x-max-length-after-nfkc", " code points after NFKC"),
)

_STYLE = (
    "body{font:16px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}"
    "code{font-size:.95em}table{border-collapse:collapse;margin:.5rem 0}"
    "th,td{border:1px solid #ccc;padding:.2rem .5rem;text-align:left;vertical-align:top}"
    "section{border-top:1px solid #999;margin-top:2rem}"
)
#: The page's Content-Security-Policy: its own style block, nothing else.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'sha256-"
    + base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()
    + "'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


@functools.lru_cache(maxsize=32)
def reference_html(settings: Settings) -> str:
    """The page for an app with these ``settings``, made once per configuration."""
    return render(build_document(settings))


def render(document: dict[str, Any]) -> str:
    """The HTML page of an OpenAPI 3.1 ``document``."""
    info = document["info"]
    base = document["servers"][0]["url"]
    operations = list(_operations(document))
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(info['title'])}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{escape(info['title'])} <small>{escape(str(info['version']))}</small></h1>",
        f"<p>{escape(info.get('description', ''))}</p>",
        f"<p>Paths are relative to <code>{escape(base)}</code>. The machine-readable "
        '<a href="openapi.json">OpenAPI document</a> says the same in full.</p>',
        "<nav><ul>",
    ]
    parts += [
        f'<li><a href="#{escape(op_id)}"><code>{escape(method.upper())} {escape(path)}</code>'
        f"</a> {escape(operation.get('summary', ''))}</li>"
        for path, method, op_id, operation, _ in operations
    ]
    parts.append("</ul></nav>")
    for path, method, op_id, operation, path_item in operations:
        parts += _operation(document, path, method, op_id, operation, path_item)
    parts.append("</body></html>")
    return "\n".join(parts)


def _operations(
    document: dict[str, Any],
) -> Iterator[tuple[str, str, str, dict[str, Any], dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item:
                operation = item[method]
                op_id = operation.get("operationId") or f"{method}-{path}"
                yield path, method, op_id, operation, item


def _operation(
    document: dict[str, Any],
    path: str,
    method: str,
    op_id: str,
    operation: dict[str, Any],
    path_item: dict[str, Any],
) -> list[str]:
    where = path_item.get("servers", document["servers"])[0]["url"]
    parts = [
        f'<section id="{escape(op_id)}">',
        f"<h2><code>{escape(method.upper())} {escape(path)}</code></h2>",
        f"<p><strong>{escape(operation.get('summary', ''))}</strong></p>",
        f"<p>{escape(operation.get('description', ''))}</p>",
    ]
    if where != document["servers"][0]["url"]:
        parts.append(f"<p>Served at <code>{escape(where)}</code>, not under the prefix.</p>")
    parts.append(f"<p>Credentials: {_credentials(document, operation)}.</p>")
    parameters = [
        _resolve(document, p)
        for p in path_item.get("parameters", []) + operation.get("parameters", [])
    ]
    if parameters:
        parts.append("<h3>Parameters</h3>")
        parts += _table(
            ("name", "in", "required", "type", "meaning"),
            (
                (
                    p["name"],
                    p["in"],
                    "yes" if p.get("required") else "no",
                    _type(document, p),
                    _text(document, p),
                )
                for p in parameters
            ),
        )
    body = operation.get("requestBody")
    if body:
        parts += _request_body(document, _resolve(document, body))
    parts.append("<h3>Answers</h3>")
    parts += _table(
        ("status", "meaning"),
        (
            (status, _resolve(document, answer).get("description", ""))
            for status, answer in operation.get("responses", {}).items()
        ),
    )
    parts.append("</section>")
    return parts


def _request_body(document: dict[str, Any], body: dict[str, Any]) -> list[str]:
    (media_type, content), *_ = body["content"].items()
    schema = _resolve(document, content.get("schema", {}))
    parts = [f"<h3>Body</h3><p><code>{escape(media_type)}</code></p>"]
    if schema.get("description"):
        parts.append(f"<p>{escape(schema['description'])}</p>")
    required = set(schema.get("required", ()))
    properties = schema.get("properties", {})
    if properties:
        parts += _table(
            ("field", "type", "required", "meaning"),
            (
                (
                    name,
                    _type(document, field),
                    "yes" if name in required else "no",
                    _text(document, field),
                )
                for name, field in properties.items()
            ),
        )
    return parts


def _credentials(document: dict[str, Any], operation: dict[str, Any]) -> str:
    requirements = operation.get("security", document.get("security", []))
    schemes = document["components"]["securitySchemes"]
    names = []
    for requirement in requirements:
        for scheme_name in requirement:
            scheme = schemes[scheme_name]
            if scheme["type"] == "http":
                names.append("<code>Authorization: Bearer</code> (the customer's token)")
            else:
                names.append(f"the <code>{escape(scheme['name'])}</code> cookie")
    if {} in requirements or not names:  # {}: it works without credentials too
        names.append("none")
    return " or ".join(names)


def _table(headings: tuple[str, ...], rows: Iterator[tuple[Any, ...]]) -> list[str]:
    parts = ["<table><tr>" + "".join(f"<th>{escape(h)}</th>" for h in headings) + "</tr>"]
    parts += ["<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>" for row in rows]
    parts.append("</table>")
    return parts


def _type(document: dict[str, Any], node: dict[str, Any]) -> str:
    """A schema's type and limits in words: ``integer, 1 to 100, default 20``."""
    schema = _resolve(document, node.get("schema", node))
    kind = schema.get("type")
    if isinstance(kind, list):
        words = [" or ".join(kind)]
    elif kind:
        words = [str(kind)]
    else:
        alternatives = schema.get("oneOf") or schema.get("anyOf") or []
        words = [" or ".join(_type(document, a) for a in alternatives) or "any"]
    if "enum" in schema:
        words.append("one of " + ", ".join(json.dumps(value) for value in schema["enum"]))
    if "format" in schema:
        words.append(f"format {schema['format']}")
    for low, high, unit in LIMITS:
        if low in schema and high in schema:
            words.append(f"{schema[low]} to {schema[high]}{unit}")
        elif low in schema:
            words.append(f"at least {schema[low]}{unit}")
        elif high in schema:
            words.append(f"at most {schema[high]}{unit}")
    if "default" in schema:
        words.append(f"default {json.dumps(schema['default'])}")
    return ", ".join(words)


def _text(document: dict[str, Any], node: dict[str, Any]) -> str:
    """A field's or parameter's description, its own or its schema's."""
    if node.get("description"):
        return str(node["description"])
    return str(_resolve(document, node.get("schema", node)).get("description", ""))


def _resolve(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """``node``, or what its ``$ref`` (to this document) names, followed to the end."""
    while "$ref" in node:
        target: Any = document
        for key in node["$ref"].removeprefix("#/").split("/"):
            target = target[key]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node
