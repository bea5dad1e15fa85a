"""The slow level of the two-level planner: a GFlowNet that builds a route of subgoals
coarse-to-fine, by inserting subgoals between the ones it has (start and goal first).

The route space, its frame, moves and reward are gfn/routes.py's SubgoalSpace; the sampler and
the optimisation mode's back-and-forth refiner (through the learned P_B) are the ones the fast
level uses too (core/planner/gfn). Here: the condition raster sampled from the navfield in the
route frame (:func:`route_raster`), the sampler's exact distribution over every route
(:func:`exact_terminal_distribution`), and the runtime route (:class:`SubgoalPlanner`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hjepa_agent.core.planner import gfn
from hjepa_agent.core.planner.gfn.routes import BLOCKED_FACTOR, SubgoalSpace
from hjepa_agent.core.planner.gfn.space import forward_log_probs, policy_logits

MIN_DISTANCE_M = 1.5
"""Below this robot-goal distance the slow level makes no route (the fast level's horizon
covers it)."""


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


def exact_terminal_distribution(space: SubgoalSpace, policy, cond: np.ndarray) -> np.ndarray:
    """The probability P_F puts on every route of :meth:`SubgoalSpace.all_states` (summed over
    every insertion order), by forward flow over the state graph, layer by number of subgoals.
    ``policy(x (N, state_dim + cond_dim)) -> (N, n_actions + n_cols)``: P_F logits, then P_B's."""
    states = space.all_states()
    logits = policy_logits(space, policy, states, np.asarray(cond, np.float32))
    p_f = np.exp(forward_log_probs(space, logits, states))
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

    def sample(self, cond: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """n routes (N, n_cols) from P_F (gfn.sample) and the log P_F of the path taken (N,)."""
        traj = gfn.sample(self.space, self.policy, cond, n, self._rng)
        return traj.states, traj.log_pf.sum(axis=1)

    def route(self, raster: np.ndarray, d: float, origin: np.ndarray, rot: np.ndarray, goal: np.ndarray,
              stamp_s: float, previous: np.ndarray | None = None, refine_until_s: float | None = None,
              previous_margin: float = 0.0) -> SubgoalRoute:
        """The best route for this raster (module doc). ``previous``: odom-frame subgoals (k, 2) of
        the route in use, scored again as a candidate and kept unless another costs
        ``previous_margin`` (m) less. ``refine_until_s``: also refine the best ``chains`` samples by
        back-and-forth moves through P_B (gfn.refine, ``explore`` as there) until then (time.monotonic())."""
        sp = self.space
        cond = sp.features(raster, d)
        traj = gfn.sample(sp, self.policy, cond, self.samples, self._rng, self.log_z)
        cols = traj.states
        lr = sp.log_reward(cols, raster, d)
        keep = lr > -sp.beta * sp.cost_clip + 1e-6
        self.last_samples, self.last_cols, self.last_condition = sp.waypoints(cols[keep], d), cols[keep], (raster, d)
        source = ["policy"] * len(cols)
        if refine_until_s is not None:
            top = np.argsort(-lr)[:self.chains]
            best = gfn.refine(sp, self.policy, cond, cols[top], lr[top],
                              lambda c, k, extra: (sp.log_reward(c, raster, d), None), self._rng,
                              gfn.DeadlinePace(refine_until_s), self.explore)
            self.last_refine = best.stats
            cols, lr = np.concatenate([cols, best.states]), np.r_[lr, best.log_r]
            source += ["refined"] * len(best.states)
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
        sides = route_side(sp, self.last_cols)
        both = bool(np.any(sides > 0) and np.any(sides < 0))
        return SubgoalRoute(np.asarray(best_xy, np.float32).reshape(-1, 2), np.asarray(goal, np.float32), best_lr,
                            traj.log_z, -best_lr / sp.beta, best_src, stamp_s, both)


__all__ = ["MIN_DISTANCE_M", "SubgoalPlanner", "SubgoalRoute", "exact_terminal_distribution", "route_frame",
           "route_raster", "route_side", "two_ways_exist"]
