"""Suppression of small cells: what the monitor publishes (report, API, pages) never shows a
count of fewer than ``k`` persons, and never lets one be worked out.

**The design.** Every published table is a complete *cube*: counts of persons over fixed
axes (the release year, one dimension such as the municipality, and the categories of the
measure, e.g. in order / not in order / unknown), with every margin (the totals over each axis
and over all of them). A cohort (one release year, or one municipality) is a slice of that same
cube, never a separately computed table, so two overlapping queries (cohort A and cohort A∪B,
say one year and all years, or one municipality and all of them) are two slices of one cube,
suppressed together. No table crosses two dimensions (municipality by age, say), so no figure
can be subtracted from another to reach a cross-classified cell.

**The rules**, applied to the cube with its margins:

1. *Primary*: every cell (margins included) with fewer than ``k`` persons is suppressed
   (``k`` is ``monitor_min_cell``, default 10, never below 5).
2. *Secondary*: a line of the cube (the cells along one axis with the other indices fixed,
   margins included, and the line's total) is one equation, total = sum of its cells. In every
   line, either no cell is suppressed or at least two are; and when the line's total is
   published, the suppressed cells of the line add up to at least ``k``. Where a line breaks
   this, its smallest published cell (other than the total, if possible) is suppressed too,
   and the lines are checked again until none breaks it.

**The guarantee.** From the published cells of a cube an attacker learns, per line, at most
the sum of the suppressed cells, which is then at least ``k``; with the equations of all lines
together (the attack ``tests/monitor/test_suppress.py`` makes by linear programming) no
suppressed cell's value is determined. Shares, rates and estimates are published only where
every count they are computed from is published.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped,unused-ignore]

from terugkeer.config import get_settings

MIN_K = 5
TOTAL = "totaal"


def min_cell(k: int | None = None) -> int:
    """The threshold: ``k`` or the setting; below 5 is refused."""
    value = get_settings().monitor_min_cell if k is None else k
    if value < MIN_K:
        raise ValueError(f"minimum cell size [{value}]: at least {MIN_K}")
    return value


def with_margins(interior: np.ndarray) -> np.ndarray:
    """The cube with a total appended along every axis (the last index of each axis)."""
    full = np.asarray(interior, dtype=np.int64)
    for axis in range(full.ndim):
        full = np.concatenate([full, full.sum(axis=axis, keepdims=True)], axis=axis)
    return full


def suppress_cube(full: np.ndarray, k: int, forced: np.ndarray | None = None) -> np.ndarray:
    """The suppressed cells (a boolean mask) of a cube with its margins (``with_margins``);
    ``forced``: cells suppressed from the start (what another cube sharing them suppressed)."""
    k = min_cell(k)
    hidden = full < k
    if forced is not None:
        hidden |= forced
    values = full.astype(float)
    changed = True
    while changed:
        changed = False
        for axis in range(full.ndim):
            v = np.moveaxis(values, axis, -1).reshape(-1, full.shape[axis])
            h = np.moveaxis(hidden, axis, -1).reshape(-1, full.shape[axis])
            n_hidden = h.sum(axis=1)
            total_open = ~h[:, -1]
            hidden_sum = np.where(h[:, :-1], v[:, :-1], 0).sum(axis=1)
            breaks = (n_hidden == 1) | (total_open & (n_hidden >= 1) & (hidden_sum < k))
            if not breaks.any():
                continue
            # the smallest published cell of each breaking line; the total only as last resort
            cost = np.where(h, np.inf, v)
            cost[:, -1] = np.where(h[:, -1], np.inf, v[:, -1] + 1e15)
            lines = np.nonzero(breaks & np.isfinite(cost).any(axis=1))[0]
            if not len(lines):
                continue
            pick = np.argmin(cost[lines], axis=1)
            h[lines, pick] = True
            hidden = np.moveaxis(h.reshape(np.moveaxis(hidden, axis, -1).shape), -1, axis)
            changed = True
    return hidden


Index = tuple[Any, ...]


def suppress_family(
    fulls: Sequence[np.ndarray], shared: Sequence[Sequence[tuple[Hashable, Index]]], k: int
) -> list[np.ndarray]:
    """Suppress cubes that share cells (the same margin in several cubes: the persons per
    municipality in every indicator by municipality, the national figures in every cube) so that
    a shared cell is suppressed in all of them or in none. ``shared[i]`` names the slices of
    cube ``i`` that are shared, by a key: slices with the same key hold the same counts. Each
    cube is suppressed with the union of what the others suppressed in its shared slices,
    until nothing changes (it only grows, so it ends)."""
    forced: dict[Hashable, np.ndarray] = {}
    while True:
        masks = []
        for full, parts in zip(fulls, shared, strict=True):
            start = np.zeros(full.shape, dtype=bool)
            for key, index in parts:
                if key in forced:
                    start[index] |= forced[key]
            masks.append(suppress_cube(full, k, start))
        found: dict[Hashable, np.ndarray] = {}
        for mask, parts in zip(masks, shared, strict=True):
            for key, index in parts:
                found[key] = found[key] | mask[index] if key in found else mask[index].copy()
        if found.keys() == forced.keys() and all(
            np.array_equal(found[key], forced[key]) for key in found
        ):
            return masks
        forced = found


def count_cube(
    frame: pd.DataFrame, axes: Sequence[str], values: Sequence[Sequence[str]]
) -> np.ndarray:
    """Count the rows of ``frame`` over ``axes`` (each with its list of ``values``; a value
    not in the list is not counted), with margins."""
    shape = tuple(len(v) for v in values)
    codes = []
    keep = np.ones(len(frame), dtype=bool)
    for axis, vals in zip(axes, values, strict=True):
        c = pd.Categorical(frame[axis], categories=list(vals)).codes
        keep &= c >= 0
        codes.append(c)
    interior = np.zeros(shape, dtype=np.int64)
    if keep.any():
        flat = np.ravel_multi_index(tuple(c[keep] for c in codes), shape)
        interior = np.bincount(flat, minlength=int(np.prod(shape))).reshape(shape)
    return with_margins(interior)


def codes(values: pd.Series | np.ndarray, categories: Sequence[str]) -> np.ndarray:
    """Each value's index in ``categories`` (-1 when it is not one of them)."""
    out: np.ndarray = pd.Categorical(values, categories=list(categories)).codes.astype(np.int64)
    return out


def count_codes(axes: Sequence[np.ndarray], shape: Sequence[int]) -> np.ndarray:
    """Count rows over integer-coded axes (``codes``; -1 is not counted), with margins."""
    keep = np.ones(len(axes[0]), dtype=bool)
    for c in axes:
        keep &= c >= 0
    size = int(np.prod(shape))
    interior = np.zeros(size, dtype=np.int64)
    if keep.any():
        flat = np.ravel_multi_index(tuple(c[keep] for c in axes), tuple(shape))
        interior = np.bincount(flat, minlength=size)
    return with_margins(interior.reshape(tuple(shape)))
