"""The monitor's CSV and XLSX files keep no cell a spreadsheet reads as a formula (issue 13's
spreadsheet safety holds for every file the system writes)."""

from __future__ import annotations

import pandas as pd

from terugkeer.monitor.report import sheet_safe


def test_text_cells_and_labels_are_made_inert_numbers_are_not() -> None:
    frame = pd.DataFrame(
        {"waarde": ["=cmd|' /C calc'!A0", "GM0363", "-", "@x"], "n": [-3, 12, 0, 5]},
        index=["+1", "a", "b", "c"],
    )
    safe = sheet_safe(frame)
    assert safe["waarde"].tolist() == ["'=cmd|' /C calc'!A0", "GM0363", "'-", "'@x"]
    assert safe["n"].tolist() == [-3, 12, 0, 5]  # numbers stay numbers
    assert safe.index.tolist() == ["'+1", "a", "b", "c"]
    assert frame["waarde"].iloc[0].startswith("=")  # the figures themselves are untouched
