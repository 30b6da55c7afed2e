"""What must never be in a log line: a BSN (a nine-digit number passing the 11-proef), the
synthetic names and contact details of persons and victims."""

from __future__ import annotations

import re
from collections.abc import Iterable

from terugkeer.domain.bsn import is_valid_bsn

FORBIDDEN = re.compile(
    r"(?<![\d.])\d{9}(?![\d.])"  # a nine-digit number: a BSN if it passes the 11-proef
    r"|Slachtoffer|Nabestaande|Teststraat|@example\.org|(?<!\d)06\d{8}(?!\d)"
)


def personal_data_in(lines: Iterable[str]) -> list[str]:
    leaks = []
    for line in lines:
        for match in FORBIDDEN.finditer(line):
            if not match.group().isdigit() or is_valid_bsn(match.group()):
                leaks.append(line)
                break
    return leaks
