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

``tune calibrate --runs DIR... --alpha A --out FILE`` sets thresholds from nominal recorded runs
(every episode in them exchangeable and fault-free) so that each intervention decided from a score
fires in at most a fraction ``alpha`` of nominal episodes. Each of the two scores below gets
alpha / 2 (so together they stay within alpha), by split conformal: with n episodes, the
ceil((n+1)(1-alpha/2))-th smallest episode score, which needs n >= 2/alpha - 1 (39 for 5 %):

* ``ambiguity_stop`` (SAFE_STOP): just above that quantile of each episode's largest world-state
  ambiguity (after the start-up wait for fresh inputs);
* ``clearance_optimise_m`` (PLANNING -> OPTIMISING): just below that quantile, from below, of each
  episode's smallest predicted plan clearance while it was PLANNING (kept within [0, clearance_plan_m]).

The other thresholds are copied from ``--thresholds``; OPTIMISING entered because planning made no
progress (the stall rule) is not calibrated, and counts as an intervention in replay's report. Nothing checks here that the calibrated
thresholds still catch faults: that is the fault suite's job (not built yet), as is ``tune sweep``.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
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


def _ticks(journal: list[dict[str, Any]], inputs: dict[str, dict[int, deque]], cfg, ego):
    """Re-run the core along the journal: yields (entry, core, output, tick seconds, missing inputs)
    per journal tick; one fresh core per session (watchdog node run)."""
    from hjepa_agent.core.watchdog import Watchdog
    from hjepa_agent.nodes.watchdog import apply_input

    cores: dict[str, Any] = {}
    for entry in journal:
        core = cores.setdefault(entry["session"], Watchdog(cfg, ego))
        missing = 0
        for kind, key, now in entry["inputs"]:
            if kind == "clear":
                core.clear_safe_stop(now)
                continue
            if kind == "params":   # a live threshold change: key holds the changes
                core.reconfigure(dataclasses.replace(core.cfg, **key))
                continue
            queue = inputs.get(kind, {}).get(int(key))
            if not queue:
                missing += 1
                continue
            apply_input(core, kind, queue.popleft(), now)
        t0 = time.perf_counter()
        out = core.tick(entry["tick"])
        yield entry, core, out, time.perf_counter() - t0, missing


def replay(bag: Path, thresholds: Path, ego_model: Path) -> dict[str, Any]:
    """Re-run the watchdog on ``bag`` with ``thresholds`` (module doc); returns the report."""
    from hjepa_agent.config.ego_model import load_ego_model
    from hjepa_agent.core.watchdog import load_watchdog_config

    inputs, journal = read_run(bag)
    sessions: set[str] = set()
    ticks = mismatched = missing = 0
    first_mismatch: dict[str, Any] | None = None
    tick_ms: list[float] = []
    live_ticks: dict[str, int] = defaultdict(int)
    replay_ticks: dict[str, int] = defaultdict(int)
    live_tr: list[tuple[str, float, str]] = []
    replay_tr: list[tuple[str, float, str]] = []
    for entry, _, out, dt, miss in _ticks(journal, inputs, load_watchdog_config(thresholds), load_ego_model(ego_model)):
        sessions.add(entry["session"])
        missing += miss
        tick_ms.append(dt * 1e3)
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

    def episodes_with(tr: list[tuple[str, float, str]]) -> int:
        return len({t[0] for t in tr if t[2].split("->")[-1] in INTERVENTIONS})

    return {"bag": str(bag), "thresholds": str(thresholds), "sessions": len(sessions), "ticks": ticks,
            "identical": mismatched == 0 and missing == 0, "ticks_differing": mismatched,
            "inputs_missing_from_bag": missing, "first_difference": first_mismatch,
            "transitions": {"live": len(live_tr), "replay": len(replay_tr),
                            "same_at_same_stamps": live_tr == replay_tr},
            "interventions": {"live": entered(live_tr), "replay": entered(replay_tr)},
            "sessions_with_interventions": {"live": episodes_with(live_tr), "replay": episodes_with(replay_tr)},
            "mode_ticks": {"live": dict(live_ticks), "replay": dict(replay_ticks)},
            "core_tick_ms": ({"p50": round(float(np.percentile(tick_ms, 50)), 3),
                              "p99": round(float(np.percentile(tick_ms, 99)), 3),
                              "max": round(float(np.max(tick_ms)), 3)} if tick_ms else None),
            "replay_transitions": [{"session": s, "stamp_s": t, "transition": tr} for s, t, tr in replay_tr]}


def conformal_upper(scores: np.ndarray, alpha: float) -> float:
    """The ceil((n+1)(1-alpha))-th smallest of n exchangeable nominal scores: a new nominal score
    exceeds it with probability at most alpha. inf when n < 1/alpha - 1 (too few to say)."""
    s = np.sort(np.asarray(scores, np.float64))
    k = math.ceil((len(s) + 1) * (1.0 - alpha))
    return float(s[k - 1]) if 1 <= k <= len(s) else math.inf


def calibrate(bags: list[Path], thresholds: Path, ego_model: Path, alpha: float) -> tuple[dict[str, Any], dict]:
    """Thresholds from nominal recorded runs (every session in ``bags`` an exchangeable nominal
    episode) so that each intervention the watchdog decides from a score fires in at most ``alpha``
    of nominal episodes (split conformal, per score; module doc of tune_main). Returns (the new
    thresholds as a dict, the report)."""
    import yaml

    from hjepa_agent.config.ego_model import load_ego_model
    from hjepa_agent.core.types import Mode
    from hjepa_agent.core.watchdog import load_watchdog_config

    if not 0.0 < alpha < 1.0:
        raise ValueError(f"tune calibrate: --alpha must be in (0, 1), got {alpha}")
    cfg, ego = load_watchdog_config(thresholds), load_ego_model(ego_model)
    amb_max: dict[str, float] = {}
    plan_min: dict[str, float] = {}
    for bag in bags:
        inputs, journal = read_run(bag)
        started: set[str] = set()
        for entry, core, out, _, _ in _ticks(journal, inputs, cfg, ego):
            key = f"{bag}:{entry['session']}"
            if out.mode != Mode.SAFE_STOP:
                started.add(key)
            if key not in started or core.ambiguity is None:   # the start-up wait for fresh inputs is not a score
                continue
            amb_max[key] = max(amb_max.get(key, -math.inf), core.ambiguity)
            plan = core.clearances(entry["tick"])[1]
            if entry["mode"] == "PLANNING" and plan is not None:
                plan_min[key] = min(plan_min.get(key, math.inf), float(plan))
            else:
                plan_min.setdefault(key, math.inf)
    n = len(amb_max)
    if n == 0:
        raise ValueError("tune calibrate: no episode in the runs got past the start-up SAFE_STOP")
    # two scores decide interventions: each gets alpha / 2, so that together they fire in at most
    # alpha of nominal episodes (Bonferroni)
    each = alpha / 2.0
    amb = conformal_upper(np.array(list(amb_max.values())), each)
    neg = conformal_upper(-np.array(list(plan_min.values())), each)   # a low clearance is the alarm
    if not math.isfinite(amb):
        raise ValueError(f"tune calibrate: {n} nominal episodes are too few for alpha {alpha} ({each} per score): "
                         f"needs at least {math.ceil(1.0 / each - 1.0)}; record more (hjepa-agent sim --episodes N)")
    doc = yaml.safe_load(Path(thresholds).read_text())
    old = {"ambiguity_stop": cfg.ambiguity_stop, "clearance_optimise_m": cfg.clearance_optimise_m}
    doc["ambiguity_stop"] = round(amb + 1e-3, 3)
    # OPTIMISING below the clearance that at most alpha of nominal PLANNING episodes reach; never above
    # the clearance at which PLANNING starts, nor below 0 (touching)
    clear = -neg if math.isfinite(neg) else cfg.clearance_plan_m
    doc["clearance_optimise_m"] = round(float(np.clip(clear - 1e-3, 0.0, cfg.clearance_plan_m)), 3)
    report = {"runs": [str(b) for b in bags], "episodes": n, "alpha": alpha, "alpha_per_score": each, "before": old,
              "after": {k: doc[k] for k in old},
              "scores": {"episode_max_ambiguity": {"p50": float(np.median(list(amb_max.values()))),
                                                   "max": float(max(amb_max.values()))},
                         "episode_min_plan_clearance_m": {
                             "p50": float(np.median(list(plan_min.values()))), "min": float(min(plan_min.values()))}}}
    return doc, report


def _bags(paths: list[Path]) -> list[Path]:
    """Recordings: a rosbag2 folder (with metadata.yaml, as `hjepa-agent sim` writes run.mcap), an .mcap
    file, or a folder searched for rosbag2 folders."""
    out = []
    for p in paths:
        if (p / "metadata.yaml").is_file() or p.is_file():
            found = [p]
        else:
            found = sorted(m.parent for m in p.rglob("metadata.yaml"))
        if not found:
            raise FileNotFoundError(f"{p}: no recording (rosbag2 folder or .mcap) in it")
        out += found
    return out


def tune_main(argv: list[str] | None = None) -> int:
    import yaml

    from hjepa_agent.paths import data_path
    ap = argparse.ArgumentParser(prog="hjepa-agent tune", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="what", required=True)
    r = sub.add_parser("replay", help="re-run the watchdog on a recorded run with given thresholds")
    r.add_argument("--bag", type=Path, required=True, help="run.mcap written by hjepa-agent sim")
    c = sub.add_parser("calibrate", help="thresholds from nominal recorded runs, false alarms <= alpha (conformal)")
    c.add_argument("--runs", type=Path, nargs="+", required=True,
                   help="nominal runs: run dirs (every .mcap in them) or .mcap files; every episode counts")
    c.add_argument("--alpha", type=float, default=0.05, help="false-alarm rate per nominal episode to allow")
    for q in (r, c):
        q.add_argument("--thresholds", type=Path, default=data_path("config", "watchdog.yaml"),
                       help="watchdog thresholds YAML (default: the shipped config/watchdog.yaml)")
        q.add_argument("--ego-model", type=Path, default=data_path("config", "ego_model.yaml"))
        q.add_argument("--out", type=Path, default=None,
                       help="replay: also write the report (JSON) here; calibrate: the thresholds YAML to write")
    args = ap.parse_args(argv)
    if args.what == "replay":
        report = replay(args.bag, args.thresholds, args.ego_model)
        text = json.dumps(report, indent=2)
        print(text)
        if args.out:
            args.out.write_text(text + "\n")
        return 0 if report["inputs_missing_from_bag"] == 0 else 1
    doc, report = calibrate(_bags(args.runs), args.thresholds, args.ego_model, args.alpha)
    print(json.dumps(report, indent=2))
    if args.out:
        head = (f"# Written by hjepa-agent tune calibrate: alpha {args.alpha} over {report['episodes']} nominal "
                f"episodes\n# ({', '.join(report['runs'])}); calibrated: {', '.join(report['after'])}. "
                f"See config/watchdog.yaml for what each threshold means.\n")
        args.out.write_text(head + yaml.safe_dump(doc, sort_keys=False))
        print(f"wrote {args.out}")
    return 0


__all__ = ["INTERVENTIONS", "calibrate", "conformal_upper", "read_run", "replay", "tune_main"]
