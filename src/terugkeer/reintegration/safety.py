"""Spreadsheet safety (OWASP, CSV injection) and BSNs where a municipal reference belongs.

Free text that a spreadsheet would read as a formula is refused on the way in (``formula_like``)
and made inert on the way out (``inert``); a BSN typed as a municipal reference is refused, so
that it is never carried into reports in clear."""

from __future__ import annotations

import re

from terugkeer.domain.bsn import is_valid_bsn

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
FORMULA_REASON = "starts with = + - @ or a tab: a spreadsheet would read it as a formula"
BSN_AS_REFERENCE = "a BSN is not a municipal reference: give the municipality's own number"
# a provider or programme is shown in the steering figures, where a BSN never is
BSN_IN_TEXT = "looks like a BSN: a BSN does not belong in this column"


def formula_like(text: str | None) -> bool:
    """Would a spreadsheet read ``text`` as a formula (it starts with ``=``, ``+``, ``-``,
    ``@``, a tab or a carriage return)? Such free text is refused (OWASP: CSV injection)."""
    return text is not None and text.startswith(FORMULA_START)


def inert(value: str) -> str:
    """A cell a spreadsheet would read as a formula with a leading apostrophe, as OWASP
    advises: shown as text."""
    return "'" + value if value.startswith(FORMULA_START) else value


# a space, dot, dash or no-break space between two digits: how a BSN is written in groups
SEPARATOR = r"[ .\-\u00a0]"
GROUP_SEPARATOR = re.compile(rf"(?<=\d){SEPARATOR}(?=\d)")
# a whole line that is 9 digits, in groups or not (the fast reader's suspicion of a BSN)
NINE_DIGITS_LINE = rf"[0-9](?:{SEPARATOR}?[0-9]){{8}}$"


def bsn_digits(text: str) -> str:
    """``text`` without the separators of a number written in groups (``999 993 653``)."""
    return GROUP_SEPARATOR.sub("", text.strip())


def looks_like_bsn(text: str) -> bool:
    """A cell that is a BSN: 9 digits passing the 11-proef, also written in groups."""
    t = bsn_digits(text)
    return len(t) == 9 and t.isdigit() and is_valid_bsn(t)
