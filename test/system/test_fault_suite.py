"""`hjepa-agent sim --faults`: injected faults are detected and named by their typed causes after the
onset (harness/judge.py EXPECTED_CAUSES), the robot stops clear of everything and within its limits, and the
summary reports it per fault kind. Kept short (CI): the full suite is measured by hand (README)."""
import json
import subprocess
import sys

from hjepa_agent.config.paths import data_path

COUNTS = ("episodes", "detected", "named_wrongly", "collisions", "breaches", "limit_violations", "node_failures")


def _sim(out, *args):
    proc = subprocess.run([sys.executable, "-m", "hjepa_agent.cli", "sim", *args, "--out", str(out), "--no-record",
                           "--quiet"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((out / "summary.json").read_text())


def _run_kinds(out, kinds, watchdog_off=False):
    """One episode per fault (kind@onset) on the open scenario, through the runner as `sim` runs it."""
    script = ("import json, sys; from pathlib import Path; from hjepa_agent.harness.runner import RunConfig, run; "
              "from hjepa_agent.sim.faults import parse_faults; "
              "f = parse_faults(sys.argv[1]); "
              "run(RunConfig(scenarios=(Path(sys.argv[2]),), episodes=len(f), seed=0, out=Path(sys.argv[3]), "
              "record=False, faults=tuple(f), fault_per_episode=True, watchdog_off=sys.argv[4] == 'off'), "
              "progress=False)")
    proc = subprocess.run([sys.executable, "-c", script, ",".join(kinds), str(data_path("config", "scenarios", "open.yaml")),
                           str(out), "off" if watchdog_off else "on"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((out / "summary.json").read_text())


def test_camera_blackout_and_freeze_are_detected_and_the_robot_stops_clear(tmp_path):
    summary = _sim(tmp_path / "faults", "--scenario", str(data_path("config", "scenarios")), "--episodes", "2",
                   "--faults", "suite")
    faults = summary["faults"]
    assert set(faults) == {"camera_blackout", "camera_frozen", "all"}
    assert faults["all"] == {"episodes": 2, "detected": 2, "named_wrongly": 0, "collisions": 0, "breaches": 0,
                             "limit_violations": 0, "node_failures": 0}
    for ep in summary["per_episode"]:
        assert ep["outcome"] == "safe_stop" and ep["fault_detected"] and ep["detection_delay_s"] < 2.0
        assert set(ep["naming_causes"]) & {"ambiguity", "stale_input"}
    assert summary["limit_violations"] == 0 and summary["fault_detections"].startswith("decided and enforced")


def test_new_kinds_are_named_by_their_causes_and_stop_the_robot_within_limits(tmp_path):
    kinds = ["clock_back@2", "foreign_cmd_100@2", "odom_jump@2", "nan_flood@2", "estop_storm@2", "goal_in_obstacle@2"]
    summary = _run_kinds(tmp_path / "new", kinds)
    faults = summary["faults"]
    assert faults["all"] == {"episodes": 6, "detected": 6, "named_wrongly": 0, "collisions": 0, "breaches": 0,
                             "limit_violations": 0, "node_failures": 0}, faults
    named = {ep["faults"][0].split("@")[0]: ep for ep in summary["per_episode"]}
    assert named["clock_back"]["naming_causes"] == ["clock_jump"]
    assert named["foreign_cmd_100"]["naming_causes"] == ["foreign_publisher"]
    assert named["odom_jump"]["naming_causes"] == ["odometry_jump"]
    assert named["nan_flood"]["naming_causes"] == ["non_finite"] and named["nan_flood"]["flooded"] == ["agent/percept"]
    assert named["estop_storm"]["naming_causes"] == ["estop"]
    assert named["goal_in_obstacle"]["naming_causes"] == ["goal_unreachable"]
    for ep in summary["per_episode"]:   # each a latched stop the runner ends after 5 s standing still
        assert ep["outcome"] == "safe_stop", ep
    assert summary["foreign_commands"] > 0 and summary["limit_violations"] == 0


def test_with_the_watchdog_off_the_fault_is_decided_but_not_enforced(tmp_path):
    summary = _sim(tmp_path / "off", "--scenario", str(data_path("config", "scenarios", "open.yaml")), "--episodes",
                   "1", "--faults", "camera_blackout@2", "--watchdog", "off")
    ep = summary["per_episode"][0]
    assert ep["faults"] == ["camera_blackout@2"] and ep["outcome"] != "safe_stop"
    assert ep["fault_detected"] and ep["stop_causes"]   # the watchdog decided a stop, named, and did not enforce it
    assert summary["mode_time_fraction"]["SAFE_STOP"] < 0.2 and "not enforced" in summary["fault_detections"]
