"""The drill: notices survive crashed workers, failing receivers and a messy feed.

:func:`run_drill` runs the real pipeline against PostgreSQL (a temporary database it creates
and drops, or an empty one it is given) with real receivers on loopback, and breaks it:

- **Feed.** A synthetic national year (:func:`terugkeer.synth.generate` with messy rates:
  duplicated, moved and malformed lines), the victims' feed mixed in at random places, cut
  into chunks. Each chunk is ingested by its own process (``terugkeer.intake.ingest_files``:
  events, periods, obligations and delivery rows in one transaction per batch) while the
  dispatchers run; two neighbouring chunks swap places and one chunk is sent twice.
- **Crashes.** Several dispatcher processes (``terugkeer.notify.worker.run_worker``, the
  first one also running the check cycle) deliver on a short retry policy and a short lease.
  At random moments one is killed with SIGKILL and started again a moment later; some ingest
  processes are killed too, and their chunk is sent again.
- **Receivers.** One process on loopback holds an HTTP receiver (checks the HMAC signature,
  records each ``Idempotency-Key`` it accepts) and an SMTP server (aiosmtpd; records each
  message's ``X-Terugkeer-Idempotency-Key``). They fail at random: HTTP 5xx and hangs past
  the client's timeout, SMTP 4xx and 5xx (at RCPT or DATA) and hangs.

Then it lets the system **settle**: the dispatchers drain the queue while retries come due;
the receivers are "repaired" and, as an operator would, the drill sends every dead letter
again (``retry_dead``: an SMTP 5xx is permanent by design) and confirms any burst the feed
watch held; a check cycle (escalation, with its outbox check) runs and whatever it queues is
drained. Finally it counts, from the database, the receivers' records and the independent
reconciliation: obligations required, delivered, unresolved (no known
recipient: an operator's item with an alert), **missing** (must be 0) and notices **received
more than once** (possible only when a worker dies between sending and recording; counted,
and checked against the claims that killed workers left unrecorded).

Every random choice comes from one ``random.Random(seed)``; the report carries the seed.

The drill is a development tool, not part of the product: ``python -m tools.drill`` (or
``make drill``) from the repository root runs it; ``tests/test_drill.py`` runs a short one;
``bench/dispatch.py`` uses its receivers. Its modules, by role: :mod:`~tools.drill.config`
(sizes, timing, fault rates), :mod:`~tools.drill.receivers` (the fake HTTP and SMTP
receivers), :mod:`~tools.drill.chaos` (the dispatcher and ingest processes and the killer),
:mod:`~tools.drill.scenario` (the feed, the databases, the operator, the calm run),
:mod:`~tools.drill.runner` (the drill itself) and :mod:`~tools.drill.report` (the counting).
"""

from tools.drill.config import DEFAULT_SERVER, SECRET, DrillConfig, DrillError, Faults
from tools.drill.receivers import Receivers, ReceiverStats
from tools.drill.report import DrillReport
from tools.drill.runner import new_seed, run_drill
from tools.drill.scenario import drill_database, prepare_feed

__all__ = [
    "DEFAULT_SERVER",
    "SECRET",
    "DrillConfig",
    "DrillError",
    "DrillReport",
    "Faults",
    "ReceiverStats",
    "Receivers",
    "drill_database",
    "new_seed",
    "prepare_feed",
    "run_drill",
]
