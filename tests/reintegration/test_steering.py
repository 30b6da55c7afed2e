"""The analysts' steering figures per municipality (reintegration/steering.py): aggregates,
small cells suppressed."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import Engine

from terugkeer.reintegration import steering
from tests.web.portal.data import BAD, GM, GOOD, OTHER, case_ids, register, residents


def test_figures_per_municipality_with_small_cells_suppressed(engine: Engine) -> None:
    residents(engine, returned=6, planned=1, other=1)
    mine = case_ids(engine)
    for n, case_id in enumerate(mine):
        register(engine, case_id, GM, BAD if n < 2 else GOOD)
    register(engine, case_ids(engine, OTHER)[0], OTHER, BAD)
    with engine.connect() as conn:
        release = {r.municipality: r for r in steering.at_release(conn, min_cell=5)}
        costs = {r.municipality: r for r in steering.costs(conn, min_cell=5)}
        complete = {r.municipality: r for r in steering.completeness(conn, min_cell=5)}
    ams = release[GM]
    assert (ams.returned, ams.all_in_order) == (6, None)  # 4 in order: fewer than 5
    assert ams.not_in_order is None
    assert ams.share_not_in_order is None
    assert release[OTHER].returned is None  # one person: suppressed
    assert costs[GM].cases == 6
    assert costs[GM].cost_eur == Decimal("1500.00")
    assert costs[GM].per_case_eur == Decimal("250.00")
    assert costs[OTHER].cost_eur is None
    assert costs[OTHER].cases is None
    at = {m.moment: m for m in complete[GM].moments}
    assert (at["release"].due, at["release"].recorded, at["release"].share) == (6, 6, 1.0)
    assert complete[GM].cases == 7
    assert complete[OTHER].cases is None


def test_shown_and_share() -> None:
    assert steering.shown(0, 10) == 0
    assert steering.shown(9, 10) is None
    assert steering.shown(10, 10) == 10
    assert steering.share(None, 10) is None
    assert steering.share(3, 0) is None
    assert steering.share(5, 10) == 0.5
