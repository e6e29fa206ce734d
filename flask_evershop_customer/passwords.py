"""Password hashing (Werkzeug), the hash-method policy, the password policy, re-hashing
and the dummy hash. Hashes imported from EverShop are checked by :mod:`.evershop_hashes`."""

from __future__ import annotations

import functools
import gzip
import hashlib
import secrets
import unicodedata
from importlib import resources

from werkzeug.security import (
    DEFAULT_PBKDF2_ITERATIONS,
    check_password_hash,
    gen_salt,
    generate_password_hash,
)

from .errors import ValidationError
from .evershop_hashes import check_bcrypt, is_bcrypt_hash, read_whole

PASSWORD_MAX_LENGTH = 128
#: OWASP's floor: scrypt N=2^15, r=8, p=3 (or an equal N*p), PBKDF2-HMAC-SHA256 600,000.
SCRYPT_MIN_COST = 2**15 * 3
PBKDF2_MIN_ITERATIONS = {"sha256": 600_000, "sha512": 210_000}


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
    """Why ``password`` (as sent) breaks the policy, or None when it does not.

    Lengths are counted in code points of the NFKC form, which is what gets hashed
    (``ﬁ`` counts as two, a composed ``é`` as one). The reason reads after the field
    name: ``/password`` + reason.
    """
    normalized = normalize(password)
    if len(normalized) < min_length:
        return f"must NOT have fewer than {min_length} characters"
    if len(normalized) > PASSWORD_MAX_LENGTH:
        return f"must NOT have more than {PASSWORD_MAX_LENGTH} characters"
    if "\x00" in normalized:
        # HMAC-based hashes (PBKDF2, scrypt) ignore trailing NULs; bcrypt stops at one.
        return "must not contain the NUL character"
    folded = normalized.casefold()
    if folded in common_passwords():
        return "is too common; choose a less predictable password"
    local_part = email.rpartition("@")[0]
    if local_part and folded == normalize(local_part).casefold():
        return "must not be the same as the email address"
    if full_name and folded == normalize(full_name).casefold():
        return "must not be the same as the full name"
    return None


def check_policy(password: str, *, min_length: int, email: str, full_name: str) -> None:
    """:class:`~.errors.ValidationError` naming ``/password`` when the policy refuses it."""
    reason = policy_violation(password, min_length=min_length, email=email, full_name=full_name)
    if reason is not None:
        raise ValidationError(f"/password {reason}")


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
        if is_bcrypt_hash(stored_hash):
            # Imported from EverShop: checked as it hashed (the password as sent).
            return check_bcrypt(stored_hash, password)
        try:
            return check_password_hash(stored_hash, candidate)
        except ValueError:
            # A hash written by another system with a method Werkzeug does not know.
            return False

    def needs_rehash(self, stored_hash: str, password: str | None = None) -> bool:
        """Whether ``stored_hash`` was made with another method than the configured one
        (an imported EverShop hash always is), and ``password``, which just verified
        against it, may replace it. A bcrypt hash checked only the first 72 bytes: a
        password that long or longer (as EverShop escaped it) may be the prefix of the
        real one, or have a mistyped rest, so only a shorter one is stored."""
        if is_bcrypt_hash(stored_hash):
            return password is None or read_whole(password)
        return stored_hash.partition("$")[0] != self.method


def normalize_hash_method(method: str) -> str | None:
    """The method as Werkzeug writes it into a hash (``scrypt`` → ``scrypt:32768:8:1``).

    Returns None for anything Werkzeug would not accept.
    """
    name, *args = method.split(":")
    if name == "scrypt":
        if not args:
            return "scrypt:32768:8:1"
        numbers = _positive_ints(args, 3)
        if numbers is None:
            return None
        n, r, p = numbers
        if n < 2 or n & (n - 1):
            return None
        return f"scrypt:{n}:{r}:{p}"
    if name == "pbkdf2":
        if len(args) > 2:
            return None
        hash_name = args[0] if args else "sha256"
        if hash_name not in hashlib.algorithms_guaranteed:
            return None
        iterations = _positive_ints(args[1:], 1) if len(args) == 2 else (DEFAULT_PBKDF2_ITERATIONS,)
        if iterations is None:
            return None
        return f"pbkdf2:{hash_name}:{iterations[0]}"
    return None


def is_weak(method: str) -> bool:
    """Whether a normalized method is below OWASP's floor."""
    name, *args = method.split(":")
    if name == "scrypt":
        n, r, p = map(int, args)
        return r < 8 or n * p < SCRYPT_MIN_COST
    hash_name, iterations = args[0], int(args[1])
    return iterations < PBKDF2_MIN_ITERATIONS.get(hash_name, 2**63)


def _positive_ints(values: list[str], count: int) -> tuple[int, ...] | None:
    if len(values) != count or not all(v.isascii() and v.isdigit() for v in values):
        return None
    numbers = tuple(int(v) for v in values)
    return numbers if all(n > 0 for n in numbers) else None
