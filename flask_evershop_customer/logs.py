"""The security log: ``flask_evershop_customer.security``.

One line per event, ``event key=value ...``. Values are JSON-escaped, so a newline or a
control character sent by a client cannot forge a line. Session ids are logged only as
fingerprints, also where they appear in a logged ``path``; passwords, hashes and tokens
are never passed here.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re

security_logger = logging.getLogger("flask_evershop_customer.security")
#: A session id (a dashed UUID) in any case, wherever it stands in a path.
_SESSION_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)


def fingerprint(value: str, length: int = 16, key: bytes = b"") -> str:
    """A one-way digest for logs and throttling keys. Session ids are random and need no
    key; emails and addresses are guessable, so they are digested with a secret ``key``."""
    data = value.encode("utf-8", "surrogatepass")
    return hmac.new(key, data, hashlib.sha256).hexdigest()[:length]


def security_event(event: str, /, **fields: str | int | None) -> None:
    """Log ``event`` with ``fields``. A field named ``sid`` is logged as its fingerprint,
    and so is every session id in a field named ``path``."""
    if not security_logger.isEnabledFor(logging.INFO):
        return
    if fields.get("sid"):
        fields["sid"] = fingerprint(str(fields["sid"]))
    if fields.get("path"):
        fields["path"] = redact_path(str(fields["path"]))
    parts = [event]
    parts.extend(f"{key}={json.dumps(value, ensure_ascii=True)}" for key, value in fields.items())
    security_logger.log(
        logging.INFO, " ".join(parts), extra={"security_event": event, "security_fields": fields}
    )


def redact_path(path: str) -> str:
    """``path`` with each session id in it replaced by ``sid:`` and its fingerprint."""
    return _SESSION_ID.sub(lambda match: "sid:" + fingerprint(match.group()), path)
