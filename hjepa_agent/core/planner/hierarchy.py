"""The two-level planner: a slow level that routes by subgoals, a fast level that drives to them.

* **Slow level** (:class:`~hjepa_agent.core.planner.subgoals.SubgoalPlanner`): every
  ``route_period_s`` (and when the goal moves) it samples routes of subgoals over the whole way
  to the goal from the navfield's traversal costs, built coarse-to-fine by a GFlowNet with a
  learned backward policy, and keeps the best (or the route in use, if that still scores at
  least as well). In OPTIMISING (``budget.refine``) it also refines its best samples by
  back-and-forth moves through P_B for ``route_refine_ms``.
* **Fast level** (any planner of the interface: the GFlowNet, CEM or MPPI): plans towards the
  route's first subgoal, seeded with the slow plan's first segment (driving to that subgoal
  along the navfield's cost-to-go, see :func:`segment_seed`). A subgoal is passed, and the next one becomes the
  fast goal, once the robot is within ``reach_m`` of it or beyond it in the direction it came from (the
  route's start, or the subgoal before).
  One the robot gets no closer to (by ``stall_m`` in ``stall_s``) is dropped and a new route is
  made without the old one as a candidate: a subgoal the fast level cannot reach must not hold
  the robot.
  On a route without subgoals (the straight line is best, or no route is under the cost clip) the
  seed is the segment to the goal itself, unless the habitual proposal is given. Without a route
  (goal nearer than subgoals.MIN_DISTANCE_M, or before the first scan) the fast level plans to the
  goal with the seed it was given (the habitual proposal).

The plan is the fast level's, with the route in ``extras`` (subgoals, the slow level's log R,
log Z, where the route came from, whether its samples went both ways round).
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

import numpy as np

from hjepa_agent.core.planner.base import Budget
from hjepa_agent.core.planner.subgoals import MIN_DISTANCE_M, SubgoalPlanner, SubgoalRoute, route_frame, route_raster
from hjepa_agent.core.types import Plan, WorldState


ROUTE_MARGIN_M = 0.0
"""The slow level reads the navfield's traversal costs without the half-cell margin the cost-to-go
keeps (NavField.traversal): with it, a 0.8-m gap between two obstacles is blocked on a 0.2-m grid
sampled into the route raster, and every route past it looks as bad as going through the obstacle."""


def route_condition(space, nav, pose_xy: np.ndarray, goal: np.ndarray) -> tuple[np.ndarray, float]:
    """The slow level's condition from a navfield: its traversal costs (ROUTE_MARGIN_M) sampled into
    the route raster from ``pose_xy`` to ``goal``, and the distance (what runs and what trains)."""
    return route_raster(space, nav.traversal(ROUTE_MARGIN_M), nav.origin, nav.resolution_m, pose_xy, goal)


def segment_seed(pose: np.ndarray, target: np.ndarray, steps: int, dt_s: float, max_linear_mps: float,
                 max_angular_rps: float, gain: float = 2.0, to_go=None, lookahead_m: float = 0.4,
                 directions: int = 16) -> np.ndarray:
    """(steps, 2) actions that drive to ``target``, stopping there (unicycle roll-out of its own):
    turn towards an aim point and drive (v scaled by the cosine of the heading error, 0 when the
    aim is behind). The aim is the target itself, or, with ``to_go`` (points (K, 2) -> metres still
    to go to the target, e.g. the navfield's cost-to-go), the point ``lookahead_m`` away, out of
    ``directions``, with the least to go: the segment then follows the field round what is in the
    way (through the gap the straight line would miss) instead of heading straight at the target."""
    x, y, yaw = (float(a) for a in pose)
    out = np.zeros((steps, 2), np.float32)
    ring = lookahead_m * np.stack([np.cos(np.arange(directions) * 2 * np.pi / directions),
                                   np.sin(np.arange(directions) * 2 * np.pi / directions)], axis=1)
    for i in range(steps):
        dx, dy = float(target[0]) - x, float(target[1]) - y
        dist = float(np.hypot(dx, dy))
        if dist < 0.05:
            break
        if to_go is not None and dist > lookahead_m:
            pts = np.array([x, y]) + ring
            ax, ay = pts[int(np.argmin(np.asarray(to_go(pts))))]
            dx, dy = ax - x, ay - y
        err = (np.arctan2(dy, dx) - yaw + np.pi) % (2 * np.pi) - np.pi
        w = float(np.clip(gain * err, -max_angular_rps, max_angular_rps))
        v = float(min(max_linear_mps * max(0.0, np.cos(err)) ** 2, dist / dt_s))
        out[i] = (v, w)
        yaw += w * dt_s
        x += v * np.cos(yaw - 0.5 * w * dt_s) * dt_s
        y += v * np.sin(yaw - 0.5 * w * dt_s) * dt_s
    return out


def passed(pose_xy: np.ndarray, subgoal: np.ndarray, came_from: np.ndarray, reach_m: float) -> bool:
    """Whether the robot at ``pose_xy`` has passed ``subgoal``, which it set out to from ``came_from``:
    within ``reach_m`` of it, or beyond it in the direction from ``came_from`` to it."""
    p, sg, f = (np.asarray(a, np.float64)[:2] for a in (pose_xy, subgoal, came_from))
    return bool(np.hypot(*(sg - p)) < reach_m or np.dot(p - sg, sg - f) > 0.0)


@dataclass
class HierarchicalPlanner:
    """Slow subgoal level over a fast planner (module doc); the Planner interface."""

    fast: object
    slow: SubgoalPlanner
    max_linear_mps: float
    max_angular_rps: float
    route_period_s: float = 0.5
    reach_m: float = 0.5
    route_refine_ms: float = 5.0
    fast_reserve_ms: float = 5.0
    """In OPTIMISING, the slow level refines only with what is left of the deadline after this (the
    fast level's planning pass) and the navfield's latest recompute (a new subgoal costs another)."""
    switch_margin_m: float = 0.2
    """A new route replaces the one in use only if it costs this much less (fewer subgoal changes:
    each one costs the fast level a cost-to-go recompute and the robot a change of heading)."""
    stall_s: float = 3.0
    stall_m: float = 0.1
    stalls: int = 0
    """Subgoals dropped because the robot got no closer to them."""
    name: str = ""
    route: SubgoalRoute | None = None
    route_both_sides: bool | None = None
    """Whether the latest slow-level samples went round on both sides (None: no route made)."""
    _subgoals: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.float32))
    _progress: tuple[np.ndarray, float, float] | None = None   # (subgoal, closest distance, when)
    _from: np.ndarray = field(default_factory=lambda: np.zeros(2))  # where the robot set out to the next subgoal

    def __post_init__(self) -> None:
        self.name = self.name or f"{self.fast.name}+subgoals"

    @property
    def navfield(self):
        return getattr(self.fast, "navfield", None)

    @property
    def last_samples(self):
        return getattr(self.fast, "last_samples", None)

    @property
    def calls_per_iteration(self) -> int:
        return self.fast.calls_per_iteration

    def _fast_steps(self) -> tuple[int, float]:
        """Actions per fast plan and their duration."""
        cfg = getattr(self.fast, "cfg", None)
        if cfg is not None:
            return cfg.horizon, cfg.dt_s
        from hjepa_agent.core.planner.gflownet import DT_S
        return self.fast.horizon * self.fast.repeat, DT_S

    def reset(self) -> None:
        self.fast.reset()
        self.route, self.route_both_sides = None, None
        self._subgoals = np.zeros((0, 2), np.float32)
        self._progress = None

    def observe(self, pose, angles, ranges, range_min: float = 0.0, range_max: float = float("inf")) -> None:
        self.fast.observe(pose, angles, ranges, range_min, range_max)

    def _update_route(self, ws: WorldState, goal: np.ndarray, budget: Budget) -> None:
        nav = self.navfield
        pose = np.asarray(ws.pose, np.float64)
        d = float(np.hypot(*(goal - pose[:2])))
        if nav is None or nav.origin is None or d < MIN_DISTANCE_M:
            self.route, self._subgoals = None, np.zeros((0, 2), np.float32)
            return
        due = (self.route is None or not (0.0 <= ws.stamp_s - self.route.stamp_s < self.route_period_s)
               or float(np.hypot(*(goal - self.route.goal))) > 0.1)
        if due:
            raster, d = route_condition(self.slow.space, nav, pose[:2], goal)
            origin, rot, _ = route_frame(pose[:2], goal)
            until = None
            if budget.refine:
                spare = budget.remaining_s() - self.fast_reserve_ms * 1e-3 - nav.last_recompute_s
                if spare > 1e-3:
                    until = time.monotonic() + min(self.route_refine_ms * 1e-3, 0.5 * spare)
            self.route = self.slow.route(raster, d, origin, rot, goal, ws.stamp_s,
                                         previous=self._subgoals if len(self._subgoals) else None,
                                         refine_until_s=until, previous_margin=self.switch_margin_m)
            self.route_both_sides = self.route.both_sides
            self._subgoals = self.route.subgoals
            self._from = pose[:2].copy()
        # pass the subgoals reached, or gone beyond in the direction the robot came to them from (the
        # route's start, then each passed subgoal): a subgoal behind the robot, on the way out of a pocket,
        # is passed when the robot is past it going away from where it set out, not at once
        while len(self._subgoals) and passed(pose[:2], self._subgoals[0], self._from, self.reach_m):
            self._from, self._subgoals = self._subgoals[0].astype(np.float64), self._subgoals[1:]
        # a subgoal the robot gets no closer to is dropped, and the route made again without it
        if len(self._subgoals):
            sg = self._subgoals[0]
            dist = float(np.hypot(*(sg - pose[:2])))
            p = self._progress
            moved = p is None or float(np.hypot(*(p[0] - sg))) > 0.3     # another subgoal, not a re-placed one
            if moved or dist < p[1] - self.stall_m or ws.stamp_s < p[2]:
                self._progress = (sg.copy(), dist, ws.stamp_s)
            elif ws.stamp_s - p[2] > self.stall_s:
                self.stalls += 1
                self._subgoals, self.route, self._progress = np.zeros((0, 2), np.float32), None, None
                self._update_route(ws, goal, budget)

    def plan(self, ws: WorldState, goal: np.ndarray, budget: Budget, seed: np.ndarray | None = None,
             obstacles: np.ndarray | None = None) -> Plan:
        goal = np.asarray(goal, np.float32)
        self._update_route(ws, goal, budget)
        target = self._subgoals[0].astype(np.float32) if len(self._subgoals) else goal
        nav = self.navfield
        if len(self._subgoals) or (self.route is not None and seed is None):
            # the slow plan's first segment: to the first subgoal, or, on a route with none (straight, or
            # none under the cost clip), to the goal; along the navfield in either case
            steps, dt = self._fast_steps()
            seed = segment_seed(ws.pose, target, steps, dt, self.max_linear_mps, self.max_angular_rps,
                                to_go=(lambda xy: nav.distance(xy, target, ws.stamp_s)) if nav is not None else None)
        plan = self.fast.plan(ws, target, budget, seed=seed, obstacles=obstacles)
        r = self.route
        route = ({} if r is None else
                 {"subgoals": self._subgoals.tolist(), "route_log_r": r.log_reward, "route_log_z": r.log_z,
                  "route_source": r.source, "route_both_sides": r.both_sides,
                  **({"route_refine": dict(self.slow.last_refine)} if budget.refine else {})})
        return dataclasses.replace(plan, planner=self.name, extras={**plan.extras, **route})


__all__ = ["HierarchicalPlanner", "ROUTE_MARGIN_M", "passed", "route_condition", "segment_seed"]
