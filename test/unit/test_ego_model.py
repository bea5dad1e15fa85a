"""Ego model: invalid files fail at load naming file, key and value; operating limits only tighten."""
import copy

import pytest
import yaml
from hypothesis import given, strategies as st

from hjepa_agent.config.ego_model import load_ego_model
from hjepa_agent.config.loader import ConfigError
from hjepa_agent.config.paths import data_path

GOOD = yaml.safe_load(data_path("config", "ego_model.yaml").read_text())


def _write(tmp_path, data):
    p = tmp_path / "ego.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


def test_shipped_file_loads():
    ego = load_ego_model(data_path("config", "ego_model.yaml"))
    assert ego.operating.max_linear_mps <= ego.hard.kinematics.linear_x.max_velocity
    assert ego.robot == "sample_diffbot"


@pytest.mark.parametrize("mutate, key, words", [
    (lambda d: d["hard"].__setitem__("bogus", 1), "hard.bogus", "unknown key"),
    (lambda d: d["hard"]["kinematics"]["linear_x"].pop("max_jerk"), "hard.kinematics.linear_x.max_jerk", "missing"),
    (lambda d: d["hard"]["kinematics"]["linear_x"].__setitem__("max_decel", -1.0),
     "hard.kinematics.linear_x.max_decel", "> 0"),
    (lambda d: d["hard"]["kinematics"]["angular_z"].__setitem__("max_velocity", "fast"),
     "hard.kinematics.angular_z.max_velocity", "number"),
    # the stopping distance is the kinematics' own (v^2 / (2 max_decel)): a file still stating one is refused
    (lambda d: d["hard"].__setitem__("stopping_distance_m", 0.25), "hard.stopping_distance_m", "unknown key"),
    (lambda d: d["hard"]["thermal"].__setitem__("max_operating_temp_c", -20.0), "hard.thermal.max_operating_temp_c",
     "above"),
    (lambda d: d["hard"]["sensors"]["odom"].__setitem__("max_age_s", 0.001), "hard.sensors.odom.max_age_s",
     "shorter than one period"),
    (lambda d: d["operating"].__setitem__("max_linear_mps", 5.0), "operating", "exceeds hard"),
    (lambda d: d["hard"]["power"].__setitem__("battery_floor_pct", 120.0), "hard.power.battery_floor_pct", "[0, 100)"),
    (lambda d: d["hard"]["sensors"]["battery"].__setitem__("presence", "sometimes"), "hard.sensors.battery.presence",
     "required, optional, absent"),
    (lambda d: d["hard"]["sensors"]["camera"].__setitem__("presence", "optional"), "hard.sensors.camera",
     "only battery, temperature may be optional or absent"),
    (lambda d: d["hard"]["sensors"].__setitem__("temperature", {"presence": "optional"}),
     "hard.sensors.temperature.rate_hz", "only an input with presence: absent may leave it out"),
])
def test_bad_files_name_the_key(tmp_path, mutate, key, words):
    data = copy.deepcopy(GOOD)
    mutate(data)
    p = _write(tmp_path, data)
    with pytest.raises(ConfigError) as err:
        load_ego_model(p)
    assert err.value.key == key
    assert words in err.value.reason
    assert str(p) in str(err.value)


@pytest.mark.parametrize("battery, temperature", [
    ({"rate_hz": 2.0, "max_age_s": 2.0, "presence": "optional"}, {"presence": "absent"}),
    ({"presence": "absent"}, {"rate_hz": 2.0, "max_age_s": 2.0, "presence": "absent"}),
])
def test_battery_and_temperature_may_be_optional_or_absent(tmp_path, battery, temperature):
    data = copy.deepcopy(GOOD)
    data["hard"]["sensors"].update(battery=battery, temperature=temperature)
    sensors = load_ego_model(_write(tmp_path, data)).hard.sensors
    assert (sensors.presence("battery"), sensors.presence("temperature")) == (battery["presence"],
                                                                            temperature["presence"])
    assert sensors.battery.max_age_s == battery.get("max_age_s")
    assert [sensors.presence(n) for n in ("camera", "scan", "odom")] == ["required"] * 3   # the default


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_ego_model(tmp_path / "nope.yaml")
    p = tmp_path / "bad.yaml"
    p.write_text("hard: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_ego_model(p)


@given(st.floats(0.0, 2.0), st.floats(0.0, 5.0))
def test_operating_limits_only_tighten(lin, ang):
    ego = load_ego_model(data_path("config", "ego_model.yaml"))
    op = ego.operating
    if lin > op.max_linear_mps or ang > op.max_angular_rps:
        with pytest.raises(ValueError, match="only be tightened"):
            ego.tightened(max_linear_mps=lin, max_angular_rps=ang)
    else:
        t = ego.tightened(max_linear_mps=lin, max_angular_rps=ang)
        assert t.operating.max_linear_mps == lin and t.operating.max_angular_rps == ang
        assert t.hard == ego.hard


def test_min_clearance_is_the_floor_under_the_watchdogs_clearance_plan_m():
    """operating.min_clearance_m is the clearance habitual driving keeps: a watchdog that asks for a plan only
    below a smaller predicted clearance would let the robot drive inside it (config/thresholds.py check_against)."""
    import dataclasses

    from hjepa_agent.config.thresholds import load_watchdog_config
    ego = load_ego_model(data_path("config", "ego_model.yaml"))
    cfg = load_watchdog_config(data_path("config", "watchdog.yaml"))
    cfg.check_against(ego)   # the shipped pair: 0.15 m >= 0.05 m
    at_floor = dataclasses.replace(cfg, clearance_plan_m=ego.operating.min_clearance_m,
                                   clearance_optimise_m=min(cfg.clearance_optimise_m, ego.operating.min_clearance_m))
    at_floor.check_against(ego)
    below = dataclasses.replace(at_floor, clearance_plan_m=0.04, clearance_optimise_m=0.03)
    with pytest.raises(ValueError, match="clearance_plan_m: 0.04 m must be at least the ego operating min_clearance_m 0.05 m"):
        below.check_against(ego)

