"""``hjepa-agent bench planners``: each planner drives the robot alone, in the simulator
(sim/planner_episode.py: no ROS, no habitual policy, no watchdog; the planner plans at every decision
within the node's budget and deadline, and its first action is held until the next). This isolates
the planner: what the agent achieves is measured by ``hjepa-agent sim``.

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

from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from hjepa_agent.config.ego_model import EgoModel
from hjepa_agent.core.planner import PLANNERS
from hjepa_agent.sim.planner_episode import DECISION_DT_S, SIDE_MARGIN_M, EpisodeStats, run_episode

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


__all__ = ["bench", "summarise"]
