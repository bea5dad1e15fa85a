"""The watchdog's threshold schema (hjepa_agent/config/thresholds.py): ranges, cross-checks, defaults
from the shipped YAML, its documentation lines, the descriptors' ranges and the one tighten-only rule."""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest
import yaml

from hjepa_agent.config import thresholds
from hjepa_agent.config.loader import ConfigError
from hjepa_agent.config.paths import data_path
from hjepa_agent.config.thresholds import (FIXED, HIGHER, LIVE_UNITS, LOWER, THRESHOLDS, TIGHTER, WatchdogConfig,
                                           document, load_watchdog_config, tighten_only)

SHIPPED_YAML = data_path("config", "watchdog.yaml")
NUMERIC = [n for n, t in THRESHOLDS.items() if t.type is float]


def replaced(**kw: object) -> WatchdogConfig:
    return dataclasses.replace(WatchdogConfig(), **kw)


def test_every_field_has_a_schema_and_the_shipped_file_holds_exactly_the_fields() -> None:
    names = [f.name for f in dataclasses.fields(WatchdogConfig)]
    assert list(THRESHOLDS) == names
    assert sorted(yaml.safe_load(SHIPPED_YAML.read_text())) == sorted(names)
    assert all(t.doc and "\n" not in t.doc for t in THRESHOLDS.values())


def test_the_defaults_are_the_shipped_files_values(write_yaml) -> None:
    shipped = yaml.safe_load(SHIPPED_YAML.read_text())
    assert dataclasses.asdict(WatchdogConfig()) == shipped
    partial = write_yaml("partial.yaml", {"ambiguity_stop": 0.9})   # a key left out takes the shipped value
    cfg = load_watchdog_config(partial)
    assert cfg.ambiguity_stop == 0.9 and cfg.clearance_plan_m == shipped["clearance_plan_m"]


def test_a_shipped_file_without_a_key_is_refused_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = yaml.safe_load(SHIPPED_YAML.read_text())
    del data["dwell_s"]
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "watchdog.yaml").write_text(yaml.safe_dump(data))
    monkeypatch.setattr(thresholds, "data_path", lambda *parts: tmp_path.joinpath(*parts))
    thresholds.shipped.cache_clear()
    try:
        with pytest.raises(ConfigError) as err:
            WatchdogConfig()
        assert err.value.key == "dwell_s" and "watchdog.yaml" in err.value.file
    finally:
        thresholds.shipped.cache_clear()


def test_the_yaml_documents_each_key_with_the_line_made_from_its_schema() -> None:
    text = SHIPPED_YAML.read_text()
    assert document(text) == text, "run: python -m hjepa_agent.config.thresholds --write"
    lines = text.splitlines()
    for name, t in THRESHOLDS.items():
        i = next(k for k, line in enumerate(lines) if line.startswith(f"{name}:"))
        assert lines[i - 1] == t.describe()


def test_document_inserts_and_replaces_the_schema_lines_and_main_checks_them(tmp_path: Path) -> None:
    assert document("dwell_s: 1.0\n") == f"{THRESHOLDS['dwell_s'].describe()}\ndwell_s: 1.0\n"
    stale = "# a note\n#: an old line\ndwell_s: 1.0\n"
    assert document(stale) == f"# a note\n{THRESHOLDS['dwell_s'].describe()}\ndwell_s: 1.0\n"
    f = tmp_path / "w.yaml"
    f.write_text(stale)
    assert thresholds.main([str(f)]) == 1
    assert thresholds.main(["--write", str(f)]) == 0 and thresholds.main([str(f)]) == 0


@pytest.mark.parametrize("name, value, ok", [
    ("clearance_plan_m", 0.0, False), ("clearance_plan_m", 1e-9, True), ("clearance_plan_m", 4.0, True),
    ("clearance_plan_m", 4.0 + 1e-9, False), ("clearance_optimise_m", 0.0, True), ("hysteresis_m", 1.0, True),
    ("hysteresis_m", 1.0 + 1e-9, False), ("ambiguity_stop", 1e6, True), ("ambiguity_stop", 0.0, False),
    ("temperature_derate_c", -60.0, True), ("temperature_derate_c", -60.1, False),
    ("stall_window_s", 0.0, True), ("stall_window_s", 0.2, False), ("stall_window_s", 0.5, True),
    ("stall_window_s", 60.0, True), ("stall_window_s", 60.5, False), ("slip_window_s", 0.0, True),
    ("limit_predict_s", 0.0, True), ("limit_predict_s", -1e-9, False), ("foreign_match_window_s", 0.01, True),
    ("foreign_match_window_s", 0.009, False), ("odom_jump_margin_rad", math.pi, True),
    ("odom_jump_margin_rad", math.pi + 1e-9, False), ("stall_motion_m", 0.0, False)])
def test_ranges_accept_and_refuse_exactly_at_their_ends(name: str, value: float, ok: bool) -> None:
    kw = {name: value, **({"clearance_optimise_m": 0.0} if name == "clearance_plan_m" else {})}   # its cross-check
    if ok:
        assert getattr(replaced(**kw), name) == value
    else:
        with pytest.raises(ValueError, match=rf"^{name}: must be"):
            replaced(**kw)


@pytest.mark.parametrize("name", NUMERIC)
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, "1.0", True, None])
def test_a_threshold_that_is_not_a_finite_number_is_refused_naming_it(name: str, value: object) -> None:
    with pytest.raises(ValueError, match=rf"^{name}: "):
        replaced(**{name: value})


def test_foreign_publishers_is_one_of_its_choices() -> None:
    assert replaced(foreign_publishers="warn").foreign_publishers == "warn"
    with pytest.raises(ValueError, match="^foreign_publishers: must be 'stop' or 'warn', got 'off'"):
        replaced(foreign_publishers="off")


def test_the_rules_between_two_thresholds_are_checked_and_name_the_threshold() -> None:
    c = WatchdogConfig()
    assert replaced(clearance_optimise_m=c.clearance_plan_m).clearance_optimise_m == c.clearance_plan_m
    assert replaced(risk_limit_z=c.risk_slow_z).risk_limit_z == c.risk_slow_z
    assert replaced(slow_scale=c.limit_scale).slow_scale == c.limit_scale
    assert replaced(limit_warn_s=c.limit_predict_s).limit_warn_s == c.limit_predict_s
    assert replaced(limit_warn_s=0.0, limit_predict_s=60.0).limit_warn_s == 0.0      # 0: off
    for kw, key in (({"clearance_optimise_m": c.clearance_plan_m + 1e-6}, "clearance_optimise_m"),
                    ({"risk_limit_z": c.risk_slow_z + 1e-6}, "risk_limit_z"),
                    ({"slow_scale": c.limit_scale + 1e-6}, "slow_scale"),
                    ({"limit_warn_s": c.limit_predict_s - 1e-6}, "limit_warn_s")):
        with pytest.raises(ValueError, match=rf"^{key}: "):
            replaced(**kw)


def test_live_thresholds_their_directions_and_descriptor_ranges_come_from_the_schema() -> None:
    fixed = {"slip_window_s", "stall_window_s", "stall_progress_m", "stall_motion_m", "stall_goal_radius_m",
             "foreign_publishers", "foreign_match_window_s", "odom_jump_margin_m", "odom_jump_margin_rad"}
    assert set(TIGHTER) == set(THRESHOLDS) - fixed and set(LIVE_UNITS) == set(TIGHTER)
    assert all(THRESHOLDS[n].tighter == FIXED for n in fixed)
    assert TIGHTER["clearance_plan_m"] == HIGHER and TIGHTER["ambiguity_stop"] == LOWER
    assert LIVE_UNITS["slip_tolerance_rps"] == ("rad/s", 0.0, 10.0)
    assert LIVE_UNITS["limit_warn_s"] == ("s", 0.0, 3600.0) and LIVE_UNITS["temperature_derate_c"][0] == "degC"
    shipped = WatchdogConfig()
    for name, (_, lo, hi) in LIVE_UNITS.items():   # the descriptor never refuses a value the config accepts
        assert lo <= getattr(shipped, name) <= hi
        t = THRESHOLDS[name]
        for end in (lo, hi):
            if t.problem(end) is None:
                continue
            assert (end == t.lo and t.ends[0] == "(") or (end == t.hi and t.ends[1] == ")")


def test_tighten_only_is_one_rule_for_both_directions() -> None:
    assert tighten_only("x", 1.0, 1.0, LOWER) is None                       # exactly the start value
    assert tighten_only("x", 1.0, 0.5, LOWER) is None and tighten_only("x", 1.0, 2.0, HIGHER) is None
    assert tighten_only("x", 0.6, 0.6 + 1e-13, LOWER) is None                # float noise, not a loosening
    looser = tighten_only("x", 1.0, 1.0 + 1e-9, LOWER)
    assert looser.startswith("x: ") and "loosen" in looser and "only be tightened" in looser and "lower" in looser
    assert "higher" in tighten_only("y", 1.0, 0.9, HIGHER)
    for bad in (math.nan, math.inf, -math.inf):
        assert tighten_only("x", 1.0, bad, LOWER) == f"x: must be finite, got {bad}"
