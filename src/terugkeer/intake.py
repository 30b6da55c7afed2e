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


def hooks() -> list[BatchHook]:
    """What every applied batch also does: evaluate the notification rules, open and follow
    reintegration cases."""
    return [notify_hook(), reintegration_hook()]


def ingest_files(engine: Engine, paths: Sequence[Path], **kwargs: Any) -> IngestResult:
    return ingest.ingest_files(engine, paths, hooks=hooks(), **kwargs)


def replay_quarantine(engine: Engine, **kwargs: Any) -> IngestResult:
    return quarantine.replay(engine, hooks=hooks(), **kwargs)
