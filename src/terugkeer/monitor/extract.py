"""The research extract: one row per release into society, with pseudonymous keys and no
direct identifiers — no BSN, no name, no prison number, no exact birth date (the birth year and
the age band only), no period reference.

Persons and periods are keyed with HMAC-SHA256 under a secret from the configuration
(``TERUGKEER_MONITOR_EXTRACT_KEYS``: ``id:secret`` pairs, the last one used), so the same
person has the same key in every extract made with that secret, and nobody without it can go
back from a key to a person. Rotating (adding a new pair) gives new keys; the key id is in
every row (``key_id``) so that a researcher knows which extracts can be linked. Every extract
writes an audit row (record type ``monitor_extract``) by the actor who made it.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd  # type: ignore[import-untyped,unused-ignore]
from sqlalchemy import Engine

from terugkeer.config import get_settings
from terugkeer.monitor.cohorts import cohort_columns
from terugkeer.monitor.frame import load
from terugkeer.monitor.recidivism import CRITERIA, followup
from terugkeer.security.actor import Actor

PURPOSE = "onderzoeksextract monitor"


class ExtractKeyError(ValueError):
    """No usable key for the extract."""


@dataclass(frozen=True)
class ExtractResult:
    path: Path
    rows: int
    key_id: str


def extract_key(keys: str | None = None) -> tuple[str, bytes]:
    """The key in use: the last ``id:secret`` pair of the setting (at least 16 characters)."""
    text = get_settings().monitor_extract_keys.get_secret_value() if keys is None else keys
    pairs = [p.strip() for p in text.replace("\n", ",").split(",") if p.strip()]
    if not pairs:
        raise ExtractKeyError(
            "no extract key: set TERUGKEER_MONITOR_EXTRACT_KEYS to id:secret (docs/monitor.md)"
        )
    key_id, sep, secret = pairs[-1].partition(":")
    if not sep or not key_id or len(secret) < 16:
        raise ExtractKeyError(
            "TERUGKEER_MONITOR_EXTRACT_KEYS: the last pair must be id:secret, the secret at "
            "least 16 characters"
        )
    return key_id, secret.encode()


def pseudonym(secret: bytes, kind: str, value: object) -> str:
    return hmac.new(secret, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()[:32]


def write_extract(
    engine: Engine,
    out: Path,
    *,
    actor: Actor,
    cutoff: date | None = None,
    keys: str | None = None,
) -> ExtractResult:
    """Write the extract as CSV to ``out`` and record it in the audit log."""
    key_id, secret = extract_key(keys)
    lag = get_settings().monitor_registration_lag_months
    data = load(engine, cutoff)
    rel = data.released
    cols = cohort_columns(data)
    frame = pd.DataFrame(
        {
            "key_id": key_id,
            "person": [pseudonym(secret, "person", p) for p in rel["person_id"]],
            "release": [pseudonym(secret, "period", p) for p in rel.index],
            "release_year": cols["year"],
            "release_quarter": cols["quarter"],
            "population": rel["population"],
            "municipality": rel["municipality"],
            "sex": rel["sex"],
            "birth_year": rel["birth_date"].dt.year.astype("Int64"),
            "age_band": cols["age_band"],
            "stay_band": cols["stay"],
            "offence": rel["offence"],
            "conditions_release": cols["conditions_release"],
            "in_order_release": cols["in_order_release"],
        },
        index=rel.index,
    )
    for crit in CRITERIA:
        fu = followup(data, crit, lag)
        frame[f"{crit.code}_days"] = fu["time"].reindex(rel.index)
        frame[f"{crit.code}_event"] = fu["event"].reindex(rel.index).astype("boolean")
    frame = frame.iloc[np.argsort(frame["release"].to_numpy())]  # no order of the store
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out, index=False)
    with engine.begin() as conn:
        actor.record(
            conn,
            "extract",
            "monitor_extract",
            [out.name],
            {"rows": len(frame), "key_id": key_id, "cutoff": data.cutoff.isoformat()},
        )
    return ExtractResult(out, len(frame), key_id)
