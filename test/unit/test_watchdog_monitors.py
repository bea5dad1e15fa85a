"""The watchdog's parts, each on its own: the typed status (core/watchdog/status.py) and the monitors
the mode machine reads (freshness, slip, trend, stall, risk)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from hjepa_agent.core.events import Cause
from hjepa_agent.core.geometry import predicted_clearance, rollout_clearance
from hjepa_agent.core.risk import clearance_risk, deviation
from hjepa_agent.core.types import Mode, Plan, Proposal
from hjepa_agent.core.watchdog.freshness import INPUTS, Freshness
from hjepa_agent.core.watchdog.risk import RiskMonitor
from hjepa_agent.core.watchdog.slip import COMMAND_LAG_S, SlipMonitor
from hjepa_agent.core.watchdog.stall import StallMonitor
from hjepa_agent.core.watchdog.status import (LEVELS, PROTECTIONS, Readings, WatchdogOutput, WatchdogStatus,
                                              protection_text)
from hjepa_agent.core.watchdog.trend import TREND_WINDOW_S, TrendMonitor, derating
from test_watchdog import AHEAD, CFG, EGO, scan, world

INPUT_NAMES = ("camera", "scan", "odom", "battery", "temperature", "world_state", "habitual", "planner")


def status(mode: Mode = Mode.HABITUAL, latched: bool = False, causes=(), scale: float = 1.0, level: int = 0,
           protections=None, absent=(), ages=None, **readings) -> WatchdogStatus:
    r = Readings(speed_scale=scale, graded_level=float(level), **readings)
    return WatchdogStatus(mode, latched, r, tuple(causes), ages if ages is not None else dict.fromkeys(INPUT_NAMES),
                          tuple(absent), protections or {"battery": ("required", None), "temperature": ("required", None)})


# ---- status ------------------------------------------------------------------------------
def test_readings_are_typed_and_a_mapping_in_field_order() -> None:
    r = Readings(speed_scale=0.6, risk_z=7.5, charge=0.0, graded_level=1.0)
    assert r.risk_z == 7.5 and r["risk_z"] == 7.5 and r.get("plan_risk") is None and r.get("nothing", 3) == 3
    assert list(r)[0] == "speed_scale" and list(r)[-1] == "graded_level" and len(r) == 13
    assert dict(r) == {**dict.fromkeys(r), "speed_scale": 0.6, "risk_z": 7.5, "charge": 0.0, "graded_level": 1.0}
    assert r == dict(r)                                            # compares as the mapping it is
    with pytest.raises(KeyError):
        r["speed"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.risk_z = 1.0


def test_safe_stop_is_an_error_with_its_causes_or_why_there_are_none() -> None:
    causes = [(Cause.STALE_INPUT, "camera never received"), (Cause.STALE_INPUT, "scan never received"),
              (Cause.AMBIGUITY, "ambiguity 2.000 > 1.138")]
    s = status(Mode.SAFE_STOP, latched=True, causes=causes, scale=0.0)
    assert (s.level, s.message) == ("ERROR", "SAFE_STOP: camera never received; scan never received; "
                                             "ambiguity 2.000 > 1.138")
    v = s.values()
    assert v["causes"] == s.message[len("SAFE_STOP: "):] and v["cause_codes"] == "stale_input,ambiguity"
    assert status(Mode.SAFE_STOP, latched=True).message == "SAFE_STOP: latched: call clear_safe_stop"
    assert status(Mode.SAFE_STOP).message == "SAFE_STOP: starting"


@pytest.mark.parametrize("mode, scale, level, level_text, message", [
    (Mode.HABITUAL, 1.0, 0, "OK", "HABITUAL"),
    (Mode.HABITUAL, 0.999, 0, "WARN", "HABITUAL, speed scaled to 1.00"),        # any slow-down warns
    (Mode.PLANNING, 1.0, 0, "WARN", "PLANNING"),
    (Mode.HABITUAL, 0.6, 1, "WARN", "HABITUAL, speed scaled to 0.60, LIMIT"),
    (Mode.OPTIMISING, 0.3, 2, "WARN", "OPTIMISING, speed scaled to 0.30, SLOW")])
def test_level_and_message_from_mode_scale_and_graded_level(mode, scale, level, level_text, message) -> None:
    s = status(mode, scale=scale, level=level)
    assert (s.level, s.message, s.values()["graded"]) == (level_text, message, LEVELS[level])


def test_an_optional_input_missing_warns_an_absent_one_does_not() -> None:
    missing = status(protections={"battery": ("optional", "not received"), "temperature": ("required", None)})
    assert missing.level == "WARN" and missing.off == ("battery",)
    assert missing.message == f"HABITUAL, battery not in force ({PROTECTIONS['battery']})"
    assert missing.values()["battery_input"] == f"optional, not received: {PROTECTIONS['battery']}"
    absent = status(protections={"battery": ("required", None), "temperature": ("absent", "absent from the ego model")},
                    absent=("temperature",), ages={**dict.fromkeys(INPUT_NAMES), "camera": 0.05})
    assert absent.level == "OK" and absent.off == () and absent.message == "HABITUAL"
    v = absent.values()
    assert v["temperature_input"] == f"absent: {PROTECTIONS['temperature']}" and v["battery_input"] == "required"
    assert (v["age_temperature_s"], v["age_battery_s"], v["age_camera_s"]) == ("absent", "never", "0.050")
    assert protection_text("battery", "optional", None) == "optional"


def test_values_keep_the_keys_order_and_formatting_the_node_publishes() -> None:
    s = status(Mode.PLANNING, scale=0.6, level=1, habitual_clearance_m=0.12345, plan_clearance_m=float("inf"),
               ambiguity=0.5, battery_pct=80.0, temperature_c=None, tracking_error_mps=0.0, tracking_error_rps=0.01,
               risk_z=13.0, habitual_risk=0.25, plan_risk=None, charge=0.0)
    v = s.values()
    assert list(v)[:17] == ["mode", "latched", "speed_scale", "habitual_clearance_m", "plan_clearance_m", "ambiguity",
                            "battery_pct", "temperature_c", "tracking_error_mps", "tracking_error_rps", "risk_z",
                            "habitual_risk", "plan_risk", "charge", "graded", "causes", "cause_codes"]
    assert list(v)[17:] == [f"age_{n}_s" for n in INPUT_NAMES] + ["battery_input", "temperature_input"]
    assert (v["mode"], v["latched"], v["speed_scale"], v["habitual_clearance_m"], v["plan_clearance_m"]) == (
        "PLANNING", "False", "0.600", "0.123", "inf")
    assert (v["temperature_c"], v["plan_risk"], v["charge"], v["causes"], v["cause_codes"]) == ("n/a", "n/a", "0.000",
                                                                                                  "", "")
    assert all(isinstance(x, str) for x in v.values())


def test_the_output_shows_the_status_of_its_decision_made_from_the_typed_values() -> None:
    s = status(Mode.SAFE_STOP, causes=[(Cause.BATTERY, "battery 5.0 % below floor 10.0 %")], scale=0.0)
    out = WatchdogOutput(1.0, Mode.SAFE_STOP, 0.0, (), s)
    assert out.status == {"level": "ERROR", "message": s.message, "values": s.values()}
    assert out.readings is s.readings and out.readings["speed_scale"] == 0.0
    shown = dataclasses.replace(out, mode=Mode.HABITUAL, speed_scale=1.0)   # enabled: false publishes HABITUAL
    assert shown.status == out.status                                      # the status says what was decided


# ---- freshness ---------------------------------------------------------------------------


def sensors(**presence: str):
    """The shipped ego model's sensors with the given presences (battery / temperature)."""
    s = EGO.hard.sensors
    return dataclasses.replace(s, **{n: dataclasses.replace(getattr(s, n), presence=p) for n, p in presence.items()})


def test_freshness_times_a_sensor_by_the_older_of_stamp_and_receipt_and_refuses_nonsense() -> None:
    f = Freshness(sensors(), CFG)
    f.on_input("camera", 5.0, 4.0)            # a stamp from the future counts from its receipt
    f.on_input("scan", 3.5, 4.0)
    assert (f.seen["camera"], f.seen["scan"]) == (4.0, 3.5)
    assert f.ages(4.5)["scan"] == 1.0 and f.ages(4.5)["odom"] is None and list(f.ages(4.5)) == list(INPUTS)
    with pytest.raises(ValueError, match="unknown input"):
        f.on_input("lidar", 1.0, 1.0)
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match="finite"):
            f.on_input("camera", bad, 1.0)
        with pytest.raises(ValueError, match="finite"):
            f.on_input("camera", 1.0, bad)


def test_an_input_is_stale_only_past_its_maximum_age() -> None:
    f = Freshness(sensors(), CFG)
    limit = f.max_age["camera"]
    f.on_input("camera", 0.0, 0.0)
    assert f.stale(limit, ("camera",), -float("inf")) == []                          # exactly at it: fresh
    (cause, text), = f.stale(limit + 0.01, ("camera",), -float("inf"))
    assert cause == Cause.STALE_INPUT and text == f"camera stale {limit + 0.01:.2f} s > {limit:.2f} s"
    assert f.stale(0.0, ("scan",), -float("inf")) == [(Cause.STALE_INPUT, "scan never received")]


def test_a_deliberation_source_is_timed_from_entering_its_mode_at_the_latest() -> None:
    f = Freshness(sensors(), CFG)
    limit = f.max_age["planner"]
    assert f.stale(10.0 + limit, ("planner",), 10.0) == []                           # just entered: may start now
    assert f.stale(10.0 + limit + 0.5, ("planner",), 10.0) == [
        (Cause.STALE_INPUT, f"planner silent {limit + 0.5:.2f} s > {limit:.2f} s")]
    f.on_input("planner", 10.4, 10.4)
    assert f.stale(10.4 + limit, ("planner",), 10.0) == []


def test_the_required_inputs_follow_mode_presence_and_enforcement() -> None:
    f = Freshness(sensors(battery="optional", temperature="absent"), CFG)
    base = ("camera", "scan", "odom", "world_state")
    assert f.required(Mode.HABITUAL) == base + ("habitual",)
    assert f.required(Mode.PLANNING) == f.required(Mode.OPTIMISING) == base + ("planner",)
    assert f.required(Mode.SAFE_STOP) == base
    assert f.required(Mode.PLANNING, enforced=False) == base + ("habitual",)   # HABITUAL is in force
    assert "temperature" not in f.max_age and f.absent == ("temperature",)
    f.on_input("temperature", 1.0, 1.0)                                          # absent: ignored
    assert "temperature" not in f.seen and f.ages(1.0)["temperature"] is None


def test_configure_takes_the_agents_own_maximum_ages_from_the_thresholds() -> None:
    f = Freshness(sensors(), CFG)
    f.configure(dataclasses.replace(CFG, habitual_max_age_s=0.2, world_state_max_age_s=0.3, planner_max_age_s=0.4))
    assert (f.max_age["habitual"], f.max_age["world_state"], f.max_age["planner"]) == (0.2, 0.3, 0.4)


def test_protections_are_off_while_an_optional_input_is_missing_and_said_once_per_change() -> None:
    f = Freshness(sensors(battery="optional", temperature="absent"), CFG)
    limit = f.max_age["battery"]
    events, off = f.protections(0.0)                       # first tick: the absent one is said, once
    assert [e.causes for e in events] == [(Cause.INPUT_ABSENT,)] and off == []
    assert f.missing("temperature", 0.0) == "absent from the ego model" and f.missing("camera", 0.0) is None
    assert f.missing("battery", 0.0) == "not received"
    assert f.protections(limit) == ([], [])                 # a sensor starting up is not reported yet
    events, off = f.protections(limit + 0.01)
    assert [e.causes for e in events] == [(Cause.OPTIONAL_INPUT_MISSING,)] and off == ["battery"]
    assert events[0].reasons == (f"battery: optional, not received: {PROTECTIONS['battery']}",)
    assert f.protections(limit + 0.5) == ([], [])           # said once
    f.on_input("battery", 2.0, 2.0)
    assert f.missing("battery", 2.0 + limit) is None        # exactly at its maximum age: in force
    events, off = f.protections(2.0)
    assert [e.reasons for e in events] == [("battery: optional, received again: its protections are back on",)]
    assert f.missing("battery", 2.0 + limit + 0.01) == f"stale {limit + 0.01:.2f} s > {limit:.2f} s"
    assert f.protection_states(2.0) == {"battery": ("optional", None), "temperature": ("absent",
                                                                                       "absent from the ego model")}
    assert f.protection_status(2.0)["temperature"] == f"absent: {PROTECTIONS['temperature']}"


# ---- slip --------------------------------------------------------------------------------

SLIP = dataclasses.replace(CFG, slip_tolerance_mps=0.1, slip_tolerance_rps=0.2, slip_window_s=0.5)


def test_no_slip_without_odometry_or_commands() -> None:
    s = SlipMonitor()
    assert s.slip(1.0, SLIP) is None and s.tracking is None
    s.on_odom(0.0, 0.0)
    assert s.slip(1.0, SLIP) is None and s.tracking is None                         # nothing commanded yet
    s.on_command(0.5, 0.0, 1.0)
    assert s.slip(1.0 + COMMAND_LAG_S + 0.01, SLIP) is None and s.tracking is None    # too old to compare


def test_slip_is_the_measured_speed_off_every_recent_command_for_the_whole_window() -> None:
    s = SlipMonitor()
    s.on_command(0.5, 0.0, 0.0)
    s.on_command(0.2, 0.0, 0.1)
    s.on_odom(0.5 + 0.1, 0.0)                      # within tolerance of the older command (the base's lag)
    assert s.slip(0.2, SLIP) is None and s.tracking == pytest.approx((0.1, 0.0))
    s.on_odom(0.0, 0.0)                            # 0.2 off the nearest command: more than the tolerance
    whys = []
    for t in (0.25, 0.5, 0.625, 0.75):             # the bridge goes on commanding 0.2 m/s
        s.on_command(0.2, 0.0, t)
        whys.append(s.slip(t, SLIP))
    assert whys[:3] == [None] * 3                  # less than the window since 0.25 s
    assert whys[3].startswith("wheel slip for 0.5 s: measured 0.00 m/s")   # exactly the window
    assert s.tracking == pytest.approx((0.2, 0.0))
    s.on_odom(0.2, 0.0)
    assert s.slip(0.75, SLIP) is None              # following again: the window starts over
    s.on_odom(0.0, 0.0)
    assert s.slip(0.8, SLIP) is None and s.slip(1.3, dataclasses.replace(SLIP, slip_window_s=0.0)) is None  # 0: off
    assert s.slip(0.8, dataclasses.replace(SLIP, slip_window_s=0.0)) is None
    assert s.tracking == pytest.approx((0.2, 0.0))   # still measured while off


def test_sideways_motion_and_yaw_rate_count_and_a_non_finite_sideways_speed_reads_zero() -> None:
    s = SlipMonitor()
    s.on_command(0.3, 1.0, 0.0)
    s.on_odom(0.3, 1.0, vy=0.15)
    assert s.slip(0.0, SLIP) is None
    s.on_command(0.3, 1.0, 0.4)
    assert s.slip(0.5, SLIP) is not None and s.tracking == pytest.approx((0.15, 0.0))
    s.on_odom(0.3, 1.0 - 0.125, vy=float("nan"))   # yaw off, within its tolerance
    assert s.odom_vy == 0.0 and s.slip(0.6, SLIP) is None and s.tracking == pytest.approx((0.0, 0.125))
    s.on_odom(0.3, 1.0 - 0.25)                     # yaw off by more than its tolerance
    s.on_command(0.3, 1.0, 0.75)
    assert s.slip(0.75, SLIP) is None
    s.on_command(0.3, 1.0, 1.25)
    why = s.slip(1.25, SLIP)
    assert "+0.75 rad/s, commanded 0.30 m/s and +1.00 rad/s" in why and s.tracking == pytest.approx((0.0, 0.25))


def test_overspeed_is_above_the_hard_limit_by_more_than_the_tolerance() -> None:
    k = EGO.hard.kinematics
    s = SlipMonitor()
    assert s.overspeed(k, 0.1) == []
    s.on_odom(k.linear_x.max_velocity * 1.1, -k.angular_z.max_velocity * 1.1)   # exactly at it
    assert s.overspeed(k, 0.1) == []
    s.on_odom(k.linear_x.max_velocity * 1.1 + 1e-6, float("nan"))
    assert [c for c, _ in s.overspeed(k, 0.1)] == [Cause.OVERSPEED, Cause.OVERSPEED]


def test_a_silent_bridge_is_found_and_the_base_ramped_down_at_the_deceleration_limits() -> None:
    k = EGO.hard.kinematics
    s = SlipMonitor()
    assert s.bridge_silent(100.0, 0.5) is None and s.bridge_stop(100.0, 0.5, k) is None   # never heard: nothing moved
    s.on_command(0.5, -1.0, 10.0)
    assert s.bridge_silent(10.5, 0.5) is None and s.causes(10.5, CFG) == []             # exactly at the limit
    assert s.bridge_silent(10.75, 0.5) == pytest.approx(0.75)
    v, w = s.bridge_stop(10.75, 0.5, k)
    assert v == pytest.approx(0.5 - k.linear_x.max_decel * 0.25) and w == pytest.approx(
        -max(0.0, 1.0 - k.angular_z.max_decel * 0.25))
    assert s.bridge_stop(30.0, 0.5, k) == (0.0, -0.0)
    (cause, text), = s.causes(10.75, dataclasses.replace(CFG, bridge_max_age_s=0.5))
    assert cause == Cause.BRIDGE_SILENT and text.startswith("bridge silent 0.75 s > 0.50 s")


# ---- trend -------------------------------------------------------------------------------

FLOOR = EGO.hard.power.battery_floor_pct
TMIN, TMAX = EGO.hard.thermal.min_operating_temp_c, EGO.hard.thermal.max_operating_temp_c


def draining(rate_per_s: float, start: float = 50.0, n: int = 11, dt: float = 0.1, name: str = "battery"):
    t = TrendMonitor()
    for i in range(n):
        t.on_reading(name, start - rate_per_s * i * dt, i * dt)
    return t


def test_the_trend_needs_three_readings_over_a_second_and_ignores_one_odd_reading() -> None:
    assert draining(1.0, n=10).time_to("battery", FLOOR, falling=True) is None      # 0.9 s: too short
    t = draining(1.0)                                                               # 1 %/s from 50 %, over 1 s
    assert t.time_to("battery", FLOOR, falling=True) == pytest.approx(49.0 - FLOOR)
    t.on_reading("battery", 30.0, 1.05)                                             # one odd reading: 19 % off
    assert t.time_to("battery", FLOOR, falling=True) == pytest.approx((30.0 - FLOOR) / 1.0, rel=0.05)
    assert draining(-1.0).time_to("battery", FLOOR, falling=True) is None           # charging: not heading there
    assert draining(1.0, start=FLOOR + 1.0).time_to("battery", FLOOR, falling=True) is None   # at or past it
    t.forget("battery")
    assert t.time_to("battery", FLOOR, falling=True) is None and t.last["battery"] == 30.0


def test_the_history_keeps_the_trend_window() -> None:
    t = draining(1.0, n=61)                                                         # 6 s of readings
    t.on_reading("battery", 0.0, 6.0 + 1e-9)
    assert t._history["battery"][0][0] >= 6.0 - TREND_WINDOW_S


def test_battery_floor_and_temperature_range_are_stops_exactly_past_them() -> None:
    limit = TrendMonitor.limit_causes
    assert limit(FLOOR, TMAX, EGO) == [] and limit(None, None, EGO) == [] and limit(80.0, TMIN, EGO) == []
    assert [c for c, _ in limit(FLOOR - 0.01, TMAX + 0.01, EGO)] == [Cause.BATTERY, Cause.TEMPERATURE]
    assert [c for c, _ in limit(float("nan"), float("nan"), EGO)] == [Cause.BATTERY, Cause.TEMPERATURE]
    assert [c for c, _ in limit(80.0, TMIN - 0.01, EGO)] == [Cause.TEMPERATURE]


def test_a_trend_reaching_the_limit_stops_within_limit_predict_s_and_slows_within_limit_warn_s() -> None:
    t = draining(5.0, start=FLOOR + 14.0)                                           # at FLOOR + 9 %, 5 %/s: 1.8 s away
    cfg = dataclasses.replace(CFG, limit_predict_s=3.0, limit_warn_s=60.0)
    (cause, text), = t.trend_causes(FLOOR + 9.0, None, EGO, cfg)
    assert cause == Cause.LIMIT_TREND and text.startswith(f"battery {FLOOR + 9.0:.1f} % reaches the floor")
    assert t.trend_causes(None, None, EGO, cfg) == []                               # not in force: not judged
    assert t.trend_causes(FLOOR + 9.0, None, EGO, dataclasses.replace(cfg, limit_predict_s=1.8)) == []   # not < it
    assert t.trend_causes(FLOOR + 9.0, None, EGO, dataclasses.replace(cfg, limit_predict_s=0.0)) == []   # off
    assert [(lvl, c) for lvl, _, c in t.slow_downs(FLOOR + 9.0, None, EGO, cfg)] == [(2, Cause.LIMIT_TREND)]
    assert t.slow_downs(FLOOR + 9.0, None, EGO, dataclasses.replace(cfg, limit_warn_s=0.0)) == []
    hot = draining(-10.0, start=TMAX - 15.0, name="temperature")                   # +10 degC/s, 0.5 s away
    assert [c for c, _ in hot.trend_causes(None, TMAX - 5.0, EGO, cfg)] == [Cause.LIMIT_TREND]


def test_derating_is_linear_between_its_thresholds_and_the_limits() -> None:
    cfg = dataclasses.replace(CFG, battery_derate_pct=30.0, temperature_derate_c=60.0, derate_min_scale=0.3)
    lo = cfg.derate_min_scale
    assert derating(None, None, EGO, cfg) == 1.0                                    # nothing in force derates nothing
    assert derating(30.0, 60.0, EGO, cfg) == 1.0 and derating(100.0, TMIN, EGO, cfg) == 1.0
    assert derating(FLOOR, None, EGO, cfg) == pytest.approx(lo) and derating(FLOOR - 1e-9, None, EGO, cfg) == 0.0
    assert derating(None, TMAX, EGO, cfg) == pytest.approx(lo) and derating(None, TMAX + 1e-9, EGO, cfg) == 0.0
    half_bat = derating((FLOOR + 30.0) / 2, None, EGO, cfg)
    assert half_bat == pytest.approx((lo + 1.0) / 2)
    assert derating((FLOOR + 30.0) / 2, TMAX, EGO, cfg) == pytest.approx(min(half_bat, lo))   # the smaller


# ---- stall -------------------------------------------------------------------------------

STALL = dataclasses.replace(CFG, stall_window_s=4.0, stall_progress_m=0.1, stall_motion_m=0.3, stall_goal_radius_m=0.2)


def creeping(step_m: float, goal=(3.0, 0.0), seconds: float = 4.0, sideways_m: float = 0.0) -> StallMonitor:
    """Progress samples every 0.5 s, ``step_m`` closer to the goal (and ``sideways_m`` across) each time."""
    m = StallMonitor()
    for k in range(int(seconds / 0.5) + 1):
        m.on_world_state(world(0.5 * k, scan(), xy=(step_m * k, sideways_m * k), goal=goal), 0.5 * k,
                         STALL.stall_window_s)
    return m


def test_a_stall_is_less_progress_than_stall_progress_m_over_a_full_window() -> None:
    assert creeping(0.0).stalled(4.0, 0.0, STALL).startswith("no progress: goal distance 3.00 m, +0.00 m closer in 4.0 s")
    assert creeping(0.0, seconds=3.5).stalled(3.5, 0.0, STALL) is None        # the window is not full yet
    assert creeping(0.1 / 8).stalled(4.0, 0.0, STALL) is None                 # exactly stall_progress_m closer
    assert creeping(0.09 / 8).stalled(4.0, 0.0, STALL) is not None
    near = dataclasses.replace(STALL, stall_goal_radius_m=0.25)
    assert creeping(0.0, goal=(0.25, 0.0)).stalled(4.0, 0.0, near) is None    # exactly at stall_goal_radius_m
    assert creeping(0.0, goal=(0.375, 0.0)).stalled(4.0, 0.0, near) is not None
    assert creeping(0.0).stalled(4.0, 0.5, STALL) is None                     # the window began before the mode
    assert creeping(0.0).stalled(4.0, 0.0, dataclasses.replace(STALL, stall_window_s=0.0)) is None   # off


def test_stuck_means_also_not_moving_a_detour_is_not_stuck() -> None:
    detour = creeping(0.0, sideways_m=0.3 / 8)                                # 0.3 m across: exactly stall_motion_m
    assert detour.stalled(4.0, 0.0, STALL) is not None and detour.stalled(4.0, 0.0, STALL, stuck=True) is None
    stuck = creeping(0.0, sideways_m=0.29 / 8)
    assert stuck.stalled(4.0, 0.0, STALL, stuck=True).endswith("moved 0.29 m < 0.30 m")


def test_without_a_goal_nothing_is_recorded_and_a_new_mode_restarts_the_window() -> None:
    none = StallMonitor()
    for k in range(9):
        none.on_world_state(world(0.5 * k, scan()), 0.5 * k, 4.0)
    assert none.stalled(4.0, 0.0, STALL) is None
    m = creeping(0.0)
    m.restart()                                                               # keeps the last sample only
    assert m.stalled(4.0, 0.0, STALL) is None
    m.on_world_state(world(8.0, scan(), goal=(3.0, 0.0)), 8.0, 4.0)
    assert m.stalled(8.0, 4.0, STALL) is not None


# ---- risk --------------------------------------------------------------------------------


RADIUS = EGO.hard.footprint.radius_m
NORM = (EGO.hard.kinematics.linear_x.max_velocity, EGO.hard.kinematics.angular_z.max_velocity)
WALL = scan({k: 1.0 for k in AHEAD})


def typical(mean=(-3.0, -2.0), spread=(0.5, 1.0)):
    """A stand-in typical-risk network: the same (mean, spread) of logit risk everywhere."""
    return lambda features: (np.array(mean), np.array(spread))


def plan_of(v: float, t: float = 0.0, risk: float = 0.2) -> Plan:
    return Plan(t, np.tile([v, 0.0], (10, 1)), np.zeros((11, 3)), np.zeros(10), risk, 0.0, 0.0, 0.1, "test")


def test_clearances_of_the_habitual_command_and_of_a_fresh_plan() -> None:
    r = RiskMonitor(None, NORM, RADIUS)
    ws = world(0.0, WALL)
    assert r.clearances(None, Proposal(0.0, 0.5, 0.0, "habitual"), plan_of(0.5), CFG) == (None, None)
    assert r.clearances(ws, None, None, CFG) == (None, None)
    hab, plan = r.clearances(ws, Proposal(0.0, 0.5, 0.0, "habitual"), plan_of(0.0), CFG)
    assert hab == predicted_clearance(WALL, 0.5, 0.0, CFG.risk_horizon_s, RADIUS)
    assert plan == rollout_clearance(WALL, plan_of(0.0).actions, 0.1, CFG.risk_horizon_s, RADIUS) and hab < plan


def test_risks_and_their_deviation_from_the_typical_risk_here() -> None:
    plain = RiskMonitor(None, NORM, RADIUS)
    out = plain.risks(0.3, None, 0.4, CFG)
    assert out == {"habitual_risk": clearance_risk(0.3, 2 * CFG.clearance_plan_m), "plan_risk": None,
                   "habitual_z": None, "plan_z": None, "z": None}                # no network, no plan clearance
    r = RiskMonitor(typical(), NORM, RADIUS)
    r.on_world_state(world(0.0, WALL), 0.0, None, CFG)
    out = r.risks(0.3, 0.2, 0.4, CFG)
    assert out["plan_risk"] == 0.4 and out["plan_z"] == deviation(0.4, -2.0, 1.0)
    assert out["habitual_z"] == deviation(out["habitual_risk"], -3.0, 0.5)
    assert out["z"] == max(out["habitual_z"], out["plan_z"])
    assert r.risks(None, None, None, CFG)["z"] is None


def test_graded_wants_from_the_risk_deviation_and_the_charge_exactly_at_their_thresholds() -> None:
    cfg = dataclasses.replace(CFG, risk_limit_z=6.0, risk_slow_z=9.0, charge_slow=1.5)
    r = RiskMonitor(None, NORM, RADIUS)
    base = {"habitual_risk": 0.5, "plan_risk": 0.6, "habitual_z": 5.0, "plan_z": None}
    assert r.slow_downs({**base, "z": 5.999}, cfg) == []
    (lvl, why, cause), = r.slow_downs({**base, "habitual_z": 6.0, "z": 6.0}, cfg)
    assert (lvl, cause) == (1, Cause.RISK) and why.startswith("habitual risk 0.50 is 6.0 spreads")
    (lvl, why, _), = r.slow_downs({**base, "plan_z": 9.0, "z": 9.0}, cfg)
    assert lvl == 2 and why.startswith("plan risk 0.60") and why.endswith("(>= 9.0)")
    r.charge = 1.5
    assert [(w[0], w[2]) for w in r.slow_downs({**base, "z": None}, cfg)] == [(2, Cause.AFFECTIVE_CHARGE)]


def test_the_charge_is_the_drop_of_the_kept_courses_log_reward_with_a_new_world_state() -> None:
    r = RiskMonitor(None, NORM, RADIUS)
    course = (np.array([[0.5, 0.0]]), CFG.risk_horizon_s, 0.0)
    r.on_world_state(world(0.0, scan()), 0.0, course, CFG)
    assert r.charge == 0.0                                                   # nothing kept yet
    r.on_world_state(world(0.1, scan()), 0.1, course, CFG)
    assert r.charge == 0.0                                                   # the same free world
    r.on_world_state(world(0.2, WALL), 0.2, course, CFG)                     # a wall appears on the course
    assert r.charge > 1.0
    r.on_world_state(world(0.3, WALL), 0.3, None, CFG)                       # the wall stays: no new drop
    assert r.charge == 0.0
    r.on_world_state(world(0.4, scan()), 0.4, None, CFG)                     # nothing followed: no charge
    assert r.charge == 0.0


def test_ambiguity_above_its_threshold_is_a_stop_cause() -> None:
    cfg = dataclasses.replace(CFG, ambiguity_stop=1.0)
    assert RiskMonitor.ambiguity(None, cfg) == [] and RiskMonitor.ambiguity(world(0.0, scan(), 1.0), cfg) == []
    assert RiskMonitor.ambiguity(world(0.0, scan(), 1.001), cfg) == [(Cause.AMBIGUITY, "ambiguity 1.001 > 1.000")]
    assert [c for c, _ in RiskMonitor.ambiguity(world(0.0, scan(), 1e9), cfg)] == [Cause.AMBIGUITY]


# ---- the package's names -----------------------------------------------------------------
def test_every_name_core_watchdog_exported_still_imports_from_it_as_the_same_object() -> None:
    import hjepa_agent.config.thresholds as thresholds
    import hjepa_agent.core.geometry as geometry
    import hjepa_agent.core.watchdog as wd
    from hjepa_agent.core.watchdog import freshness, machine, status as status_mod
    before_17 = ["INPUTS", "LEVELS", "LIVE_UNITS", "PROTECTIONS", "SENSOR_INPUTS", "TIGHTER", "Watchdog",
                 "WatchdogConfig", "WatchdogOutput", "load_watchdog_config", "obstacle_points", "predicted_clearance",
                 "rollout", "rollout_clearance", "tightened"]
    assert set(before_17) <= set(wd.__all__)
    homes = {"INPUTS": freshness, "SENSOR_INPUTS": freshness, "LEVELS": status_mod, "PROTECTIONS": status_mod,
             "WatchdogOutput": status_mod, "Watchdog": machine}
    for name in before_17:
        home = homes.get(name, geometry if hasattr(geometry, name) else thresholds)
        assert getattr(wd, name) is getattr(home, name), name
