"""The slow level of the two-level planner: a GFlowNet that builds a route of subgoals
coarse-to-fine, by inserting subgoals between the ones it has (start and goal first).

**Frame.** Everything is in the *route frame*: origin at the robot, x along the straight line
to the goal (``d`` metres long), y to its left. Subgoal candidates sit on ``n_cols`` columns
across that line (at ``fractions`` of d) and ``laterals`` (m) along each column. A route is at
most one subgoal per column; it visits them in column order, so the route start -> subgoals ->
goal is a polyline. The first column is behind the robot (fraction -0.3): a route can go back
along the line and round, out of a pocket whose mouth faces the goal's way (a U-shaped dead end
the robot drove into); otherwise it is a slow level for "which way round", not for mazes: the
fast level and its navfield handle what is local.

**Objects and moves.** A state is the set of filled columns, ``cols`` (n_cols,) with -1 for
empty and the lateral index otherwise. A forward action inserts one candidate into an empty
column (between the two waypoints around it) or stops; so a route of k subgoals can be built
in k! orders and its parents are the k routes with one subgoal taken out. The **backward
policy P_B** (which subgoal to take out) is therefore a real distribution over k choices, and
it is learned with P_F and log Z by trajectory balance (``hjepa-agent train subgoals``); the
optimisation mode uses it (:meth:`SubgoalPlanner.mh_round`). With 4 columns and 13 laterals
there are 14^4 = 38416 routes: few enough to compute the sampler's exact distribution over
them (:func:`exact_terminal_distribution`), which the trainer reports on held-out conditions.

**Reward.** The condition is a *raster* of the navfield's traversal cost factor (1 in free
space, rising near obstacles, ``blocked`` inside the footprint's reach; unknown = free)
sampled in the route frame (:func:`route_raster`). A route's cost is the integral of that
factor along its polyline, minus d (so a free straight line costs 0), plus ``w_subgoal`` per
subgoal, plus ``w_at`` times the factor above 1 at each subgoal (the fast level stops there);
log R = -beta * min(cost, clip) (:meth:`SubgoalSpace.log_reward`). The same function
trains and runs, and it needs only the raster: a route is scored without the simulator.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

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
MIN_DISTANCE_M = 1.5
"""Below this robot-goal distance the slow level makes no route (the fast level's horizon
covers it)."""


@dataclass(frozen=True)
class SubgoalSpace:
    """The route space of the module doc and its reward; sizes follow the tuples."""

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


def route_frame(pose_xy: np.ndarray, goal: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(origin (2,), rotation (2, 2) whose columns are the frame's x and y axes, d)."""
    p = np.asarray(pose_xy, np.float64)[:2]
    g = np.asarray(goal, np.float64)[:2]
    d = float(np.hypot(*(g - p)))
    u = (g - p) / max(d, 1e-9)
    return p, np.array([[u[0], -u[1]], [u[1], u[0]]]), d


def route_raster(space: SubgoalSpace, traversal: np.ndarray | None, origin: np.ndarray | None,
                 resolution_m: float, pose_xy: np.ndarray, goal: np.ndarray) -> tuple[np.ndarray, float]:
    """The condition raster (len(raster_along), len(raster_lateral)) of cost factors, sampled at
    the nearest navfield cell (``traversal`` (n, n), rows = y, with its ``origin``), 1 off the grid
    or without one, at most BLOCKED_FACTOR (the networks' scale, whatever the navfield's own); and d."""
    p, rot, d = route_frame(pose_xy, goal)
    a = np.asarray(space.raster_along) * d
    lat = np.asarray(space.raster_lateral)
    local = np.stack(np.meshgrid(a, lat, indexing="ij"), axis=-1)          # (A, L, 2) route frame
    xy = p + local @ rot.T
    out = np.ones(local.shape[:2])
    if traversal is None or origin is None:
        return out, d
    n = traversal.shape[0]
    ij = np.floor((xy - np.asarray(origin)) / resolution_m).astype(np.int64)
    inside = np.all((ij >= 0) & (ij < n), axis=-1)
    out[inside] = np.minimum(traversal[ij[inside][:, 1], ij[inside][:, 0]], BLOCKED_FACTOR)
    return out, d


SIDE_MARGIN_M = 0.3
"""A route goes round on a side when its subgoal furthest off the line is this far off it."""


def route_side(space: SubgoalSpace, cols: np.ndarray) -> np.ndarray:
    """(N,) +1 (left of the robot-goal line), -1 (right) or 0 (straight): the side of each route's
    subgoal furthest off the line, if that is more than SIDE_MARGIN_M off it."""
    cols = np.asarray(cols).reshape(-1, space.n_cols)
    lat = np.where(cols >= 0, np.asarray(space.laterals)[np.maximum(cols, 0)], 0.0)
    far = lat[np.arange(len(lat)), np.argmax(np.abs(lat), axis=1)] if len(lat) else np.zeros(0)
    return np.where(np.abs(far) > SIDE_MARGIN_M, np.sign(far), 0.0).astype(np.int64)


def two_ways_exist(space: SubgoalSpace, raster: np.ndarray, d: float, margin_m: float = 1.0) -> bool:
    """Whether the best route on each side of the line costs at most ``margin_m`` more than the best
    route of all (and less than the clip): two distinct routes worth sampling (enumerates every route)."""
    states = space.all_states()
    cost = np.minimum(space.all_costs(raster, d), space.cost_clip)
    side = route_side(space, states)
    best = cost.min()
    ok = [cost[side == s].min() <= min(best + margin_m, space.cost_clip - 1e-6) for s in (-1, 1)]
    return bool(all(ok))


def _log_softmax_masked(logits: np.ndarray, mask: np.ndarray) -> np.ndarray:
    z = np.where(mask, np.asarray(logits, np.float64), -np.inf)
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def exact_terminal_distribution(space: SubgoalSpace, policy, cond: np.ndarray) -> np.ndarray:
    """The probability P_F puts on every route of :meth:`SubgoalSpace.all_states` (summed over
    every insertion order), by forward flow over the state graph, layer by number of subgoals.
    ``policy(x (N, state_dim + cond_dim)) -> (N, n_actions + n_cols)``: P_F logits, then P_B's."""
    states = space.all_states()
    c = np.broadcast_to(np.asarray(cond, np.float32)[None], (len(states), space.cond_dim))
    out = np.asarray(policy(np.concatenate([space.encode(states), c], axis=1)))[:, :space.n_actions]
    logp = _log_softmax_masked(out, space.forward_mask(states))
    p_f = np.exp(logp)
    reach = np.zeros(len(states))
    reach[space.index(np.full((1, space.n_cols), -1))] = 1.0
    filled = (states >= 0).sum(axis=1)
    for k in range(space.n_cols):
        for s in np.nonzero(filled == k)[0]:
            if reach[s] == 0.0:
                continue
            ok = np.nonzero(space.forward_mask(states[s:s + 1])[0, :space.stop])[0]
            nxt = space.index(space.apply(np.repeat(states[s:s + 1], len(ok), 0), ok))
            np.add.at(reach, nxt, reach[s] * p_f[s, ok])
    return reach * p_f[:, space.stop]


@dataclass
class SubgoalRoute:
    """The slow level's chosen route, in the odom frame."""

    subgoals: np.ndarray          # (k, 2) in visiting order
    goal: np.ndarray              # (2,)
    log_reward: float
    log_z: float
    cost_m: float
    source: str                   # "policy", "refined", "previous" or "straight"
    stamp_s: float
    both_sides: bool = False      # the samples' routes pass the line on both sides


@dataclass
class SubgoalPlanner:
    """The slow level at run time (ONNX Runtime): ``policy(x) -> (N, n_actions + n_cols)`` (P_F
    logits, then P_B logits) and ``log_z(cond (N, cond_dim)) -> (N, 1)``, both exported by
    ``hjepa-agent train subgoals``. :meth:`route` samples ``samples`` routes in at most n_cols+1
    batched passes and keeps the best by log R, against the straight line and the previous
    route (still scored on the new raster)."""

    policy: object
    log_z: object
    space: SubgoalSpace = field(default_factory=SubgoalSpace)
    samples: int = 32
    chains: int = 8
    explore: float = 0.2
    seed: int = 0
    last_samples: np.ndarray | None = None
    """Route-frame waypoints (N, n_cols+2, 2) of the latest samples whose cost is below clip."""
    last_cols: np.ndarray | None = None
    """The latest samples (N, n_cols) whose cost is below clip."""
    last_condition: tuple[np.ndarray, float] | None = None
    """(raster, d) of the latest route."""
    last_refine: dict = field(default_factory=dict)
    _rng: np.random.Generator | None = None

    def __post_init__(self) -> None:
        self._rng = np.random.default_rng(self.seed)

    def _outputs(self, cols: np.ndarray, cond: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Masked log P_F (N, n_actions) and log P_B (N, n_cols) at states ``cols``."""
        c = np.broadcast_to(cond[None], (len(cols), len(cond)))
        out = np.asarray(self.policy(np.concatenate([self.space.encode(cols), c], axis=1)), np.float64)
        sp = self.space
        return (_log_softmax_masked(out[:, :sp.n_actions], sp.forward_mask(cols)),
                _log_softmax_masked(out[:, sp.n_actions:], np.where(sp.backward_mask(cols).any(axis=1, keepdims=True),
                                                                    sp.backward_mask(cols), True)))

    def _draw(self, logp: np.ndarray) -> np.ndarray:
        u = self._rng.random((logp.shape[0], 1))
        return np.minimum((np.cumsum(np.exp(logp), axis=1) < u).sum(axis=1), logp.shape[1] - 1)

    def sample(self, cond: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """n routes (N, n_cols) from P_F and their log P_F of the path taken."""
        sp = self.space
        cols = np.full((n, sp.n_cols), -1, np.int64)
        logp = np.zeros(n)
        live = np.ones(n, bool)
        for _ in range(sp.n_cols + 1):
            if not live.any():
                break
            rows = np.nonzero(live)[0]
            lp, _ = self._outputs(cols[rows], cond)
            a = self._draw(lp)
            logp[rows] += lp[np.arange(len(rows)), a]
            cols[rows] = sp.apply(cols[rows], a)
            live[rows[a == sp.stop]] = False
        return cols, logp

    def mh_round(self, cond: np.ndarray, cols: np.ndarray, log_r: np.ndarray, k: int,
                 score) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One back-and-forth move of ``k`` subgoals on every chain that has at least k.

        Back: take out k subgoals one at a time with the learned P_B. Forth: insert k with
        q = (1 - explore) P_F' + explore uniform, P_F' being P_F over insertions only (the
        stop is forced after k, so the move keeps the number of subgoals and its reverse is a
        move of the same kind). Accepted with the Metropolis-Hastings ratio

            R(x') P_B(x' -> s) q(s -> x) / (R(x) P_B(x -> s) q(s -> x'))

        along the two paths (the reverse move takes out what was inserted, last first, and
        inserts what was taken out); a test checks the moves keep R restricted to each number of
        subgoals invariant. ``score(cols) -> log R``. Returns the chains, their log R, accepted."""
        sp = self.space
        m = len(cols)
        able = (cols >= 0).sum(axis=1) >= k
        if k < 1 or not able.any():
            return cols, log_r, np.zeros(m, bool)
        x = cols[able]
        n = len(x)
        s = x.copy()
        lpb_fwd = np.zeros(n)       # log P_B(x -> s)
        removed = []
        for _ in range(k):
            _, lb = self._outputs(s, cond)
            j = self._draw(lb)
            lpb_fwd += lb[np.arange(n), j]
            removed.append((j, s[np.arange(n), j].copy()))
            s[np.arange(n), j] = -1

        def q_insert(states: np.ndarray) -> np.ndarray:
            lp, _ = self._outputs(states, cond)
            mask = sp.forward_mask(states)
            mask[:, sp.stop] = False
            lp = _log_softmax_masked(np.where(mask, lp, -np.inf), mask)
            if self.explore > 0.0:
                uni = np.where(mask, -np.log(mask.sum(axis=1, keepdims=True)), -np.inf)
                lp = np.logaddexp(np.log1p(-self.explore) + lp, math.log(self.explore) + uni)
            return lp

        # forth: insert k subgoals into s
        y = s.copy()
        lq_new = np.zeros(n)
        inserted = []
        for _ in range(k):
            lq = q_insert(y)
            a = self._draw(lq)
            lq_new += lq[np.arange(n), a]
            inserted.append(a // sp.n_lat)
            y = sp.apply(y, a)
        # reverse path: from y take out the inserted ones, last first (P_B); from s insert the removed
        # ones in the reverse order of their removal (q)
        lpb_rev = np.zeros(n)
        z = y.copy()
        for col in reversed(inserted):
            _, lb = self._outputs(z, cond)
            lpb_rev += lb[np.arange(n), col]
            z[np.arange(n), col] = -1
        lq_old = np.zeros(n)
        w = s.copy()
        for col, lat in reversed(removed):
            lq = q_insert(w)
            a = col * sp.n_lat + lat
            lq_old += lq[np.arange(n), a]
            w = sp.apply(w, a)
        new_lr = score(y)
        log_a = (new_lr - log_r[able]) + (lpb_rev + lq_old) - (lpb_fwd + lq_new)
        acc_sub = np.log(self._rng.random(n) + 1e-300) < log_a
        out, out_lr = cols.copy(), np.array(log_r, np.float64, copy=True)
        rows = np.nonzero(able)[0][acc_sub]
        out[rows], out_lr[rows] = y[acc_sub], new_lr[acc_sub]
        acc = np.zeros(m, bool)
        acc[rows] = True
        return out, out_lr, acc

    def refine(self, cond: np.ndarray, cols: np.ndarray, log_r: np.ndarray, score,
               deadline_s: float) -> tuple[np.ndarray, np.ndarray]:
        """Optimisation mode: back-and-forth moves (K from n_cols down, halving, then again) until
        ``deadline_s`` (time.monotonic()); returns the best route seen per chain and its log R."""
        best, best_lr = cols.copy(), np.array(log_r, np.float64, copy=True)
        k, rounds, accepted, per_round = self.space.n_cols, 0, 0, None
        while per_round is None or time.monotonic() + per_round < deadline_s:
            t0 = time.monotonic()
            cols, log_r, acc = self.mh_round(cond, cols, log_r, k, score)
            better = log_r > best_lr
            best[better], best_lr[better] = cols[better], log_r[better]
            rounds += 1
            accepted += int(acc.sum())
            per_round = max(time.monotonic() - t0, 1e-5)
            k = self.space.n_cols if k == 1 else math.ceil(k / 2)
        self.last_refine = {"rounds": rounds, "accepted": accepted}
        return best, best_lr

    def route(self, raster: np.ndarray, d: float, origin: np.ndarray, rot: np.ndarray, goal: np.ndarray,
              stamp_s: float, previous: np.ndarray | None = None, refine_until_s: float | None = None,
              previous_margin: float = 0.0) -> SubgoalRoute:
        """The best route for this raster (module doc). ``previous``: odom-frame subgoals (k, 2) of
        the route in use, scored again as a candidate and kept unless another costs
        ``previous_margin`` (m) less. ``refine_until_s``: also run :meth:`refine` on the best
        ``chains`` samples until then (time.monotonic())."""
        sp = self.space
        cond = sp.features(raster, d)
        cols, _ = self.sample(cond, self.samples)
        lr = sp.log_reward(cols, raster, d)
        keep = lr > -sp.beta * sp.cost_clip + 1e-6
        self.last_samples, self.last_cols, self.last_condition = sp.waypoints(cols[keep], d), cols[keep], (raster, d)
        source = ["policy"] * len(cols)
        if refine_until_s is not None:
            top = np.argsort(-lr)[:self.chains]
            r_cols, r_lr = self.refine(cond, cols[top], lr[top], lambda c: sp.log_reward(c, raster, d), refine_until_s)
            cols, lr = np.concatenate([cols, r_cols]), np.r_[lr, r_lr]
            source += ["refined"] * len(r_cols)
        straight = np.full((1, sp.n_cols), -1)
        cols, lr = np.concatenate([cols, straight]), np.r_[lr, sp.log_reward(straight, raster, d)]
        source.append("straight")
        i = int(np.argmax(lr))
        pts = sp.waypoints(cols[i:i + 1], d)[0]
        sub = np.unique(pts[1:-1], axis=0, return_index=True)[1]
        sub_pts = pts[1:-1][np.sort(sub)]
        sub_pts = sub_pts[np.hypot(sub_pts[:, 0], sub_pts[:, 1]) > 1e-9]
        best_lr, best_src, best_xy = float(lr[i]), source[i], origin + sub_pts @ rot.T
        if previous is not None and len(previous):
            rel = (np.asarray(previous) - origin) @ rot                  # route frame
            rel = rel[(rel[:, 0] > 0.0) & (rel[:, 0] < d)]
            if len(rel):
                poly = np.concatenate([[[0.0, 0.0]], rel, [[d, 0.0]]])[None]
                prev_lr = -sp.beta * min(float(sp.polyline_cost(poly, np.ones((1, len(rel)), bool), raster, d)[0]),
                                         sp.cost_clip)
                if prev_lr >= best_lr - sp.beta * previous_margin:
                    best_lr, best_src, best_xy = prev_lr, "previous", origin + rel @ rot.T
        if best_lr <= -sp.beta * sp.cost_clip + 1e-9:
            # no route under the clip: every way looks as bad, so no subgoal (the fast level and its
            # navfield go for the goal), rather than one picked among ties
            best_src, best_xy = "none under the clip", np.zeros((0, 2))
        log_z = float(np.asarray(self.log_z(cond[None])).reshape(-1)[0])
        sides = route_side(sp, self.last_cols)
        both = bool(np.any(sides > 0) and np.any(sides < 0))
        return SubgoalRoute(np.asarray(best_xy, np.float32).reshape(-1, 2), np.asarray(goal, np.float32), best_lr,
                            log_z, -best_lr / sp.beta, best_src, stamp_s, both)


__all__ = ["FRACTIONS", "LATERALS", "SubgoalPlanner", "SubgoalRoute", "SubgoalSpace", "exact_terminal_distribution",
           "route_frame", "route_raster", "route_side", "two_ways_exist"]
