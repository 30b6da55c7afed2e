"""The drill's scenario: the messy feed and the order it is sent in, the databases, who is
reached how, and what an operator does once the receivers are repaired; the calm run to
compare with."""

from __future__ import annotations

import math
import random
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, func, insert, select, text
from sqlalchemy.engine import make_url

from terugkeer.notify.tables import alerts, deliveries, notify_endpoints, obligations
from tools.drill.chaos import WorkerGroup
from tools.drill.config import DEFAULT_SERVER, OPERATOR, DrillConfig, DrillError
from tools.drill.report import DrillReport, delivery_claims


@dataclass
class Feed:
    """The feed as the drill sends it: chunk files, lines in all, the synthetic mess in them."""

    chunks: list[Path]
    lines: int
    messy: dict[str, int]


def prepare_feed(folder: Path, config: DrillConfig, rng: random.Random) -> Feed:
    """A messy synthetic year with at least ``config.events`` lines, cut into chunks."""
    from terugkeer.synth import generate

    synth_seed = rng.randrange(2**31)
    releases = max(20, math.ceil(config.events / 2.9))
    for _ in range(10):
        summary = generate(folder / "synth", releases=releases, seed=synth_seed, messy=config.messy)
        detention = summary.files["detention.jsonl"].read_text("utf-8").splitlines()
        victims = summary.files["victims.jsonl"].read_text("utf-8").splitlines()
        if len(detention) + len(victims) >= config.events:
            break
        releases = math.ceil(
            releases * config.events / max(1, len(detention) + len(victims)) * 1.05
        )
    else:  # pragma: no cover - the generator always reaches the size within a few tries
        raise DrillError(f"could not synthesise {config.events} events")
    lines = [line for line in detention if line.strip()]
    # the victims' feed arrives independently: its lines land anywhere in the stream
    for line in victims:
        if line.strip():
            lines.insert(rng.randrange(len(lines) + 1), line)
    n = min(config.chunks, len(lines))
    size = math.ceil(len(lines) / n)
    paths: list[Path] = []
    for k in range(n):
        path = folder / f"chunk-{k:03d}.jsonl"
        path.write_text("\n".join(lines[k * size : (k + 1) * size]) + "\n", "utf-8")
        paths.append(path)
    messy = {
        "duplicated": int(summary.messy.get("duplicate", 0)),
        "out_of_order": int(summary.messy.get("out_of_order", 0)),
        "malformed": int(summary.messy.get("malformed", 0)),
    }
    return Feed(paths, len(lines), messy)


def send_order(chunks: int, rng: random.Random) -> list[int]:
    """The order in which chunks are sent: two neighbours swapped, one sent again at the end."""
    order = list(range(chunks))
    if chunks >= 2:
        k = rng.randrange(chunks - 1)
        order[k], order[k + 1] = order[k + 1], order[k]
    order.append(rng.randrange(chunks))
    return order


@contextmanager
def drill_database(url: str | None, server: str = DEFAULT_SERVER) -> Iterator[str]:
    """``url`` as it is, or a temporary database on the PostgreSQL ``server`` (dropped after)."""
    if url is not None:
        if make_url(url).get_backend_name() != "postgresql":
            raise DrillError("the drill runs several dispatchers: it needs PostgreSQL")
        yield url
        return
    parsed = make_url(server)
    if parsed.get_backend_name() != "postgresql":
        raise DrillError(f"not a PostgreSQL server URL: {parsed.render_as_string()}")
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    admin = create_engine(parsed, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5})
    name = f"terugkeer_drill_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as e:
        admin.dispose()
        raise DrillError(
            f"cannot create a database on {parsed.render_as_string()}: {type(e).__name__}: {e}"
        ) from e
    try:
        yield parsed.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def route_endpoints(engine: Engine, receiver_url: str, rng: random.Random) -> None:
    """Who is reached how: a mix of webhook, e-mail and portal per recipient and municipality."""
    from terugkeer.domain.refdata import refdata

    rows: list[dict[str, Any]] = [
        {"recipient_kind": "idv", "recipient_ref": "*", "channel": "webhook", "address": receiver_url},
        {"recipient_kind": "victim", "recipient_ref": "*", "channel": "webhook", "address": receiver_url},
        {"recipient_kind": "mayor", "recipient_ref": "*", "channel": "webhook", "address": receiver_url},
        {"recipient_kind": "nazorg", "recipient_ref": "*", "channel": "email", "address": "nazorg@gemeente.drill.example"},
    ]  # fmt: skip
    addresses = {"webhook": receiver_url, "portal": None}
    for code in sorted(refdata().municipalities):
        mayor = rng.choice(("webhook", "email"))
        rows.append(
            {
                "recipient_kind": "mayor",
                "recipient_ref": code,
                "channel": mayor,
                "address": addresses.get(mayor, f"oov.{code.lower()}@gemeente.drill.example"),
            }
        )
        nazorg = rng.choices(("webhook", "email", "portal"), weights=(4, 4, 2))[0]
        rows.append(
            {
                "recipient_kind": "nazorg",
                "recipient_ref": code,
                "channel": nazorg,
                "address": addresses.get(nazorg, f"nazorg.{code.lower()}@gemeente.drill.example"),
            }
        )
    with engine.begin() as conn:
        conn.execute(insert(notify_endpoints), [{**r, "priority": 1} for r in rows])


def pending_count(engine: Engine) -> int:
    """Deliveries still pending."""
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).select_from(deliveries).where(deliveries.c.status == "pending")
            ).scalar_one()
        )


def notices_due(engine: Engine) -> bool:
    """Are notices due (so that a dispatcher is probably in the middle of a round)?"""
    with engine.connect() as conn:
        found = conn.execute(
            select(deliveries.c.id)
            .where(
                deliveries.c.status == "pending",
                deliveries.c.next_attempt_at <= datetime.now(UTC),
            )
            .limit(1)
        ).first()
    return found is not None


def wait_drained(engine: Engine, group: WorkerGroup, timeout: float) -> bool:
    """Wait (starting killed dispatchers again) until no notice is pending; False on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        group.tick()
        if pending_count(engine) == 0:
            return True
        time.sleep(0.25)
    return False


def act_as_operator(engine: Engine) -> tuple[int, int, dict[int, tuple[int, int]]]:
    """What an operator does after the receivers are repaired: send every dead letter again and
    confirm every burst the feed watch held. Returns the numbers of dead letters and bursts,
    and per dead letter (claims left unrecorded, recorded attempts) before it was queued again
    (sending it again starts its claim count anew)."""
    from terugkeer.notify.assurance.watch import decide_burst
    from terugkeer.notify.delivery.dispatch import retry_dead

    with engine.connect() as conn:
        dead = list(
            conn.execute(
                select(deliveries.c.id)
                .where(deliveries.c.status == "dead")
                .order_by(deliveries.c.id)
            ).scalars()
        )
        bursts = list(
            conn.execute(
                select(alerts.c.id).where(alerts.c.kind == "burst", alerts.c.status == "open")
            ).scalars()
        )
        before = {
            int(r.id): (max(0, int(r.attempts) - int(r.rows)), int(r.rows))
            for r in (delivery_claims(conn, dead) if dead else [])
        }
    for delivery_id in dead:
        retry_dead(engine, delivery_id)
    for alert_id in bursts:
        decide_burst(engine, alert_id, confirm=True, by=OPERATOR)
    return len(dead), len(bursts), before


def calm_run(
    feed: Feed, config: DrillConfig, server: str, report: DrillReport, tell: Callable[[str], None]
) -> set[str] | None:
    """The same chunks ingested once each, in order, by one process, with nothing failing, into
    a second temporary database: the keys of the obligations (not voided) that creates. What
    the drill lacks of these was lost to its faults or to the order the feed came in."""
    from terugkeer.db.engine import make_engine
    from terugkeer.intake import ingest_files
    from terugkeer.migrations import upgrade

    try:
        with drill_database(None, server) as calm_url:
            engine = make_engine(calm_url)
            try:
                upgrade(engine)
                ingest_files(engine, feed.chunks, batch_size=config.batch_size)
                with engine.connect() as conn:
                    keys = set(
                        conn.execute(
                            select(obligations.c.key).where(obligations.c.status != "voided")
                        ).scalars()
                    )
            finally:
                engine.dispose()
    except DrillError as e:
        report.calm = {"error": str(e)}
        return None
    tell(f"calm run: {len(keys):,} obligations from the same feed without faults")
    return keys
