"""``hjepa-agent bench latency``: the reflex path's latency per hop and end to end, next to the executor's
floor measured in the same run (a benchmark, not a test).

1. The agent: ``hjepa-agent sim`` over the given scenarios. The runner times every stamped publication on
   the reflex path (nodes/traffic.time_publications: the first publication of each header stamp, every
   node stamping its output with its input's): camera -> agent/percept/early -> agent/world_state/early ->
   agent/habitual/cmd -> cmd_vel, summary.json ``reflex_path_ms`` (:func:`hop_latency`), and beside it
   camera -> agent/percept and camera -> agent/world_state (AFTER: the frame with its ambiguity). A hop's latency
   is when its message for a frame was published minus when the frame was. A command published after the
   planner's plan for the same frame answered the plan (Mode 2, which waits for planning by design): it is
   counted apart (``answered_by_plan``); ``reflex`` is the rest, the habitual policy's answers.
2. The floor: a chain of the same number of hops (source -> relays -> sink, std_msgs/Float32MultiArray of
   256 floats, the source on a 30 Hz timer) in one rclpy.experimental.EventsExecutor spun with spin_once
   in the main thread, as the runner spins the agent (../shared/MEASURED.md's method).

:func:`path_latency` reads the same figures off a recording by the recorder's receive times: right for a
robot's recording (the recorder in a process of its own), not for the embedded runner's, whose recorder
is spun after the reflex nodes (harness/lockstep.Tiered).

Prints JSON: per hop and end-to-end p50 / p99 / max (ms), the floor's p50 / p99, and their ratios.
"""
from __future__ import annotations

import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

HOPS = ("camera/image_raw", "agent/percept/early", "agent/world_state/early", "agent/habitual/cmd", "cmd_vel")
"""The reflex path, in order: what a camera frame causes."""
AFTER = ("agent/percept", "agent/world_state")
"""Timed beside the path, not on it: the frame's whole percept and its world state with the ambiguity (what
the watchdog and the planner read), published after the path's early ones."""
PLAN = "agent/plan"
"""The planner's plan: a command published after the plan with its frame's stamp answered the plan."""


def _stats(ms: list[float]) -> dict[str, Any]:
    a = np.asarray(ms, float)
    if not len(a):
        return {"samples": 0}
    return {"p50": round(float(np.percentile(a, 50)), 3), "p99": round(float(np.percentile(a, 99)), 3),
            "max": round(float(a.max()), 3), "samples": int(len(a))}


def path_latency(bag: Path, namespace: str = "") -> dict[str, Any]:
    """Per hop (cumulative from the camera frame) and end-to-end latency of a recording (module doc)."""
    from rosbags.rosbag2 import Reader
    from rosbags.typesys import Stores, get_typestore

    store = get_typestore(Stores.LATEST)
    ns = namespace.strip("/")
    names = {(f"/{ns}/{t}" if ns else f"/{t}"): t for t in HOPS + AFTER}
    first: dict[str, dict[int, int]] = defaultdict(dict)   # hop -> stamp ns -> first receive ns
    with Reader(bag) as reader:
        conns = [c for c in reader.connections if c.topic in names]
        for conn, log_ns, raw in reader.messages(connections=conns):
            msg = store.deserialize_cdr(raw, conn.msgtype)
            if not hasattr(msg, "header"):
                continue
            stamp = int(msg.header.stamp.sec) * 1_000_000_000 + int(msg.header.stamp.nanosec)
            first[names[conn.topic]].setdefault(stamp, log_ns)
    cams = first[HOPS[0]]
    out: dict[str, Any] = {}
    for hop in HOPS[1:] + AFTER:
        out[f"camera->{hop}"] = _stats([(t - cams[s]) * 1e-6 for s, t in first[hop].items() if s in cams and t >= cams[s]])
    out["end_to_end"] = out[f"camera->{HOPS[-1]}"]
    out["frames"] = len(cams)
    return out


def hop_samples(published: dict[str, dict[int, int]], namespace: str = "") -> dict[str, list[float]]:
    """Latencies (ms) from publication times (the runner's table from nodes/traffic.time_publications:
    topic -> header stamp ns -> perf_counter ns): a hop's latency is when its message with a frame's stamp
    was published minus when the frame was. Keys: camera->HOP for each hop after the camera (cumulative) and
    each of AFTER,
    reflex and answered_by_plan (the last hop split by who it answered)."""
    ns = namespace.strip("/")
    name = (lambda t: f"/{ns}/{t}" if ns else f"/{t}")
    cams = published.get(name(HOPS[0]), {})
    out: dict[str, list[float]] = {}
    for hop in HOPS[1:] + AFTER:
        got = published.get(name(hop), {})
        out[f"camera->{hop}"] = [(t - cams[s]) * 1e-6 for s, t in got.items() if s in cams and t >= cams[s]]
    # A command the planner answered (Mode 2: its plan from this frame was out before the command) is not
    # the reflex path's: it waited for the plan by design.
    plans = published.get(name(PLAN), {})
    out["reflex"], out["answered_by_plan"] = [], []
    for s, t in published.get(name(HOPS[-1]), {}).items():
        if s in cams and t >= cams[s]:
            out["answered_by_plan" if s in plans and plans[s] <= t else "reflex"].append((t - cams[s]) * 1e-6)
    return out


def latency_summary(samples: dict[str, list[float]], frames: int) -> dict[str, Any]:
    """:func:`hop_samples` (or several concatenated key by key) over ``frames`` camera frames -> p50 / p99 / max
    per key, end_to_end, frames."""
    out: dict[str, Any] = {k: _stats(v) for k, v in samples.items()}
    out["end_to_end"] = out[f"camera->{HOPS[-1]}"]
    out["frames"] = frames
    return out


def hop_latency(published: dict[str, dict[int, int]], namespace: str = "") -> dict[str, Any]:
    """Per hop (cumulative from the camera frame) and end-to-end latency of a publication-time table
    (:func:`hop_samples`, summarised)."""
    ns = namespace.strip("/")
    return latency_summary(hop_samples(published, namespace),
                           len(published.get(f"/{ns}/{HOPS[0]}" if ns else f"/{HOPS[0]}", {})))


def executor_floor(hops: int = len(HOPS) - 1, samples: int = 300, rate_hz: float = 30.0) -> dict[str, Any]:
    """The floor: a chain of ``hops`` hops in one EventsExecutor (module doc); p50 / p99 / max ms."""
    import rclpy
    from rclpy.experimental import EventsExecutor
    from std_msgs.msg import Float32MultiArray

    from hjepa_agent.harness.runner import isolate_dds

    isolate_dds()
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    nodes, sent, got = [], {}, []
    try:
        src = rclpy.create_node("floor_source", context=ctx)
        pub = src.create_publisher(Float32MultiArray, "floor/h0", 10)
        seq = [0]

        def tick() -> None:
            seq[0] += 1
            data = np.zeros(256, np.float32)
            data[0] = seq[0]
            sent[seq[0]] = time.perf_counter_ns()
            pub.publish(Float32MultiArray(data=data.tolist()))
        src.create_timer(1.0 / rate_hz, tick)
        nodes.append(src)
        for i in range(1, hops):
            relay = rclpy.create_node(f"floor_relay{i}", context=ctx)
            out_pub = relay.create_publisher(Float32MultiArray, f"floor/h{i}", 10)
            relay.create_subscription(Float32MultiArray, f"floor/h{i - 1}", lambda m, p=out_pub: p.publish(m), 10)
            nodes.append(relay)
        sink = rclpy.create_node("floor_sink", context=ctx)
        sink.create_subscription(Float32MultiArray, f"floor/h{hops - 1}",
                                 lambda m: got.append((time.perf_counter_ns() - sent[int(m.data[0])]) * 1e-6), 10)
        nodes.append(sink)
        executor = EventsExecutor(context=ctx)
        for n in nodes:
            executor.add_node(n)
        deadline = time.monotonic() + samples / rate_hz + 10.0
        warm = 10                                       # the first messages pay for discovery
        while len(got) < samples + warm and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.1)
        executor.shutdown()
    finally:
        for n in nodes:
            n.destroy_node()
        rclpy.shutdown(context=ctx)
    return {"hops": hops, **_stats(got[warm:])}


def bench(scenarios: tuple[Path, ...], episodes: int, seed: int, out: Path | None = None,
          progress: bool = True) -> dict[str, Any]:
    """Run the agent with its recording, then the floor; returns the figures (module doc)."""
    from hjepa_agent.harness.runner import RunConfig, run

    with tempfile.TemporaryDirectory(prefix="hjepa_latency_") as tmp:
        where = Path(out) if out is not None else Path(tmp) / "run"
        summary = run(RunConfig(scenarios=scenarios, episodes=episodes, seed=seed, out=where, record=True),
                      progress=progress)
    floor = executor_floor()
    path = summary["reflex_path_ms"]
    e2e = path["reflex"]
    result = {"episodes": episodes, "successes": summary["successes"], "collisions": summary["collisions"],
              "limit_violations": summary["limit_violations"], "path": path, "executor_floor": floor}
    if e2e.get("samples") and floor.get("samples"):
        result["ratio_to_floor"] = {"p50": round(e2e["p50"] / floor["p50"], 2), "p99": round(e2e["p99"] / floor["p99"], 2)}
    return result


__all__ = ["AFTER", "HOPS", "PLAN", "bench", "executor_floor", "hop_latency", "hop_samples", "latency_summary", "path_latency"]
