"""The watchdog's parts, each on its own: the typed status (core/watchdog/status.py) and the monitors
the mode machine reads (freshness, slip, trend, stall, risk)."""
from __future__ import annotations

import dataclasses

import pytest

from hjepa_agent.core.events import Cause
from hjepa_agent.core.types import Mode
from hjepa_agent.core.watchdog.status import (LEVELS, PROTECTIONS, Readings, WatchdogOutput, WatchdogStatus,
                                              protection_text)

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
