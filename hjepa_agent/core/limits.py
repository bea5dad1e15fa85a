"""Pure limit math: jerk-limited tracking of a velocity target on one axis.

Units are those of the axis: velocity in m/s (or rad/s), acceleration in m/s^2
(rad/s^2), jerk in m/s^3 (rad/s^3), time in s. The acceleration chosen for a step
is held constant over that step, so ``vel_new = vel + acc_new * dt_s``.

How the acceleration is chosen (one step):

1. Aim: ``a_des`` is the acceleration after which braking with full jerk would
   make the velocity settle exactly on the target. With the *stopping point*
   ``s(a) = vel + a*dt + a*|a|/(2*jerk)`` (the velocity reached if, after this
   step, the acceleration is released to zero at full jerk), ``a_des`` solves
   ``s(a_des) = target``. It never overshoots: ``s(a) >= vel + a*dt`` for ``a >= 0``.
2. Feasible set, intersection of
   - jerk window ``[acc - jerk*dt, acc + jerk*dt]``;
   - accel/decel bounds: "accel" while |vel| grows, "decel" while it shrinks.
     A sign change is treated as decelerating to zero first: a step may cross zero
     only with ``|a| <= max_accel`` (the part after zero accelerates), and while
     decelerating harder than ``max_accel`` the velocity must keep enough margin
     ``(a^2 - max_accel^2)/(2*jerk)`` to release the excess before zero;
   - velocity bound: ``|s(a)| <= max_vel``, so even releasing the acceleration
     later cannot exceed ``max_vel`` (this implies ``|vel_new| <= max_vel``).
3. ``acc_new = clip(a_des, feasible set)``.

Why the set is never empty with fixed limits, any dt sequence and any target
(targets are clipped to ±max_vel): releasing the acceleration towards zero at full
jerk (``a* = acc - sign(acc)*min(jerk*dt, |acc|)``) is always in the set when the
state was produced by this function, because the stopping point and the
zero-crossing margin of ``a*`` are no worse than the state's own (each is a
right-endpoint sum under a decreasing ramp, which never exceeds its integral).
If limits change (e.g. max_vel tightened below |vel|) the set may be empty; then
priority is velocity, then accel/decel, then jerk, and the dropped limit is
reported as ``"<name>_exceeded"``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

_TOL = 1e-12


@dataclass(frozen=True)
class AxisState:
    """State of one axis: ``vel`` (m/s or rad/s) and ``acc``, the acceleration
    (m/s^2 or rad/s^2) applied over the last step."""

    vel: float
    acc: float


def stopping_point(vel: float, acc: float, max_jerk: float) -> float:
    """Velocity reached if ``acc`` is released to zero at full jerk (continuous time)."""
    return vel + acc * abs(acc) / (2.0 * max_jerk)


def _aim(vel: float, dt: float, jerk: float, y: float) -> float:
    """Acceleration a with ``vel + a*dt + a*|a|/(2*jerk) == y`` (stable form)."""
    c = y - vel
    mag = 2.0 * abs(c) / (dt + math.sqrt(dt * dt + 2.0 * abs(c) / jerk))
    return math.copysign(mag, c)


def _decel_floor(speed: float, dt: float, accel: float, decel: float, jerk: float) -> float:
    """Most negative acceleration allowed while moving forward at ``speed`` > 0.

    Bounded by ``-decel``, and by the zero-crossing rule: an acceleration below
    ``-accel`` must leave ``v_new >= (a^2 - accel^2)/(2*jerk)``, i.e. a is at or
    above the negative root of ``a^2 - 2*jerk*dt*a - (2*jerk*speed + accel^2) = 0``.
    """
    q = 2.0 * jerk * speed + accel * accel
    root = -q / (jerk * dt + math.sqrt((jerk * dt) ** 2 + q))
    return max(-decel, min(-accel, root))


def _intersect(bounds: list[tuple[str, float, float]]) -> tuple[float, float]:
    lo = max(b[1] for b in bounds)
    hi = min(b[2] for b in bounds)
    return lo, hi


def _nonempty(lo: float, hi: float) -> bool:
    return lo <= hi + _TOL * max(1.0, abs(lo), abs(hi))


def limit_axis(target: float, state: AxisState, dt_s: float, max_vel: float, max_accel: float,
               max_decel: float, max_jerk: float) -> tuple[AxisState, tuple[str, ...]]:
    """Advance one axis by ``dt_s`` seconds towards velocity ``target``.

    Arguments: target in m/s (rad/s), any finite value (clipped to ±max_vel);
    max_vel >= 0; max_accel, max_decel (bounds on |acc| while |vel| grows /
    shrinks) and max_jerk > 0, all in the axis' units.
    Returns the new state and the names of the limits that shaped this step, from
    "velocity", "accel", "decel", "jerk", plus "<name>_exceeded" when the limits
    could not all be met (only possible when limits changed or the state did not
    come from this function). ``dt_s <= 0`` returns ``state`` unchanged.
    Raises ValueError for a non-finite target, dt or state, or invalid limits.
    """
    if not math.isfinite(target):
        raise ValueError(f"target must be finite, got {target}")
    if not (math.isfinite(dt_s) and math.isfinite(state.vel) and math.isfinite(state.acc)):
        raise ValueError(f"dt_s and state must be finite, got dt_s={dt_s}, state={state}")
    if not (max_vel >= 0.0 and math.isfinite(max_vel)):
        raise ValueError(f"max_vel must be finite and >= 0, got {max_vel}")
    for name, val in (("max_accel", max_accel), ("max_decel", max_decel), ("max_jerk", max_jerk)):
        if not (val > 0.0 and math.isfinite(val)):
            raise ValueError(f"{name} must be finite and > 0, got {val}")
    if dt_s <= 0.0:
        return state, ()

    v, a, dt = state.vel, state.acc, dt_s
    active: list[str] = []
    goal = min(max(target, -max_vel), max_vel)
    if goal != target:
        active.append("velocity")
    a_des = _aim(v, dt, max_jerk, goal)

    jerk = ("jerk", a - max_jerk * dt, a + max_jerk * dt)
    if v > 0.0:
        ad = [("decel", _decel_floor(v, dt, max_accel, max_decel, max_jerk), math.inf),
              ("accel", -math.inf, max_accel)]
    elif v < 0.0:
        ad = [("accel", -max_accel, math.inf),
              ("decel", -math.inf, -_decel_floor(-v, dt, max_accel, max_decel, max_jerk))]
    else:
        ad = [("accel", -max_accel, max_accel)]
    vel_soft = ("velocity", _aim(v, dt, max_jerk, -max_vel), _aim(v, dt, max_jerk, max_vel))
    vel_hard = ("velocity", (-max_vel - v) / dt, (max_vel - v) / dt)

    bounds = [jerk, *ad, vel_soft]
    lo, hi = _intersect(bounds)
    if not _nonempty(lo, hi):
        bounds = [jerk, *ad, vel_hard]
        lo, hi = _intersect(bounds)
    if not _nonempty(lo, hi):
        # Limits changed under us: keep what matters most, report what was dropped.
        bounds = [vel_hard]
        for group, members in (("accel/decel", ad), ("jerk", [jerk])):
            trial = bounds + members
            if _nonempty(*_intersect(trial)):
                bounds = trial
            elif group == "jerk":
                active.append("jerk_exceeded")
            else:
                active.append("decel_exceeded" if v * a_des < 0.0 else "accel_exceeded")
        lo, hi = _intersect(bounds)
    hi = max(hi, lo)

    acc = min(max(a_des, lo), hi)
    tol = _TOL * max(1.0, abs(acc))
    if a_des > hi + tol:
        active.extend(b[0] for b in bounds if b[2] <= hi + tol)
    elif a_des < lo - tol:
        active.extend(b[0] for b in bounds if b[1] >= lo - tol)

    vel = v + acc * dt
    if abs(goal - vel) <= _TOL * max(1.0, abs(goal)):
        vel = goal
    vel = min(max(vel, -max(max_vel, abs(v))), max(max_vel, abs(v)))  # float guard only
    names = tuple(dict.fromkeys(active))
    return AxisState(vel, acc), names


__all__ = ["AxisState", "limit_axis", "stopping_point"]
