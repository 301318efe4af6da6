"""Passwords: argon2 hashes, and the rule a new password must meet."""

from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 12
MAX_LENGTH = 1024
_hasher = PasswordHasher()


@cache
def _nobody() -> str:
    """Verified when a login names nobody, so a wrong username costs as long as a wrong
    password. Hashed when first needed (`prepare`): a command that checks no password pays
    nothing for it."""
    return _hasher.hash("no account has this password")


def prepare() -> None:
    """Make what `verify` needs, so that its first call takes as long as the others."""
    _nobody()


class PasswordError(ValueError):
    pass


def hash_password(password: str) -> str:
    if len(password) < MIN_LENGTH:
        raise PasswordError(f"a password needs at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise PasswordError(f"a password can have at most {MAX_LENGTH} characters")
    return _hasher.hash(password)


def verify(password_hash: str | None, password: str) -> bool:
    """Whether `password` matches; with no hash, as slow as a real check and always False."""
    try:
        matched = _hasher.verify(password_hash or _nobody(), password[:MAX_LENGTH])
    except (VerificationError, InvalidHashError):
        return False
    return matched and password_hash is not None
