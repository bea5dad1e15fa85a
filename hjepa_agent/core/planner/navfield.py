"""Obstacle memory and cost-to-go: the planner's answer to "closer as the crow flies" traps.

A plan scored by straight-line distance to the goal stops in front of any wall between
the robot and the goal: every way round starts by going no closer. Navigation stacks
avoid this with a navigation function (a distance-to-goal over a grid that goes round
what is known to be in the way); this is a small one.

* **Memory** (:meth:`NavField.observe`, every scan): a coarse odom-frame grid of hit
  counts, fed with the raw range beams (not the world state's 16 sector minima, whose
  arcs would mark free space in front of a wall seen at a slant and never the wall
  itself). Each beam clears the cells it crosses before its return and adds hits at
  the return, so a return is forgotten once it has been seen through (an obstacle moved).
* **Cost-to-go** (:meth:`NavField.distance`): metres to the goal over the grid, by a
  vectorised wavefront (repeated 8-neighbour relaxation). Cells are never impassable:
  free and unknown cells cost their length; a hit cell costs ``blocked_factor`` times as
  much; near hits the cost rises (an inflation layer): a cell whose centre is ``d`` from the
  nearest hit centre has clearance ``c = d - inflate_m - resolution/2`` for the footprint and
  costs ``1 + near_factor * (1 - c / safe_clearance_m)`` times its length while ``c`` is below
  ``safe_clearance_m`` (``blocked_factor`` once ``c < 0``). Narrow gaps are dear but open, as
  they are for the plan's own clearance cost. A robot standing inside an inflated cell, or a goal
  walled in by a false return, still gets a finite, useful ranking.
* Outside the grid, or before the first observation, the straight-line distance is used.

Recomputed at most every ``min_interval_s`` (of world-state time) and only when the
memory or the goal changed. Units: metres, seconds; odom frame.
"""
from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass, field

import cv2
import numpy as np


HIT_GAIN = 2
"""Hits added per return; a cell counts as occupied at ``HIT_GAIN`` or more."""
HIT_MAX = 6
"""Hit count ceiling, so a moved obstacle is forgotten after a few rays through it."""


@dataclass
class NavField:
    """Grid memory of scan returns and a cost-to-go to the goal around them (module doc).

    resolution_m: cell size; size_m: side of the square grid, centred on the first pose
    observed; inflate_m: the footprint's radius; blocked_factor: traversal cost multiplier of
    cells the footprint cannot stand in; safe_clearance_m, near_factor: the inflation layer; max_range_m: beams are used up to this range.
    """

    resolution_m: float = 0.2
    size_m: float = 16.0
    inflate_m: float = 0.2
    blocked_factor: float = 10.0
    safe_clearance_m: float = 0.25
    near_factor: float = 3.0
    min_interval_s: float = 0.5
    max_range_m: float = 4.0
    origin: np.ndarray | None = None
    hits: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.int8))
    _field: np.ndarray | None = None
    _field_goal: np.ndarray | None = None
    _field_stamp: float = -math.inf
    _dirty: bool = True
    recomputes: int = 0
    last_recompute_s: float = 0.0
    """Wall time of the latest cost-to-go recompute (what a change of goal will cost again)."""

    def __post_init__(self) -> None:
        if not (0.01 <= self.resolution_m <= 1.0 and self.resolution_m * 4 <= self.size_m <= 200.0):
            raise ValueError(f"NavField: resolution_m in [0.01, 1] and size_m in [4 * resolution, 200], "
                             f"got {self.resolution_m}, {self.size_m}")
        if not (self.inflate_m >= 0.0 and self.blocked_factor >= 1.0 and self.min_interval_s >= 0.0):
            raise ValueError("NavField: inflate_m >= 0, blocked_factor >= 1, min_interval_s >= 0")
        self.n = int(round(self.size_m / self.resolution_m))

    def reset(self) -> None:
        """Forget everything (new episode or relocalised odometry)."""
        self.origin, self._field, self._field_goal, self._dirty = None, None, None, True
        self.hits = np.zeros((0, 0), np.int8)

    # ---- memory -------------------------------------------------------------------------
    def _cells(self, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Row (y), column (x) indices of points (..., 2) and whether they lie on the grid."""
        ij = np.floor((xy - self.origin) / self.resolution_m).astype(np.int64)
        inside = np.all((ij >= 0) & (ij < self.n), axis=-1)
        return ij[..., 1], ij[..., 0], inside

    def observe(self, pose: np.ndarray, angles: np.ndarray, ranges: np.ndarray,
                range_min: float = 0.0, range_max: float = math.inf) -> None:
        """Fold one scan into the memory: beams at ``angles`` (rad, robot frame) with ``ranges``
        (m) from ``pose`` (x, y, yaw; odom frame). A beam that is not finite is skipped; one
        outside [range_min, range_max] is a beam with no return (clears up to the max range)."""
        pose = np.asarray(pose, dtype=np.float64).reshape(-1)
        angles = np.asarray(angles, dtype=np.float64).reshape(-1)
        ranges = np.asarray(ranges, dtype=np.float64).reshape(-1)
        if pose.shape != (3,) or not np.all(np.isfinite(pose)) or angles.shape != ranges.shape:
            raise ValueError(f"NavField.observe: needs a finite pose (3,) and one angle per range, got "
                             f"{pose}, {angles.shape} vs {ranges.shape}")
        use = np.isfinite(angles) & ~np.isnan(ranges)
        angles, ranges = angles[use], ranges[use]
        limit = min(self.max_range_m, range_max)
        hit = (ranges >= range_min) & (ranges <= limit)
        reach = np.where(hit, ranges, limit) - self.resolution_m
        if self.origin is None:
            self.origin = pose[:2] - self.size_m / 2.0
            self.hits = np.zeros((self.n, self.n), np.int8)
        ang = angles + pose[2]
        dirs = np.stack([np.cos(ang), np.sin(ang)], -1)
        steps = np.arange(0.0, limit, self.resolution_m * 0.25)
        along = steps[None, :] <= reach[:, None]
        pts = pose[None, None, :2] + steps[None, :, None] * dirs[:, None, :]
        ends = pose[None, :2] + ranges[hit, None] * dirs[hit]
        r, c, inside = self._cells(ends)
        mark = np.zeros((self.n, self.n), bool)
        mark[r[inside], c[inside]] = True
        r, c, inside = self._cells(pts[along])
        free = np.zeros((self.n, self.n), bool)
        free[r[inside], c[inside]] = True
        # a beam grazing a wall crosses the wall's own cells before its return: cells next to a
        # return of this very scan are not cleared by it
        free &= ~_grow(mark, 1)
        before = self.occupied()
        self.hits[free] = np.maximum(self.hits[free] - 1, 0)
        self.hits[mark] = np.minimum(self.hits[mark] + HIT_GAIN, HIT_MAX)
        if not np.array_equal(before, self.occupied()):
            self._dirty = True

    def occupied(self) -> np.ndarray:
        """(n, n) bool, rows = y: cells currently counted as hit."""
        return self.hits >= HIT_GAIN

    # ---- cost-to-go ---------------------------------------------------------------------
    def traversal(self, margin_m: float | None = None) -> np.ndarray:
        """(n, n) cost multiplier per cell: 1 far from hits, rising near them (module doc).
        ``margin_m``: what a cell's clearance allows for a return's place inside its hit cell
        (default half a cell: the cost-to-go's conservative choice)."""
        occ = self.occupied()
        if not occ.any():
            return np.ones(occ.shape)
        # distance (cells) from each cell centre to the nearest hit centre
        d = cv2.distanceTransform((~occ).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        margin = 0.5 * self.resolution_m if margin_m is None else margin_m
        clear = d * self.resolution_m - self.inflate_m - margin
        near = 1.0 + self.near_factor * np.clip(1.0 - clear / max(self.safe_clearance_m, 1e-6), 0.0, 1.0)
        return np.where(clear < 0.0, self.blocked_factor, near)

    def _wavefront(self, goal: np.ndarray) -> np.ndarray:
        """Metres to ``goal`` from every cell centre (8-neighbour relaxation to convergence)."""
        res, n = self.resolution_m, self.n
        cost = self.traversal() * res
        dist = np.full((n, n), np.inf)
        gr, gc, inside = self._cells(goal[None])
        if inside[0]:
            dist[gr[0], gc[0]] = 0.0
        else:  # goal off the grid: seed the border with straight-line distances from it
            idx = np.arange(n)
            centres = self.origin + (idx + 0.5) * res
            border = np.zeros((n, n), bool)
            border[0, :] = border[-1, :] = border[:, 0] = border[:, -1] = True
            yy, xx = np.meshgrid(centres - 0.0, centres, indexing="ij")
            dist[border] = np.hypot(xx - goal[0], yy - goal[1])[border]
        # moving between neighbours costs the mean of the two cells' costs times the step length.
        # A sweep propagates exactly along every whole line of the grid in the four directions
        # (rows, columns, both diagonals via a skewed copy), both ways, with cumulative edge costs
        # and running minima; sweeps repeat until nothing changes (one per turn of the longest
        # shortest path, so a handful)
        lines = [_Lines(cost, kind) for kind in ("row", "col", "diag", "anti")]
        for _ in range(4 * n):
            before = dist.copy()
            for ln in lines:
                dist = ln.relax(dist)
            with np.errstate(invalid="ignore"):  # inf - inf where still unreached
                if not np.nanmax(before - dist, initial=0.0) > 1e-6:  # converged (up to rounding)
                    break
        return dist

    def distance(self, xy: np.ndarray, goal: np.ndarray, stamp_s: float) -> np.ndarray:
        """Cost-to-go (m) from points ``xy`` (..., 2) to ``goal`` (2,): the field where it is
        known and finite, else the straight-line distance."""
        xy = np.asarray(xy, dtype=np.float64)
        goal = np.asarray(goal, dtype=np.float64).reshape(2)
        euclid = np.linalg.norm(xy - goal, axis=-1)
        if self.origin is None:
            return euclid
        moved = self._field_goal is None or float(np.hypot(*(goal - self._field_goal))) > 0.5 * self.resolution_m
        due = stamp_s - self._field_stamp >= self.min_interval_s or stamp_s < self._field_stamp
        if self._field is None or moved or (self._dirty and due):
            t0 = time.perf_counter()
            self._field, self._field_goal, self._field_stamp = self._wavefront(goal), goal.copy(), stamp_s
            self._dirty = False
            self.recomputes += 1
            self.last_recompute_s = time.perf_counter() - t0
        # bilinear between cell centres, so that plans ending in one cell still rank
        u = (xy - self.origin) / self.resolution_m - 0.5
        i0 = np.clip(np.floor(u).astype(np.int64), 0, self.n - 2)
        f = np.clip(u - i0, 0.0, 1.0)
        x0, y0, fx, fy = i0[..., 0], i0[..., 1], f[..., 0], f[..., 1]
        fld = self._field
        val = ((1 - fy) * ((1 - fx) * fld[y0, x0] + fx * fld[y0, x0 + 1])
               + fy * ((1 - fx) * fld[y0 + 1, x0] + fx * fld[y0 + 1, x0 + 1]))
        inside = np.all((u >= -0.5) & (u <= self.n - 0.5), axis=-1)
        use = inside & np.isfinite(val)
        out = euclid.copy()
        out[use] = val[use]
        return out


@functools.lru_cache(maxsize=16)
def _line_layout(n: int, kind: str) -> tuple[tuple[int, int], np.ndarray, np.ndarray, float]:
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


class _Lines:
    """One family of grid lines (rows, columns, diagonals or anti-diagonals) laid out as the
    rows of a (possibly skewed) array, with cumulative edge costs along them, for exact
    two-way propagation of a distance field along every line at once."""

    def __init__(self, cost: np.ndarray, kind: str) -> None:
        self.shape, self.flat, inside, step = _line_layout(cost.shape[0], kind)
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


def _grow(mask: np.ndarray, k: int) -> np.ndarray:
    """``mask`` dilated by a disc of ``k`` cells."""
    out = mask.copy()
    for dy in range(-k, k + 1):
        for dx in range(-k, k + 1):
            if (dx or dy) and dx * dx + dy * dy <= k * k:
                out |= _shift(mask, dy, dx, False)
    return out


def _shift(a: np.ndarray, dy: int, dx: int, fill) -> np.ndarray:
    """``a`` moved so that out[y, x] = a[y + dy, x + dx] (``fill`` beyond the edge)."""
    out = np.full_like(a, fill)
    n0, n1 = a.shape
    ys, yd = (slice(dy, n0), slice(0, n0 - dy)) if dy >= 0 else (slice(0, n0 + dy), slice(-dy, n0))
    xs, xd = (slice(dx, n1), slice(0, n1 - dx)) if dx >= 0 else (slice(0, n1 + dx), slice(-dx, n1))
    out[yd, xd] = a[ys, xs]
    return out
