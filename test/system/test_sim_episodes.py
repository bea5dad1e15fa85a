"""A short `hjepa-agent sim` run end to end: CLI, DDS, lockstep, outputs on disk."""
import json
import re
import subprocess
import sys

import yaml
from rosbags.rosbag2 import Reader

from hjepa_agent.core.fingerprint import RobotFingerprint
from hjepa_agent.config.paths import data_path


def test_cli_sim_runs_two_episodes_and_writes_its_outputs(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "hjepa_agent.cli", "sim", "--scenario", str(data_path("config", "scenarios", "open.yaml")),
           "--episodes", "2", "--seed", "3", "--out", str(out), "--quiet"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    for key in ("episodes", "successes", "success_rate", "collisions", "limit_violations", "mean_time_to_goal_s",
                "cmd_latency_ms", "mode_time_fraction", "safe_stops", "per_episode"):
        assert key in summary
    assert summary["episodes"] == 2 and len(summary["per_episode"]) == 2
    assert summary["success_rate"] == 1.0, summary["per_episode"]
    assert summary["collisions"] == 0 and summary["limit_violations"] == 0
    assert summary["cmd_latency_ms"]["samples"] > 50 and summary["cmd_latency_ms"]["p99"] > 0
    assert abs(sum(summary["mode_time_fraction"].values()) - 1.0) < 1e-9
    assert len((out / "episodes.jsonl").read_text().splitlines()) == 2
    assert (out / "trajectories.png").stat().st_size > 10_000
    with Reader(out / "run.mcap") as bag:
        topics = {c.topic: c.msgcount for c in bag.connections}
    for topic in ("/cmd_vel", "/camera/image_raw", "/agent/world_state", "/agent/mode", "/odom"):
        assert topics.get(topic, 0) > 10, topics


def test_cli_refuses_a_mismatched_model_dir(tmp_path):
    import shutil
    models = tmp_path / "models"
    shutil.copytree(data_path("models"), models)
    manifest = models / "manifest.yaml"   # models trained for a robot with 7 cm wheels (a consistent fingerprint)
    doc = yaml.safe_load(manifest.read_text())
    other = RobotFingerprint.of({**doc["fingerprint"]["values"], "wheel_radius_m": 0.07})
    doc["fingerprint"] = {"sha256": other.sha256, "values": other.values}
    manifest.write_text(yaml.safe_dump(doc, sort_keys=False))
    params = tmp_path / "agent.yaml"
    text = data_path("config", "agent.yaml").read_text().replace('models_dir: ""', f'models_dir: "{models}"')
    params.write_text(text)
    cmd = [sys.executable, "-m", "hjepa_agent.cli", "sim", "--scenario", str(data_path("config", "scenarios", "open.yaml")),
           "--episodes", "1", "--out", str(tmp_path / "run"), "--params", str(params), "--quiet", "--no-record"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "was trained for another robot" in proc.stderr and "wheel_radius_m: 0.07 trained, 0.05 here" in proc.stderr
    assert "retrain it with `hjepa-agent train " in proc.stderr and "--robot " in proc.stderr
    assert not (tmp_path / "run" / "summary.json").exists()


def test_episodes_that_end_in_a_safe_stop_do_not_break_the_next_one(tmp_path):
    """An ambiguity threshold nothing can meet: every episode ends as a safe stop seconds in, and
    the run goes on to the next (nodes torn down with messages still in flight used to crash it)."""
    wd = tmp_path / "watchdog.yaml"
    wd.write_text(re.sub(r"(?m)^ambiguity_stop: .*$", "ambiguity_stop: 1.0e-6",
                         data_path("config", "watchdog.yaml").read_text()))
    assert re.search(r"(?m)^ambiguity_stop: 1.0e-6$", wd.read_text())
    params = tmp_path / "agent.yaml"
    params.write_text(data_path("config", "agent.yaml").read_text().replace('watchdog_config: ""',
                                                                              f'watchdog_config: "{wd}"'))
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "hjepa_agent.cli", "sim", "--scenario", str(data_path("config", "scenarios")),
           "--episodes", "4", "--out", str(out), "--params", str(params), "--quiet", "--no-record"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    episodes = [json.loads(line) for line in (out / "episodes.jsonl").read_text().splitlines()]
    assert [e["outcome"] for e in episodes] == ["safe_stop"] * 4
    assert all(e["time_s"] < 10.0 and not e["collision"] for e in episodes)
