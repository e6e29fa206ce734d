"""EverShop's password hashes: checking the bcrypt hashes its Node server wrote
(bcryptjs, ``$2a$10$…``), so that imported customers log in with the passwords they
have. Nothing here makes a bcrypt hash: a successful login re-hashes the password with
the configured Werkzeug method.

Two quirks of EverShop are reproduced: bcryptjs uses only the first 72 bytes of the
UTF-8 password (pyca/bcrypt refuses longer input, so it is cut here), and EverShop
HTML-escaped tag-like text in request bodies before hashing (``<b>`` became
``&lt;b&gt;``), so a password with such text is also tried in that form. A hash of a
cost EverShop never wrote (outside 4 to 14) is refused without being checked.

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

#: bcrypt's modular crypt format: ``$2a$``, ``$2b$`` or ``$2y$``, the cost, then the salt
#: (22 characters) and the digest (31), each last character one that bcrypt's base64
#: writes for the bits left over (any other makes an "Invalid salt" or matches nothing).
_BCRYPT_HASH = re.compile(
    r"\$2[aby]\$(?P<cost>\d\d)\$[./A-Za-z0-9]{21}[.Oeu][./A-Za-z0-9]{30}[.CGKOSWaeimquy26]"
)
#: The costs of EverShop's hashes: bcryptjs's least (4) to 14 (EverShop writes 10). A
#: hash of a higher cost would hold a worker for seconds to days at each login.
BCRYPT_COSTS = range(4, 15)
#: bcrypt reads at most this many bytes of a password.
BCRYPT_MAX_BYTES = 72
#: What EverShop's ``escapePayload`` takes for a tag: ``<name ...>`` or ``</name>``.
_TAG = re.compile(r"<([a-zA-Z]+)(?:\s[^>]*)?>|</([a-zA-Z]+)>")
INSTALL_HINT = 'pip install "flask-evershop-customer[evershop]"'


def bcrypt_cost(stored_hash: str) -> int | None:
    """The cost of ``stored_hash`` if it is a well-formed bcrypt hash (of any cost), else
    None. EverShop's are of a cost in :data:`BCRYPT_COSTS`."""
    match = _BCRYPT_HASH.fullmatch(stored_hash)
    return int(match["cost"]) if match is not None else None


def is_bcrypt_hash(stored_hash: str) -> bool:
    """Whether ``stored_hash`` is a well-formed bcrypt hash (of any cost)."""
    return bcrypt_cost(stored_hash) is not None


def escape_tags(text: str) -> str:
    """``text`` as EverShop's request escaping left it: ``<`` and ``>`` of every
    tag-like part written as ``&lt;`` and ``&gt;``."""
    return _TAG.sub(lambda match: match.group().replace("<", "&lt;").replace(">", "&gt;"), text)


def check_bcrypt(stored_hash: str, password: str) -> bool:
    """Whether ``password``, as EverShop would have hashed it, matches ``stored_hash``.
    False, without hashing anything, for a hash whose cost is not in
    :data:`BCRYPT_COSTS` (and a warning on the log); False (and an error on the log) when
    the ``bcrypt`` package is not installed."""
    cost = bcrypt_cost(stored_hash)
    if cost not in BCRYPT_COSTS:
        logger.warning(
            "A customer's stored bcrypt hash has cost %s, outside EverShop's %d to %d: it"
            " is refused without being checked",
            cost,
            BCRYPT_COSTS.start,
            BCRYPT_COSTS.stop - 1,
        )
        return False
    bcrypt = _bcrypt()
    if bcrypt is None:
        logger.error(
            "A customer with a password hash imported from EverShop (bcrypt) tried to log"
            " in, but the bcrypt package is not installed: %s",
            INSTALL_HINT,
        )
        return False
    hashed = stored_hash.encode("ascii")
    matched = False
    for candidate in _forms(password):
        data = candidate[:BCRYPT_MAX_BYTES]
        if b"\x00" in data:
            continue  # bcrypt stops at a NUL; pyca/bcrypt refuses it
        # The hash is well-formed and of a cost bcrypt takes: checkpw cannot refuse it.
        matched = bcrypt.checkpw(data, hashed) or matched
    return matched


def read_whole(password: str) -> bool:
    """Whether bcrypt read all of ``password`` in each form EverShop may have hashed:
    each is shorter than 72 bytes. A password of exactly 72 (or more) may be the prefix
    of a longer one that the hash also matches."""
    return all(len(form) < BCRYPT_MAX_BYTES for form in _forms(password))


def _forms(password: str) -> list[bytes]:
    """``password`` as EverShop may have hashed it (as sent, and with its tag-like text
    escaped), encoded in UTF-8 and not yet cut to 72 bytes."""
    forms = dict.fromkeys([password, escape_tags(password)])
    return [form.encode("utf-8", "surrogatepass") for form in forms]


@functools.cache
def _bcrypt() -> ModuleType | None:
    try:
        import bcrypt
    except ImportError:
        return None
    module: ModuleType = bcrypt
    return module
