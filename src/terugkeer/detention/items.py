"""Feed messages as received: read from JSON Lines and CSV files, and parsed one by one."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from terugkeer.detention.csvfeed import row_to_message
from terugkeer.detention.parse import parse_line, validate_message
from terugkeer.domain.events import FeedEvent
from terugkeer.domain.refdata import RefData


@dataclass(slots=True)
class Item:
    """One message as received: a JSON line, or a CSV row kept as a JSON object of its cells."""

    line_no: int
    origin: str
    raw: str
    fmt: str = "json"  # "json" or "csv"
    quarantine_id: int | None = None
    woken: bool = False  # a parked message retried because what it waited for arrived


def parse_item(item: Item, rd: RefData) -> FeedEvent:
    if item.fmt == "csv":
        message = row_to_message(json.loads(item.raw))
        body = json.dumps(message, ensure_ascii=False, separators=(",", ":"))
        return validate_message(message, body, item.line_no, item.origin, rd)
    return parse_line(item.raw, item.line_no, item.origin, rd)


def read_items(path: Path) -> Iterator[Item]:
    """The messages in a JSON Lines or CSV file (by extension), with their line numbers."""
    origin = path.name
    if path.suffix.lower() == ".csv":
        # undecodable bytes are kept (as surrogates) and refused in a field or escaped in raw
        with path.open(encoding="utf-8-sig", errors="surrogateescape", newline="") as fh:
            reader = csv.DictReader(fh)
            for row in reader:
                yield Item(reader.line_num, origin, json.dumps(row, ensure_ascii=False), "csv")
        return
    with path.open(encoding="utf-8-sig", errors="surrogateescape") as fh:
        for n, line in enumerate(fh, start=1):
            text = line.rstrip("\r\n")
            if text.strip():
                yield Item(n, origin, _printable(text))


def _printable(text: str) -> str:
    """Undecodable bytes survive as \\udcXX escapes; store them visibly, never drop a line."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return text
