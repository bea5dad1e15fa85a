"""`hjepa-agent rehearse` end to end: six node processes from their console scripts, on the wall clock, in
namespace robot1, against the simulator acting as a TurtleBot-4-like robot's drivers (Twist commands, a
250x250 bgr8 camera at 30 Hz on its own topic name, a laser turned 90 deg, no motor temperature)."""
import json
import signal
import subprocess
import sys
import time

import pytest

from hjepa_agent.config.paths import data_path


def _rehearse(out):
    cmd = [sys.executable, "-m", "hjepa_agent.cli", "rehearse", "--profile",
           str(data_path("config", "profiles", "turtlebot4_like.yaml")), "--scenario",
           str(data_path("config", "scenarios", "open.yaml")), "--episodes", "1", "--out", str(out), "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _, err = proc.communicate(timeout=240)
    except subprocess.TimeoutExpired:   # say where it waited (the CLI dumps its stacks on SIGUSR1), then stop it
        proc.send_signal(signal.SIGUSR1)
        time.sleep(2.0)
        proc.kill()
        _, err = proc.communicate()
        pytest.fail(f"the rehearsal did not end within 240 s; its stacks and log:\n{err[-6000:]}")
    assert proc.returncode == 0, err[-3000:]
    return (json.loads((out / "summary.json").read_text()),
            json.loads((out / "episodes.jsonl").read_text().splitlines()[0]))


def _stopped_for_load_only(episode) -> bool:
    """A safe stop whose every cause is a stale input: six processes on the wall clock starved on a 2-core
    machine (an input 0.3 s late), the watchdog and bridge doing what they must; nothing else went wrong."""
    stops = [e for e in episode["events"] if e.get("kind") == "mode" and (e.get("transition") or [None, None])[1]
             == "SAFE_STOP"]
    return (episode["outcome"] == "safe_stop" and bool(stops)
            and all(set(e.get("causes") or ()) <= {"stale_input"} and e.get("causes") for e in stops))


def test_one_rehearsed_episode_reaches_the_goal_within_the_limits(tmp_path):
    out = tmp_path / "rehearsal"
    summary, episode = _rehearse(out)
    if summary["successes"] == 0 and _stopped_for_load_only(episode):   # once: load, not the agent (docs/limits.md)
        out = tmp_path / "rehearsal_again"
        summary, episode = _rehearse(out)
    assert summary["successes"] == 1, (episode["outcome"], episode["events"][-5:])
    assert summary["collisions"] == 0 and summary["limit_violations"] == 0
    assert summary["node_failures"] == 0, episode["node_failures"]
    assert summary["foreign_commands"] == 0
    assert summary["cmd_latency_ms"]["samples"] > 20   # camera stamp -> the bridge's record on the wire
    logs = {p.stem: p.read_text() for p in (out / "logs" / "episode_000").glob("*.log")}
    assert sorted(logs) == ["bridge", "estimator", "habitual", "perception", "planner", "watchdog"]
    for name, text in logs.items():   # each started as robot.launch.py would: its console script, namespaced
        first = text.splitlines()[0]
        assert first.split()[0].endswith(f"/{name}") and "__ns:=/robot1" in first, first
