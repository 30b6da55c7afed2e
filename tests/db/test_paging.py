"""db.paging: the page and its "showing X–Y of Z"."""

from __future__ import annotations

import pytest

from terugkeer.db.paging import Page, check_page


def test_a_page_says_what_it_shows() -> None:
    assert Page([1, 2], 2, None, 0).complete
    part = Page(list(range(1000)), 4212, 1000, 1000)
    assert not part.complete
    assert part.showing() == "showing 1,001–2,000 of 4,212"
    assert part.meta() == {"total": 4212, "limit": 1000, "offset": 1000}
    assert Page([], 12, 10, 20).showing() == "showing none of 12"
    assert not Page([], 12, 10, 20).complete
    assert Page([], 0, 10, 0).complete


def test_limits_and_offsets_are_checked() -> None:
    check_page(None, 0)
    with pytest.raises(ValueError, match=r"limit \[0\] must be 1 or more"):
        check_page(0, 0)
    with pytest.raises(ValueError, match=r"offset \[-1\] must be 0 or more"):
        check_page(10, -1)
