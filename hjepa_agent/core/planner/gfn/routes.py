"""The slow level's space (gfn/space.py): routes of subgoals built coarse-to-fine by inserting
subgoals between the ones a route has (start and goal first); its geometry and its reward
(core/planner/subgoals.py plans with it, train/subgoal_gfn.py trains it).

**Frame.** Everything is in the *route frame*: origin at the robot, x along the straight line
to the goal (``d`` metres long), y to its left. Subgoal candidates sit on ``n_cols`` columns
across that line (at ``fractions`` of d) and ``laterals`` (m) along each column. A route is at
most one subgoal per column; it visits them in column order, so the route start -> subgoals ->
goal is a polyline. The first column is behind the robot (fraction -0.3): a route can go back
along the line and round, out of a pocket whose mouth faces the goal's way (a U-shaped dead end
the robot drove into); otherwise it is a slow level for "which way round", not for mazes: the
fast level and its navfield handle what is local.

**Objects and moves.** A state is the set of filled columns, ``cols`` (n_cols,) with -1 for
empty and the lateral index otherwise (the slots of gfn/space.py). A forward action inserts one
candidate into an empty column (between the two waypoints around it) or stops; so a route of k
subgoals can be built in k! orders and its parents are the k routes with one subgoal taken out.
The **backward policy P_B** (which subgoal to take out) is therefore a real distribution over k
choices, learned with P_F and log Z by trajectory balance (``hjepa-agent train subgoals``); the
optimisation mode's back-and-forth moves go through it (gfn/refine.py). With 4 columns and 13
laterals there are 14^4 = 38416 routes: few enough to compute the sampler's exact distribution
over them (subgoals.exact_terminal_distribution), which the trainer reports on held-out conditions.

**Reward.** The condition is a *raster* of the navfield's traversal cost factor (1 in free
space, rising near obstacles, ``blocked`` inside the footprint's reach; unknown = free)
sampled in the route frame (subgoals.route_raster). A route's cost is the integral of that
factor along its polyline, minus d (so a free straight line costs 0), plus ``w_subgoal`` per
subgoal, plus ``w_at`` times the factor above 1 at each subgoal (the fast level stops there);
log R = -beta * min(cost, clip) (:meth:`SubgoalSpace.log_reward`). The same function
trains and runs, and it needs only the raster: a route is scored without the simulator.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

FRACTIONS = (-0.3, 0.25, 0.5, 0.75)
"""Columns of subgoal candidates, as fractions of the robot-goal distance (the first behind the robot)."""
LATERALS = tuple(float(x) for x in np.round(np.linspace(-2.4, 2.4, 13), 3))
"""Candidate offsets (m, left positive) on each column (0.4 m apart)."""
RASTER_ALONG = tuple(float(x) for x in np.round(np.linspace(-0.45, 1.1, 32), 3))
"""Raster rows: fractions of d along the robot-goal line (0.05 d apart)."""
RASTER_LATERAL = tuple(float(x) for x in np.round(np.linspace(-2.8, 2.8, 29), 3))
"""Raster columns: metres to the left of the line (0.2 m apart: a 0.8-m gap stays open)."""
BLOCKED_FACTOR = 10.0
"""The navfield's cost factor inside the footprint's reach; raster features are log(f)/log(this)."""
GOAL_SCALE_M = 6.0
BETA = 2.0
"""log R = -BETA * min(cost, COST_CLIP): a 1-m detour is e^-2 against the straight line."""
COST_CLIP = 8.0
W_SUBGOAL_M = 0.1
"""Cost per subgoal (m): among equally good routes, the one with fewer subgoals."""
W_AT_M = 0.3
"""Cost (m) per unit of cost factor above 1 *at* each subgoal: the fast level stops at a subgoal,
so one on an obstacle's edge (factor BLOCKED_FACTOR: +2.7 m) is dear even where the polyline
only grazes it."""
SEGMENT_SAMPLES = 32
"""Points per polyline segment for the cost integral (midpoint rule)."""
@dataclass(frozen=True)
class SubgoalSpace:
    """The route space of the module doc and its reward; sizes follow the tuples. A gfn/space.py
    Space: the slots are the columns, the policy's output carries P_B logits after P_F's."""

    learned_backward = True
    fractions: tuple[float, ...] = FRACTIONS
    laterals: tuple[float, ...] = LATERALS
    raster_along: tuple[float, ...] = RASTER_ALONG
    raster_lateral: tuple[float, ...] = RASTER_LATERAL
    beta: float = BETA
    cost_clip: float = COST_CLIP
    w_subgoal_m: float = W_SUBGOAL_M
    w_at_m: float = W_AT_M

    @property
    def n_cols(self) -> int:
        return len(self.fractions)

    @property
    def n_lat(self) -> int:
        return len(self.laterals)

    @property
    def n_actions(self) -> int:
        """Insert (column, lateral) for every pair, then stop (the last action)."""
        return self.n_cols * self.n_lat + 1

    @property
    def stop(self) -> int:
        return self.n_cols * self.n_lat

    @property
    def n_slots(self) -> int:
        """One slot per column."""
        return self.n_cols

    @property
    def max_steps(self) -> int:
        """Every column filled, then the stop."""
        return self.n_cols + 1

    @property
    def state_dim(self) -> int:
        return self.n_cols * (self.n_lat + 1)

    @property
    def cond_dim(self) -> int:
        return len(self.raster_along) * len(self.raster_lateral) + 1

    def encode(self, cols: np.ndarray) -> np.ndarray:
        """(N, state_dim) float32: per column a one-hot of (empty, lateral 0..n_lat-1)."""
        cols = np.asarray(cols).reshape(-1, self.n_cols)
        out = np.zeros((cols.shape[0], self.n_cols, self.n_lat + 1), np.float32)
        n = np.arange(cols.shape[0])[:, None]
        out[n, np.arange(self.n_cols)[None, :], cols + 1] = 1.0
        return out.reshape(cols.shape[0], -1)

    def forward_mask(self, cols: np.ndarray) -> np.ndarray:
        """(N, n_actions) bool: inserting into an empty column, or stopping."""
        cols = np.asarray(cols).reshape(-1, self.n_cols)
        ok = np.repeat(cols < 0, self.n_lat, axis=1)
        return np.concatenate([ok, np.ones((cols.shape[0], 1), bool)], axis=1)

    def backward_mask(self, cols: np.ndarray) -> np.ndarray:
        """(N, n_cols) bool: the subgoals that can be taken out."""
        return np.asarray(cols).reshape(-1, self.n_cols) >= 0

    def apply(self, cols: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """States after inserting ``actions`` (stop leaves the state as it is)."""
        out = np.array(cols, copy=True)
        a = np.asarray(actions)
        ins = a != self.stop
        rows = np.nonzero(ins)[0]
        out[rows, a[ins] // self.n_lat] = a[ins] % self.n_lat
        return out

    def slot_of(self, cols: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """(N,) the column each insertion fills."""
        return np.asarray(actions) // self.n_lat

    def action_of(self, slots: np.ndarray, values: np.ndarray) -> np.ndarray:
        """(N,) the insertion of lateral ``values`` into columns ``slots``."""
        return np.asarray(slots) * self.n_lat + np.asarray(values)

    def all_states(self) -> np.ndarray:
        """Every route (n_lat+1)^n_cols x n_cols, in a fixed order (for exact distributions)."""
        grids = np.meshgrid(*[np.arange(-1, self.n_lat)] * self.n_cols, indexing="ij")
        return np.stack([g.ravel() for g in grids], axis=1)

    def index(self, cols: np.ndarray) -> np.ndarray:
        """Position of routes ``cols`` (N, n_cols) in :meth:`all_states`."""
        cols = np.asarray(cols).reshape(-1, self.n_cols) + 1
        return (cols * (self.n_lat + 1) ** np.arange(self.n_cols - 1, -1, -1)[None]).sum(axis=1)

    # ---- geometry and reward ------------------------------------------------------------------------
    def waypoints(self, cols: np.ndarray, d: float) -> np.ndarray:
        """(N, n_cols+2, 2) route-frame points: start, each column's subgoal (an empty column
        repeats the previous point, a zero-length segment), goal."""
        cols = np.asarray(cols).reshape(-1, self.n_cols)
        n = cols.shape[0]
        pts = np.zeros((n, self.n_cols + 2, 2))
        pts[:, -1, 0] = d
        lat = np.asarray(self.laterals)
        for j, f in enumerate(self.fractions):
            filled = cols[:, j] >= 0
            pts[:, j + 1] = pts[:, j]
            pts[filled, j + 1, 0] = f * d
            pts[filled, j + 1, 1] = lat[cols[filled, j]]
        return pts

    def raster_value(self, raster: np.ndarray, pts: np.ndarray, d: float) -> np.ndarray:
        """Cost factor at route-frame points (..., 2), bilinear in the raster (clamped at its edge)."""
        ra, rl = np.asarray(self.raster_along), np.asarray(self.raster_lateral)
        u = np.interp(pts[..., 0] / max(d, 1e-6), ra, np.arange(len(ra)))
        v = np.interp(pts[..., 1], rl, np.arange(len(rl)))
        i0 = np.minimum(np.floor(u).astype(np.int64), len(ra) - 2)
        j0 = np.minimum(np.floor(v).astype(np.int64), len(rl) - 2)
        fu, fv = u - i0, v - j0
        return ((1 - fu) * ((1 - fv) * raster[i0, j0] + fv * raster[i0, j0 + 1])
                + fu * ((1 - fv) * raster[i0 + 1, j0] + fv * raster[i0 + 1, j0 + 1]))

    def cost(self, cols: np.ndarray, raster: np.ndarray, d: float) -> np.ndarray:
        """(N,) route cost (m): factor-weighted polyline length - d, plus per subgoal w_subgoal and
        w_at * (factor at the subgoal - 1)."""
        return self.polyline_cost(self.waypoints(cols, d), np.asarray(cols).reshape(-1, self.n_cols) >= 0, raster, d)

    def polyline_cost(self, pts: np.ndarray, filled: np.ndarray, raster: np.ndarray, d: float) -> np.ndarray:
        """The cost of :meth:`cost` for route-frame polylines ``pts`` (N, k+2, 2) from the start to the
        goal, whose inner points are subgoals where ``filled`` (N, k)."""
        seg = pts[:, 1:] - pts[:, :-1]                               # (N, S, 2)
        length = np.linalg.norm(seg, axis=-1)                        # (N, S)
        t = (np.arange(SEGMENT_SAMPLES) + 0.5) / SEGMENT_SAMPLES
        samples = pts[:, :-1, None, :] + t[None, None, :, None] * seg[:, :, None, :]
        path = (self.raster_value(raster, samples, d).mean(axis=-1) * length).sum(axis=-1)
        at = ((self.raster_value(raster, pts[:, 1:-1], d) - 1.0) * filled).sum(axis=1)
        return path - d + self.w_subgoal_m * filled.sum(axis=1) + self.w_at_m * at

    def all_costs(self, raster: np.ndarray, d: float) -> np.ndarray:
        """:meth:`cost` of every route of :meth:`all_states` (same order), from the cost of each segment
        between two candidate points (start, every column's laterals, goal) computed once: the same
        numbers (to rounding) at a fraction of the work of scoring 14^4 polylines one by one."""
        lat = np.asarray(self.laterals)
        pts = np.concatenate([[[0.0, 0.0]], np.stack(np.meshgrid(np.asarray(self.fractions) * d, lat, indexing="ij"),
                                                     -1).reshape(-1, 2), [[d, 0.0]]])
        a, b = np.meshgrid(np.arange(len(pts)), np.arange(len(pts)), indexing="ij")
        seg = pts[b] - pts[a]
        t = (np.arange(SEGMENT_SAMPLES) + 0.5) / SEGMENT_SAMPLES
        samples = pts[a][..., None, :] + t[None, None, :, None] * seg[..., None, :]
        seg_cost = self.raster_value(raster, samples, d).mean(axis=-1) * np.linalg.norm(seg, axis=-1)
        at = self.raster_value(raster, pts, d) - 1.0
        states = self.all_states()
        prev = np.zeros(len(states), np.int64)
        path = np.zeros(len(states))
        extra = np.zeros(len(states))
        for c in range(self.n_cols):
            filled = states[:, c] >= 0
            idx = 1 + c * self.n_lat + states[filled, c]
            path[filled] += seg_cost[prev[filled], idx]
            extra[filled] += self.w_subgoal_m + self.w_at_m * at[idx]
            prev[filled] = idx
        return path + seg_cost[prev, len(pts) - 1] - d + extra

    def log_reward(self, cols: np.ndarray, raster: np.ndarray, d: float) -> np.ndarray:
        """(N,) log R = -beta * min(cost, clip)."""
        return -self.beta * np.minimum(self.cost(cols, raster, d), self.cost_clip)

    def features(self, raster: np.ndarray, d: float) -> np.ndarray:
        """(cond_dim,) float32 condition: log(factor) / log(BLOCKED_FACTOR) per raster cell, then
        d / GOAL_SCALE_M."""
        f = np.log(np.maximum(raster, 1.0)).ravel() / math.log(BLOCKED_FACTOR)
        return np.r_[f, min(d / GOAL_SCALE_M, 2.0)].astype(np.float32)

    def mirror(self, raster: np.ndarray, cols: np.ndarray | None = None):
        """The condition seen in a mirror (left <-> right); laterals and raster are symmetric."""
        out = raster[:, ::-1].copy()
        if cols is None:
            return out
        c = np.asarray(cols)
        return out, np.where(c >= 0, self.n_lat - 1 - c, -1)


__all__ = ["BETA", "BLOCKED_FACTOR", "COST_CLIP", "FRACTIONS", "GOAL_SCALE_M", "LATERALS", "RASTER_ALONG",
           "RASTER_LATERAL", "SubgoalSpace", "W_AT_M", "W_SUBGOAL_M"]
