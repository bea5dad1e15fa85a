"""Battery and motor temperature required, optional or absent (the ego model's hard.sensors.*.presence):
what the watchdog core stops for, derates for, and says, in each mode."""
from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings, strategies as st

from hjepa_agent.config.ego_model import MAY_BE_MISSING, EgoModel
from hjepa_agent.core.events import Cause
from hjepa_agent.core.types import Mode
from hjepa_agent.core.watchdog import PROTECTIONS
from test_watchdog import CFG, EGO, Feed, started

READING = {"battery": "battery", "temperature": "temp"}
"""Feed's attribute holding each input's reading."""
LOW = {"battery": 20.0, "temperature": 70.0}
"""A reading that derates to 0.65 (test_watchdog.test_derating), and one beyond the limit that stops."""
BEYOND = {"battery": 9.0, "temperature": 85.0}
STOP_CAUSE = {"battery": Cause.BATTERY, "temperature": Cause.TEMPERATURE}


def ego_with(**presence: str) -> EgoModel:
    """The shipped ego model with the given inputs' presence changed."""
    s = EGO.hard.sensors
    sensors = dataclasses.replace(s, **{n: dataclasses.replace(getattr(s, n), presence=p) for n, p in presence.items()})
    return dataclasses.replace(EGO, hard=dataclasses.replace(EGO.hard, sensors=sensors))


def protection_events(outs, cause: Cause | None = None) -> list:
    return [e for o in outs for e in o.events if e.kind == "protection" and (cause is None or cause in e.causes)]


def stops(outs) -> list:
    return [e for o in outs for e in o.events if e.kind == "mode" and e.transition.after == "SAFE_STOP"]


def test_every_input_that_may_be_missing_says_what_is_off_without_it() -> None:
    assert set(PROTECTIONS) == set(MAY_BE_MISSING)


# ---- required (the shipped ego model): today's behaviour ----------------------------------------
@pytest.mark.parametrize("name", MAY_BE_MISSING)
def test_a_required_input_never_received_or_stale_stops_with_its_cause(name: str) -> None:
    f = Feed()
    f.skip = {name}
    out = f.at(0.0)
    assert out.mode == Mode.SAFE_STOP and f"{name} never received" in out.status["message"]
    f = started()
    f.run(0.1, 1.0)
    f.skip = {name}
    outs = f.run(1.1, 4.0)
    (stop,) = stops(outs)
    assert stop.causes == (Cause.STALE_INPUT,) and any(r.startswith(f"{name} stale") for r in stop.reasons)
    assert stop.stamp_s == pytest.approx(1.0 + getattr(EGO.hard.sensors, name).max_age_s + 0.1)
    assert not protection_events(outs)
    assert outs[-1].status["values"][f"{name}_input"] == "required"


# ---- optional ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", MAY_BE_MISSING)
def test_an_optional_input_never_received_stops_nothing_and_is_said_once(name: str) -> None:
    f = Feed(ego=ego_with(**{name: "optional"}))
    f.skip = {name}
    outs = f.run(0.0, 8.0)
    assert all(o.mode == Mode.HABITUAL for o in outs), outs[0].status
    (said,) = protection_events(outs)
    max_age = getattr(EGO.hard.sensors, name).max_age_s
    assert said.causes == (Cause.OPTIONAL_INPUT_MISSING,)
    assert said.stamp_s == pytest.approx(max_age + 0.1)   # not before max_age_s: a sensor starting up is not missing
    assert said.reasons == (f"{name}: optional, not received: {PROTECTIONS[name]}",)
    for o in outs:   # on /diagnostics all along
        assert o.status["values"][f"{name}_input"] == f"optional, not received: {PROTECTIONS[name]}"
        assert o.status["level"] == "WARN" and f"{name} not in force" in o.status["message"]
    assert outs[-1].speed_scale == 1.0   # nothing to derate from


@pytest.mark.parametrize("name", MAY_BE_MISSING)
def test_a_fresh_optional_input_is_judged_as_a_required_one(name: str) -> None:
    req, opt = started(), Feed(ego=ego_with(**{name: "optional"}))
    assert opt.at(0.0).mode == Mode.HABITUAL
    for f in (req, opt):
        setattr(f, READING[name], LOW[name])
    assert opt.at(0.1).speed_scale == req.at(0.1).speed_scale == pytest.approx(0.65)    # derating
    for f in (req, opt):
        setattr(f, READING[name], BEYOND[name])
    o, r = opt.at(0.2), req.at(0.2)
    assert o.mode == r.mode == Mode.SAFE_STOP                                             # floor / limits
    assert [e.causes for e in stops([o])] == [e.causes for e in stops([r])] == [(STOP_CAUSE[name],)]


@pytest.mark.parametrize("name", MAY_BE_MISSING)
def test_an_optional_input_that_goes_stale_switches_its_protections_off_then_on_again(name: str) -> None:
    max_age = getattr(EGO.hard.sensors, name).max_age_s
    f = Feed(ego=ego_with(**{name: "optional"}))
    setattr(f, READING[name], LOW[name])
    assert f.at(0.0).speed_scale == pytest.approx(0.65)
    f.skip = {name}
    outs = f.run(0.1, 6.0)
    assert all(o.mode == Mode.HABITUAL for o in outs)
    stale = [o for o in outs if o.stamp_s > max_age + 1e-9]
    assert all(o.speed_scale == 1.0 for o in stale)                              # no derating left stuck
    assert all(o.speed_scale == pytest.approx(0.65) for o in outs if o.stamp_s <= max_age)
    (off,) = protection_events(outs)
    assert off.stamp_s == pytest.approx(max_age + 0.1) and off.causes == (Cause.OPTIONAL_INPUT_MISSING,)
    assert off.reasons[0].startswith(f"{name}: optional, stale {max_age + 0.1:.2f} s > {max_age:.2f} s: ")
    assert outs[-1].status["values"][f"{name}_input"].endswith(PROTECTIONS[name])
    # readings again, beyond the limit: the protections are back on by themselves, and stop the robot
    f.skip = set()
    setattr(f, READING[name], BEYOND[name])
    back = f.at(6.1)
    (on,) = protection_events([back])
    assert on.causes == () and "received again" in on.reasons[0]
    assert back.mode == Mode.SAFE_STOP and [e.causes for e in stops([back])] == [(STOP_CAUSE[name],)]
    assert back.status["values"][f"{name}_input"] == "optional"


def test_an_optional_battery_trend_still_stops_while_fresh_and_is_forgotten_across_a_gap() -> None:
    """Battery falling fast: the trend stop applies to a fresh optional reading as to a required one;
    after a gap, readings from before it make no trend with those after it."""
    cfg = dataclasses.replace(CFG, limit_predict_s=3.0, limit_warn_s=0.0)
    f = Feed(cfg, ego_with(battery="optional"))
    outs = []
    for i in range(0, 16):                    # 20 %/s from 60 %: the floor (10 %) 2.5 s ahead, within 3 s
        f.battery = 60.0 - 20.0 * 0.1 * i
        outs.append(f.at(round(0.1 * i, 9)))
    (stop,) = stops(outs)
    assert stop.causes == (Cause.LIMIT_TREND,) and stop.stamp_s == pytest.approx(1.0)   # 3 readings over 1 s
    g = Feed(cfg, ego_with(battery="optional"))
    g.run(0.0, 1.5)                           # 80 %, steady
    g.skip = {"battery"}
    g.run(1.6, 4.0)                           # stale from 3.6 s on: history dropped
    g.skip, g.battery = set(), 40.0           # back, much lower, and steady: not a trend
    outs = g.run(4.1, 6.0)
    assert not stops(outs) and all(o.mode == Mode.HABITUAL for o in outs)


# ---- absent ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", MAY_BE_MISSING)
def test_an_absent_input_is_ignored_said_once_at_start_and_shown_all_along(name: str) -> None:
    f = Feed(ego=ego_with(**{name: "absent"}))
    assert f.wd.absent_inputs == (name,)
    setattr(f, READING[name], BEYOND[name])   # whatever arrives (a replayed bag) is not judged
    outs = f.run(0.0, 5.0)
    assert all(o.mode == Mode.HABITUAL for o in outs) and outs[-1].speed_scale == 1.0
    (said,) = protection_events(outs)
    assert said.stamp_s == 0.0 and said.causes == (Cause.INPUT_ABSENT,)
    assert said.reasons == (f"{name}: absent: {PROTECTIONS[name]}",)
    for o in outs:
        assert o.status["values"][f"{name}_input"] == f"absent: {PROTECTIONS[name]}"
        assert o.status["values"][f"age_{name}_s"] == "absent"
    assert outs[-1].status["level"] == "OK"   # the robot has none: not a warning


def test_both_missing_the_robot_still_drives_and_the_other_protections_hold() -> None:
    f = Feed(ego=ego_with(battery="optional", temperature="absent"))
    f.skip = {"battery", "temperature"}
    outs = f.run(0.0, 3.0)
    assert all(o.mode == Mode.HABITUAL for o in outs)
    f.skip = {"battery", "temperature", "scan"}   # a required input still stops
    (stop,) = stops(f.run(3.1, 4.0))
    assert stop.causes == (Cause.STALE_INPUT,)


# ---- property: an optional input that comes and goes ------------------------------------------------
SEGMENTS = st.lists(st.tuples(st.booleans(), st.integers(1, 35), st.floats(-20.0, 100.0)), min_size=1, max_size=6)
"""Stretches of ticks (0.1 s) during which the input is sent (or not), with its reading."""


@settings(max_examples=40, deadline=None)
@given(name=st.sampled_from(MAY_BE_MISSING), segments=SEGMENTS)
def test_an_optional_input_only_ever_lowers_the_speed_and_leaves_nothing_stuck(name: str, segments) -> None:
    """Against the same robot with the input absent: the optional one's speed scale is never higher; once
    it has been missing for max_age_s and the graded levels' dwell (2 steps of dwell_s), it is the
    same; it stops the robot only at ticks where its reading is fresh."""
    max_age = getattr(EGO.hard.sensors, name).max_age_s
    opt, ab = Feed(ego=ego_with(**{name: "optional"})), Feed(ego=ego_with(**{name: "absent"}))
    t, last_sent = 0.0, -1e9
    for send, n, value in segments:
        for _ in range(n):
            for f in (opt, ab):
                f.skip = set() if send else {name}
                setattr(f, READING[name], value)
            o, a = opt.at(t), ab.at(t)
            if send:
                last_sent = t
            assert 0.0 <= o.speed_scale <= a.speed_scale <= 1.0
            if t - last_sent > max_age + 2.0 * CFG.dwell_s + 1e-6:
                assert o.speed_scale == a.speed_scale
            if stops([o]):
                assert t - last_sent <= max_age + 1e-9, (t, last_sent, stops([o]))
            assert a.mode != Mode.SAFE_STOP
            t = round(t + 0.1, 9)
