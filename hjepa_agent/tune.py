"""``hjepa-agent tune``: the watchdog's thresholds, judged on recorded runs (issue 5).

``tune replay --bag RUN.mcap [--thresholds FILE]`` runs the watchdog's core again, offline, on a
run recorded by ``hjepa-agent sim`` (or a robot launch with the recorder): the watchdog node's
journal (agent/watchdog/journal, one JSON per tick, see nodes/watchdog.WatchdogNode) says which
input it consumed when, by kind and header stamp; the recorded messages supply their contents;
each is fed through the same ``apply_input`` the node uses, and the core ticks at the journal's
tick times. With the thresholds the run used, every tick's mode and events must come out as they
did live (the report says whether they did, and where they first differed); with other
thresholds it shows what the watchdog would have done: its mode transitions, interventions
(SAFE_STOP and OPTIMISING entries) and ticks in each mode, against the live ones. (The replay
cannot show what the robot would then have done: the recorded inputs are those of the live run.)
It also times the core's decision (``Watchdog.tick``) at every tick: ``core_tick_ms``.

Not built yet: ``tune calibrate`` and ``tune sweep`` (issue 5).
"""
from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict, deque
from pathlib import Path
from typing import Any

import numpy as np

INTERVENTIONS = ("SAFE_STOP", "OPTIMISING")
"""Modes whose entry counts as an intervention."""


def read_run(bag: Path) -> tuple[dict[str, dict[int, deque]], list[dict[str, Any]]]:
    """The watchdog's recorded inputs (kind -> header stamp ns -> messages in recorded order) and
    its journal entries (in recorded order) from a rosbag2 MCAP."""
    from rclpy.serialization import deserialize_message
    from rosbags.rosbag2 import Reader
    from std_msgs.msg import String

    from hjepa_agent.nodes.codec import time_ns
    from hjepa_agent.nodes.watchdog import INPUTS

    by_topic = {"/" + topic: (kind, cls) for kind, (topic, cls) in INPUTS.items()}
    inputs: dict[str, dict[int, deque]] = {kind: defaultdict(deque) for kind in INPUTS}
    journal: list[dict[str, Any]] = []
    with Reader(bag) as reader:
        conns = [c for c in reader.connections if c.topic in by_topic or c.topic == "/agent/watchdog/journal"]
        if not any(c.topic == "/agent/watchdog/journal" for c in conns):
            raise ValueError(f"{bag}: no /agent/watchdog/journal: the run was recorded without the watchdog's "
                             f"journal (watchdog parameter journal: true), so it cannot be replayed")
        for conn, _, raw in reader.messages(connections=conns):
            if conn.topic == "/agent/watchdog/journal":
                journal.append(json.loads(deserialize_message(raw, String).data))
                continue
            kind, cls = by_topic[conn.topic]
            msg = deserialize_message(raw, cls)
            inputs[kind][time_ns(msg.header.stamp)].append(msg)
    return inputs, journal


def replay(bag: Path, thresholds: Path, ego_model: Path) -> dict[str, Any]:
    """Re-run the watchdog on ``bag`` with ``thresholds`` (module doc); returns the report."""
    from hjepa_agent.config.ego_model import load_ego_model
    from hjepa_agent.core.watchdog import Watchdog, load_watchdog_config
    from hjepa_agent.nodes.watchdog import apply_input

    cfg = load_watchdog_config(thresholds)
    ego = load_ego_model(ego_model)
    inputs, journal = read_run(bag)
    cores: dict[str, Watchdog] = {}
    ticks = mismatched = missing = 0
    first_mismatch: dict[str, Any] | None = None
    tick_ms: list[float] = []
    live_ticks: dict[str, int] = defaultdict(int)
    replay_ticks: dict[str, int] = defaultdict(int)
    live_tr: list[tuple[str, float, str]] = []
    replay_tr: list[tuple[str, float, str]] = []
    for entry in journal:
        core = cores.setdefault(entry["session"], Watchdog(cfg, ego))
        for kind, key, now in entry["inputs"]:
            if kind == "clear":
                core.clear_safe_stop(now)
                continue
            queue = inputs.get(kind, {}).get(int(key))
            if not queue:
                missing += 1
                continue
            apply_input(core, kind, queue.popleft(), now)
        t0 = time.perf_counter()
        out = core.tick(entry["tick"])
        tick_ms.append((time.perf_counter() - t0) * 1e3)
        ticks += 1
        live_ticks[entry["mode"]] += 1
        replay_ticks[out.mode.name] += 1
        events = [[ev.kind, list(ev.reasons)] for ev in out.events]
        live_tr += [(entry["session"], entry["tick"], r[0]) for k, r in entry["events"] if k == "mode"]
        replay_tr += [(entry["session"], entry["tick"], r[0]) for k, r in events if k == "mode"]
        if out.mode.name != entry["mode"] or events != entry["events"]:
            mismatched += 1
            if first_mismatch is None:
                first_mismatch = {"session": entry["session"], "tick_s": entry["tick"],
                                  "live": {"mode": entry["mode"], "events": entry["events"]},
                                  "replay": {"mode": out.mode.name, "events": events}}

    def entered(tr: list[tuple[str, float, str]]) -> dict[str, int]:
        return {m: sum(t[2].split("->")[-1] == m for t in tr) for m in INTERVENTIONS}

    return {"bag": str(bag), "thresholds": str(thresholds), "sessions": len(cores), "ticks": ticks,
            "identical": mismatched == 0 and missing == 0, "ticks_differing": mismatched,
            "inputs_missing_from_bag": missing, "first_difference": first_mismatch,
            "transitions": {"live": len(live_tr), "replay": len(replay_tr),
                            "same_at_same_stamps": live_tr == replay_tr},
            "interventions": {"live": entered(live_tr), "replay": entered(replay_tr)},
            "mode_ticks": {"live": dict(live_ticks), "replay": dict(replay_ticks)},
            "core_tick_ms": ({"p50": round(float(np.percentile(tick_ms, 50)), 3),
                              "p99": round(float(np.percentile(tick_ms, 99)), 3),
                              "max": round(float(np.max(tick_ms)), 3)} if tick_ms else None),
            "replay_transitions": [{"session": s, "stamp_s": t, "transition": tr} for s, t, tr in replay_tr]}


def tune_main(argv: list[str] | None = None) -> int:
    from hjepa_agent.paths import data_path
    ap = argparse.ArgumentParser(prog="hjepa-agent tune", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="what", required=True)
    r = sub.add_parser("replay", help="re-run the watchdog on a recorded run with given thresholds")
    r.add_argument("--bag", type=Path, required=True, help="run.mcap written by hjepa-agent sim")
    r.add_argument("--thresholds", type=Path, default=data_path("config", "watchdog.yaml"),
                   help="watchdog thresholds YAML (default: the shipped config/watchdog.yaml)")
    r.add_argument("--ego-model", type=Path, default=data_path("config", "ego_model.yaml"))
    r.add_argument("--out", type=Path, default=None, help="also write the report (JSON) here")
    args = ap.parse_args(argv)
    report = replay(args.bag, args.thresholds, args.ego_model)
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0 if report["inputs_missing_from_bag"] == 0 else 1


__all__ = ["INTERVENTIONS", "read_run", "replay", "tune_main"]
