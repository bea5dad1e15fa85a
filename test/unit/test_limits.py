"""Property tests of the jerk-limited axis limiter (hjepa_agent.core.limits)."""
from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hjepa_agent.core.limits import AxisState, limit_axis, stopping_point

EPS = 1e-9

limits_st = st.fixed_dictionaries({
    "max_vel": st.floats(0.01, 5.0),
    "max_accel": st.floats(0.05, 20.0),
    "max_decel": st.floats(0.05, 20.0),
    "max_jerk": st.floats(0.1, 500.0),
})
dt_st = st.floats(0.001, 0.2)


@st.composite
def settle_limits_st(draw: st.DrawFn) -> dict:
    """Limits for the settle/stop tests: ramps short enough to simulate in full."""
    acc, dec = draw(st.floats(0.2, 20.0)), draw(st.floats(0.2, 20.0))
    return {"max_vel": draw(st.floats(0.01, 2.0)), "max_accel": acc, "max_decel": dec,
            "max_jerk": max(acc, dec) * draw(st.floats(1.0, 50.0))}
target_st = st.one_of(st.floats(allow_nan=False, allow_infinity=False),
                      st.floats(-10.0, 10.0), st.sampled_from([0.0, 1e300, -1e300]))


def applicable_bound(before: float, after: float, lim: dict) -> float:
    """The accel/decel bound that applies to a step from velocity ``before`` to ``after``."""
    if before == 0.0 or (before > 0.0 and after >= before) or (before < 0.0 and after <= before):
        return lim["max_accel"]
    if before * after >= 0.0:
        return lim["max_decel"]
    return min(lim["max_accel"], lim["max_decel"])  # crossing zero: decel to zero, then accel


def check_step(old: AxisState, new: AxisState, active: tuple[str, ...], dt: float, lim: dict) -> None:
    assert abs(new.vel) <= lim["max_vel"] + EPS
    assert abs(new.vel - old.vel) <= applicable_bound(old.vel, new.vel, lim) * dt + EPS
    assert abs(new.acc - old.acc) <= lim["max_jerk"] * dt + EPS or "jerk_exceeded" in active
    assert not any(a.endswith("_exceeded") for a in active), active


def drive(state: AxisState, targets: list[float], dts: list[float], lim: dict) -> AxisState:
    for t, dt in zip(targets, dts):
        new, active = limit_axis(t, state, dt, **lim)
        check_step(state, new, active, dt, lim)
        state = new
    return state


@settings(max_examples=300, deadline=None)
@given(lim=limits_st, steps=st.lists(st.tuples(target_st, dt_st), min_size=1, max_size=120))
def test_any_target_sequence_respects_all_limits(lim: dict, steps: list) -> None:
    targets, dts = zip(*steps)
    drive(AxisState(0.0, 0.0), list(targets), list(dts), lim)


@settings(max_examples=100, deadline=None)
@given(lim=settle_limits_st(), v0=st.floats(-1.0, 1.0), target=st.floats(-1.0, 1.0),
       dts=st.lists(dt_st, min_size=1, max_size=8))
def test_constant_target_reached_in_bounded_time_and_held(lim: dict, v0: float, target: float,
                                                          dts: list[float]) -> None:
    vmax, acc, dec, jerk = lim["max_vel"], lim["max_accel"], lim["max_decel"], lim["max_jerk"]
    state = AxisState(v0 * vmax, 0.0)
    goal = target * vmax
    # Accelerate/decelerate at the weaker of the two, ramp jerk up and down, plus a tail.
    bound_s = abs(goal - state.vel) / min(acc, dec) + 4.0 * max(acc, dec) / jerk + 2.0
    t, k, reached_at = 0.0, 0, None
    err0 = goal - state.vel
    while t < bound_s + 1.0:
        dt = dts[k % len(dts)]
        new, active = limit_axis(goal, state, dt, **lim)
        check_step(state, new, active, dt, lim)
        err = goal - new.vel
        assert err * err0 >= 0.0, f"overshoot: err {err} vs initial {err0}"   # never passes the target
        assert abs(err) <= abs(goal - state.vel) + EPS                         # monotone approach
        if reached_at is None and abs(err) <= 1e-3:
            reached_at = t + dt
        if reached_at is not None:
            assert abs(err) <= 1e-3                                            # held
        state, t, k = new, t + dt, k + 1
    assert reached_at is not None and reached_at <= bound_s


@settings(max_examples=100, deadline=None)
@given(lim=settle_limits_st(), warmup=st.lists(st.tuples(target_st, dt_st), min_size=0, max_size=60),
       dts=st.lists(dt_st, min_size=1, max_size=8))
def test_stop_from_any_reachable_state_within_braking_distance(lim: dict, warmup: list,
                                                              dts: list[float]) -> None:
    state = AxisState(0.0, 0.0)
    if warmup:
        targets, wdts = zip(*warmup)
        state = drive(state, list(targets), list(wdts), lim)
    dec, jerk, acc = lim["max_decel"], lim["max_jerk"], lim["max_accel"]
    a_out = max(0.0, math.copysign(1.0, state.vel) * state.acc) if state.vel else abs(state.acc)
    v_peak = max(abs(state.vel), abs(stopping_point(state.vel, state.acc, jerk)))
    # v^2/(2 decel) plus travel while the jerk ramps acceleration through zero to full
    # decel and back (at most (a_out + 2 decel)/jerk seconds at v_peak).
    # Discrete steps hold each acceleration for a whole step: allow two steps of lag.
    allowance = (v_peak ** 2 / (2.0 * dec) + v_peak * (a_out + 2.0 * dec) / jerk
                 + 2.0 * v_peak * max(dts) + 1e-6)
    dist, t, k = 0.0, 0.0, 0
    limit_s = v_peak / min(dec, acc) + 4.0 * max(dec, acc) / jerk + 2.0
    while t < limit_s:
        dt = dts[k % len(dts)]
        new, active = limit_axis(0.0, state, dt, **lim)
        check_step(state, new, active, dt, lim)
        dist += abs(state.vel + new.vel) / 2.0 * dt if state.vel * new.vel >= 0 else \
            (state.vel ** 2 + new.vel ** 2) / (2.0 * abs(new.vel - state.vel)) * dt
        state, t, k = new, t + dt, k + 1
    assert abs(state.vel) <= 1e-3
    assert dist <= allowance


def test_step_that_would_overshoot_does_not() -> None:
    # Naively applying max_accel for 0.1 s from 0.45 towards 0.5 would reach 0.55.
    new, active = limit_axis(0.5, AxisState(0.45, 0.0), 0.1, max_vel=1.0, max_accel=1.0,
                             max_decel=1.0, max_jerk=1e6)
    assert 0.45 < new.vel <= 0.5
    # From full acceleration just below the target, the jerk-aware aim brakes early.
    state = AxisState(0.0, 0.0)
    peak = 0.0
    for _ in range(200):
        state, _ = limit_axis(0.5, state, 0.05, max_vel=1.0, max_accel=2.0, max_decel=2.0, max_jerk=5.0)
        peak = max(peak, state.vel)
    assert peak <= 0.5 and state.vel == pytest.approx(0.5, abs=1e-6)


def test_reports_active_limits() -> None:
    lim = dict(max_vel=1.0, max_accel=1.0, max_decel=2.0, max_jerk=1000.0)
    _, active = limit_axis(5.0, AxisState(0.0, 0.0), 0.1, **lim)
    assert "velocity" in active and "accel" in active
    _, active = limit_axis(0.0, AxisState(1.0, 0.0), 0.1, **lim)
    assert "decel" in active
    _, active = limit_axis(1.0, AxisState(0.0, 0.0), 0.01, max_vel=1.0, max_accel=1.0,
                           max_decel=1.0, max_jerk=1.0)
    assert active == ("jerk",)


def test_zero_crossing_decelerates_to_zero_first() -> None:
    # Decel is much stronger than accel: crossing must happen at |a| <= accel.
    lim = dict(max_vel=1.0, max_accel=0.5, max_decel=4.0, max_jerk=20.0)
    state = AxisState(1.0, 0.0)
    for _ in range(400):
        new, active = limit_axis(-1.0, state, 0.02, **lim)
        check_step(state, new, active, 0.02, lim)
        if state.vel > 0.0 >= new.vel:
            assert abs(new.acc) <= 0.5 + EPS
        state = new
    assert state.vel == pytest.approx(-1.0, abs=1e-6)


def test_dt_zero_and_invalid_inputs() -> None:
    s = AxisState(0.3, 0.1)
    assert limit_axis(1.0, s, 0.0, 1.0, 1.0, 1.0, 1.0) == (s, ())
    assert limit_axis(1.0, s, -1.0, 1.0, 1.0, 1.0, 1.0) == (s, ())
    for bad in (math.nan, math.inf, -math.inf):
        with pytest.raises(ValueError, match="target"):
            limit_axis(bad, s, 0.1, 1.0, 1.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="max_jerk"):
        limit_axis(0.0, s, 0.1, 1.0, 1.0, 1.0, 0.0)


def test_tightened_velocity_limit_has_priority_and_reports_exceeded() -> None:
    # State far above a freshly tightened limit: velocity wins, the others are reported.
    new, active = limit_axis(0.0, AxisState(1.0, 0.0), 0.05, max_vel=0.2, max_accel=1.0,
                             max_decel=1.0, max_jerk=1.0)
    assert abs(new.vel) <= 0.2 + EPS
    assert "decel_exceeded" in active and "jerk_exceeded" in active
