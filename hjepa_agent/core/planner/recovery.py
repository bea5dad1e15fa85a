"""Route-following and recovery plan primitives: candidates every planner scores beside its own samples.

A sampling planner's 3-s plans, drawn around its last mean, rarely contain "turn round on the spot for
1.4 s, then drive along the wall", and a robot facing a wall it must go round stood still there (a
long-wall layout: stand still cost 2.84, that turn-and-drive 2.71, never sampled). The navfield already
knows the way; these primitives follow it:

* **follow** (:data:`PRIMITIVES`): at each step, head for the steepest descent of the navfield's
  cost-to-go (the lowest of :data:`DIRECTIONS` points :data:`PROBE_M` away), turning on the spot while the
  heading error exceeds :data:`TURN_FIRST_RAD`, else driving at the speed fraction while steering onto it
  (proportional gain :data:`STEER_GAIN`). The slow one is what goes through a narrow passage at the
  passage speed of PlanCost's speed-vs-clearance rule.
* **back up, then follow** (:data:`BACKUP_S`, :data:`BACKUP_SPEED`): reverse straight for a second, then
  follow: what leaves a pocket whose way out is behind the robot when turning on the spot there touches.

They are plans like any other: rolled out, scored by the same PlanCost (clearance, collision, the
speed-vs-clearance rule) and chosen only when they are the cheapest, so their risk is read off the same
clearance as every plan's. Pure numpy; units m, s, rad.
"""
from __future__ import annotations


import numpy as np

from hjepa_agent.core.planner.navfield import NavField

PRIMITIVES = (("follow", 0.6), ("follow", 0.35), ("back_up", 0.35), ("follow", 1.0), ("back_up", 0.6))
"""The primitives in the order a planner with room for fewer takes them: (kind, speed fraction of the
operating speed while following)."""
BACKUP_S = 1.0
"""Seconds of reversing in the back-up primitives."""
BACKUP_SPEED = 0.3
"""Reversing speed, a fraction of the operating speed."""
DIRECTIONS = 16
PROBE_M = 0.2
TURN_FIRST_RAD = 0.6
STEER_GAIN = 2.0


def _wrap(a: np.ndarray) -> np.ndarray:
    return (a + np.pi) % (2.0 * np.pi) - np.pi


def _descent(nav: NavField, xy: np.ndarray, goal: np.ndarray, stamp_s: float) -> np.ndarray:
    """Heading (K,) of the steepest descent of the cost-to-go at points xy (K, 2)."""
    ang = np.arange(DIRECTIONS) * 2.0 * np.pi / DIRECTIONS
    probes = xy[:, None, :] + PROBE_M * np.stack([np.cos(ang), np.sin(ang)], -1)[None]
    d = nav.distance(probes, goal, stamp_s)
    return ang[np.argmin(d, axis=1)]


def route_primitives(nav: NavField | None, pose: np.ndarray, goal: np.ndarray, stamp_s: float, horizon: int,
                     dt_s: float, max_linear_mps: float, max_angular_rps: float,
                     count: int = len(PRIMITIVES)) -> np.ndarray:
    """Plans (K, horizon, 2) of (v, w): the first ``count`` of PRIMITIVES (module doc); none
    (0, horizon, 2) without a navfield or before it has seen anything."""
    kinds = PRIMITIVES[:max(0, count)]
    if nav is None or nav.origin is None or not kinds:
        return np.zeros((0, horizon, 2), np.float32)
    goal = np.asarray(goal, np.float64)[:2]
    speeds = np.array([f for _, f in kinds]) * max_linear_mps
    k = len(speeds)
    backup = np.array([int(round(BACKUP_S / dt_s)) if kind == "back_up" else 0 for kind, _ in kinds])
    x = np.tile(np.asarray(pose, np.float64)[:3], (k, 1))
    acts = np.zeros((k, horizon, 2), np.float32)
    for i in range(horizon):
        want = _descent(nav, x[:, :2], goal, stamp_s)
        err = _wrap(want - x[:, 2])
        w = np.clip(STEER_GAIN * err, -max_angular_rps, max_angular_rps)
        v = np.where(np.abs(err) > TURN_FIRST_RAD, 0.0, speeds * np.cos(err))
        rev = i < backup
        v = np.where(rev, -BACKUP_SPEED * max_linear_mps, v)
        w = np.where(rev, 0.0, w)
        acts[:, i, 0], acts[:, i, 1] = v, w
        mid = x[:, 2] + 0.5 * w * dt_s
        x[:, 0] += v * np.cos(mid) * dt_s
        x[:, 1] += v * np.sin(mid) * dt_s
        x[:, 2] = _wrap(x[:, 2] + w * dt_s)
    return acts


__all__ = ["BACKUP_S", "BACKUP_SPEED", "PRIMITIVES", "route_primitives"]
