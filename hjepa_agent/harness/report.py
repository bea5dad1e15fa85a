"""A run's report: per-episode results, the summary and the plot (what each figure means is the
judge's: harness/judge.py).

ROS-free: works on what the runner collected (times in sim seconds).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hjepa_agent.core.types import Mode
from hjepa_agent.sim.faults import parse_faults
from hjepa_agent.sim.scenario import Scenario


@dataclass
class EpisodeResult:
    """One episode's outcome and figures."""

    episode: int
    scenario: str
    seed: int
    family: str = ""
    """The procedural layout family (sim/layouts.py); empty for a scenario file."""
    success: bool = False
    collision: bool = False
    outcome: str = "timeout"
    time_s: float = 0.0
    time_to_goal_s: float | None = None
    safe_stops: int = 0
    limit_violations: int = 0
    limit_violations_by_kind: dict[str, int] = field(default_factory=dict)
    lockstep_misses: int = 0
    lost_messages: int = 0
    """Messages between the process's nodes the middleware lost (given up on after lockstep.LOST_AFTER_S)."""
    rss_mb: float | None = None
    """The run's resident memory (MB) once the episode's nodes were destroyed (a long run must stay flat)."""
    min_clearance_m: float = math.inf
    mode_ticks: dict[str, int] = field(default_factory=lambda: {m.name: 0 for m in Mode})
    path: list[tuple[float, float]] = field(default_factory=list)
    """(x, y) m at each camera frame; runner.run keeps it as a float32 (N, 2) array once the episode is over."""
    events: list[dict[str, Any]] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)
    """Injected faults (kind@onset_s), if any (sim/faults.py)."""
    fault_detected: bool | None = None
    """Detected and named correctly (harness/judge.py :func:`~hjepa_agent.harness.judge.judge`): the first event
    after the onset that carried typed causes carried one of the kind's EXPECTED_CAUSES (obstacle_drop,
    which has none: the watchdog left HABITUAL). What the agent *decided*: with ``--watchdog off`` it is
    not enforced. None without faults."""
    fault_named_wrongly: bool | None = None
    """A detection whose causes miss the expected ones (``naming_causes`` says what they were)."""
    naming_causes: list[str] = field(default_factory=list)
    """The typed causes of the first event after the onset that carried any: what the agent named first."""
    stop_causes: list[str] = field(default_factory=list)
    """The typed causes of the watchdog's first SAFE_STOP decision after the onset (enforced or not); empty
    if it decided none."""
    fault_causes: list[str] = field(default_factory=list)
    """Every typed cause on the events after the onset, in the order they first came."""
    fault_events: list[dict[str, Any]] = field(default_factory=list)
    """The first events after the onset (runner.FAULT_EVENTS_KEPT), each with ``seen_s``: when the runner
    received it (s since the episode's start, on the simulator's own clock)."""
    intruders: list[dict[str, Any]] = field(default_factory=list)
    """Nodes the faults added (sim/faults.Intruder): kind, node, topic, rate_hz."""
    rejected_on: dict[str, list[str]] = field(default_factory=dict)
    """nan_flood: per flooded topic, the causes for which the agent's input guards rejected messages on it."""
    detection_delay_s: float | None = None
    breach: str | None = None
    """What happened that must not: 'collision', 'battery below floor while moving', 'motor above
    its maximum temperature while moving' (the first), or None."""
    lead_s: float | None = None
    """Seconds from the detection to the breach (negative: the breach came first)."""
    node_failures: list[dict[str, str]] = field(default_factory=list)
    """Nodes that failed stop (a callback raised): node, where, error, traceback; the episode failed."""
    foreign_commands: int = 0
    """Commands on cmd_vel that neither the bridge nor the watchdog sent (judged apart from the agent's)."""


def rss_summary(rss_mb: list[float | None], settle: int = 20) -> dict[str, Any] | None:
    """Resident memory over the run (MB): after the first episode, after ``settle`` episodes (once the
    caches are warm), at the end, the growth since ``settle`` and the whole curve every 10 episodes."""
    xs = [x for x in rss_mb if x is not None]
    if not xs:
        return None
    at = xs[min(settle, len(xs)) - 1]
    return {"first": xs[0], f"after_{settle}": at, "last": xs[-1], f"growth_after_{settle}": round(xs[-1] - at, 1),
            "every_10": xs[::10]}


def _percentile(xs: list[float], q: float) -> float | None:
    return float(np.percentile(xs, q)) if xs else None


def summarise(results: list[EpisodeResult], latency_ms: list[float], enforced: bool = True) -> dict[str, Any]:
    """The run summary written to summary.json; ``enforced``: the watchdog's decisions were enforced
    (False: ``--watchdog off``)."""
    n = len(results)
    ticks = {m.name: sum(r.mode_ticks[m.name] for r in results) for m in Mode}
    total = max(1, sum(ticks.values()))
    reached = [r.time_to_goal_s for r in results if r.time_to_goal_s is not None]
    return {
        "episodes": n,
        "successes": sum(r.success for r in results),
        "success_rate": (sum(r.success for r in results) / n) if n else 0.0,
        "collisions": sum(r.collision for r in results),
        "limit_violations": sum(r.limit_violations for r in results),
        "limit_violations_by_kind": {k: sum(r.limit_violations_by_kind.get(k, 0) for r in results)
                                     for k in ("velocity", "accel", "jerk")},
        "mean_time_to_goal_s": float(np.mean(reached)) if reached else None,
        "cmd_latency_ms": {"p50": _percentile(latency_ms, 50), "p99": _percentile(latency_ms, 99),
                           "max": max(latency_ms) if latency_ms else None, "samples": len(latency_ms)},
        "mode_time_fraction": {k: v / total for k, v in ticks.items()},
        "safe_stops": sum(r.safe_stops for r in results),
        "safe_stop_episodes": sum(r.safe_stops > 0 for r in results),
        **({"by_family": family_table(results)} if any(r.family for r in results) else {}),
        "lockstep_misses": sum(r.lockstep_misses for r in results),
        "node_failures": sum(len(r.node_failures) for r in results),
        "lost_messages": sum(r.lost_messages for r in results),
        "foreign_commands": sum(r.foreign_commands for r in results),
        "rss_mb": rss_summary([r.rss_mb for r in results]),
        **({"faults": fault_summary(results), "fault_detections": detections_note(enforced)}
           if any(r.faults for r in results) else {}),
        "per_episode": [{"episode": r.episode, "scenario": r.scenario, **({"family": r.family} if r.family else {}),
                         "seed": r.seed, "success": r.success,
                         "outcome": r.outcome, "collision": r.collision, "time_s": round(r.time_s, 3),
                         "time_to_goal_s": r.time_to_goal_s, "safe_stops": r.safe_stops,
                         "limit_violations": r.limit_violations, "lockstep_misses": r.lockstep_misses,
                         **({"node_failures": [{k: f[k] for k in ("node", "where", "error")} for f in r.node_failures]}
                            if r.node_failures else {}),
                         "min_clearance_m": round(r.min_clearance_m, 3),
                         **({"faults": r.faults, "fault_detected": r.fault_detected,
                             "fault_named_wrongly": r.fault_named_wrongly, "naming_causes": r.naming_causes,
                             "stop_causes": r.stop_causes,
                             "detection_delay_s": r.detection_delay_s, "breach": r.breach, "lead_s": r.lead_s,
                             **({"flooded": sorted(r.rejected_on)} if r.rejected_on else {})}
                            if r.faults else {})} for r in results],
    }


def family_table(results: list[EpisodeResult]) -> dict[str, dict[str, Any]]:
    """Per procedural layout family (and "all"): episodes, successes, collisions, limit violations, episodes
    with a SAFE_STOP after the start, and the outcomes of the episodes that failed."""
    out: dict[str, dict[str, Any]] = {}
    for key in sorted({r.family for r in results}) + ["all"]:
        rs = [r for r in results if key in ("all", r.family)]
        fails: dict[str, int] = {}
        for r in rs:
            if not r.success:
                fails[r.outcome] = fails.get(r.outcome, 0) + 1
        out[key] = {"episodes": len(rs), "successes": sum(r.success for r in rs),
                    "success_rate": round(sum(r.success for r in rs) / len(rs), 4) if rs else 0.0,
                    "collisions": sum(r.collision for r in rs), "limit_violations": sum(r.limit_violations for r in rs),
                    "safe_stop_episodes": sum(r.safe_stops > 0 for r in rs), "failures": fails}
    return out


FAULT_COUNTS = ("episodes", "detected", "named_wrongly", "collisions", "breaches", "limit_violations",
                "node_failures")
"""The per-kind counts of :func:`fault_summary`, summed in its "all" row."""


def fault_summary(results: list[EpisodeResult]) -> dict[str, Any]:
    """Per injected fault kind: episodes, detected (and named correctly), named wrongly (with the naming
    causes seen then, and how often), the watchdog's stop decisions by their causes, collisions, breaches,
    limit violations, node failures, detection delay and lead, and for nan_flood the topics flooded; an
    "all" row with the counts summed. Whether the detections were enforced: :func:`detections_note`."""
    out: dict[str, Any] = {}
    for r in results:
        for k in (f.kind for f in parse_faults(",".join(r.faults))):
            d = out.setdefault(k, {**{c: 0 for c in FAULT_COUNTS}, "named_wrongly_causes": {}, "stop_causes": {},
                                   "detection_delay_s": [], "lead_s": []})
            stop = ",".join(r.stop_causes) or "no stop"
            d["stop_causes"][stop] = d["stop_causes"].get(stop, 0) + 1
            d["episodes"] += 1
            d["detected"] += bool(r.fault_detected)
            if r.fault_named_wrongly:
                d["named_wrongly"] += 1
                seen = ",".join(r.naming_causes)
                d["named_wrongly_causes"][seen] = d["named_wrongly_causes"].get(seen, 0) + 1
            d["collisions"] += r.collision
            d["breaches"] += r.breach is not None
            d["limit_violations"] += r.limit_violations
            d["node_failures"] += len(r.node_failures)
            if r.rejected_on:
                d.setdefault("topics", [])
                d["topics"] += [t for t in r.rejected_on if t not in d["topics"]]
            if r.detection_delay_s is not None:
                d["detection_delay_s"].append(r.detection_delay_s)
            if r.lead_s is not None:
                d["lead_s"].append(r.lead_s)
    for d in out.values():
        for key in ("detection_delay_s", "lead_s"):
            v = d.pop(key)
            d[key] = {"max": round(max(v), 3), "min": round(min(v), 3)} if v else None
    out["all"] = {c: sum(d[c] for d in out.values()) for c in FAULT_COUNTS}
    return out


def detections_note(enforced: bool) -> str:
    """What a fault summary's "detected" means for this run (summary.json ``fault_detections``)."""
    if enforced:
        return ("decided and enforced: detected = the first typed causes after the onset name the fault "
                "(EXPECTED_CAUSES, harness/judge.py), and the watchdog's decisions were in force")
    return ("decided, not enforced (--watchdog off): detected = the first typed causes after the onset name "
            "the fault, but the watchdog published HABITUAL at full speed whatever it decided")


MAX_PANELS = 24
"""trajectories.png shows at most this many layouts (with more, the failed episodes' first)."""


def plot_trajectories(results: list[EpisodeResult], scenarios: dict[str, Scenario], path: Path) -> None:
    """trajectories.png: one panel per scenario (at most MAX_PANELS): the nominal obstacles (each episode
    jitters them by up to the scenario's jitter.obstacle_m), start, goal and every episode's path (green =
    reached)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Circle, Rectangle

    names = sorted(scenarios)
    if len(names) > MAX_PANELS:   # procedural layouts, one per episode: the failures first, then the rest in order
        failed = [r.scenario for r in results if not r.success]
        names = list(dict.fromkeys(failed + [r.scenario for r in results]))[:MAX_PANELS]
    cols = min(len(names), 6)
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 4.4 * rows), squeeze=False)
    for ax in axes.flat[len(names):]:
        ax.axis("off")
    for ax, name in zip(axes.flat, names):
        sc = scenarios[name]
        hx, hy = sc.arena.size_x_m / 2, sc.arena.size_y_m / 2
        ax.add_patch(Rectangle((-hx, -hy), 2 * hx, 2 * hy, fill=False, lw=2))
        for ob in sc.obstacles:
            if ob.shape == "cylinder":
                ax.add_patch(Circle((ob.x_m, ob.y_m), ob.radius_m, color="0.6"))
            else:
                r = Rectangle((ob.x_m - ob.size_x_m / 2, ob.y_m - ob.size_y_m / 2), ob.size_x_m, ob.size_y_m,
                              angle=math.degrees(ob.yaw_rad), rotation_point="center", color="0.6")
                ax.add_patch(r)
        for r in results:
            if r.scenario != name or len(r.path) == 0:
                continue
            xy = np.asarray(r.path)
            ax.plot(xy[:, 0], xy[:, 1], "-", color="tab:green" if r.success else "tab:red", lw=1)
        ax.plot(sc.start.x_m, sc.start.y_m, "bo")
        ax.plot(sc.goal.x_m, sc.goal.y_m, "r*", ms=12)
        ok = sum(r.success for r in results if r.scenario == name)
        tot = sum(1 for r in results if r.scenario == name)
        ax.set_title(f"{name}: {ok}/{tot}\n(nominal layout; obstacles jitter up to {sc.jitter.obstacle_m:g} m)",
                     fontsize=9)
        ax.set_aspect("equal")
        ax.set_xlim(-hx - 0.2, hx + 0.2)
        ax.set_ylim(-hy - 0.2, hy + 0.2)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
