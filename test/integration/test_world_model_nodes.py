"""Perception with the JEPA encoder and the estimator with the learned predictor, over DDS.

The agent does not run this way yet (the habitual policy is not retrained on the learned
latent); this checks the plumbing and that the learned uncertainty reacts to a blackout.
"""
import numpy as np
import pytest
from geometry_msgs.msg import TwistStamped
from nav_msgs.msg import Odometry
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image, JointState, LaserScan

from conftest import spin_until
from hjepa_agent.nodes.codec import msg_to_world_state, to_time
from hjepa_agent.nodes.estimator import EstimatorNode
from hjepa_agent.nodes.perception import PerceptionNode
from hjepa_agent.config.paths import data_path
from hjepa_agent.sim.robot import load_robot_description
from hjepa_agent.sim.scenario import load_scenario
from hjepa_agent.sim.world import SimWorld


@pytest.fixture
def world():
    w = SimWorld(load_robot_description(data_path("config", "robots", "diffbot.yaml")))
    w.reset(load_scenario(data_path("config", "scenarios", "clutter.yaml")), 0)
    yield w
    w.close()


def test_learned_estimator_runs_and_its_ambiguity_sees_a_blackout(ros_context, world):
    ex = SingleThreadedExecutor(context=ros_context)
    perception = PerceptionNode(context=ros_context, parameter_overrides=[
        Parameter("encoder_model", value="world_encoder")])
    estimator = EstimatorNode(context=ros_context, parameter_overrides=[Parameter("world_model", value=True)])
    harness = Node("harness", context=ros_context)
    for n in (perception, estimator, harness):
        ex.add_node(n)
    img_pub = harness.create_publisher(Image, "camera/image_raw", 10)
    cmd_pub = harness.create_publisher(TwistStamped, "cmd_vel", 10)
    scan_pub = harness.create_publisher(LaserScan, "scan", 10)
    odom_pub = harness.create_publisher(Odometry, "odom", 10)   # the estimator publishes nothing before odometry
    states, learned = [], []
    harness.create_subscription(JointState, "agent/world_state", lambda m: states.append(msg_to_world_state(m)), 10)
    try:
        assert spin_until(ex, lambda: img_pub.get_subscription_count() > 0 and cmd_pub.get_subscription_count() > 0
                          and odom_pub.get_subscription_count() > 0 and harness.count_publishers("agent/world_state") > 0)
        for k in range(30):
            t = 0.1 * (k + 1)
            cmd = TwistStamped()
            cmd.header.stamp = to_time(t)
            cmd.twist.linear.x, cmd.twist.angular.z = 0.3, 0.2
            cmd_pub.publish(cmd)
            world.set_cmd(0.3, 0.2)
            world.step(0.1)
            ranges = world.scan()
            scan = LaserScan(angle_min=-np.pi, angle_increment=2 * np.pi / ranges.size, range_min=0.05,
                             range_max=4.0, ranges=[float(r) for r in ranges])
            scan.header.stamp, scan.header.frame_id = to_time(t), "base_link"   # the diffbot's laser is on its axis
            scan_pub.publish(scan)
            x, y, yaw = world.pose()
            odom = Odometry()
            odom.header.stamp, odom.header.frame_id = to_time(t), "odom"
            odom.pose.pose.position.x, odom.pose.pose.position.y = x, y
            odom.pose.pose.orientation.z, odom.pose.pose.orientation.w = np.sin(yaw / 2), np.cos(yaw / 2)
            odom_pub.publish(odom)
            rgb = world.render_camera() if k < 25 else np.zeros((64, 64, 3), np.uint8)  # blackout from k = 25
            msg = Image(height=64, width=64, encoding="rgb8", step=192, data=rgb.tobytes())
            msg.header.stamp = to_time(t)
            img_pub.publish(msg)
            n = len(states)
            assert spin_until(ex, lambda: len(states) > n)
            learned.append(estimator.core.latent_ambiguity)
    finally:
        ex.shutdown()
        for n in (perception, estimator, harness):
            n.destroy_node()
    latent_var = np.array([s.variance[-16:] for s in states])
    assert np.all(np.isfinite(latent_var)) and np.all(latent_var > 0)
    assert max(s.ambiguity for s in states[5:25]) < min(s.ambiguity for s in states[25:])
    # the learned part alone (disagreement + surprise), not only the image-quality term, sees it at onset
    assert learned[25] > max(learned[5:25])
