"""`hjepa-agent sim --faults`: injected camera faults are caught by the watchdog (SAFE_STOP after
the onset), with nothing hit, and the summary reports detection per fault kind."""
import json
import subprocess
import sys

from hjepa_agent.paths import data_path


def test_camera_blackout_and_freeze_are_detected_and_the_robot_stops_clear(tmp_path):
    out = tmp_path / "faults"
    proc = subprocess.run([sys.executable, "-m", "hjepa_agent.cli", "sim", "--scenario",
                           str(data_path("config", "scenarios")), "--episodes", "2", "--faults", "suite",
                           "--out", str(out), "--no-record", "--quiet"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    faults = summary["faults"]
    assert set(faults) == {"camera_blackout", "camera_frozen", "all"}
    assert faults["all"] == {"episodes": 2, "detected": 2, "collisions": 0, "breaches": 0}
    for ep in summary["per_episode"]:
        assert ep["outcome"] == "safe_stop" and ep["fault_detected"] and ep["detection_delay_s"] < 2.0
    assert summary["limit_violations"] == 0


def test_with_the_watchdog_off_the_same_fault_goes_unanswered(tmp_path):
    out = tmp_path / "off"
    proc = subprocess.run([sys.executable, "-m", "hjepa_agent.cli", "sim", "--scenario",
                           str(data_path("config", "scenarios", "open.yaml")), "--episodes", "1",
                           "--faults", "camera_blackout@2", "--watchdog", "off", "--out", str(out), "--no-record",
                           "--quiet"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ep = json.loads((out / "summary.json").read_text())["per_episode"][0]
    assert ep["faults"] == ["camera_blackout@2"] and ep["fault_detected"] is False and ep["outcome"] != "safe_stop"
