"""EverShop's password hashes: checking the bcrypt hashes its Node server wrote
(bcryptjs, ``$2a$10$…``), so that imported customers log in with the passwords they
have. Nothing here makes a bcrypt hash: a successful login re-hashes the password with
the configured Werkzeug method.

Two quirks of EverShop are reproduced: bcryptjs uses only the first 72 bytes of the
UTF-8 password (pyca/bcrypt refuses longer input, so it is cut here), and EverShop
HTML-escaped tag-like text in request bodies before hashing (``<b>`` became
``&lt;b&gt;``), so a password with such text is also tried in that form.

The ``bcrypt`` package is an optional extra (``pip install
"flask-evershop-customer[evershop]"``); without it such a hash never verifies, and the
log says what to install.
"""

from __future__ import annotations

import functools
import logging
import re
from types import ModuleType

logger = logging.getLogger(__name__)

#: bcrypt's modular crypt format: ``$2a$``, ``$2b$`` or ``$2y$``, the cost, 53 characters.
_BCRYPT_HASH = re.compile(r"\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}")
#: bcrypt reads at most this many bytes of a password.
BCRYPT_MAX_BYTES = 72
#: What EverShop's ``escapePayload`` takes for a tag: ``<name ...>`` or ``</name>``.
_TAG = re.compile(r"<([a-zA-Z]+)(?:\s[^>]*)?>|</([a-zA-Z]+)>")
INSTALL_HINT = 'pip install "flask-evershop-customer[evershop]"'


def is_bcrypt_hash(stored_hash: str) -> bool:
    """Whether ``stored_hash`` is a bcrypt hash (as EverShop stores them)."""
    return _BCRYPT_HASH.fullmatch(stored_hash) is not None


def escape_tags(text: str) -> str:
    """``text`` as EverShop's request escaping left it: ``<`` and ``>`` of every
    tag-like part written as ``&lt;`` and ``&gt;``."""
    return _TAG.sub(lambda match: match.group().replace("<", "&lt;").replace(">", "&gt;"), text)


def check_bcrypt(stored_hash: str, password: str) -> bool:
    """Whether ``password``, as EverShop would have hashed it, matches ``stored_hash``.
    False (and an error on the log) when the ``bcrypt`` package is not installed."""
    bcrypt = _bcrypt()
    if bcrypt is None:
        logger.error(
            "A customer with a password hash imported from EverShop (bcrypt) tried to log"
            " in, but the bcrypt package is not installed: %s",
            INSTALL_HINT,
        )
        return False
    hashed = stored_hash.encode("ascii")
    candidates = dict.fromkeys([password, escape_tags(password)])
    matched = False
    for candidate in candidates:
        data = candidate.encode("utf-8", "surrogatepass")[:BCRYPT_MAX_BYTES]
        if b"\x00" in data:
            continue  # bcrypt stops at a NUL; pyca/bcrypt refuses it
        try:
            matched = bcrypt.checkpw(data, hashed) or matched
        except ValueError:  # a malformed hash ("Invalid salt"): it matches nothing
            return False
    return matched


@functools.cache
def _bcrypt() -> ModuleType | None:
    try:
        import bcrypt
    except ImportError:
        return None
    module: ModuleType = bcrypt
    return module
