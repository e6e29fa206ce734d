"""Password hashing (Werkzeug), the password policy, re-hashing and the dummy hash."""

from __future__ import annotations

import functools
import gzip
import secrets
import unicodedata
from importlib import resources

from werkzeug.security import check_password_hash, gen_salt, generate_password_hash

from .config import PASSWORD_MAX_LENGTH


def normalize(password: str) -> str:
    """NFKC, so that equivalent forms of one password hash alike (NIST SP 800-63B)."""
    return unicodedata.normalize("NFKC", password)


@functools.cache
def common_passwords() -> frozenset[str]:
    """The bundled blocklist: 19,640 common passwords, lower-cased (see data/README)."""
    data = resources.files(__package__).joinpath("data/common-passwords.txt.gz").read_bytes()
    # One password a line; a few contain spaces ("friend of emily"), so split on lines.
    return frozenset(line for line in gzip.decompress(data).decode("utf-8").splitlines() if line)


def policy_violation(
    password: str, *, min_length: int, email: str = "", full_name: str = ""
) -> str | None:
    """Why ``password`` (already NFKC) breaks the policy, or None when it does not.

    The reason reads after the field name: ``/password`` + reason.
    """
    length = len(password)
    if length < min_length:
        return f"must NOT have fewer than {min_length} characters"
    if length > PASSWORD_MAX_LENGTH:
        return f"must NOT have more than {PASSWORD_MAX_LENGTH} characters"
    if "\x00" in password:
        # HMAC-based hashes (PBKDF2, scrypt) ignore trailing NULs; bcrypt stops at one.
        return "must not contain the NUL character"
    folded = password.casefold()
    if folded in common_passwords():
        return "is too common; choose a less predictable password"
    local_part = email.rpartition("@")[0]
    if local_part and folded == normalize(local_part).casefold():
        return "must not be the same as the email address"
    if full_name and folded == normalize(full_name).casefold():
        return "must not be the same as the full name"
    return None


class PasswordHasher:
    """Hashes with one configured Werkzeug method and counts nothing but work done.

    Every verification goes through :meth:`verify`, also for unknown emails (against a
    dummy hash), so every failed login costs the same one hash check.
    """

    def __init__(self, method: str) -> None:
        self.method = method
        # A well-formed hash of the configured method whose digest is random: checking a
        # password against it costs exactly one real check and never matches. Building
        # it costs nothing, so the first unknown-email login is no slower than the rest.
        self.dummy_hash = f"{method}${gen_salt(16)}${secrets.token_hex(32)}"

    def hash(self, password: str) -> str:
        """A new salted hash of the NFKC form of ``password``."""
        return generate_password_hash(normalize(password), method=self.method)

    def verify(self, stored_hash: str | None, password: str) -> bool:
        """Check ``password`` against ``stored_hash``; with None, burn one dummy check.

        A password with a NUL never matches: HMAC pads a short key with zero bytes, so
        PBKDF2 and scrypt would take ``secret`` and ``secret\\x00`` for the same password.
        (New passwords cannot contain NUL; see :func:`policy_violation`.)
        """
        candidate = normalize(password)
        if stored_hash is None or "\x00" in candidate:
            check_password_hash(self.dummy_hash, candidate)
            return False
        try:
            return check_password_hash(stored_hash, candidate)
        except ValueError:
            # A hash written by another system with a method Werkzeug does not know.
            return False

    def needs_rehash(self, stored_hash: str) -> bool:
        """Whether ``stored_hash`` was made with another method than the configured one."""
        return stored_hash.partition("$")[0] != self.method
