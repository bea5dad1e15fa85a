"""Tests of the actuator bridge core (hjepa_agent.core.bridge)."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hjepa_agent.config.ego_model import load_ego_model
from hjepa_agent.config.loader import ConfigError, build
from hjepa_agent.core.events import Transition
from hjepa_agent.core.bridge import AxisConfig, Bridge, BridgeConfig
from hjepa_agent.core.types import Mode, Proposal

EGO = load_ego_model(Path(__file__).resolve().parents[2] / "config" / "ego_model.yaml")
CFG = BridgeConfig.from_ego(EGO, source_timeout_s=0.3, mode_timeout_s=0.5, rate_hz=20.0)
EPS = 1e-9


def make(mode: Mode | None = Mode.HABITUAL, now: float = 0.0) -> Bridge:
    b = Bridge(CFG)
    if mode is not None:
        b.on_mode(mode, now)
    b.step(now)
    return b


def bound(lim: AxisConfig, before: float, after: float) -> float:
    """Accel/decel bound applicable to a change of velocity from ``before`` to ``after``."""
    if before == 0.0 or (before > 0.0 and after >= before) or (before < 0.0 and after <= before):
        return lim.max_accel
    if before * after >= 0.0:
        return lim.max_decel
    return min(lim.max_accel, lim.max_decel)


def drive(b: Bridge, t0: float, t1: float, v: float = 0.5, w: float = 0.0, source: str = "habitual",
          mode: Mode = Mode.HABITUAL) -> list:
    """Feed fresh mode and proposals every period from t0 to t1, stepping each time."""
    outs = []
    n = int(round((t1 - t0) * CFG.rate_hz))
    for k in range(n + 1):
        t = t0 + k * CFG.period_s
        b.on_mode(mode, t)
        b.on_proposal(Proposal(t, v, w, source), t)
        outs.append(b.step(t))
    return outs


def test_config_from_ego_and_validation() -> None:
    assert CFG.linear.max_velocity == EGO.operating.max_linear_mps
    assert CFG.linear.max_decel == EGO.hard.kinematics.linear_x.max_decel
    assert CFG.angular.max_jerk == EGO.hard.kinematics.angular_z.max_jerk
    with pytest.raises(ValueError, match="source_timeout_s"):
        BridgeConfig(CFG.linear, CFG.angular, source_timeout_s=0.0)
    with pytest.raises(ConfigError, match="linear.max_decel"):
        build(BridgeConfig, {"linear": {"max_velocity": 1.0, "max_accel": 1.0, "max_decel": -1.0, "max_jerk": 1.0},
                             "angular": {"max_velocity": 1.0, "max_accel": 1.0, "max_decel": 1.0, "max_jerk": 1.0}},
              "bridge.yaml")


op_st = st.one_of(
    st.tuples(st.just("proposal"), st.sampled_from(["habitual", "planner", "bogus"]),
              st.one_of(st.floats(-2.0, 2.0), st.sampled_from([math.nan, math.inf, -math.inf, 1e9, -7.0])),
              st.one_of(st.floats(-4.0, 4.0), st.sampled_from([math.nan, math.inf, 1e9]))),
    st.tuples(st.just("mode"), st.sampled_from(list(Mode))),
    st.tuples(st.just("estop"), st.booleans()),
    st.tuples(st.just("reset")),
    st.tuples(st.just("hold"), st.booleans()),
    st.tuples(st.just("step")),
)


@settings(max_examples=300, deadline=None)
@given(ops=st.lists(st.tuples(op_st, st.floats(0.0, 0.4)), min_size=1, max_size=150))
def test_any_interleaving_respects_limits(ops: list) -> None:
    b = Bridge(CFG)
    now, prev = 0.0, b.step(0.0)
    for op, advance in ops:
        now += advance
        kind = op[0]
        if kind == "proposal":
            b.on_proposal(Proposal(now, op[2], op[3], op[1]), now)
        elif kind == "mode":
            b.on_mode(op[1], now)
        elif kind == "estop":
            b.estop(op[1], now)
        elif kind == "reset":
            b.reset_estop(now)
        elif kind == "hold":
            b.hold(op[1], now)
        out = b.step(now)
        assert abs(out.v) <= CFG.linear.max_velocity + EPS
        assert abs(out.w) <= CFG.angular.max_velocity + EPS
        dt = out.stamp_s - prev.stamp_s
        assert abs(out.v - prev.v) <= bound(CFG.linear, prev.v, out.v) * dt + EPS
        assert abs(out.w - prev.w) <= bound(CFG.angular, prev.w, out.w) * dt + EPS
        assert not any(c.endswith("_exceeded") for c in out.clamps)
        assert out.state in ("DRIVING", "STOPPING", "STOPPED", "ESTOP")
        if out.state == "DRIVING":
            assert b.is_active_source("habitual", now) or b.is_active_source("planner", now)
        prev = out


def test_same_time_steps_do_not_change_output() -> None:
    b = make()
    outs = drive(b, 0.0, 0.5)
    again = [b.step(outs[-1].stamp_s) for _ in range(3)]
    assert all((o.v, o.w) == (outs[-1].v, outs[-1].w) for o in again)


def test_stale_source_decelerates_in_time_within_decel_and_holds_zero() -> None:
    b = make()
    outs = drive(b, 0.0, 3.0)
    t_last = outs[-1].stamp_s
    assert outs[-1].v == pytest.approx(0.5, abs=1e-6) and outs[-1].state == "DRIVING"
    prev, started, zero_at = outs[-1], None, None
    for k in range(1, 101):
        t = t_last + k * CFG.period_s
        b.on_mode(Mode.HABITUAL, t)  # the mode stays fresh; only the source went quiet
        out = b.step(t)
        if started is None and out.v < prev.v:
            started = t
            assert out.state == "STOPPING" and out.reason.startswith("source habitual stale")
        assert prev.v - out.v <= CFG.linear.max_decel * CFG.period_s + EPS
        assert out.v >= -EPS
        if zero_at is None and abs(out.v) <= 1e-6:
            zero_at = t
        if zero_at is not None:
            assert abs(out.v) <= 1e-6
        assert out.origin_stamp_s == outs[-1].origin_stamp_s
        prev = out
    assert started is not None and started <= t_last + CFG.source_timeout_s + CFG.period_s + EPS
    assert zero_at is not None and prev.state == "STOPPED"
    assert b.counters["stale_stops"] == 1


def test_estop_latches_until_reset_and_reset_refused_while_engaged() -> None:
    b = make()
    outs = drive(b, 0.0, 2.0)
    t = outs[-1].stamp_s
    b.estop(True, t)
    out = b.step(t + 0.05)
    assert out.state == "ESTOP" and out.reason == "estop latched"
    assert any(e.kind == "estop" for e in out.events)
    outs = drive(b, t + 0.1, t + 3.0)  # fresh proposals do not move it
    assert all(o.state == "ESTOP" for o in outs) and abs(outs[-1].v) <= 1e-6
    t = outs[-1].stamp_s
    assert b.reset_estop(t) == (False, "estop input still engaged")
    b.estop(False, t)
    assert b.step(t + 0.05).state == "ESTOP"  # releasing the input does not unlatch
    ok, reason = b.reset_estop(t + 0.05)
    assert ok, reason
    outs = drive(b, t + 0.1, t + 1.0)
    assert outs[-1].state == "DRIVING" and outs[-1].v > 0.1
    assert b.counters["estops"] == 1


def test_reset_refused_while_moving() -> None:
    b = make()
    outs = drive(b, 0.0, 2.0)
    t = outs[-1].stamp_s
    b.estop(True, t)
    b.estop(False, t)
    b.step(t + 0.05)
    ok, reason = b.reset_estop(t + 0.05)
    assert not ok and reason.startswith("still moving")


@pytest.mark.parametrize("v, w, source", [(math.nan, 0.0, "habitual"), (0.3, math.inf, "habitual"),
                                          (50.0, 0.0, "habitual"), (0.3, 0.0, "teleop")])
def test_bad_proposal_rejected_counted_and_ignored(v: float, w: float, source: str) -> None:
    b = make()
    reason = b.on_proposal(Proposal(0.0, v, w, source), 0.0)
    assert reason is not None
    out = b.step(0.05)
    assert (out.v, out.w) == (0.0, 0.0) and out.state == "STOPPED"
    assert b.counters["rejections"] == 1
    assert any(e.kind == "rejection" and e.reasons[1] == reason for e in out.events)


def test_nan_after_good_proposal_does_not_replace_it() -> None:
    b = make()
    b.on_proposal(Proposal(0.0, 0.2, 0.0, "habitual"), 0.0)
    assert b.on_proposal(Proposal(0.01, math.nan, 0.0, "habitual"), 0.01) is not None
    out = b.step(0.05)
    assert out.origin_stamp_s == 0.0 and out.v > 0.0 and math.isfinite(out.v)


def test_safe_stop_mode_stops() -> None:
    b = make()
    outs = drive(b, 0.0, 2.0)
    outs = drive(b, 2.05, 5.0, mode=Mode.SAFE_STOP)
    assert outs[0].reason == "mode SAFE_STOP"
    assert outs[-1].state == "STOPPED" and outs[-1].v == pytest.approx(0.0, abs=1e-9)


def test_planner_drives_in_planning_and_habitual_ignored() -> None:
    b = make(Mode.PLANNING)
    outs = drive(b, 0.0, 1.0, v=0.4, source="habitual", mode=Mode.PLANNING)
    assert outs[-1].reason == "no proposal from planner" and outs[-1].v == 0.0
    b.on_proposal(Proposal(1.05, 0.4, 0.0, "planner"), 1.05)
    assert b.is_active_source("planner", 1.05) and not b.is_active_source("habitual", 1.05)
    outs = drive(b, 1.05, 3.0, v=0.4, source="planner", mode=Mode.OPTIMISING)
    assert outs[-1].state == "DRIVING" and outs[-1].v == pytest.approx(0.4, abs=1e-6)


def test_stale_mode_stops() -> None:
    b = make()
    outs = drive(b, 0.0, 2.0)
    t = outs[-1].stamp_s
    for k in range(1, 60):  # proposals stay fresh, the mode does not
        b.on_proposal(Proposal(t + k * 0.05, 0.5, 0.0, "habitual"), t + k * 0.05)
        out = b.step(t + k * 0.05)
    assert out.reason.startswith("mode stale") and out.state == "STOPPED"


def test_operating_limit_tightening_takes_effect_and_raising_refused() -> None:
    b = make()
    outs = drive(b, 0.0, 2.0, v=0.6, w=1.8)
    assert outs[-1].v == pytest.approx(0.6, abs=1e-6)
    b.set_operating_limits(0.3, 1.0, now_s=2.0)
    outs2 = drive(b, 2.05, 4.0, v=0.6, w=1.8)
    prev = outs[-1]
    for o in outs2:  # comes down within decel, no step
        assert prev.v - o.v <= CFG.linear.max_decel * CFG.period_s + EPS
        prev = o
    assert outs2[-1].v == pytest.approx(0.3, abs=1e-6) and outs2[-1].w == pytest.approx(1.0, abs=1e-6)
    assert "linear_x.velocity" in outs2[-1].clamps
    with pytest.raises(ValueError, match="max_linear_mps"):
        b.set_operating_limits(0.7, 1.0)
    with pytest.raises(ValueError, match="max_angular_rps"):
        b.set_operating_limits(0.3, -1.0)
    b.set_operating_limits(0.6, 1.8)  # back up to the start value is allowed
    assert b.operating_limits == (0.6, 1.8)


def test_operator_limits_times_the_watchdogs_speed_scale_are_in_force() -> None:
    """The node passes both through: the core composes them (tighten only on the operator's, the scale
    applied when it moves by more than SCALE_STEP) and says so in a "limits" event."""
    from hjepa_agent.core.bridge import SCALE_STEP
    b = make()
    lin0, ang0 = b.operating_limits
    b.set_operating_limits(0.4, 1.0, now_s=1.0)
    b.on_speed_scale(0.5, now_s=1.5)
    assert b.operating_limits == (0.4 * 0.5, 1.0 * 0.5) and b.operator_limits == (0.4, 1.0)
    limits = [e for e in b.step(1.5).events if e.kind == "limits"]
    assert [e.reasons for e in limits] == [("max_linear_mps=0.4", "max_angular_rps=1"),
                                           ("max_linear_mps=0.2", "max_angular_rps=0.5")]
    b.on_speed_scale(0.5 + 0.9 * SCALE_STEP, now_s=2.0)      # less than a step: not worth a change
    assert b.operating_limits == (0.2, 0.5)
    b.on_speed_scale(0.5 + 2 * SCALE_STEP, now_s=2.0)
    assert b.operating_limits == pytest.approx((0.4 * 0.52, 1.0 * 0.52))
    b.set_operating_limits(lin0, ang0, now_s=3.0)           # back up to the start: the scale still applies
    assert b.operating_limits == pytest.approx((lin0 * 0.52, ang0 * 0.52))
    with pytest.raises(ValueError, match="^max_linear_mps: .* loosen .* only be tightened"):
        b.set_operating_limits(lin0 + 1e-6, ang0)            # the scale does not make room for a looser one
    for bad in (math.nan, math.inf, -0.1):
        with pytest.raises(ValueError, match="^max_angular_rps: must be finite and >= 0"):
            b.set_operating_limits(lin0, bad)
    for bad in (-0.01, 1.01, math.nan):
        with pytest.raises(ValueError, match="speed_scale"):
            b.on_speed_scale(bad, now_s=4.0)
    b.on_speed_scale(0.0, now_s=5.0)                         # a full derating stops the base within its limits
    assert b.operating_limits == (0.0, 0.0) and b.operator_limits == (lin0, ang0)


def test_due_and_events_on_state_change() -> None:
    b = Bridge(CFG)
    assert b.due(0.0)
    out = b.step(0.0)
    assert not b.due(0.01) and b.due(0.0 + 0.5 * CFG.period_s)
    b.on_mode(Mode.HABITUAL, 0.05)
    b.on_proposal(Proposal(0.05, 0.5, 0.0, "habitual"), 0.05)
    out = b.step(0.05)
    assert out.state == "DRIVING"
    assert any(e.kind == "state" and e.transition == Transition("STOPPED", "DRIVING") for e in out.events)
    assert any(e.kind == "clamp" for e in out.events) and b.counters["clamps"] >= 1
    assert b.counters["outputs"] == 2


def test_clock_going_back_forgets_inputs_and_stops() -> None:
    b = make()
    outs = drive(b, 0.0, 2.0)
    out = b.step(1.0)
    assert (out.v, out.w) == (outs[-1].v, outs[-1].w)  # no motion change on a dt <= 0 step
    assert any(e.kind == "clock" for e in out.events) and out.reason == "no mode received"
    out = b.step(1.05)
    assert out.state == "STOPPING" and out.v < outs[-1].v


@settings(max_examples=200, deadline=None)
@given(v=st.floats(-0.5, 0.5), w=st.floats(-1.0, 1.0), drive_s=st.floats(0.05, 3.0),
       steps=st.lists(st.floats(0.001, 0.2), min_size=80, max_size=120), held_s=st.floats(0.0, 30.0))
def test_held_ramps_to_zero_within_limits_holds_and_releases_without_latching(v: float, w: float, drive_s: float,
                                                                              steps: list, held_s: float) -> None:
    """The node's lifecycle hold (inactive): with fresh inputs still coming, from any motion the output
    comes down within the decel bounds at any step intervals, reaches zero and stays there; released
    after any time held, it drives again, its first change bounded by the accel limit over the interval
    since the release (no jump for the time held)."""
    b = make()
    outs = drive(b, 0.0, drive_s, v=v, w=w)
    now, prev = outs[-1].stamp_s, outs[-1]
    b.hold(True, now)
    zero_at = None
    for dt in steps:
        now += dt
        b.on_mode(Mode.HABITUAL, now)
        b.on_proposal(Proposal(now, v, w, "habitual"), now)   # fresh inputs: held all the same
        out = b.step(now)
        assert b.is_stopping(now) and out.state in ("STOPPING", "STOPPED") and out.reason.startswith("held")
        assert abs(out.v - prev.v) <= bound(CFG.linear, prev.v, out.v) * dt + EPS
        assert abs(out.w - prev.w) <= bound(CFG.angular, prev.w, out.w) * dt + EPS
        assert abs(out.v) <= CFG.linear.max_velocity + EPS and abs(out.w) <= CFG.angular.max_velocity + EPS
        if zero_at is None and b.standing_still():
            zero_at = now
        if zero_at is not None:
            assert abs(out.v) <= EPS and abs(out.w) <= EPS and out.state == "STOPPED"
        prev = out
    # from the operating limits the stop takes at most ~1 s here (decel >= 1 m/s^2, 2 rad/s^2): 80 steps >= 0.08 s
    if sum(steps) >= 3.0:
        assert zero_at is not None, "the held output never reached zero"
    now += held_s
    b.hold(False, now)
    b.on_mode(Mode.HABITUAL, now + 0.05)
    b.on_proposal(Proposal(now + 0.05, 0.5, 0.0, "habitual"), now + 0.05)
    before = b.step(now).v if zero_at is None else 0.0
    out = b.step(now + 0.05)
    assert out.state == "DRIVING"
    assert abs(out.v - before) <= CFG.linear.max_accel * 0.05 + EPS


def test_hold_is_no_latch_and_the_estop_still_wins() -> None:
    b = make()
    drive(b, 0.0, 1.0)
    b.hold(True, 1.0)
    b.estop(True, 1.0)
    assert b.step(1.05).state == "ESTOP"
    b.estop(False, 1.1)
    b.hold(False, 1.1)
    assert b.step(1.15).state == "ESTOP"     # released hold: the latched e-stop still stops
    for k in range(60):
        b.step(1.2 + 0.05 * k)
    assert b.reset_estop(4.3)[0]
    outs = drive(b, 4.3, 5.3)
    assert outs[-1].state == "DRIVING" and outs[-1].v > 0.1
