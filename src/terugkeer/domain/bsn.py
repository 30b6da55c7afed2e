"""The Dutch citizen service number (BSN) and its 11-proef."""

from __future__ import annotations

import random
import re

_WEIGHTS = (9, 8, 7, 6, 5, 4, 3, 2, -1)


def normalise_bsn(value: str) -> str:
    """Strip spaces and dots; an 8-digit number gets its leading zero back."""
    digits = value.replace(" ", "").replace(".", "")
    if len(digits) == 8 and digits.isdigit():
        digits = "0" + digits
    return digits


def is_valid_bsn(value: str) -> bool:
    """True when ``value`` is 9 digits (or 8 with an implied leading zero) passing the 11-proef.

    Passing the test does not mean the number was ever issued.
    """
    digits = normalise_bsn(value)
    if len(digits) != 9 or not digits.isascii() or not digits.isdigit():
        return False
    if digits == "000000000":
        return False
    d = [ord(c) - 48 for c in digits]
    total = 9 * d[0] + 8 * d[1] + 7 * d[2] + 6 * d[3] + 5 * d[4] + 4 * d[5] + 3 * d[6] + 2 * d[7]
    return (total - d[8]) % 11 == 0


def generate_bsn(rng: random.Random) -> str:
    """A random number that passes the 11-proef, for synthetic data only.

    Numbers start with 9, the range the RvIG keeps for tests, so they cannot collide
    with an issued BSN.
    """
    while True:
        head = [9] + [rng.randrange(10) for _ in range(7)]
        partial = sum(w * d for w, d in zip(_WEIGHTS[:8], head, strict=True))
        last = partial % 11  # need partial - last ≡ 0 (mod 11)
        if last < 10:
            return "".join(map(str, head)) + str(last)


_NINE_DIGITS = re.compile(r"(?<![0-9])[0-9]{9}(?![0-9])")


def mask_bsns(text: str) -> str:
    """``text`` with every 9-digit number that passes the 11-proef masked (a BSN typed in any
    column or field, or echoed in a message or a logged URL)."""
    if len(text) < 9:
        return text
    return _NINE_DIGITS.sub(
        lambda m: mask(m.group(0)) if is_valid_bsn(m.group(0)) else m.group(0), text
    )


def mask(value: str) -> str:
    """A BSN as shown in reports and messages: only the last three digits."""
    return "******" + value[-3:] if len(value) >= 3 else "***"
