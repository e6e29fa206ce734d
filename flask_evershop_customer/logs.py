"""The security log: ``flask_evershop_customer.security``.

One line per event, ``event key=value ...``. Values are JSON-escaped, so a newline or a
control character sent by a client cannot forge a line. Session ids are logged only as
fingerprints; passwords, hashes and tokens are never passed here.
"""

from __future__ import annotations

import json
import logging

from .tokens import fingerprint

security_logger = logging.getLogger("flask_evershop_customer.security")


def security_event(event: str, level: int = logging.INFO, **fields: str | int | None) -> None:
    """Log ``event`` with ``fields``; a field named ``sid`` is logged as its fingerprint."""
    if not security_logger.isEnabledFor(level):
        return
    if fields.get("sid"):
        fields["sid"] = fingerprint(str(fields["sid"]))
    parts = [event]
    parts.extend(f"{key}={json.dumps(value, ensure_ascii=True)}" for key, value in fields.items())
    security_logger.log(
        level, " ".join(parts), extra={"security_event": event, "security_fields": fields}
    )
