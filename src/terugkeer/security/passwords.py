"""Password hashing with argon2id, and time-based one-time passwords (TOTP)."""

from __future__ import annotations

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
MIN_PASSWORD_LENGTH = 12
# twelve spaces or "abababababab" are twelve characters, not a password
MIN_DISTINCT = 5


class WeakPasswordError(ValueError):
    pass


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH or len(set(password)) < MIN_DISTINCT:
        raise WeakPasswordError(
            f"a password needs at least {MIN_PASSWORD_LENGTH} characters,"
            f" at least {MIN_DISTINCT} of them different"
        )
    return _hasher.hash(password)


def verify_password(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    return _hasher.check_needs_rehash(stored)


def new_totp_secret() -> str:
    return pyotp.random_base32()


def totp_uri(secret: str, account: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=account, issuer_name="terugkeer")


def verify_totp(secret: str, code: str) -> bool:
    """A code of the current 30-second step, or the one before or after (clock drift)."""
    return pyotp.TOTP(secret).verify(code.strip(), valid_window=1)
