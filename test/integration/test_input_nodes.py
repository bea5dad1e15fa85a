"""Perception and estimator nodes over DDS: bad images and NaN odometry are refused and counted."""
import math

import numpy as np
import pytest
from nav_msgs.msg import Odometry
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from sensor_msgs.msg import Image, JointState

from conftest import spin_until
from hjepa_agent.nodes.codec import msg_to_percept, to_time
from hjepa_agent.nodes.estimator import EstimatorNode
from hjepa_agent.nodes.perception import PerceptionNode


@pytest.fixture
def nodes(ros_context):
    ex = SingleThreadedExecutor(context=ros_context)
    perception = PerceptionNode(context=ros_context)
    estimator = EstimatorNode(context=ros_context)
    harness = Node("harness", context=ros_context)
    for n in (perception, estimator, harness):
        ex.add_node(n)
    yield ex, perception, estimator, harness
    ex.shutdown()
    for n in (perception, estimator, harness):
        n.destroy_node()


def _image(w, h, encoding="rgb8", channels=3, t=1.0):
    rng = np.random.default_rng(int(t * 10))
    msg = Image(height=h, width=w, encoding=encoding, step=w * channels)
    msg.header.stamp = to_time(t)
    msg.data = rng.integers(30, 220, (h, w, channels), dtype=np.uint8).tobytes()
    return msg


def test_perception_resizes_images_and_refuses_bad_ones(nodes):
    ex, perception, _, harness = nodes
    pub = harness.create_publisher(Image, "camera/image_raw", 10)
    got = []
    harness.create_subscription(JointState, "agent/percept", lambda m: got.append(msg_to_percept(m)), 10)
    assert spin_until(ex, lambda: pub.get_subscription_count() > 0 and harness.count_publishers("agent/percept") > 0)
    pub.publish(_image(96, 96, t=1.0))          # resizable: a percept
    assert spin_until(ex, lambda: len(got) == 1)
    pub.publish(_image(64, 64, "32FC1", 4, t=2.0))  # wrong encoding
    pub.publish(_image(128, 12, t=3.0))             # too small: 12 px on its short side
    bad = _image(64, 64, t=4.0)
    bad.data = bad.data[:100]                       # truncated buffer
    pub.publish(bad)
    assert spin_until(ex, lambda: perception.input_counts()["camera"].get("rejected_bad_layout") == 3)
    assert len(got) == 1 and got[0].stamp_s == pytest.approx(1.0)
    assert np.all(np.isfinite(got[0].latent))


def test_estimator_refuses_nan_odometry(nodes):
    ex, _, estimator, harness = nodes
    pub = harness.create_publisher(Odometry, "odom", 10)
    assert spin_until(ex, lambda: pub.get_subscription_count() > 0)
    good = Odometry()
    good.header.stamp = to_time(0.5)
    good.header.frame_id = "odom"
    good.pose.pose.orientation.w = 1.0
    pub.publish(good)
    assert spin_until(ex, lambda: estimator.core.odom_count == 1)
    bad = Odometry()
    bad.header.stamp = to_time(0.6)
    bad.header.frame_id = "odom"
    bad.pose.pose.position.x = math.nan
    bad.pose.pose.orientation.w = 1.0
    pub.publish(bad)
    assert spin_until(ex, lambda: estimator.input_counts()["odom"].get("rejected_non_finite") == 1)
    assert estimator.core.odom_count == 1 and np.all(np.isfinite(estimator.core.x))


def test_estimator_publishes_no_world_state_before_its_first_odometry(nodes):
    """A world state before any odometry would put the robot at the prior's origin with a pose variance
    growing by the second (its ambiguity crossing ambiguity_stop while the watchdog already drives, and the
    first odometry then a 'jump'): none goes out until a reading is fused; the diagnostics say why."""
    from hjepa_agent.core.types import N_LATENT, N_SCAN_BINS, Percept
    from hjepa_agent.nodes.codec import msg_to_world_state, percept_to_msg
    ex, perception, estimator, harness = nodes
    perception.destroy_node()   # percepts come from the harness here, none from the camera
    got = []
    harness.create_subscription(JointState, "agent/world_state", lambda m: got.append(msg_to_world_state(m)), 10)
    pub = harness.create_publisher(JointState, "agent/percept", 10)
    odom = harness.create_publisher(Odometry, "odom", 10)
    assert spin_until(ex, lambda: pub.get_subscription_count() > 0 and odom.get_subscription_count() > 0
                      and harness.count_publishers("agent/world_state") > 0)
    bins = np.full(N_SCAN_BINS, 2.0, np.float32)
    for k in range(5):
        pub.publish(percept_to_msg(Percept(0.1 * (k + 1), np.zeros(N_LATENT, np.float32), bins, 1.0)))
    assert spin_until(ex, lambda: estimator.withheld == 5)
    ex.spin_once(timeout_sec=0.2)
    assert got == [] and estimator.published == 0
    first = Odometry()
    first.header.stamp = to_time(0.55)
    first.header.frame_id = "odom"
    first.pose.pose.position.x, first.pose.pose.position.y = 2.0, -1.0
    first.pose.pose.orientation.w = 1.0
    odom.publish(first)
    assert spin_until(ex, lambda: estimator.core.odom_count == 1)
    pub.publish(percept_to_msg(Percept(0.6, np.zeros(N_LATENT, np.float32), bins, 1.0)))
    assert spin_until(ex, lambda: len(got) == 1)
    assert got[0].pose[0] == pytest.approx(2.0, abs=0.05) and got[0].pose[1] == pytest.approx(-1.0, abs=0.05)
    assert estimator.withheld == 5 and estimator.published == 1
