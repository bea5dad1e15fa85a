"""``hjepa-agent bench planners``: each planner drives the robot alone, in the simulator.

No ROS, no habitual policy, no watchdog: at every decision (``DECISION_DT_S``) the planner gets
the robot's pose and scan (as the planner node does: raw beams for its map and clearance, the
16 sectors in the world state), plans within the node's budget and deadline, and its first
action is held until the next decision (clipped to the ego model's operating velocity limits;
the motors' torque limits do the rest). This isolates the planner: what the agent achieves is
measured by ``hjepa-agent sim``.

Per planner and scenario: success, collisions, time to goal, decision latency p50 / p99
(wall time of plan()), world-model calls per decision (predicted states, N x H per iteration),
and route diversity: the fraction of decisions whose last iteration's sampled plans (the
planner's own samples, not its fixed motion primitives, and only those predicted to keep clear)
end on both sides of the straight line from the robot to the goal, each side counting only
endpoints at least ``SIDE_MARGIN_M`` off the line. In ``two_routes`` that is "over and under the
block". With ``--refine`` every call runs in the optimisation mode (anytime until the deadline):
the largest deadline overrun is reported, and for the GFlowNet where its chosen plans came from
(policy sample, refined, warm start, fallback primitive).

With ``--hierarchy`` (the two-level planner over each planner) also, over the decisions where the
slow level made a route: how often its sampled routes went round on both sides, and the same
only where two distinct routes exist (the best route on each side within 1 m of the best of all,
found by enumerating every route: subgoals.two_ways_exist).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
from tqdm import tqdm

from hjepa_agent.config.ego_model import EgoModel
from hjepa_agent.core.perception import beams_in_base, scan_to_bins
from hjepa_agent.core.planner import PLANNERS, Budget, beam_points, build_planner
from hjepa_agent.core.planner.subgoals import two_ways_exist
from hjepa_agent.core.types import WORLD_STATE_LABELS, N_LATENT, WorldState

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
    pose = np.asarray(world.pose(), np.float32)
    ranges = world.scan()
    mount = world.scan_mount()
    bins = scan_to_bins(ranges, spec.angle_min_rad, spec.angle_increment_rad, spec.range_min_m, spec.range_max_m,
                        mount)
    ws = WorldState(stamp_s, pose, np.asarray(world.twist(), np.float32), np.asarray(goal, np.float32), True, bins,
                    np.zeros(N_LATENT, np.float32), np.zeros(len(WORLD_STATE_LABELS), np.float32), 0.0)
    beams = beams_in_base(ranges, spec.angle_min_rad, spec.angle_increment_rad, spec.range_min_m, spec.range_max_m,
                          mount)
    planner.observe(pose, *beams)
    return ws, beam_points(pose, *beams)


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


def summarise(episodes: list[EpisodeStats]) -> dict[str, Any]:
    """Success, collisions, latency percentiles, calls and route diversity over ``episodes``."""
    lat = np.concatenate([e.latency_ms for e in episodes]) if episodes else np.zeros(0)
    calls = np.concatenate([e.calls for e in episodes]) if episodes else np.zeros(0)
    sides = np.concatenate([e.both_sides for e in episodes]) if episodes else np.zeros(0)
    over = np.concatenate([e.overrun_ms for e in episodes]) if episodes else np.zeros(0)
    src = [s for e in episodes for s in e.sources if s]
    routes = np.array([b for e in episodes for b in e.route_both_sides], bool)
    two = np.array([b for e in episodes for b in e.two_ways], bool)
    ok = [e for e in episodes if e.outcome == "goal"]
    return {"episodes": len(episodes), "successes": len(ok),
            "success_rate": round(len(ok) / max(len(episodes), 1), 3),
            "collisions": sum(e.outcome == "collision" for e in episodes),
            "mean_time_to_goal_s": round(float(np.mean([e.time_s for e in ok])), 2) if ok else None,
            "decisions": int(len(lat)),
            "decision_latency_ms": {"p50": round(float(np.percentile(lat, 50)), 2),
                                    "p99": round(float(np.percentile(lat, 99)), 2)} if len(lat) else None,
            "world_model_calls_per_decision": round(float(calls.mean()), 1) if len(calls) else None,
            "both_routes_fraction": round(float(sides.mean()), 3) if len(sides) else None,
            "max_deadline_overrun_ms": round(float(over.max()), 2) if len(over) else None,
            **({"routes_made": int(len(routes)), "route_both_routes_fraction": round(float(np.mean(routes)), 3),
                "routes_where_two_ways_exist": int(two.sum()),
                "route_both_routes_where_two_exist": round(float(np.mean(routes[two])), 3) if two.any() else None}
               if len(routes) else {}),
            **({"chosen_from": {k: round(src.count(k) / len(src), 3) for k in sorted(set(src))}} if src else {})}


def bench(kinds: list[str], scenarios: list, episodes: int, seed: int, robot: Path, ego: EgoModel,
          progress: bool = True, models_dir: Path | None = None, refine: bool = False,
          deadline_ms: float = 60.0, samples: int | None = None, hierarchy: bool = False,
          groups: dict[str, str] | None = None) -> dict[str, Any]:
    """Every planner of ``kinds`` on ``episodes`` episodes of each scenario (a YAML path or a Scenario;
    seeds seed, seed+1, ...); ``refine``, ``deadline_ms``, ``samples`` and ``hierarchy`` as in
    :func:`run_episode`. ``groups``: scenario name -> the row it is summarised in (procedural layouts: their
    family); default one row per scenario."""
    from hjepa_agent.sim.robot import load_robot_description
    from hjepa_agent.sim.scenario import Scenario, load_scenario
    from hjepa_agent.sim.world import SimWorld

    for k in kinds:
        if k not in PLANNERS:
            raise ValueError(f"unknown planner {k!r} (available: {', '.join(PLANNERS)})")
    loaded = [p if isinstance(p, Scenario) else load_scenario(p) for p in scenarios]
    out: dict[str, Any] = {"decision_dt_s": DECISION_DT_S, "side_margin_m": SIDE_MARGIN_M, "deadline_ms": deadline_ms,
                           "refine": refine, "samples": samples, "hierarchy": hierarchy, "planners": {}}
    with SimWorld(load_robot_description(robot)) as world:
        for kind in kinds:
            per: dict[str, list[EpisodeStats]] = {}
            jobs = [(sc, seed + i) for sc in loaded for i in range(episodes)]
            for sc, s in tqdm(jobs, desc=kind, disable=not progress, unit="ep"):
                per.setdefault((groups or {}).get(sc.name, sc.name), []).append(run_episode(world, kind, sc, s, ego, deadline_ms=deadline_ms,
                                                               models_dir=models_dir, refine=refine,
                                                               samples=samples, hierarchy=hierarchy))
            out["planners"][kind] = {"all": summarise([e for v in per.values() for e in v]),
                                     **{name: summarise(v) for name, v in per.items()},
                                     "failures": [(e.scenario, e.seed, e.outcome) for v in per.values() for e in v
                                                  if e.outcome != "goal"]}
    return out


__all__ = ["bench", "both_sides", "first_command", "run_episode", "sense", "summarise"]
