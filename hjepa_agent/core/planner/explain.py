"""A short human-readable account of a plan: what it will do, the predicted outcome, its risk and
ambiguity, and which mode it was made in and why (issue 4, item 9).

Example:
    "PLANNING (habitual clearance 0.12 m < 0.15 m over 1.0 s) | cem plan, 3.0 s: turn left 48 deg,
    drive 1.4 m at up to 0.60 m/s | predicted: 2.9 -> 1.6 m to goal, min clearance 0.22 m |
    risk 0.04, ambiguity 0.31"
The GFlowNet's plans also say where the plan came from (policy sample, warm start, refined,
fallback) and the log R and log Z its risk is read from; the two-level planner's also say the
route: how many subgoals are left, the next one, and the slow level's log R / log Z.
"""
from __future__ import annotations

import math

import numpy as np

from hjepa_agent.core.types import Plan

TURN_DEG_MIN = 10.0
"""Turns smaller than this (deg, net over the plan) are described as 'straight on'."""
MOVE_M_MIN = 0.05
"""Plans travelling less than this (m) are described as standing."""


def describe_motion(plan: Plan) -> str:
    """What the plan's actions do: net turn, distance driven and top speed."""
    acts = np.asarray(plan.actions, np.float64)
    dist = float(np.sum(np.abs(acts[:, 0])) * plan.dt_s)
    turn = math.degrees(float(np.sum(acts[:, 1]) * plan.dt_s))
    parts = []
    if abs(turn) >= TURN_DEG_MIN:
        parts.append(f"turn {'left' if turn > 0 else 'right'} {abs(turn):.0f} deg")
    if dist >= MOVE_M_MIN:
        back = " backwards" if float(np.sum(acts[:, 0])) < 0 else ""
        parts.append(f"drive {dist:.1f} m{back} at up to {float(np.max(np.abs(acts[:, 0]))):.2f} m/s")
    elif not parts:
        parts.append("stand still")
    else:
        parts.append("on the spot")
    return ", ".join(parts)


def explain_plan(plan: Plan, goal: np.ndarray | None, mode: str, why: str = "") -> str:
    """One line: mode (and why), what the plan will do over its horizon, the predicted goal
    distance and clearance, risk and ambiguity. ``goal`` (2,) odom frame, or None."""
    states = np.asarray(plan.states, np.float64)
    head = f"{mode} ({why})" if why else mode
    what = f"{plan.planner} plan, {plan.horizon * plan.dt_s:.1f} s: {describe_motion(plan)}"
    sub = plan.extras.get("subgoals")
    if sub is not None:   # two-level planner: the route the fast plan drives along
        what += (f"; route via {len(sub)} subgoal{'s' if len(sub) != 1 else ''}"
                 + (f", next ({sub[0][0]:.1f}, {sub[0][1]:.1f})" if len(sub) else " (straight to the goal)")
                 + f" [{plan.extras.get('route_source', '')}, log R {float(plan.extras.get('route_log_r', 0.0)):.1f},"
                 + f" log Z {float(plan.extras.get('route_log_z', 0.0)):.1f}]")
    outcome = []
    if goal is not None and len(states):
        g = np.asarray(goal, np.float64)[:2]
        d0, d1 = (float(np.hypot(*(s[:2] - g))) for s in (states[0], states[-1]))
        outcome.append(f"{d0:.1f} -> {d1:.1f} m to goal")
    clear = plan.extras.get("min_clearance_m")
    if clear is not None and math.isfinite(float(clear)):
        outcome.append(f"min clearance {float(clear):.2f} m")
    pred = f"predicted: {', '.join(outcome)}" if outcome else "predicted: -"
    scores = f"risk {plan.risk:.2f}, ambiguity {plan.ambiguity:.2f}"
    if "predicted_ambiguity" in plan.extras:   # the learned world model's, along the plan
        scores += f" (predicted along the plan {float(plan.extras['predicted_ambiguity']):.2f})"
    if "log_z" in plan.extras:   # GFlowNet: where the plan came from, and what its risk is read from
        src = plan.extras.get("source", "")
        scores += (f" ({src + ', ' if src else ''}log R {plan.log_reward:.1f}, "
                   f"log Z {float(plan.extras['log_z']):.1f})")
    return f"{head} | {what} | {pred} | {scores}"


__all__ = ["describe_motion", "explain_plan"]
