"""Goals in another frame, over DDS: the estimator takes a goal in odom as it is and one in base_link placed
with the current odometry pose; a goal in any other frame (no tf2 here) is refused, saying which frames
it takes, and the previous goal stays."""
import json
import math

import numpy as np
import pytest
from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Odometry
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from std_msgs.msg import String

from conftest import spin_until
from hjepa_agent.nodes.codec import to_time
from hjepa_agent.nodes.common import RELIABLE_QOS
from hjepa_agent.nodes.estimator import EstimatorNode
from hjepa_agent.nodes.guard import qos_for


@pytest.fixture
def rig(ros_context):
    ex = SingleThreadedExecutor(context=ros_context)
    estimator = EstimatorNode(context=ros_context)
    harness = Node("harness", context=ros_context)
    events = []
    harness.create_subscription(String, "agent/events", lambda m: events.append(json.loads(m.data)),
                                qos_for("events", subscriber=True))
    odom = harness.create_publisher(Odometry, "odom", RELIABLE_QOS)
    goal = harness.create_publisher(PoseStamped, "goal_pose", RELIABLE_QOS)
    for n in (estimator, harness):
        ex.add_node(n)
    assert spin_until(ex, lambda: odom.get_subscription_count() > 0 and goal.get_subscription_count() > 0
                      and harness.count_publishers("agent/events") > 0)
    yield ex, estimator, odom, goal, events
    ex.shutdown()
    for n in (estimator, harness):
        n.destroy_node()


def _odom(t_s, x, y, yaw):
    msg = Odometry()
    msg.header.stamp, msg.header.frame_id, msg.child_frame_id = to_time(t_s), "odom", "base_link"
    msg.pose.pose.position.x, msg.pose.pose.position.y = x, y
    msg.pose.pose.orientation.z, msg.pose.pose.orientation.w = math.sin(yaw / 2), math.cos(yaw / 2)
    return msg


def _goal(t_s, frame, x, y):
    msg = PoseStamped()
    msg.header.stamp, msg.header.frame_id = to_time(t_s), frame
    msg.pose.position.x, msg.pose.position.y = x, y
    msg.pose.orientation.w = 1.0
    return msg


def test_goals_in_odom_and_base_link_are_placed_and_other_frames_refused(rig):
    ex, estimator, odom, goal, events = rig
    # before any odometry a base_link goal cannot be placed: refused, no goal
    goal.publish(_goal(0.4, "base_link", 1.0, 0.0))
    assert spin_until(ex, lambda: estimator.input_counts()["goal"].get("rejected_bad_frame") == 1)
    assert estimator.core.goal is None

    odom.publish(_odom(0.5, 2.0, -1.0, math.pi / 2))   # robot at (2, -1) facing +y
    assert spin_until(ex, lambda: estimator.core.odom_count == 1)
    goal.publish(_goal(0.6, "base_link", 1.0, 0.0))    # 1 m ahead of it
    assert spin_until(ex, lambda: estimator.core.goal is not None)
    np.testing.assert_allclose(estimator.core.goal, [2.0, 0.0], atol=1e-9)
    goal.publish(_goal(0.7, "base_link", 0.0, 0.5))    # 0.5 m to its left: -x in odom
    assert spin_until(ex, lambda: np.allclose(estimator.core.goal, [1.5, -1.0], atol=1e-9))

    goal.publish(_goal(0.8, "odom", 3.0, 4.0))         # odom: as sent
    assert spin_until(ex, lambda: np.allclose(estimator.core.goal, [3.0, 4.0], atol=1e-12))

    goal.publish(_goal(0.9, "map", 9.0, 9.0))          # no tf2 here: refused, the odom goal stays
    assert spin_until(ex, lambda: estimator.input_counts()["goal"].get("rejected_bad_frame") == 2)
    spin_until(ex, lambda: False, timeout_s=0.2)
    np.testing.assert_allclose(estimator.core.goal, [3.0, 4.0], atol=1e-12)
    assert estimator.input_counts()["goal"]["accepted"] == 3

    accepted = [e["reasons"][0] for e in events if e["kind"] == "goal"]
    assert accepted == ["goal (2.00, 0.00) m in odom accepted (sent as (1.00, 0.00) m in base_link)",
                        "goal (1.50, -1.00) m in odom accepted (sent as (0.00, 0.50) m in base_link)",
                        "goal (3.00, 4.00) m in odom accepted"]
    refusals = [e for e in events if e["kind"] == "input" and "bad_frame" in e["causes"]]
    assert len(refusals) == 1   # reported once per input and cause, then only counted (nodes/guard.py)
    assert "goal in frame 'base_link' before any odometry" in refusals[0]["reasons"][0]


def test_a_goal_in_another_frame_is_refused_with_what_to_send(rig):
    ex, estimator, odom, goal, events = rig
    odom.publish(_odom(0.5, 0.0, 0.0, 0.0))
    assert spin_until(ex, lambda: estimator.core.odom_count == 1)
    goal.publish(_goal(0.6, "map", 1.0, 1.0))
    assert spin_until(ex, lambda: any(e["kind"] == "input" for e in events))
    reason = next(e for e in events if e["kind"] == "input")["reasons"][0]
    assert reason == ("/goal_pose: rejected: goal in frame 'map': this agent accepts goals in 'odom' or "
                      "'base_link' (no tf2 here); send it in odom or run with tf2_ros")
    assert estimator.core.goal is None and estimator.input_counts()["goal"]["accepted"] == 0
