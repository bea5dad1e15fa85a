"""One episode driven by a planner alone, in the simulator: what ``hjepa-agent bench planners`` measures
(harness/bench_planners.py) and what the planner trainers roll out (train/planner_gfn.py, subgoal_gfn.py,
teacher.py).

No ROS, no habitual policy, no watchdog: at every decision (``DECISION_DT_S``) the planner gets
the robot's pose and scan (as the planner node does: raw beams for its map and clearance, the
16 sectors in the world state), plans within the node's budget and deadline, and its first
action is held until the next decision (clipped to the ego model's operating velocity limits;
the motors' torque limits do the rest).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from hjepa_agent.config.ego_model import EgoModel
from hjepa_agent.core.perception import beams_in_base
from hjepa_agent.core.planner import Budget, beam_points, build_planner
from hjepa_agent.core.planner.subgoals import two_ways_exist
from hjepa_agent.core.types import WorldState
from hjepa_agent.sim.sensors import true_world_state

DECISION_DT_S = 0.1
"""Seconds between decisions (the camera rate at which the agent decides)."""
SIDE_MARGIN_M = 0.3
"""A sampled plan counts for a side of the robot-goal line only if it ends this far off it."""


@dataclass
class EpisodeStats:
    """One planner-driven episode."""

    scenario: str
    seed: int
    outcome: str = "timeout"
    time_s: float = 0.0
    latency_ms: list[float] = field(default_factory=list)
    calls: list[int] = field(default_factory=list)
    both_sides: list[bool] = field(default_factory=list)
    overrun_ms: list[float] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    route_both_sides: list[bool] = field(default_factory=list)
    """Two-level planner only: per decision with a new route, whether the slow level's sampled routes
    (below the cost clip) went round on both sides (subgoals.route_side)."""
    two_ways: list[bool] = field(default_factory=list)
    """Per decision with a new route: whether two distinct routes exist there (subgoals.two_ways_exist:
    the best route on each side within 1 m of the best)."""


def both_sides(samples: np.ndarray | None, pose: np.ndarray, goal: np.ndarray) -> bool:
    """Whether sampled plans (K, H+1, 3) end on both sides of the line from ``pose`` to ``goal``."""
    if samples is None or len(samples) == 0:
        return False
    d = goal[:2] - pose[:2]
    norm = float(np.hypot(*d))
    if norm < 1e-6:
        return False
    rel = samples[:, -1, :2] - pose[None, :2]
    side = (d[0] * rel[:, 1] - d[1] * rel[:, 0]) / norm
    return bool(np.any(side > SIDE_MARGIN_M) and np.any(side < -SIDE_MARGIN_M))


def sense(world, planner, goal: np.ndarray, stamp_s: float) -> tuple[WorldState, np.ndarray]:
    """What the planner node gets at a decision: the world state (the simulator's pose and speeds,
    the scan's 16 sectors, no latent) and the raw scan's returns as obstacles; the scan is also
    folded into the planner's map (``planner.observe``); both from the base origin, through the laser's
    mount (SimWorld.scan_mount), as the nodes place them."""
    spec = world.robot.scan
    ranges = world.scan()
    ws = true_world_state(world, goal, stamp_s, ranges)
    beams = beams_in_base(ranges, spec.angle_min_rad, spec.angle_increment_rad, spec.range_min_m, spec.range_max_m,
                          world.scan_mount())
    planner.observe(ws.pose, *beams)
    return ws, beam_points(ws.pose, *beams)


def first_command(plan, ego: EgoModel) -> tuple[float, float]:
    """The plan's first (v, w), clipped to the ego model's operating velocity limits."""
    v, w = (float(a) for a in plan.actions[0])
    op = ego.operating
    return float(np.clip(v, -op.max_linear_mps, op.max_linear_mps)), \
        float(np.clip(w, -op.max_angular_rps, op.max_angular_rps))


def run_episode(world, kind: str, scenario, seed: int, ego: EgoModel, deadline_ms: float = 60.0,
                max_calls: int = 20000, iterations: int = 3, models_dir: Path | None = None,
                on_decision: Callable[[WorldState, Any, np.ndarray, np.ndarray], None] | None = None,
                refine: bool = False, samples: int | None = None, planner=None,
                hierarchy: bool = False) -> EpisodeStats:
    """One episode of ``scenario`` (seeded jitter) driven by a fresh planner of ``kind``.
    ``on_decision(ws, planner, goal, obstacles)`` is called before each plan (data collection).
    ``refine``: every call in the optimisation mode (Budget.refine, anytime until the deadline);
    ``samples``: N (CEM/MPPI samples per iteration, GFlowNet policy samples), default the node's.
    ``planner``: a planner to drive with instead of building one of ``kind`` (it is reset; its
    navfield, if any, should be fresh). ``hierarchy``: the two-level planner over ``kind``."""
    world.reset(scenario, seed)
    layout = world.layout
    goal = np.array([layout.goal.x_m, layout.goal.y_m], np.float32)
    if planner is None:
        planner = build_planner(kind, footprint_radius_m=ego.hard.footprint.radius_m,
                                max_linear_mps=ego.operating.max_linear_mps,
                                max_angular_rps=ego.operating.max_angular_rps, iterations=iterations,
                                models_dir=models_dir, hierarchy=hierarchy,
                                **({} if samples is None else {"samples": samples, "gflownet_samples": samples}))
    planner.reset()
    stats = EpisodeStats(scenario.name, seed)
    while True:
        t = world.time_s
        pose = np.asarray(world.pose(), np.float32)
        if world.in_collision():
            stats.outcome = "collision"
            break
        if world.goal_reached(layout.goal, layout.goal_tolerance_m):
            stats.outcome = "goal"
            break
        if t >= layout.time_limit_s:
            break
        ws, obstacles = sense(world, planner, goal, t)
        if on_decision is not None:
            on_decision(ws, planner, goal, obstacles)
        t0 = time.perf_counter()
        plan = planner.plan(ws, goal, Budget(max_calls, time.monotonic() + deadline_ms * 1e-3, refine=refine),
                            obstacles=obstacles)
        stats.latency_ms.append((time.perf_counter() - t0) * 1e3)
        stats.overrun_ms.append(stats.latency_ms[-1] - deadline_ms)
        stats.sources.append(str(plan.extras.get("source", "")))
        stats.calls.append(plan.world_model_calls)
        stats.both_sides.append(both_sides(planner.last_samples, pose, goal))
        route = getattr(planner, "route", None)
        if route is not None and route.stamp_s == ws.stamp_s:   # the slow level made a route now
            stats.route_both_sides.append(bool(route.both_sides))
            stats.two_ways.append(two_ways_exist(planner.slow.space, *planner.slow.last_condition))
        world.set_cmd(*first_command(plan, ego))
        world.step(DECISION_DT_S)
    stats.time_s = round(world.time_s, 2)
    return stats


__all__ = ["DECISION_DT_S", "SIDE_MARGIN_M", "EpisodeStats", "both_sides", "first_command", "run_episode", "sense"]
