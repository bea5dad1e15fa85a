"""The perception and planner nodes over DDS place a scan through its frame's mount (nodes/mounts.py): from
the `urdf` parameter; a scan in a frame with no known mount is refused (bad_frame), one in base_frame
needs none."""
from __future__ import annotations

import math

import numpy as np
import pytest
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image, JointState, LaserScan

from conftest import spin_until
from hjepa_agent.core.types import N_SCAN_BINS, SCAN_RANGE_MAX_M, UNKNOWN_RANGE_M
from hjepa_agent.nodes.codec import msg_to_percept, to_time
from hjepa_agent.nodes.perception import PerceptionNode
from hjepa_agent.nodes.planner import PlannerNode
from hjepa_agent.config.paths import data_path

LASER = '<origin xyz="0 0 0.075"/>'


@pytest.fixture
def turned_urdf(tmp_path):
    """The diffbot with its laser turned 90 deg left (as a TurtleBot 4's)."""
    text = data_path("urdf", "diffbot.urdf").read_text()
    path = tmp_path / "turned.urdf"
    path.write_text(text.replace(LASER, '<origin xyz="0 0 0.075" rpy="0 0 1.5707963267948966"/>'))
    return str(path)


def _scan(t: float, frame: str) -> LaserScan:
    """A 64-beam 360-deg scan in ``frame``: one return 1 m along the frame's x axis, nothing else in range."""
    ranges = [math.inf] * 64
    ranges[32] = 1.0
    msg = LaserScan(angle_min=-math.pi + math.pi / 64, angle_increment=2 * math.pi / 64, range_min=0.1,
                    range_max=4.0, ranges=ranges)
    msg.angle_max = msg.angle_min + msg.angle_increment * 63
    msg.header.stamp, msg.header.frame_id = to_time(t), frame
    return msg


def _image(t: float) -> Image:
    rgb = np.random.default_rng(int(t * 10)).integers(30, 220, (64, 64, 3), dtype=np.uint8)
    msg = Image(height=64, width=64, encoding="rgb8", step=192, data=rgb.tobytes())
    msg.header.stamp = to_time(t)
    return msg


def _run(ros_context, params: list[Parameter], frames: list[str]):
    """Send each scan (then an image) to a fresh perception node; return it and the percepts' sectors."""
    ex = SingleThreadedExecutor(context=ros_context)
    perception = PerceptionNode(context=ros_context, parameter_overrides=params)
    harness = Node("harness", context=ros_context)
    for n in (perception, harness):
        ex.add_node(n)
    scan_pub = harness.create_publisher(LaserScan, "scan", 10)
    img_pub = harness.create_publisher(Image, "camera/image_raw", 10)
    got = []
    harness.create_subscription(JointState, "agent/percept", lambda m: got.append(msg_to_percept(m).scan_bins), 10)
    try:
        assert spin_until(ex, lambda: scan_pub.get_subscription_count() > 0 and img_pub.get_subscription_count() > 0
                          and harness.count_publishers("agent/percept") > 0)
        for k, frame in enumerate(frames):
            t = 1.0 + 0.1 * k
            counts = dict(perception.input_counts()["scan"])
            scan_pub.publish(_scan(t, frame))
            assert spin_until(ex, lambda: perception.input_counts()["scan"] != counts)
            img_pub.publish(_image(t + 0.01))
            assert spin_until(ex, lambda: len(got) == k + 1)
        return dict(perception.input_counts()["scan"]), got
    finally:
        ex.shutdown()
        for n in (perception, harness):
            n.destroy_node()


def test_perception_bins_a_turned_laser_through_its_urdf_mount(ros_context, turned_urdf):
    counts, bins = _run(ros_context, [Parameter("urdf", value=turned_urdf)], ["laser_link", "lidar"])
    left = int((math.pi / 2 + math.pi) // (2 * math.pi / N_SCAN_BINS))
    assert bins[0][left] == pytest.approx(1.0) and np.sum(bins[0] < SCAN_RANGE_MAX_M) == 1   # the return is on the left
    assert counts.get("rejected_bad_frame") == 1        # 'lidar' is no link of that URDF
    assert np.all(bins[1] == bins[0])                  # the refused scan changed nothing


def test_perception_without_urdf_takes_base_frame_scans_only(ros_context):
    counts, bins = _run(ros_context, [], ["laser_link", "base_link"])
    assert counts.get("rejected_bad_frame") == 1
    assert np.all(bins[0] == UNKNOWN_RANGE_M)           # nothing known yet: every sector unknown, not free
    ahead = N_SCAN_BINS // 2
    assert bins[1][ahead] == pytest.approx(1.0)


def test_a_urdf_that_cannot_be_read_stops_the_node_at_start(ros_context, tmp_path):
    bad = tmp_path / "bad.urdf"
    bad.write_text("<robot><link name='a'>")
    with pytest.raises(ValueError, match="bad.urdf: not valid XML"):
        PerceptionNode(context=ros_context, parameter_overrides=[Parameter("urdf", value=str(bad))])


def test_planner_places_raw_beams_through_the_mount(ros_context, turned_urdf):
    ex = SingleThreadedExecutor(context=ros_context)
    planner = PlannerNode(context=ros_context, parameter_overrides=[Parameter("urdf", value=turned_urdf)])
    harness = Node("harness", context=ros_context)
    for n in (planner, harness):
        ex.add_node(n)
    pub = harness.create_publisher(LaserScan, "scan", 10)
    try:
        assert spin_until(ex, lambda: pub.get_subscription_count() > 0)
        pub.publish(_scan(1.0, "laser_link"))
        assert spin_until(ex, lambda: planner.scan is not None)
        _, angles, ranges, _, _ = planner.scan
        assert angles[32] == pytest.approx(math.pi / 2 + math.pi / 64) and ranges[32] == pytest.approx(1.0)
        pub.publish(_scan(1.1, "lidar"))
        assert spin_until(ex, lambda: planner.input_counts()["scan"].get("rejected_bad_frame") == 1)
    finally:
        ex.shutdown()
        for n in (planner, harness):
            n.destroy_node()
