"""The drill's configuration: sizes, timing, the receivers' fault rates and the retry policy."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from terugkeer.notify.delivery.dispatch import RetryPolicy

if TYPE_CHECKING:  # the synthesiser (and numpy) only where the feed is made
    from terugkeer.synth import MessyRates

# synthetic data only: the product refuses to guess its environment (config.check_environment)
os.environ.setdefault("TERUGKEER_ENVIRONMENT", "development")
DEFAULT_SERVER = os.environ.get(
    "TERUGKEER_DRILL_SERVER_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
SECRET = b"terugkeer-drill-webhook-secret"
WEBHOOK_PATH = "/terugkeer/meldingen"
SENDER = "terugkeer@drill.example"
OPERATOR = "drill operator"
DELIVERED = ("delivered", "acknowledged")


class DrillError(RuntimeError):
    """The drill could not be run (not: the drill found a gap; that is in the report)."""


@dataclass(frozen=True)
class Faults:
    """How often the receivers fail, per request (HTTP) or per SMTP stage."""

    http_error: float = 0.05  # 500, 502 or 503: tried again
    http_timeout: float = 0.01  # no answer within the client's timeout: tried again
    smtp_temporary: float = 0.04  # 421, 450 or 451 at RCPT or DATA: tried again
    smtp_permanent: float = 0.01  # 550 or 554 at RCPT or DATA: a dead letter at once
    smtp_timeout: float = 0.005  # no answer to DATA within the client's timeout
    hang_seconds: float = 1.5  # how long a "timeout" hangs (longer than the clients wait)
    latency: float = 0.004  # mean seconds a receiver takes to accept (uniform, 0 to twice it)

    def __post_init__(self) -> None:
        for name in (
            "http_error",
            "http_timeout",
            "smtp_temporary",
            "smtp_permanent",
            "smtp_timeout",
        ):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"fault rate {name} must be in [0, 1], got {value}")
        if self.http_error + self.http_timeout > 1 or self.smtp_temporary + self.smtp_permanent > 1:
            raise ValueError("fault rates of one receiver add up to more than 1")

    @classmethod
    def none(cls) -> Faults:
        return cls(0.0, 0.0, 0.0, 0.0, 0.0, latency=0.0)

    @classmethod
    def often(cls) -> Faults:
        """Three times the default rates: a short drill has few notices to fail."""
        return cls(0.15, 0.03, 0.12, 0.03, 0.015, latency=0.008)


def _default_messy() -> MessyRates:
    from terugkeer.synth import MessyRates

    return MessyRates(duplicates=0.03, out_of_order=0.08, malformed=0.005)


def _drill_policy() -> RetryPolicy:
    # retries come due within seconds; a killed worker's claims come back after 10 s, which
    # leaves a live worker's round (at most 8 s of sending, timeouts included) a wide margin
    return RetryPolicy(max_attempts=12, base_seconds=0.2, cap_seconds=2.0, lease_seconds=10.0)


@dataclass(frozen=True)
class DrillConfig:
    seed: int
    events: int = 10_000  # at least this many feed lines (detention and victims feeds)
    kills: int = 20  # dispatcher processes killed with SIGKILL
    ingest_kills: int = 3  # ingest processes killed with SIGKILL (their chunk is sent again)
    workers: int = 3  # dispatcher processes
    chunks: int = 10  # the feed arrives in this many parts while the dispatchers run
    batch_size: int = 500  # ingest: messages per transaction
    limit: int = 20  # dispatcher: deliveries per claim
    poll_seconds: float = 0.1
    check_interval: float = 5.0  # the first dispatcher's check cycle
    kill_gap: tuple[float, float] = (0.2, 1.0)  # seconds between kills, uniformly random
    kill_patience: float = 3.0  # how long a kill may wait for notices to be due
    chunk_gap: tuple[float, float] = (0.0, 0.5)  # pause between chunks
    restart_delay: tuple[float, float] = (0.0, 0.5)  # a killed dispatcher is back after this
    webhook_timeout: float = 0.5
    smtp_timeout: float = 1.0
    settle_timeout: float = 300.0  # longest wait for the queue to drain, per settle step
    active_timeout: float = 900.0  # longest the feed-and-kill phase may take
    faults: Faults = field(default_factory=Faults)
    messy: MessyRates = field(default_factory=_default_messy)
    policy: RetryPolicy = field(default_factory=_drill_policy)
    log_level: str = "error"  # of the child processes
    control: bool = True  # ingest the same feed calmly into a second database and compare

    def __post_init__(self) -> None:
        if self.events < 1 or self.chunks < 1 or self.workers < 1:
            raise ValueError("events, chunks and workers must be at least 1")
        if self.kills < 0 or self.ingest_kills < 0:
            raise ValueError("kills cannot be negative")
        if self.workers < 2 and self.kills:
            raise ValueError("killing dispatchers needs at least 2 of them")

    @classmethod
    def quick(cls, seed: int, **overrides: Any) -> DrillConfig:
        """A short drill (well under a minute): a few hundred events, a few kills."""
        values: dict[str, Any] = {
            "events": 400,
            "kills": 4,
            "ingest_kills": 1,
            "workers": 3,
            "chunks": 4,
            "batch_size": 100,
            "kill_gap": (0.3, 0.9),
            "faults": Faults.often(),
        }
        values.update(overrides)
        return cls(seed=seed, **values)


def config_json(config: DrillConfig) -> dict[str, Any]:
    """The configuration as the report carries it."""
    out = asdict(config)
    out["policy"] = asdict(config.policy)
    out["messy"] = asdict(config.messy)
    return out
