"""Frames in a run's recording: a short `hjepa-agent sim` run's run.mcap, read back with rosbags, holds /tf (the
transform each odom message states, at its receive time), /tf_static (the URDF's fixed joints, once, first)
and camera/camera_info (with each image, same stamp and frame, K from the camera's size and fov)."""
import math
import subprocess
import sys

import numpy as np
from rosbags.rosbag2 import Reader
from rosbags.typesys import Stores, get_typestore

from hjepa_agent.config.urdf import link_mount, quaternion_matrix, rpy_matrix
from hjepa_agent.config.paths import data_path


def _read(bag):
    """{topic: [(receive time ns, message)]} of the bag, deserialized with rosbags' typestore."""
    ts = get_typestore(Stores.LATEST)
    out = {}
    with Reader(bag) as reader:
        for conn, t_ns, raw in reader.messages():
            out.setdefault(conn.topic, []).append((t_ns, ts.deserialize_cdr(raw, conn.msgtype)))
    return out


def test_a_runs_bag_has_tf_tf_static_and_camera_info(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "hjepa_agent.cli", "sim", "--scenario",
                           str(data_path("config", "scenarios", "open.yaml")), "--episodes", "1", "--seed", "1",
                           "--out", str(out), "--quiet"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    bag = _read(out / "run.mcap")

    # /tf: one transform per odom message, at its receive time, equal to its pose and stamp
    odom, tf = bag["/odom"], bag["/tf"]
    assert len(odom) > 100 and len(tf) == len(odom)
    for (t_odom, o), (t_tf, m) in zip(odom, tf):
        assert t_tf == t_odom and len(m.transforms) == 1
        x = m.transforms[0]
        assert (x.header.frame_id, x.child_frame_id) == (o.header.frame_id, o.child_frame_id) == ("odom", "base_link")
        assert (x.header.stamp.sec, x.header.stamp.nanosec) == (o.header.stamp.sec, o.header.stamp.nanosec)
        p, q = o.pose.pose.position, o.pose.pose.orientation
        tr, rot = x.transform.translation, x.transform.rotation
        assert (tr.x, tr.y, tr.z, rot.x, rot.y, rot.z, rot.w) == (p.x, p.y, p.z, q.x, q.y, q.z, q.w)

    # /tf_static: once, before anything else, the URDF's fixed joints; the laser's is its mount
    (t_static, static), = bag["/tf_static"]
    assert t_static <= min(t for msgs in bag.values() for t, _ in msgs)
    by_child = {x.child_frame_id: x for x in static.transforms}
    assert set(by_child) == {"front_caster", "rear_caster", "camera_link", "laser_link"}
    laser = by_child["laser_link"]
    mount = link_mount(data_path("urdf", "diffbot.urdf"), "base_link", "laser_link")
    assert laser.header.frame_id == "base_link"
    tr, rot = laser.transform.translation, laser.transform.rotation
    np.testing.assert_allclose((tr.x, tr.y, tr.z), (mount.x_m, mount.y_m, mount.z_m), atol=1e-12)
    np.testing.assert_allclose(quaternion_matrix(rot.x, rot.y, rot.z, rot.w),
                               rpy_matrix(mount.roll_rad, mount.pitch_rad, mount.yaw_rad), atol=1e-12)

    # camera_info: with each image, same stamp and frame; diffbot's camera is 64 x 64 px, 90 deg
    key = lambda m: (m.header.stamp.sec, m.header.stamp.nanosec, m.header.frame_id)  # noqa: E731
    images = {key(m): m for _, m in bag["/camera/image_raw"]}
    infos = {key(m): m for _, m in bag["/camera/camera_info"]}
    assert len(images) > 10 and set(infos) == set(images) and len(bag["/camera/camera_info"]) == len(images)
    assert {frame for _, _, frame in infos} == {"camera_link"}
    f = 32.0 / math.tan(math.radians(45.0))
    for stamp, info in infos.items():
        assert (info.width, info.height) == (images[stamp].width, images[stamp].height) == (64, 64)
        np.testing.assert_allclose(info.k, [f, 0.0, 31.5, 0.0, f, 31.5, 0.0, 0.0, 1.0], atol=1e-9)
        np.testing.assert_allclose(info.p, [f, 0.0, 31.5, 0.0, 0.0, f, 31.5, 0.0, 0.0, 0.0, 1.0, 0.0], atol=1e-9)
