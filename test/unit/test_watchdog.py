"""Tests of the watchdog core (hjepa_agent.core.watchdog)."""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest

from builders import world_state
from hjepa_agent.config.ego_model import EgoModel, load_ego_model
from hjepa_agent.config.loader import ConfigError
from hjepa_agent.core.events import Transition
from hjepa_agent.core.types import N_SCAN_BINS, SCAN_RANGE_MAX_M, Mode, Plan, Proposal, WorldState
from hjepa_agent.core.geometry import predicted_clearance, rollout_clearance
from hjepa_agent.core.watchdog import Watchdog, WatchdogConfig, load_watchdog_config

ROOT = Path(__file__).resolve().parents[2]
EGO = load_ego_model(ROOT / "config" / "ego_model.yaml")
SHIPPED = load_watchdog_config(ROOT / "config" / "watchdog.yaml")
# Behaviour tests use their own thresholds, so retuning the shipped file does not change what they test.
CFG = dataclasses.replace(SHIPPED, clearance_plan_m=0.5, clearance_optimise_m=0.25, risk_horizon_s=1.5,
                          ambiguity_stop=1.0)
RADIUS = EGO.hard.footprint.radius_m
AHEAD = (7, 8)  # the two sectors either side of straight ahead (centres at -/+ pi/16)


def scan(obstacles: dict[int, float] | None = None) -> np.ndarray:
    s = np.full(N_SCAN_BINS, SCAN_RANGE_MAX_M, dtype=np.float32)
    for k, r in (obstacles or {}).items():
        s[k] = r
    return s


def world(t: float, scan_bins: np.ndarray, ambiguity: float = 0.1, xy: tuple[float, float] = (0.0, 0.0),
          goal: tuple[float, float] | None = None) -> WorldState:
    return world_state(stamp_s=t, pose=(xy[0], xy[1], 0.0), goal=goal, scan=scan_bins, ambiguity=ambiguity)


class Feed:
    """Drives a Watchdog with fresh, healthy inputs; tests change one thing at a time (``skip``: inputs
    not sent, their stamps and, for battery and temperature, their readings)."""

    def __init__(self, cfg: WatchdogConfig = CFG, ego: EgoModel = EGO) -> None:
        self.wd = Watchdog(cfg, ego)
        self.scan = scan()
        self.hab = (0.0, 0.0)
        self.plan_clear: float | None = None   # None: no plan published
        self.battery, self.temp, self.odom, self.ambiguity = 80.0, 30.0, (0.0, 0.0), 0.1
        self.xy: tuple[float, float] = (0.0, 0.0)
        self.goal: tuple[float, float] | None = None
        self.skip: set[str] = set()

    def at(self, t: float):
        wd = self.wd
        for name in ("camera", "scan", "odom", "battery", "temperature"):
            if name not in self.skip:
                wd.on_input(name, t, t)
        wd.on_odom(*self.odom, t)
        if "battery" not in self.skip:
            wd.on_battery(self.battery, t)
        if "temperature" not in self.skip:
            wd.on_temperature(self.temp, t)
        if "world_state" not in self.skip:
            wd.on_world_state(world(t, self.scan, self.ambiguity, self.xy, self.goal), t)
        if "habitual" not in self.skip:
            wd.on_habitual(Proposal(t, *self.hab, "habitual"), t)
        if self.plan_clear is not None and "planner" not in self.skip:
            wd.on_plan(plan_standing(t), t)
        return wd.tick(t)

    def run(self, t0: float, t1: float, dt: float = 0.1) -> list:
        return [self.at(round(t0 + k * dt, 9)) for k in range(int(round((t1 - t0) / dt)) + 1)]


def plan_standing(t: float) -> Plan:
    """A plan that stays put: its clearance is the nearest obstacle minus the radius."""
    return Plan(t, np.zeros((10, 2)), np.zeros((11, 3)), np.zeros(10), 0.0, 0.0, 0.0, 0.1, "test")


def started(cfg: WatchdogConfig = CFG) -> Feed:
    f = Feed(cfg)
    out = f.at(0.0)
    assert out.mode == Mode.HABITUAL, out.status
    return f


# ---- config -------------------------------------------------------------------------
def test_shipped_yaml_loads_and_fits_ego() -> None:
    assert SHIPPED == WatchdogConfig()  # the documented defaults are the shipped values
    SHIPPED.check_against(EGO)


@pytest.mark.parametrize("key, value", [("clearance_plan_m", -1.0), ("dwell_s", "long"),
                                        ("clearance_optimise_m", 2.0), ("bogus_key", 1.0)])
def test_yaml_errors_name_the_key(tmp_path: Path, key: str, value: object) -> None:
    text = (ROOT / "config" / "watchdog.yaml").read_text() + f"\n{key}: {value}\n"
    if key != "bogus_key":
        text = "\n".join(line for line in text.splitlines() if not line.startswith(f"{key}:")) + f"\n{key}: {value}\n"
    p = tmp_path / "watchdog.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError) as exc:
        load_watchdog_config(p)
    assert exc.value.key == key and str(p) in str(exc.value)


def test_inconsistent_with_ego_is_refused() -> None:
    with pytest.raises(ValueError, match="battery_derate_pct"):
        Watchdog(dataclasses.replace(CFG, battery_derate_pct=5.0), EGO)
    with pytest.raises(ValueError, match="temperature_derate_c"):
        Watchdog(dataclasses.replace(CFG, temperature_derate_c=90.0), EGO)


# ---- geometry -----------------------------------------------------------------------
def test_predicted_clearance_obstacle_ahead() -> None:
    s = scan({k: 1.0 for k in AHEAD})
    # Sector centres at +/-pi/16: driving 1 m straight passes them at sin(pi/16) m.
    c = predicted_clearance(s, 0.5, 0.0, 2.0, RADIUS)
    assert c == pytest.approx(math.sin(math.pi / 16) - RADIUS, abs=1e-3)
    assert c < 0.0
    standing = predicted_clearance(s, 0.0, 0.0, 2.0, RADIUS)
    assert standing == pytest.approx(1.0 - RADIUS, abs=1e-6)
    turning = predicted_clearance(s, 0.5, 1.5, 2.0, RADIUS)
    assert c < turning < standing
    assert predicted_clearance(s, -0.5, 0.0, 2.0, RADIUS) == pytest.approx(standing, abs=1e-6)  # backing away
    assert predicted_clearance(scan(), 0.5, 0.0, 2.0, RADIUS) == math.inf


def test_predicted_clearance_single_sector_exact_geometry() -> None:
    k = 12  # centre angle -pi + pi/8 * 12.5
    ang = -math.pi + math.pi / 8 * 12.5
    s = scan({k: 2.0})
    px, py = 2.0 * math.cos(ang), 2.0 * math.sin(ang)
    # Straight line of 0.8 m: closest point of the segment [0, 0.8] x {0} to (px, py).
    cx = min(max(px, 0.0), 0.8)
    expected = math.hypot(px - cx, py) - RADIUS
    assert predicted_clearance(s, 0.4, 0.0, 2.0, RADIUS) == pytest.approx(expected, abs=1e-6)


def test_rollout_clearance_follows_plan_actions() -> None:
    s = scan({k: 1.0 for k in AHEAD})
    straight = np.tile([0.5, 0.0], (20, 1))
    swerve = np.concatenate([np.tile([0.0, 1.5], (5, 1)), np.tile([0.5, 0.0], (15, 1))])
    assert rollout_clearance(s, swerve, 0.1, 2.0, RADIUS) > rollout_clearance(s, straight, 0.1, 2.0, RADIUS) + 0.3
    with pytest.raises(ValueError):
        predicted_clearance(np.zeros(3), 0.1, 0.0, 1.0, RADIUS)


# ---- SAFE_STOP causes, latching, clearing --------------------------------------------
def test_starts_in_safe_stop_until_inputs_fresh() -> None:
    f = Feed()
    f.skip = {"camera"}
    out = f.at(0.0)
    assert out.mode == Mode.SAFE_STOP and "camera never received" in out.status["message"]
    assert out.status["level"] == "ERROR"
    f.skip = set()
    out = f.at(0.1)
    assert out.mode == Mode.HABITUAL and out.events[0].transition == Transition("SAFE_STOP", "HABITUAL")


@pytest.mark.parametrize("change, expect", [
    (lambda f: f.skip.add("scan"), "scan stale"),
    (lambda f: f.skip.add("odom"), "odom stale"),
    (lambda f: f.skip.add("world_state"), "world_state stale"),
    (lambda f: f.skip.add("habitual"), "habitual silent"),
    (lambda f: setattr(f, "battery", 9.0), "battery 9.0 % below floor"),
    (lambda f: setattr(f, "battery", math.nan), "battery nan %"),
    (lambda f: setattr(f, "temp", 85.0), "temperature 85.0 degC outside"),
    (lambda f: setattr(f, "temp", -20.0), "temperature -20.0 degC outside"),
    (lambda f: setattr(f, "odom", (1.2, 0.0)), "measured |v|=1.200 above hard limit"),
    (lambda f: setattr(f, "odom", (0.0, -3.0)), "measured |w|=3.000 above hard limit"),
    (lambda f: setattr(f, "ambiguity", 2.0), "ambiguity 2.000 > 1.000"),
])
def test_each_safe_stop_cause_latches_and_clears(change, expect: str) -> None:
    f = started()
    f.run(0.1, 1.0)
    change(f)
    outs = f.run(1.1, 2.0)
    stop = next(o for o in outs if o.mode == Mode.SAFE_STOP)
    ev = [e for e in stop.events if e.kind == "mode"]
    assert ev and ev[0].transition == Transition("HABITUAL", "SAFE_STOP")
    assert any(expect in r for r in ev[0].reasons), ev[0].reasons
    assert stop.status["level"] == "ERROR"
    ok, reason = f.wd.clear_safe_stop(2.0)
    assert not ok and expect in reason
    # Cause gone: still latched until cleared.
    g = Feed()
    f.skip, f.battery, f.temp, f.odom, f.ambiguity = set(), g.battery, g.temp, g.odom, g.ambiguity
    outs = f.run(2.1, 3.0)
    assert all(o.mode == Mode.SAFE_STOP for o in outs)
    assert "latched" in outs[-1].status["message"]
    assert f.wd.clear_safe_stop(3.0) == (True, "cleared")
    out = f.at(3.1)
    assert out.mode == Mode.HABITUAL
    assert any(e.transition == Transition("SAFE_STOP", "HABITUAL") and e.reasons == ("safe stop cleared",) for e in out.events)


def test_stale_input_reports_which_and_how_old() -> None:
    f = started()
    f.skip = {"camera"}
    outs = f.run(0.1, 1.0)
    stop = next(o for o in outs if o.mode == Mode.SAFE_STOP)
    assert stop.stamp_s == pytest.approx(0.4)   # first tick past camera max_age_s = 0.35
    assert any(r.startswith("camera stale 0.40 s > 0.35 s") for r in stop.events[0].reasons)


def test_planner_silence_in_planning_stops() -> None:
    f = started()
    f.scan = scan({0: 0.5})  # an obstacle behind at 0.5 m: clearance 0.3 < 0.5 -> PLANNING
    out = f.at(0.1)
    assert out.mode == Mode.PLANNING
    outs = f.run(0.2, 2.0)   # no plan ever arrives
    stop = next(o for o in outs if o.mode == Mode.SAFE_STOP)
    assert "planner silent" in stop.events[0].reasons[0]
    assert 0.1 + CFG.planner_max_age_s - 1e-9 <= stop.stamp_s <= 0.1 + CFG.planner_max_age_s + 0.1 + 1e-9


# ---- deliberation: hysteresis and dwell ---------------------------------------------
def test_hysteresis_no_chattering_around_threshold() -> None:
    f = started()
    f.plan_clear = 1.0
    modes = []
    for k in range(1, 60):  # habitual clearance oscillates 0.49 / 0.51 around 0.5
        f.scan = scan({0: RADIUS + (0.49 if k % 2 else 0.51)})
        out = f.at(k * 0.1)
        modes.append(out.mode)
        assert [e.kind for e in out.events].count("mode") <= 1
    assert modes.count(Mode.PLANNING) == len(modes)   # entered once, stayed
    f.scan = scan({0: RADIUS + CFG.clearance_plan_m + CFG.hysteresis_m + 0.05})
    out = f.at(6.0)
    assert out.mode == Mode.HABITUAL and "habitual clearance" in out.events[0].reasons[0]


def test_dwell_time_before_less_cautious_mode() -> None:
    f = started()
    f.plan_clear = 1.0
    f.scan = scan({0: RADIUS + 0.3})
    assert f.at(0.1).mode == Mode.PLANNING
    f.scan = scan()  # all clear at once
    outs = f.run(0.2, 2.0)
    left = next(o for o in outs if o.mode == Mode.HABITUAL)
    assert left.stamp_s == pytest.approx(0.1 + CFG.dwell_s)


def test_optimising_when_plan_also_too_close_and_steps_back() -> None:
    f = started()
    f.plan_clear = 1.0
    f.scan = scan({0: RADIUS + 0.2})   # standing plan's clearance 0.2 < 0.25
    assert f.at(0.1).mode == Mode.PLANNING
    out = f.at(0.2)
    assert out.mode == Mode.OPTIMISING and out.events[0].transition == Transition("PLANNING", "OPTIMISING")
    assert out.status["level"] == "WARN"
    f.scan = scan({0: RADIUS + 0.4})   # plan clearance 0.4 > 0.25 + 0.1, habitual 0.4 < 0.5
    outs = f.run(0.3, 3.0)
    assert outs[-1].mode == Mode.PLANNING
    back = next(o for o in outs if o.mode == Mode.PLANNING)
    assert back.stamp_s == pytest.approx(0.2 + CFG.dwell_s)


def test_danger_is_immediate_despite_dwell() -> None:
    f = started()
    f.scan = scan({k: 0.6 for k in AHEAD})
    f.hab = (0.5, 0.0)   # would hit within the horizon
    assert f.at(0.1).mode == Mode.PLANNING


# ---- derating -----------------------------------------------------------------------
@pytest.mark.parametrize("battery, temp, scale", [
    (80.0, 30.0, 1.0), (30.0, 30.0, 1.0), (20.0, 30.0, 0.65), (10.0, 30.0, 0.3),
    (80.0, 70.0, 0.65), (80.0, 80.0, 0.3), (20.0, 70.0, 0.65), (15.0, 75.0, 0.475),
])
def test_derating(battery: float, temp: float, scale: float) -> None:
    f = started()
    f.battery, f.temp = battery, temp
    out = f.at(0.1)
    assert out.speed_scale == pytest.approx(scale)
    assert out.status["level"] == ("OK" if scale == 1.0 else "WARN")


def test_unknown_input_name_and_bad_stamp() -> None:
    wd = Watchdog(CFG, EGO)
    with pytest.raises(ValueError, match="unknown input"):
        wd.on_input("lidar", 0.0, 0.0)
    with pytest.raises(ValueError, match="finite"):
        wd.on_input("scan", math.nan, 0.0)
    with pytest.raises(ValueError, match="finite"):
        wd.on_habitual(Proposal(0.0, math.nan, 0.0, "habitual"), 0.0)
    bad = dataclasses.replace(plan_standing(0.0), actions=np.full((3, 2), math.inf))
    with pytest.raises(ValueError, match="plan"):
        wd.on_plan(bad, 0.0)


def _modes(outs) -> list[str]:
    return [e.text() for o in outs for e in o.events if e.kind == "mode"]


def test_a_stalled_habitual_policy_hands_over_to_the_planner_and_the_planner_is_held():
    f = Feed(dataclasses.replace(CFG, stall_window_s=4.0, stall_progress_m=0.1, stall_goal_radius_m=0.5))
    f.goal, f.hab, f.plan_clear = (3.0, 0.0), (0.3, 0.0), 10.0
    outs = f.run(0.0, 3.9)                        # start-up to HABITUAL, then 3.9 s without progress
    assert outs[-1].mode == Mode.HABITUAL
    assert not any(o.habitual_stalled for o in outs)
    outs = f.run(4.0, 5.0)
    assert outs[-1].habitual_stalled               # the planner must not refine the stalled proposal
    stall = [r for r in _modes(outs) if r[0] == "HABITUAL->PLANNING"]
    assert stall and stall[0][1].startswith("no progress: goal distance 3.00 m, +0.00 m closer in 4.")
    t_stall = next(e.stamp_s for o in outs for e in o.events if e.kind == "mode")
    # clear ahead, so only the hold keeps PLANNING; it lasts stall_window_s, then (the plan got the
    # robot 0.5 m closer meanwhile) back to HABITUAL
    f.xy = (0.5, 0.0)
    outs = f.run(5.1, t_stall + 3.9)
    assert all(o.mode == Mode.PLANNING for o in outs)
    outs = f.run(round(t_stall + 4.0, 1), t_stall + 4.5)
    assert outs[-1].mode == Mode.HABITUAL and not outs[-1].habitual_stalled


def test_planning_without_the_proposal_that_still_goes_nowhere_escalates_to_optimising():
    f = Feed(dataclasses.replace(CFG, stall_window_s=4.0, stall_progress_m=0.1, stall_goal_radius_m=0.5))
    f.goal, f.hab, f.plan_clear = (3.0, 0.0), (0.3, 0.0), 10.0
    outs = f.run(0.0, 5.0)
    t_stall = next(e.stamp_s for o in outs for e in o.events if e.kind == "mode" and e.transition == Transition("HABITUAL", "PLANNING"))
    outs = f.run(5.1, t_stall + 3.9)               # held PLANNING, the robot still not moving
    assert all(o.mode == Mode.PLANNING for o in outs)
    outs = f.run(round(t_stall + 4.0, 1), t_stall + 4.5)
    opt = [r for r in _modes(outs) if r[0] == "PLANNING->OPTIMISING"]
    assert outs[-1].mode == Mode.OPTIMISING and outs[-1].habitual_stalled
    assert opt and opt[0][1].startswith("planning without the habitual proposal: no progress")
    t_opt = next(e.stamp_s for o in outs for e in o.events if e.kind == "mode")
    outs = f.run(round(t_stall + 4.6, 1), t_opt + 3.9)   # held for a window although the plan is clear
    assert all(o.mode == Mode.OPTIMISING for o in outs)
    outs = f.run(round(t_opt + 4.0, 1), t_opt + 4.5)
    assert outs[-1].mode == Mode.PLANNING


def test_a_detour_away_from_the_goal_while_planning_is_not_a_stall_to_escalate():
    """Planning without the proposal, the robot drives 0.8 m round an obstacle that takes it no closer
    to the goal (a detour): no OPTIMISING; the same window standing still escalates (test above)."""
    f = Feed(dataclasses.replace(CFG, stall_window_s=4.0, stall_progress_m=0.1, stall_goal_radius_m=0.5,
                                 stall_motion_m=0.3))
    f.goal, f.hab, f.plan_clear = (3.0, 0.0), (0.3, 0.0), 10.0
    outs = f.run(0.0, 5.0)
    t_stall = next(e.stamp_s for o in outs for e in o.events if e.kind == "mode" and e.transition == Transition("HABITUAL", "PLANNING"))
    modes = []
    for k in range(1, 81):                            # sideways, on a circle round the goal: distance stays 3 m
        t = round(5.0 + 0.1 * k, 9)
        ang = 0.1 * k * 0.2 / 3.0                        # 0.2 m/s along the circle
        f.xy = (3.0 - 3.0 * math.cos(ang), 3.0 * math.sin(ang))
        modes.append((t, f.at(t).mode))
    assert t_stall + 4.5 < 13.0 and Mode.OPTIMISING not in [m for _, m in modes]
    assert all(m == Mode.PLANNING for t, m in modes if t < t_stall + 4.0 - 1e-6)   # held, then not escalated


def test_no_progress_while_planning_from_the_habitual_proposal_drops_the_proposal():
    """PLANNING entered for clearance refines the habitual proposal; if that goes nowhere for
    stall_window_s, a "stall" event flags habitual_stalled (the mode stays PLANNING, held)."""
    f = Feed(dataclasses.replace(CFG, stall_window_s=4.0, stall_progress_m=0.1, stall_goal_radius_m=0.5))
    f.goal, f.plan_clear = (3.0, 0.0), 10.0
    f.run(0.0, 1.0)
    f.scan = scan({k: 0.6 for k in AHEAD})
    f.hab = (0.5, 0.0)                             # would hit: PLANNING at once
    outs = f.run(1.1, 4.9)
    assert outs[-1].mode == Mode.PLANNING and not any(o.habitual_stalled for o in outs)
    outs = f.run(5.0, 6.0)
    stalls = [e for o in outs for e in o.events if e.kind == "stall"]
    assert len(stalls) == 1 and stalls[0].reasons[0].startswith("PLANNING: planning without the habitual")
    assert stalls[0].reasons[1].startswith("no progress")
    assert all(o.mode == Mode.PLANNING for o in outs) and outs[-1].habitual_stalled


def test_progress_or_a_near_goal_is_not_a_stall():
    f = Feed(dataclasses.replace(CFG, stall_window_s=4.0, stall_progress_m=0.1, stall_goal_radius_m=0.5))
    f.goal, f.hab = (3.0, 0.0), (0.3, 0.0)
    outs = []
    for k in range(150):                           # 15 s creeping towards the goal at 0.05 m/s
        f.xy = (0.005 * k, 0.0)
        outs.append(f.at(round(0.1 * k, 9)))
    assert outs[-1].mode == Mode.HABITUAL and not any(r[0] == "HABITUAL->PLANNING" for r in _modes(outs))
    g = Feed(dataclasses.replace(CFG, stall_window_s=4.0, stall_goal_radius_m=0.5))
    g.goal, g.xy = (0.3, 0.0), (0.0, 0.0)          # parked 0.3 m from the goal
    assert all(o.mode != Mode.PLANNING for o in g.run(0.0, 10.0))
    off = Feed(dataclasses.replace(CFG, stall_window_s=0.0))
    off.goal = (3.0, 0.0)
    assert all(o.mode != Mode.PLANNING for o in off.run(0.0, 10.0))


def test_stall_settings_are_range_checked():
    for kw in ({"stall_window_s": 0.2}, {"stall_window_s": 61.0}, {"stall_progress_m": -0.1},
               {"stall_goal_radius_m": 11.0}):
        with pytest.raises(ValueError, match=next(iter(kw))):
            dataclasses.replace(CFG, **kw)


@pytest.mark.parametrize("what", ["battery", "temperature"])
def test_a_fast_trend_towards_a_hard_limit_stops_the_robot_while_the_limit_is_still_ahead(what: str) -> None:
    """Battery falling (or motors heating) fast: SAFE_STOP once the trend reaches the ego model's limit
    within limit_predict_s, well before the limit; the same level reached slowly does not stop."""
    floor, hot = EGO.hard.power.battery_floor_pct, EGO.hard.thermal.max_operating_temp_c
    cfg = dataclasses.replace(CFG, limit_predict_s=3.0)
    for rate, stops in ((5.0, True), (0.05, False)):        # per second: a sag, and nominal-ish drain
        f = Feed(cfg)
        f.battery, f.temp = 60.0, 50.0
        f.at(0.0)
        stopped_at = None
        for i in range(1, 101):
            t = 0.1 * i
            if what == "battery":
                f.battery = 60.0 - rate * t
            else:
                f.temp = 50.0 + rate * t
            out = f.at(t)
            if out.mode == Mode.SAFE_STOP and stopped_at is None and t > 0.5:
                stopped_at = t
                value = f.battery if what == "battery" else f.temp
                reason = [r for e in out.events for r in e.reasons if "at its trend" in r]
                assert reason, out.events
        if stops:
            assert stopped_at is not None
            margin = (value - floor) / rate if what == "battery" else (hot - value) / rate
            assert 2.0 < margin <= 3.0 + 0.2           # stopped about limit_predict_s before the limit
        else:
            assert stopped_at is None


def test_one_odd_battery_reading_is_not_a_trend() -> None:
    f = started(dataclasses.replace(CFG, limit_predict_s=3.0))
    f.battery = 40.0                                     # from 80 % to 40 % in one reading, then steady
    modes = [o.mode for o in f.run(0.1, 6.0)]
    assert Mode.SAFE_STOP not in modes


def command_for_2_s(f: Feed, v: float, w: float = 0.0):
    """Command (v, w) every 0.1 s for 2 s while f feeds its odometry: (time of the first SAFE_STOP or
    None, the reasons of its events, the last output)."""
    stops_at, reasons, out = None, [], None
    for i in range(1, 21):
        t = 0.1 * i
        f.wd.on_command(v, t, w)
        out = f.at(t)
        if out.mode == Mode.SAFE_STOP and stops_at is None:
            stops_at, reasons = t, [r for e in out.events for r in e.reasons]
    return stops_at, reasons, out


def test_a_base_that_does_not_move_as_commanded_is_stopped_for_wheel_slip() -> None:
    """Commanded 0.4 m/s, measured 0.05 m/s for longer than slip_window_s: SAFE_STOP with the reason;
    the same command followed (after the base's lag) is fine."""
    cfg = dataclasses.replace(CFG, slip_tolerance_mps=0.15, slip_window_s=0.5)
    for measured, stops in ((0.05, True), (0.38, False)):
        f = started(cfg)
        f.odom = (measured, 0.0)
        stops_at, reasons, _ = command_for_2_s(f, 0.4)
        assert (stops_at is not None) == stops
        if stops:
            assert any("wheel slip" in r for r in reasons)
            assert 0.5 <= stops_at <= 0.8


def test_live_changes_only_tighten_and_keep_the_cross_field_checks() -> None:
    from hjepa_agent.core.watchdog import TIGHTER, tightened
    start = SHIPPED
    tight = tightened(start, start, {"ambiguity_stop": 1.0, "clearance_plan_m": 0.3, "habitual_max_age_s": 0.3}, EGO)
    assert (tight.ambiguity_stop, tight.clearance_plan_m, tight.habitual_max_age_s) == (1.0, 0.3, 0.3)
    # back to the start value is allowed (not looser than start); past it is not
    assert tightened(start, tight, {"ambiguity_stop": start.ambiguity_stop}, EGO).ambiguity_stop == start.ambiguity_stop
    for name, sign in TIGHTER.items():
        looser = getattr(start, name) - sign * 0.01
        with pytest.raises(ValueError, match=name):
            tightened(start, start, {name: looser}, EGO)
    with pytest.raises(ValueError, match="not a live threshold"):
        tightened(start, start, {"stall_window_s": 1.0}, EGO)
    with pytest.raises(ValueError):   # tighter, but above the PLANNING threshold: cross-field check
        tightened(start, start, {"clearance_optimise_m": start.clearance_plan_m + 0.05}, EGO)
    wd = Watchdog(start, EGO)
    wd.reconfigure(tight)
    assert wd.cfg is tight and wd._max_age["habitual"] == 0.3


def test_reactivated_after_being_blind_it_stops_latched_even_with_fresh_inputs() -> None:
    from hjepa_agent.core.events import Cause
    f = started()
    f.run(0.1, 1.0)
    f.wd.on_reactivated(1.0, 2.5)                 # the node was inactive 2.5 s; its inputs are fresh now
    out = f.at(1.05)
    assert out.mode == Mode.SAFE_STOP
    ev = next(e for e in out.events if e.kind == "mode")
    assert ev.causes == (Cause.STALE_INPUT,) and ev.reasons == ("watchdog inactive 2.50 s: blind meanwhile",)
    assert all(o.mode == Mode.SAFE_STOP for o in f.run(1.1, 2.0))   # latched, though nothing is stale
    assert f.wd.clear_safe_stop(2.0) == (True, "cleared")
    assert f.at(2.05).mode == Mode.HABITUAL
