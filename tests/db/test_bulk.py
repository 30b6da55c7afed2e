"""db.bulk.among: lookups by many values select what IN selects, on both stores, and travel
as one array parameter on PostgreSQL; PostgreSQL connections plan for the actual values."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, select, text

from terugkeer.db.bulk import IN_CHUNK, among, insert_rows
from terugkeer.detention.tables import persons


@pytest.fixture
def people(engine: Engine) -> dict[int, str]:
    numbers = {i: f"PN{i:05d}" for i in range(1, 1201)}
    with engine.begin() as conn:
        insert_rows(conn, persons, ("id", "prison_number"), list(numbers.items()))
    return numbers


@pytest.mark.parametrize(
    "wanted",
    [
        [],
        ["PN00007"],
        ["PN00007", "PN00007", "unknown"],
        [f"PN{i:05d}" for i in range(3, 1200, 2)][:IN_CHUNK],
    ],
    ids=["none", "one", "repeated-and-unknown", "a-full-chunk"],
)
def test_among_selects_what_in_selects(
    engine: Engine, people: dict[int, str], wanted: list[str]
) -> None:
    with engine.connect() as conn:
        by_among = conn.scalars(
            select(persons.c.id).where(among(conn, persons.c.prison_number, wanted))
        ).all()
        by_in = conn.scalars(select(persons.c.id).where(persons.c.prison_number.in_(wanted))).all()
        by_id = conn.scalars(
            select(persons.c.prison_number).where(among(conn, persons.c.id, [1, 2, 5000]))
        ).all()
    assert sorted(by_among) == sorted(by_in)
    assert sorted(by_among) == sorted(i for i, n in people.items() if n in set(wanted))
    assert sorted(by_id) == ["PN00001", "PN00002"]


def test_among_is_one_array_parameter_on_postgresql(engine: Engine) -> None:
    values = [f"PN{i:05d}" for i in range(IN_CHUNK)]
    with engine.connect() as conn:
        sql = str(
            select(persons.c.id)
            .where(among(conn, persons.c.prison_number, values))
            .compile(dialect=conn.dialect)
        )
    if engine.dialect.name == "postgresql":
        assert "= ANY (" in sql
        assert sql.count("%(") == 1
    else:
        assert " IN (" in sql


def test_postgresql_connections_plan_for_the_actual_values(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("a PostgreSQL setting")
    with engine.connect() as conn:
        assert conn.scalar(text("SHOW plan_cache_mode")) == "force_custom_plan"
