"""The orchestration above the capabilities: a feed message is applied to its period and the
notification rules are evaluated for it in one transaction. The command line, the demo and
(later) the API ingest through here, so no path applies events without evaluating them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from terugkeer.detention import ingest, quarantine
from terugkeer.detention.ingest import BatchHook, IngestResult
from terugkeer.notify.hook import notify_hook
from terugkeer.reintegration.cases import reintegration_hook
from terugkeer.security.actor import Actor, running


def hooks() -> list[BatchHook]:
    """What every applied batch also does: evaluate the notification rules, open and follow
    reintegration cases."""
    return [notify_hook(), reintegration_hook()]


def ingest_files(
    engine: Engine, paths: Sequence[Path], *, actor: Actor | None = None, **kwargs: Any
) -> IngestResult:
    """Apply feed files with every hook. A bulk job: one audit row per run by ``actor`` (the
    files and the counts, also when it fails halfway), not one per message."""
    if actor is None:
        return ingest.ingest_files(engine, paths, hooks=hooks(), **kwargs)
    with running(engine, actor, "ingest", {"files": [p.name for p in paths]}) as job:
        result = ingest.ingest_files(engine, paths, hooks=hooks(), **kwargs)
        job.update(result.as_json())
    return result


def replay_quarantine(engine: Engine, **kwargs: Any) -> IngestResult:
    return quarantine.replay(engine, hooks=hooks(), **kwargs)
