"""`hjepa-agent tune replay`: a recorded sim run, replayed offline through the watchdog's core with
the thresholds it ran with, gives the same mode and events at every tick; with other thresholds
it shows what the watchdog would have done instead. `tune calibrate` sets thresholds from the
recorded episodes, and refuses when there are too few for the asked false-alarm rate."""
import json
import subprocess
import sys

import pytest
import yaml

from hjepa_agent.config.paths import data_path


def _replay(bag, thresholds, out):
    proc = subprocess.run([sys.executable, "-m", "hjepa_agent.cli", "tune", "replay", "--bag", str(bag),
                           "--thresholds", str(thresholds), "--out", str(out)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text())


def test_replay_reproduces_the_live_decisions_and_other_thresholds_change_them(tmp_path):
    run = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "hjepa_agent.cli", "sim", "--scenario",
                           str(data_path("config", "scenarios", "corridor.yaml")), "--episodes", "2", "--out", str(run),
                           "--quiet"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    same = _replay(run / "run.mcap", data_path("config", "watchdog.yaml"), tmp_path / "same.json")
    assert same["identical"] and same["ticks"] > 100 and same["inputs_missing_from_bag"] == 0
    assert same["transitions"]["same_at_same_stamps"] and same["transitions"]["live"] >= 1
    # a much lower ambiguity limit: the same recorded inputs now stop the robot
    cfg = yaml.safe_load(data_path("config", "watchdog.yaml").read_text())
    cfg["ambiguity_stop"] = 0.05
    strict = tmp_path / "strict.yaml"
    strict.write_text(yaml.safe_dump(cfg))
    other = _replay(run / "run.mcap", strict, tmp_path / "other.json")
    assert not other["identical"] and other["first_difference"] is not None
    ticks = other["mode_ticks"]
    assert ticks["replay"].get("SAFE_STOP", 0) > ticks["live"].get("SAFE_STOP", 0) + 50

    # calibrate on these two nominal episodes: alpha 0.99 (0.495 per score) needs two; 0.05 needs 39: refused
    cal = tmp_path / "calibrated.yaml"
    # (two episodes cannot also estimate the interventions no threshold decides: say there are none)
    proc = subprocess.run([sys.executable, "-m", "hjepa_agent.cli", "tune", "calibrate", "--runs", str(run),
                           "--alpha", "0.99", "--other-rate", "0", "--out", str(cal)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    from hjepa_agent.core.watchdog import load_watchdog_config
    new = load_watchdog_config(cal)
    report = json.loads(proc.stdout[:proc.stdout.rindex("}") + 1])
    assert report["episodes"] == 2
    assert new.ambiguity_stop == pytest.approx(report["scores"]["episode_max_ambiguity"]["max"] + 1e-3, abs=1e-3)
    # the graded thresholds too: the largest risk deviation and charge of its episodes, just above
    assert new.risk_limit_z == pytest.approx(max(report["scores"]["episode_max_risk_z"]["max"] + 1e-3, 1e-3), abs=1e-3)
    assert new.charge_slow == pytest.approx(max(report["scores"]["episode_max_charge"]["max"] + 1e-3, 1e-3), abs=1e-3)
    assert new.risk_slow_z >= new.risk_limit_z
    again = _replay(run / "run.mcap", cal, tmp_path / "again.json")
    assert again["interventions"]["replay"]["SAFE_STOP"] == 0           # its own episodes never trip it
    proc = subprocess.run([sys.executable, "-m", "hjepa_agent.cli", "tune", "calibrate", "--runs", str(run),
                           "--alpha", "0.05", "--out", str(tmp_path / "x.yaml")], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 2 and "too few" in proc.stderr


def test_calibrate_scores_the_plan_clearance_of_the_tick_that_leaves_planning(tmp_path):
    """The clearance check runs in PLANNING; the tick that enters OPTIMISING has OPTIMISING as its
    journal mode, and it is the one whose clearance matters: a run whose watchdog sends every close plan
    to OPTIMISING must still show calibrate its close plans (it saw none below the live threshold)."""
    cfg = yaml.safe_load(data_path("config", "watchdog.yaml").read_text())
    cfg["clearance_optimise_m"] = cfg["clearance_plan_m"] - 1e-3
    eager = tmp_path / "eager.yaml"
    eager.write_text(yaml.safe_dump(cfg))
    overlay = tmp_path / "eager_params.yaml"
    overlay.write_text(yaml.safe_dump({"/**/watchdog": {"ros__parameters": {"watchdog_config": str(eager)}},
                                       # CEM's plans in the corridor come within clearance_plan_m (the two-level
                                       # GFlowNet's kept clear of it in both episodes): close plans to score
                                       "/**/planner": {"ros__parameters": {"planner": "cem", "hierarchy": False}}}))
    run = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "hjepa_agent.cli", "sim", "--scenario",
                           str(data_path("config", "scenarios", "corridor.yaml")), "--episodes", "2", "--out", str(run),
                           "--params", str(data_path("config", "agent.yaml")), "--params", str(overlay), "--quiet"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    live = _replay(run / "run.mcap", eager, tmp_path / "live.json")
    assert live["identical"] and live["interventions"]["live"]["OPTIMISING"] >= 1   # close plans happened
    proc = subprocess.run([sys.executable, "-m", "hjepa_agent.cli", "tune", "calibrate", "--runs", str(run),
                           "--thresholds", str(eager), "--alpha", "0.99", "--other-rate", "0", "--out",
                           str(tmp_path / "from_eager.yaml")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout[:proc.stdout.rindex("}") + 1])
    assert report["scores"]["episode_min_plan_clearance_m"]["min"] < cfg["clearance_optimise_m"]
    from hjepa_agent.core.watchdog import load_watchdog_config
    assert load_watchdog_config(tmp_path / "from_eager.yaml").clearance_optimise_m < cfg["clearance_optimise_m"] - 1e-3
