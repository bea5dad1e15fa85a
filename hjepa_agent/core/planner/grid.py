"""Kernels of the navfield's grid (core/planner/navfield.py), numpy only: the exact line-sweep wavefront, the
border ring, dilation and shifts, distances that saturate instead of overflowing. Grids are (n, n),
rows = y."""
from __future__ import annotations

import functools
import math

import numpy as np

BIG_M = float(np.finfo(np.float64).max)
"""Distances saturate here (two finite points can be further apart than the largest float)."""


def norm_m(dxy: np.ndarray) -> np.ndarray:
    """Length of vectors (..., 2), saturating at the largest float instead of overflowing."""
    with np.errstate(over="ignore", invalid="ignore"):
        return np.minimum(np.hypot(dxy[..., 0], dxy[..., 1]), BIG_M)


def wavefront(dist: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """Distances (n, n) from the seeds in ``dist`` (finite where seeded, inf elsewhere) over cells costing
    ``cost`` (n, n) each (m per cell length), relaxed over 8 neighbours to convergence. Moving between
    neighbours costs the mean of the two cells' costs times the step length. A sweep propagates exactly
    along every whole line of the grid in the four directions (rows, columns, both diagonals via a skewed
    copy), both ways, with cumulative edge costs and running minima; sweeps repeat until nothing changes
    (one per turn of the longest shortest path, so a handful)."""
    lines = [Lines(cost, kind) for kind in ("row", "col", "diag", "anti")]
    for _ in range(4 * cost.shape[0]):
        before = dist.copy()
        for ln in lines:
            with np.errstate(over="ignore", invalid="ignore"):  # seeds near the largest float
                dist = ln.relax(dist)
        with np.errstate(invalid="ignore"):  # inf - inf where still unreached
            if not np.nanmax(before - dist, initial=0.0) > 1e-6:  # converged (up to rounding)
                break
    return dist


@functools.lru_cache(maxsize=8)
def border_cells(n: int) -> np.ndarray:
    """(n, n) bool: the outermost ring of cells (read-only)."""
    border = np.zeros((n, n), bool)
    border[0, :] = border[-1, :] = border[:, 0] = border[:, -1] = True
    border.setflags(write=False)
    return border


@functools.lru_cache(maxsize=16)
def line_layout(n: int, kind: str) -> tuple[tuple[int, int], np.ndarray, np.ndarray, float]:
    """Where each cell of an (n, n) grid sits in the line layout of ``kind``: (shape, flat index
    per cell, mask of laid-out positions, step length in cells)."""
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    if kind == "row":
        k, p, lines, step = i, j, n, 1.0          # line k = row i, position p = j
    elif kind == "col":
        k, p, lines, step = j, i, n, 1.0
    elif kind == "diag":
        k, p, lines, step = j - i + n - 1, i, 2 * n - 1, math.sqrt(2.0)
    else:
        k, p, lines, step = (n - 1 - j) - i + n - 1, i, 2 * n - 1, math.sqrt(2.0)
    flat = (k * n + p).ravel()
    inside = np.zeros((lines, n), bool)
    inside.ravel()[flat] = True
    flat.setflags(write=False)
    inside.setflags(write=False)
    return (lines, n), flat, inside, step


class Lines:
    """One family of grid lines (rows, columns, diagonals or anti-diagonals) laid out as the
    rows of a (possibly skewed) array, with cumulative edge costs along them, for exact
    two-way propagation of a distance field along every line at once."""

    def __init__(self, cost: np.ndarray, kind: str) -> None:
        self.shape, self.flat, inside, step = line_layout(cost.shape[0], kind)
        c = self._gather(cost, 0.0)
        both = inside[:, 1:] & inside[:, :-1]
        edge = np.zeros(self.shape)
        edge[:, 1:][both] = (0.5 * (c[:, 1:] + c[:, :-1]) * step)[both]   # from position p-1 to p
        self.cum = np.cumsum(edge, axis=1)

    def _gather(self, a: np.ndarray, fill: float) -> np.ndarray:
        out = np.full(self.shape, fill)
        out.ravel()[self.flat] = a.ravel()
        return out

    def relax(self, dist: np.ndarray) -> np.ndarray:
        """``dist`` improved by travel along these lines, both ways."""
        d, c = self._gather(dist, np.inf), self.cum
        d = np.minimum(d, c + np.minimum.accumulate(d - c, axis=1))
        d = np.minimum(d, np.minimum.accumulate((d + c)[:, ::-1], axis=1)[:, ::-1] - c)
        return d.ravel()[self.flat].reshape(dist.shape)


def grow(mask: np.ndarray, k: int) -> np.ndarray:
    """``mask`` dilated by a disc of ``k`` cells."""
    out = mask.copy()
    for dy in range(-k, k + 1):
        for dx in range(-k, k + 1):
            if (dx or dy) and dx * dx + dy * dy <= k * k:
                out |= shift(mask, dy, dx, False)
    return out


def shift(a: np.ndarray, dy: int, dx: int, fill) -> np.ndarray:
    """``a`` moved so that out[y, x] = a[y + dy, x + dx] (``fill`` beyond the edge)."""
    out = np.full_like(a, fill)
    n0, n1 = a.shape
    ys, yd = (slice(dy, n0), slice(0, n0 - dy)) if dy >= 0 else (slice(0, n0 + dy), slice(-dy, n0))
    xs, xd = (slice(dx, n1), slice(0, n1 - dx)) if dx >= 0 else (slice(0, n1 + dx), slice(-dx, n1))
    out[yd, xd] = a[ys, xs]
    return out


__all__ = ["BIG_M", "Lines", "border_cells", "grow", "line_layout", "norm_m", "shift", "wavefront"]
