"""bench latency's reading of a recording: each hop's receive time minus its camera frame's, matched by stamp."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from hjepa_agent.harness.bench_latency import AFTER, HOPS, path_latency


def _bag(path: Path) -> Path:
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore
    store = get_typestore(Stores.LATEST)
    T = store.types

    def header(stamp_ns: int):
        return T["std_msgs/msg/Header"](stamp=T["builtin_interfaces/msg/Time"](sec=stamp_ns // 10**9,
                                                                               nanosec=stamp_ns % 10**9), frame_id="f")

    def msg(topic: str, stamp_ns: int):
        if topic == "camera/image_raw":
            return "sensor_msgs/msg/Image", T["sensor_msgs/msg/Image"](
                header=header(stamp_ns), height=1, width=1, encoding="rgb8", is_bigendian=0, step=3,
                data=np.zeros(3, np.uint8))
        if topic.startswith(("agent/percept", "agent/world_state")):
            return "sensor_msgs/msg/JointState", T["sensor_msgs/msg/JointState"](
                header=header(stamp_ns), name=[], position=np.zeros(0), velocity=np.zeros(0), effort=np.zeros(0))
        vec = T["geometry_msgs/msg/Vector3"](x=0.0, y=0.0, z=0.0)
        return "geometry_msgs/msg/TwistStamped", T["geometry_msgs/msg/TwistStamped"](
            header=header(stamp_ns), twist=T["geometry_msgs/msg/Twist"](linear=vec, angular=vec))

    rows = []
    for i in range(3):   # frames 0.1 s apart; hops 1, 2, 4, 6 ms (+ i ms at the end); the whole percept 3, world state 5
        stamp, sent = (i + 1) * 100_000_000, 5 * 10**18 + i * 10**8
        for hop, delay_ms in zip(HOPS + AFTER, (0, 1, 2, 4, 6 + i, 3, 5)):
            rows.append((sent + delay_ms * 1_000_000, hop, *msg(hop, stamp)))
    rows.append((5 * 10**18 + 10**9, "cmd_vel", *msg("cmd_vel", 150_000_000)))   # a bridge tick: no frame has its stamp
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as w:
        conns = {}
        for t, topic, typ, m in sorted(rows, key=lambda r: r[0]):
            if topic not in conns:
                conns[topic] = w.add_connection(f"/{topic}", typ, typestore=store)
            w.write(conns[topic], t, store.serialize_cdr(m, typ))
    return path


def test_each_hop_is_measured_from_its_camera_frame(tmp_path: Path) -> None:
    res = path_latency(_bag(tmp_path / "bag"))
    assert res["frames"] == 3
    assert res["camera->agent/percept/early"]["p50"] == 1.0 and res["camera->agent/world_state/early"]["p50"] == 2.0
    assert res["camera->agent/habitual/cmd"]["p50"] == 4.0
    assert res["camera->agent/percept"]["p50"] == 3.0 and res["camera->agent/world_state"]["p50"] == 5.0
    assert res["end_to_end"]["samples"] == 3 and res["end_to_end"]["p50"] == 7.0 and res["end_to_end"]["max"] == 8.0


def test_publication_times_split_the_reflex_from_commands_that_answered_a_plan() -> None:
    from hjepa_agent.harness.bench_latency import PLAN, hop_latency
    ms = 1_000_000
    cams = {s: 10 * s * ms for s in (1, 2, 3, 4)}                       # frame s published at 10 s ms
    table = {"/camera/image_raw": cams,
             "/agent/percept/early": {s: t + 1 * ms for s, t in cams.items()},
             "/agent/world_state/early": {s: t + 2 * ms for s, t in cams.items()},
             "/agent/world_state": {s: t + 7 * ms for s, t in cams.items()},
             "/agent/habitual/cmd": {s: t + 3 * ms for s, t in cams.items()},
             f"/{PLAN}": {3: cams[3] + 20 * ms, 4: cams[4] + 30 * ms},      # plans for frames 3 and 4
             # frames 1, 2: the bridge followed the habitual proposal; frame 3: it followed the plan (after
             # it); frame 4: it answered before the plan came (still the reflex); 99: a stamp of no frame
             "/cmd_vel": {1: cams[1] + 4 * ms, 2: cams[2] + 5 * ms, 3: cams[3] + 21 * ms, 4: cams[4] + 6 * ms,
                          99: 10**12}}
    res = hop_latency(table)
    assert res["frames"] == 4
    assert res["camera->agent/percept/early"]["p50"] == 1.0 and res["camera->agent/habitual/cmd"]["max"] == 3.0
    assert res["camera->agent/world_state"]["p50"] == 7.0 and res["camera->agent/percept"] == {"samples": 0}
    assert res["reflex"]["samples"] == 3 and res["reflex"]["p50"] == 5.0 and res["reflex"]["max"] == 6.0
    assert res["answered_by_plan"] == {"p50": 21.0, "p99": 21.0, "max": 21.0, "samples": 1}
    assert res["end_to_end"]["samples"] == 4


def test_a_namespace_prefixes_every_topic() -> None:
    from hjepa_agent.harness.bench_latency import hop_latency
    table = {"/robot1/camera/image_raw": {5: 0}, "/robot1/cmd_vel": {5: 2_000_000}}
    assert hop_latency(table, "robot1")["reflex"]["p50"] == 2.0
    assert hop_latency(table)["reflex"] == {"samples": 0}
