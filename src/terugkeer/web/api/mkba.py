"""The cost-benefit analysis's API resources, for the analyst (``mkba:run``): the scenarios
and their runs (*doorrekeningen*). Aggregates only: a run returns present values, ratios,
percentiles and the break-even effect, never a person.

A run is a function of (scenario, draws, seed) and, for a scenario that reads the store, of
the store: nothing is stored. ``POST …/doorrekeningen`` computes it and answers 201 with its
address, ``{draws}-{seed}``; ``GET`` on that address computes it again (the same numbers) or
takes it from a small cache in the process (scenarios that do not read the store only)."""

from __future__ import annotations

import threading
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Request, Response
from pydantic import BaseModel, Field

from terugkeer.mkba.errors import MkbaError
from terugkeer.security.roles import Permission
from terugkeer.web.auth import requires

router = APIRouter(tags=["mkba"])
RUN = Depends(requires(Permission.MKBA_RUN))
MAX_DRAWS = 20_000  # a request's work stays within seconds
_lock = threading.Lock()
_cache: dict[tuple[str, int, int], dict[str, Any]] = {}
CACHE_SIZE = 32

UNRUNNABLE: dict[int | str, dict[str, Any]] = {
    422: {"description": "the store cannot carry the scenario (e.g. no programme registered)"}
}
Naam = Annotated[str, Path(pattern=r"^[a-z0-9_-]{1,60}$", description="the scenario's name")]
Doorrekening = Annotated[
    str, Path(pattern=r"^[0-9]{1,6}-[0-9]{1,10}$", description="draws-seed, e.g. 10000-1")
]


class RunIn(BaseModel):
    """A run: how many Monte Carlo draws, with which seed."""

    draws: int = Field(10_000, ge=1, le=MAX_DRAWS)
    seed: int = Field(20170222, ge=0, le=9_999_999_999)


def _scenario(name: str) -> Any:
    from terugkeer.mkba import scenario

    if name not in scenario.shipped():
        raise HTTPException(404, f"no scenario [{name}]")
    return scenario.load(name)


@router.get("/mkba-scenarios", summary="The cost-benefit scenarios", dependencies=[RUN])
def list_scenarios() -> list[dict[str, Any]]:
    from terugkeer.mkba import scenario

    out = []
    for name in scenario.shipped():
        s = scenario.load(name)
        out.append(
            {
                "name": s.name,
                "title": s.title,
                "population": s.setup.population,
                "reads_store": s.from_store,
            }
        )
    return out


@router.get("/mkba-scenarios/{naam}", summary="A scenario and its parameters", dependencies=[RUN])
def show_scenario(naam: Naam) -> dict[str, Any]:
    from terugkeer.mkba import analysis

    s = _scenario(naam)
    prep = analysis.prepare(s) if not s.from_store else None
    setup = s.setup
    parameters = []
    if prep is not None:
        for name in sorted(prep.params):
            p = prep.params[name]
            parameters.append(
                {
                    "name": name,
                    "label": p.label,
                    "value": p.value,
                    "unit": p.unit,
                    "price_year_of_source": p.price_year,
                    "distribution": p.distribution,
                    "source": p.source,
                    "assumption": p.assumption,
                }
            )
    return {
        "name": s.name,
        "title": s.title,
        "description": s.description,
        "population": setup.population,
        "participants": None if s.registered else s.participants,
        "horizon_months": setup.horizon_months,
        "discount_rate": setup.rate,
        "timing": setup.timing.value,
        "effect": {
            "measure": setup.effect_measure,
            "value": s.effect.value,
            "months": setup.effect_months,
            "source": s.effect.source,
            "assumption": s.effect.assumption,
        },
        "reads_store": s.from_store,
        "parameters": parameters,
        "caveats": s.caveats,
    }


def _compute(request: Request, name: str, draws: int, seed: int) -> dict[str, Any]:
    from terugkeer.mkba import runner

    s = _scenario(name)
    key = (name, draws, seed)
    if not s.from_store:
        with _lock:
            if key in _cache:
                return _cache[key]
    engine = request.app.state.engine if s.from_store else None
    try:
        result = runner.run(s, draws=draws, seed=seed, engine=engine).as_json()
    except MkbaError as e:
        raise HTTPException(422, str(e)) from None
    result["id"] = f"{draws}-{seed}"
    if not s.from_store:
        with _lock:
            if len(_cache) >= CACHE_SIZE:
                _cache.pop(next(iter(_cache)))
            _cache[key] = result
    return result


@router.post(
    "/mkba-scenarios/{naam}/doorrekeningen",
    summary="Run a scenario (Monte Carlo): the aggregates",
    status_code=201,
    dependencies=[RUN],
    responses=UNRUNNABLE,
)
def create_run(naam: Naam, body: RunIn, request: Request, response: Response) -> dict[str, Any]:
    result = _compute(request, naam, body.draws, body.seed)
    response.headers["Location"] = f"{request.url.path}/{result['id']}"
    return result


@router.get(
    "/mkba-scenarios/{naam}/doorrekeningen/{doorrekening}",
    summary="A run of a scenario (computed again: the same numbers)",
    dependencies=[RUN],
    responses=UNRUNNABLE,
)
def show_run(naam: Naam, doorrekening: Doorrekening, request: Request) -> dict[str, Any]:
    draws_text, seed_text = doorrekening.split("-")
    draws, seed = int(draws_text), int(seed_text)
    if not 1 <= draws <= MAX_DRAWS:
        raise HTTPException(404, f"no run [{doorrekening}]: draws from 1 to {MAX_DRAWS}")
    return _compute(request, naam, draws, seed)
