"""hjepa-agent dataset build on recordings written here (rosbags, no ROS): rows, episodes, commands,
scan mounts from /tf_static, and refusals that name the bag, the topic and the time."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pyarrow")

from hjepa_agent.core.perception import scan_to_bins  # noqa: E402
from hjepa_agent.core.types import Mount  # noqa: E402
from hjepa_agent.dataset.bags import BagRefused, BuildOptions, episodes_from_bag  # noqa: E402
from hjepa_agent.dataset.build import build  # noqa: E402
from hjepa_agent.dataset.format import open_dataset  # noqa: E402

LASER_YAW = 0.5   # rad: the scanner's mount on base_link, stated only on /tf_static


def write_bag(path: Path, *, seconds: float = 8.0, goal_switch_s: float | None = 4.0, drop: tuple[str, ...] = (),
              camera_gap: tuple[float, float] | None = None, unstamped_cmd: bool = False,
              scan_frame: str = "base_laser", compressed: bool = False, goal_frame: str = "odom",
              map_to_odom: tuple[float, float, float] | None = None) -> Path:
    """A recording like the agent's: camera 10 Hz, scan 10 Hz, odom 50 Hz, cmd_vel 20 Hz, goal 2 Hz,
    mode 10 Hz, /tf_static base_link -> base_laser. The robot drives at 0.2 m/s along x; the goal moves
    at ``goal_switch_s`` (a new episode)."""
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    store = get_typestore(Stores.LATEST)
    T = store.types

    def header(t: float, frame: str):
        sec, ns = divmod(int(round(t * 1e9)), 1_000_000_000)
        return T["std_msgs/msg/Header"](stamp=T["builtin_interfaces/msg/Time"](sec=sec, nanosec=ns), frame_id=frame)

    vec = lambda x=0.0, y=0.0, z=0.0: T["geometry_msgs/msg/Vector3"](x=x, y=y, z=z)  # noqa: E731
    quat = lambda yaw: T["geometry_msgs/msg/Quaternion"](x=0.0, y=0.0, z=math.sin(yaw / 2), w=math.cos(yaw / 2))  # noqa: E731
    t0 = 1000.0
    msgs: list[tuple[float, str, str, object]] = []
    rng = np.random.default_rng(0)
    for i in range(int(seconds * 10)):
        t = t0 + i * 0.1
        if camera_gap and camera_gap[0] <= i * 0.1 < camera_gap[1]:
            continue
        img = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
        if compressed:   # the camera's compressed transport only (PNG: lossless, so rows can be compared)
            import cv2
            data = np.frombuffer(cv2.imencode(".png", cv2.cvtColor(img, cv2.COLOR_RGB2BGR))[1].tobytes(), np.uint8)
            msgs.append((t, "/camera/image_raw/compressed", "sensor_msgs/msg/CompressedImage",
                         T["sensor_msgs/msg/CompressedImage"](header=header(t, "camera_link"), format="png", data=data)))
        else:
            msgs.append((t, "/camera/image_raw", "sensor_msgs/msg/Image",
                         T["sensor_msgs/msg/Image"](header=header(t, "camera_link"), height=64, width=64,
                                                    encoding="rgb8", is_bigendian=0, step=192, data=img.reshape(-1))))
        ranges = np.full(360, 2.0, np.float32)
        ranges[:10] = 0.5 + 0.01 * i
        msgs.append((t + 0.001, "/scan", "sensor_msgs/msg/LaserScan", T["sensor_msgs/msg/LaserScan"](
            header=header(t, scan_frame), angle_min=-math.pi, angle_max=math.pi, angle_increment=2 * math.pi / 360,
            time_increment=0.0, scan_time=0.1, range_min=0.05, range_max=8.0, ranges=ranges,
            intensities=np.zeros(0, np.float32))))
        msgs.append((t + 0.002, "/agent/mode", "std_msgs/msg/String",
                     T["std_msgs/msg/String"](data="PLANNING" if i % 10 < 3 else "HABITUAL")))
    for i in range(int(seconds * 50)):
        t = t0 + i * 0.02
        x = 0.2 * i * 0.02 if goal_switch_s is None or i * 0.02 < goal_switch_s else 0.2 * (i * 0.02 - goal_switch_s)
        pose = T["geometry_msgs/msg/PoseWithCovariance"](
            pose=T["geometry_msgs/msg/Pose"](position=T["geometry_msgs/msg/Point"](x=x, y=0.0, z=0.0), orientation=quat(0.0)),
            covariance=np.zeros(36))
        twist = T["geometry_msgs/msg/TwistWithCovariance"](twist=T["geometry_msgs/msg/Twist"](linear=vec(0.2), angular=vec()),
                                                           covariance=np.zeros(36))
        msgs.append((t + 0.0005, "/odom", "nav_msgs/msg/Odometry",
                     T["nav_msgs/msg/Odometry"](header=header(t, "odom"), child_frame_id="base_link", pose=pose, twist=twist)))
    for i in range(int(seconds * 20)):
        t = t0 + i * 0.05 + 0.003
        tw = T["geometry_msgs/msg/Twist"](linear=vec(0.01 * i), angular=vec(z=0.1))
        if unstamped_cmd:
            msgs.append((t, "/cmd_vel", "geometry_msgs/msg/Twist", tw))
        else:
            msgs.append((t, "/cmd_vel", "geometry_msgs/msg/TwistStamped",
                         T["geometry_msgs/msg/TwistStamped"](header=header(t, "base_link"), twist=tw)))
    for i in range(int(seconds * 2)):
        t = t0 + i * 0.5
        gx = 3.0 if goal_switch_s is None or i * 0.5 < goal_switch_s else -3.0
        msgs.append((t, "/goal_pose", "geometry_msgs/msg/PoseStamped", T["geometry_msgs/msg/PoseStamped"](
            header=header(t, goal_frame), pose=T["geometry_msgs/msg/Pose"](position=T["geometry_msgs/msg/Point"](x=gx, y=1.0, z=0.0),
                                                                       orientation=quat(0.0)))))
    tf = T["tf2_msgs/msg/TFMessage"](transforms=[T["geometry_msgs/msg/TransformStamped"](
        header=header(t0, "base_link"), child_frame_id="base_laser",
        transform=T["geometry_msgs/msg/Transform"](translation=vec(), rotation=quat(LASER_YAW)))])
    msgs.append((t0 - 0.01, "/tf_static", "tf2_msgs/msg/TFMessage", tf))
    if map_to_odom is not None:   # a localisation's map -> odom, at 10 Hz
        mx, my, myaw = map_to_odom
        for i in range(int(seconds * 10)):
            t = t0 - 0.05 + i * 0.1
            msgs.append((t, "/tf", "tf2_msgs/msg/TFMessage", T["tf2_msgs/msg/TFMessage"](transforms=[
                T["geometry_msgs/msg/TransformStamped"](
                    header=header(t, "map"), child_frame_id="odom",
                    transform=T["geometry_msgs/msg/Transform"](translation=vec(mx, my), rotation=quat(myaw)))])))
    msgs.sort(key=lambda m: m[0])
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as w:
        conns = {}
        for t, topic, typ, msg in msgs:
            if topic.strip("/") in drop:
                continue
            if topic not in conns:
                conns[topic] = w.add_connection(topic, typ, typestore=store)
            w.write(conns[topic], int(t * 1e9), store.serialize_cdr(msg, typ))
    return path


def test_rows_episodes_commands_and_mounts(tmp_path: Path) -> None:
    bag = write_bag(tmp_path / "bag")
    episodes, problems, notes = episodes_from_bag(bag, BuildOptions())
    assert problems == [] and notes == []
    assert [len(e["timestamp"]) for e in episodes] == [40, 40]          # split where the goal moved
    first = episodes[0]
    assert np.allclose(first["observation.goal"][0], (3.0, 1.0)) and np.allclose(episodes[1]["observation.goal"][0], (-3.0, 1.0))
    # action: the mean of the commands stamped in [t, t + 0.1) (two at 20 Hz), command: the latest of them
    i = 10
    assert first["action"][i][0] == pytest.approx(0.01 * (2 * i + 0.5), abs=1e-6)
    assert first["action.command"][i][0] == pytest.approx(0.01 * (2 * i + 1), abs=1e-6)
    # the scan placed with /tf_static's mount (yaw 0.5 rad), as perception places it
    ranges = np.full(360, 2.0, np.float32)
    ranges[:10] = 0.5 + 0.01 * 3
    want = scan_to_bins(ranges, -math.pi, 2 * math.pi / 360, 0.05, 8.0, Mount(yaw_rad=LASER_YAW))
    assert np.allclose(first["observation.scan"][3], want)
    assert not np.allclose(want, scan_to_bins(ranges, -math.pi, 2 * math.pi / 360, 0.05, 8.0))
    assert first["mode"][0] == "" and set(first["mode"][1:]) == {"PLANNING", "HABITUAL"}   # mode 2 ms after frame 0


def test_build_writes_a_dataset_that_reads_back_losslessly(tmp_path: Path) -> None:
    bag = write_bag(tmp_path / "bag")
    eps, _, _ = episodes_from_bag(bag, BuildOptions())
    info = build([str(bag)], tmp_path / "ds", BuildOptions(), held_out=0.5, risk=False, progress=False)
    ds = open_dataset(tmp_path / "ds")
    assert info["total_episodes"] == 2 and info["total_frames"] == 80
    assert sorted(ds.split("train") + ds.split("val") + ds.split("test")) == [0, 1]
    rows = ds.load([0, 1])
    assert np.array_equal(rows["observation.image"], np.concatenate([e["observation.image"] for e in eps]))
    assert np.array_equal(rows["index"], np.arange(80))
    assert json.loads((tmp_path / "ds" / "meta" / "stats.json").read_text())["action"]["count"] == 80


@pytest.mark.parametrize("unstamped", [False, True])
def test_an_unstamped_command_is_placed_by_receive_time(tmp_path: Path, unstamped: bool) -> None:
    eps, problems, _ = episodes_from_bag(write_bag(tmp_path / "bag", unstamped_cmd=unstamped), BuildOptions())
    assert problems == []
    assert eps[0]["action.command"][10][0] == pytest.approx(0.21, abs=1e-6)


def test_a_compressed_camera_gives_the_same_rows_as_a_raw_one(tmp_path: Path) -> None:
    raw, _, _ = episodes_from_bag(write_bag(tmp_path / "raw"), BuildOptions())
    packed, problems, _ = episodes_from_bag(write_bag(tmp_path / "png", compressed=True), BuildOptions())
    assert problems == [] and len(packed) == 2
    assert np.array_equal(packed[0]["observation.image"], raw[0]["observation.image"])


def test_a_goal_in_the_map_frame_is_placed_with_the_recorded_map_to_odom(tmp_path: Path) -> None:
    bag = write_bag(tmp_path / "bag", goal_frame="map", map_to_odom=(1.0, 2.0, math.pi / 2))
    eps, problems, _ = episodes_from_bag(bag, BuildOptions())
    assert problems == []
    # odom sits at (1, 2) in map, turned 90 deg: map (3, 1) -> odom (-1, -2); map (-3, 1) -> odom (-1, 4)
    assert np.allclose(eps[0]["observation.goal"][5], (-1.0, -2.0), atol=1e-6)
    assert np.allclose(eps[1]["observation.goal"][5], (-1.0, 4.0), atol=1e-6)
    with pytest.raises(BagRefused, match="no /tf map -> odom"):
        build([str(write_bag(tmp_path / "nomap", goal_frame="map"))], tmp_path / "ds", BuildOptions(), risk=False,
              progress=False)


def test_a_missing_topic_is_refused_naming_bag_and_topic(tmp_path: Path) -> None:
    bag = write_bag(tmp_path / "bag", drop=("scan",))
    with pytest.raises(BagRefused) as exc:
        build([str(bag)], tmp_path / "ds", BuildOptions(), risk=False, progress=False)
    text = str(exc.value)
    assert str(bag) in text and "/scan" in text and "missing_topic" in text
    assert not (tmp_path / "ds").exists()   # nothing half-written is left


def test_a_camera_gap_is_refused_with_its_time_or_cut_with_allow_gaps(tmp_path: Path) -> None:
    bag = write_bag(tmp_path / "bag", goal_switch_s=None, camera_gap=(3.0, 4.0))
    with pytest.raises(BagRefused) as exc:
        build([str(bag)], tmp_path / "ds", BuildOptions(), risk=False, progress=False)
    gap = exc.value.problems[0]
    assert (gap.bag, gap.topic, gap.kind) == (str(bag), "/camera/image_raw", "gap")
    assert gap.time_s == pytest.approx(1002.9, abs=1e-6) and gap.offset_s == pytest.approx(2.9, abs=0.05)
    assert "stamp 1002.900 s" in str(exc.value)
    info = build([str(bag)], tmp_path / "ds", BuildOptions(allow_gaps=True), risk=False, progress=False)
    assert info["total_episodes"] == 2 and info["problems"] == 1
    assert json.loads((tmp_path / "ds" / "meta" / "problems.jsonl").read_text())["kind"] == "gap"


def test_a_truncated_bag_is_refused_naming_where_reading_stopped(tmp_path: Path) -> None:
    pytest.importorskip("mcap")
    bag = write_bag(tmp_path / "bag", seconds=30.0, goal_switch_s=None)   # several MCAP chunks
    mcap = next(bag.glob("*.mcap"))
    data = mcap.read_bytes()
    mcap.write_bytes(data[: int(len(data) * 0.6)])                       # a recording cut short
    with pytest.raises(BagRefused) as exc:
        build([str(bag)], tmp_path / "ds", BuildOptions(), risk=False, progress=False)
    p = exc.value.problems[0]
    assert p.kind == "unreadable" and p.bag == str(bag)
    assert p.topic in ("/camera/image_raw", "/scan", "/odom", "/cmd_vel", "/goal_pose", "/agent/mode")
    assert 1000.0 < p.time_s < 1030.0 and 0.0 < p.offset_s < 30.0          # where the readable part ends
    text = str(exc.value)
    assert str(bag) in text and p.topic in text and f"{p.time_s:.3f}" in text and "corrupt or incomplete" in text


def test_a_file_that_is_no_recording_is_refused_naming_it(tmp_path: Path) -> None:
    bag = write_bag(tmp_path / "bag")
    mcap = next(bag.glob("*.mcap"))
    mcap.write_bytes(b"\x89MCAP0\r\n" + bytes(100))
    with pytest.raises(BagRefused) as exc:
        build([str(bag)], tmp_path / "ds", BuildOptions(), risk=False, progress=False)
    assert exc.value.problems[0].kind == "unreadable" and str(bag) in str(exc.value)


def test_a_scan_frame_without_a_mount_is_refused(tmp_path: Path) -> None:
    bag = write_bag(tmp_path / "bag", scan_frame="laser_far_away")
    with pytest.raises(BagRefused) as exc:
        build([str(bag)], tmp_path / "ds", BuildOptions(), risk=False, progress=False)
    assert "laser_far_away" in str(exc.value) and "/scan" in str(exc.value)
