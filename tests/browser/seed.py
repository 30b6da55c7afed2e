"""The browser tests' world: a store prepared the way the demo prepares its own (a small
synthetic national year ingested with every hook, the notices delivered, the municipal
registrations imported), plus a few known records the walks act on, and one account per role.
Everything goes through the product's own functions."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from rich.console import Console
from sqlalchemy import Engine, select

from terugkeer.demo import demo_endpoints
from terugkeer.demo.registration import demo_step
from terugkeer.detention.tables import detention_periods, quarantine
from terugkeer.intake import ingest_files
from terugkeer.migrations import upgrade
from terugkeer.notify.delivery.channels import Channel
from terugkeer.notify.delivery.channels.email import EmailChannel, SmtpSettings
from terugkeer.notify.delivery.channels.portal import PortalChannel
from terugkeer.notify.delivery.dispatch import Dispatcher
from terugkeer.notify.tables import alerts, obligations
from terugkeer.reintegration.tables import reintegration_cases
from terugkeer.security.accounts import add_user, totp_secret
from terugkeer.security.roles import SCOPED_ROLES, Role
from terugkeer.synth import MessyRates, generate
from tests.feedutil import AMS, BSN, BSN2, intake, lines, msg

PASSWORD = "een heel lang wachtwoord voor de browsertest"
HOME = "GM0363"  # Amsterdam: the scoped accounts' municipality
OTHER = "GM0599"  # Rotterdam: another municipality's records
RELEASES = 100  # the synthetic year: enough for full lists, small enough to seed in seconds
BSN3 = "999990020"  # public test number: a resident returning in three weeks


@dataclass(frozen=True)
class Account:
    name: str
    role: Role
    password: str
    municipality: str | None
    totp_secret: str | None


@dataclass
class World:
    """What the walks know about the seeded store."""

    accounts: dict[Role, Account] = field(default_factory=dict)
    other_mayor: Account | None = None
    # obligations (notices) by who receives them: the walks' own records
    home_notices: list[int] = field(default_factory=list)
    other_notices: list[int] = field(default_factory=list)
    victim_notices: dict[str, int] = field(default_factory=dict)  # victim ref -> notice
    burst_alerts: list[int] = field(default_factory=list)
    quarantined: list[int] = field(default_factory=list)
    cases: dict[str, int] = field(default_factory=dict)  # period -> reintegration case


def _known_feed(directory: Path) -> Path:
    """A serious offender returning to each of the two municipalities, with a victim who wants
    to be told; a resident of the first due to return in three weeks; 25 releases from one prison in one hour (a held burst); two messages the feed
    refuses (quarantined with their reason)."""
    messages = []
    for n, (period, bsn, municipality) in enumerate(
        (("W1", BSN, HOME), ("W2", BSN2, OTHER)), start=1
    ):
        messages += [
            intake(
                f"w-i{n}",
                period=period,
                bsn=bsn,
                fields={"residence_municipality": municipality},
            ),
            msg(
                "victim_registered",
                f"w-v{n}",
                2,
                period,
                bsn=bsn,
                source="OM-IDV",
                victim_ref=f"WV{n}",
                relation="victim",
                spoke_in_court=True,
                wants_information=True,
                contact={"name": f"Slachtoffer {n}", "email": f"slachtoffer{n}@example.org"},
            ),
            msg("release", f"w-r{n}", 40, period, bsn=bsn, release_kind="end_of_sentence"),
        ]
    soon = (datetime.now(AMS).date() + timedelta(days=20)).isoformat()
    messages.append(intake("w-i4", period="W4", bsn=BSN3, fields={"planned_release_date": soon}))
    # residents of Utrecht: the walks in Amsterdam keep short lists
    burst = {"planned_release_date": None, "title": "pre_trial", "residence_municipality": "GM0344"}
    for i in range(25):
        ref, number = f"WB{i}", f"WD{i}"
        messages.append(
            intake(
                f"w-bi{i}",
                period=ref,
                bsn=None,
                prison_number=number,
                source="PI-ZWO",
                fields=burst,
            )
        )
        messages.append(
            msg(
                "release",
                f"w-br{i}",
                300 + i / 1440,
                ref,
                bsn=None,
                prison_number=number,
                source="PI-ZWO",
                release_kind="court_order",
            )
        )
    bad_kind = msg("teleport", "w-q1", 41, "W1")
    bad_municipality = intake(
        "w-q2",
        period="W3",
        bsn=None,
        prison_number="WQ2",
        fields={"residence_municipality": "GM9999"},
    )
    path = directory / "known.jsonl"
    path.write_text(lines(*messages, bad_kind, bad_municipality), encoding="utf-8")
    return path


def _deliver(engine: Engine, mail: Path) -> None:
    channels: dict[str, Channel] = {
        "portal": PortalChannel(),
        "email": EmailChannel(SmtpSettings(maildir=str(mail))),
    }
    dispatcher = Dispatcher(engine, channels=channels)
    try:
        while dispatcher.run_once(limit=500).claimed:
            pass
    finally:
        dispatcher.close()


def _accounts(engine: Engine) -> tuple[dict[Role, Account], Account]:
    accounts: dict[Role, Account] = {}
    for role in Role:
        municipality = HOME if role in SCOPED_ROLES else None
        name = f"test-{role.value}"
        add_user(engine, name, role.value, PASSWORD, municipality)
        accounts[role] = Account(name, role, PASSWORD, municipality, totp_secret(engine, name))
    add_user(engine, "test-mayor-other", Role.MAYOR_OFFICE.value, PASSWORD, OTHER)
    other = Account("test-mayor-other", Role.MAYOR_OFFICE, PASSWORD, OTHER, None)
    return accounts, other


def seed(engine: Engine, workdir: Path) -> World:
    """Migrate ``engine``'s empty database and fill it; ``workdir`` holds the feed files."""
    upgrade(engine)
    demo_endpoints(engine)
    feeds = workdir / "feeds"
    synth = generate(feeds, releases=RELEASES, seed=1, messy=MessyRates())
    files = [synth.files[f"{name}.jsonl"] for name in ("detention", "victims", "reconvictions")]
    ingest_files(engine, [*files, _known_feed(workdir)])
    _deliver(engine, workdir / "mail")
    demo_step(engine, feeds, workdir, Console(file=io.StringIO()), seed=1)
    world = World()
    world.accounts, world.other_mayor = _accounts(engine)
    with engine.connect() as conn:
        known = obligations.c.period_ref.in_(["W1", "W2"])
        for row in conn.execute(
            select(obligations.c.id, obligations.c.recipient_ref)
            .where(known, obligations.c.recipient_kind == "mayor")
            .order_by(obligations.c.id)
        ):
            (world.home_notices if row.recipient_ref == HOME else world.other_notices).append(
                row.id
            )
        world.victim_notices = {
            row.recipient_ref: row.id
            for row in conn.execute(
                select(obligations.c.id, obligations.c.recipient_ref).where(
                    known, obligations.c.recipient_kind == "victim"
                )
            )
        }
        world.cases = {
            row.period_ref: row.id
            for row in conn.execute(
                select(reintegration_cases.c.id, detention_periods.c.period_ref)
                .join(detention_periods, detention_periods.c.id == reintegration_cases.c.period_id)
                .where(detention_periods.c.period_ref.in_(["W1", "W2", "W4"]))
            )
        }
        world.burst_alerts = list(
            conn.execute(
                select(alerts.c.id).where(alerts.c.kind == "burst", alerts.c.status == "open")
            ).scalars()
        )
        world.quarantined = list(
            conn.execute(
                select(quarantine.c.id).where(quarantine.c.origin.like("%known.jsonl%"))
            ).scalars()
        )
    return world
