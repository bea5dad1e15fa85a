"""Real robots' formats by configuration, over DDS: cmd_vel as an unstamped geometry_msgs/Twist (TurtleBot 4,
Create 3) through the whole agent and the simulator's driver; the camera as a CompressedImage on
camera/image_raw/compressed for perception and the watchdog; camera sizes other than 64x64."""
import cv2
import numpy as np
import pytest
import yaml
from geometry_msgs.msg import Twist
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import CompressedImage, Image, JointState

from conftest import spin_until
from hjepa_agent.core.types import Mode
from hjepa_agent.nodes.codec import msg_to_percept, to_time
from hjepa_agent.config.paths import data_path


@pytest.fixture
def twist_context():
    """A fresh rclpy Context (private DDS domain) whose every node has cmd_vel_type twist (a global -p, as
    the params file's '/**' section sets it on a robot): the simulator's node too, which the embedded stack
    builds without the params file."""
    import rclpy

    from hjepa_agent.harness.runner import isolate_dds
    isolate_dds()
    ctx = rclpy.Context()
    rclpy.init(context=ctx, args=["--ros-args", "-p", "cmd_vel_type:=twist"])
    yield ctx
    rclpy.shutdown(context=ctx)


def test_with_cmd_vel_type_twist_the_agent_drives_the_robot_with_unstamped_twists(twist_context, tmp_path):
    from hjepa_agent.harness.runner import EmbeddedStack
    params = yaml.safe_load(data_path("config", "agent.yaml").read_text())
    params["/**"]["ros__parameters"]["cmd_vel_type"] = "twist"
    params_file = tmp_path / "agent_twist.yaml"
    params_file.write_text(yaml.safe_dump(params))
    stack = EmbeddedStack(twist_context, data_path("config", "scenarios", "open.yaml"), params_file=params_file)
    try:
        wire: list[tuple[float, float]] = []
        tap = Node("tap", context=twist_context)
        tap.create_subscription(Twist, "cmd_vel", lambda m: wire.append((m.linear.x, m.angular.z)), 100)
        stack.executor.add_node(tap)
        assert spin_until(stack.executor, lambda: tap.count_publishers("cmd_vel") >= 2)   # bridge and watchdog
        start = stack.world.pose()
        stack.run(3.0)
        lg = stack.sim.log
        assert stack.node("bridge").pub._pub.msg_type is Twist and stack.sim._inputs["command"].sub.msg_type is Twist
        assert len(lg.v) > 40 and set(lg.stamp_ns) == {-1} and set(lg.frame) == {""}   # unstamped, as sent
        assert max(lg.v) > 0.2, "the robot was never commanded forward"
        moved = np.hypot(stack.world.pose()[0] - start[0], stack.world.pose()[1] - start[1])
        assert moved > 0.3, f"the robot moved {moved:.2f} m"
        assert wire and set(wire) <= set(zip(lg.v, lg.w))   # a plain Twist subscriber reads what the base got
        watchdog = stack.node("watchdog")
        assert watchdog.core.foreign.undeclared == 0, "the bridge's unstamped commands were taken for foreign ones"
        assert stack.metrics.mode != Mode.SAFE_STOP
        # no bridge: the watchdog ramps the base down itself, with Twists too, and knows them for its own
        n_before = len(lg.v)
        stack.step.remove("bridge")
        stack.run(2.0)
        ramp = lg.v[n_before:]
        assert ramp and ramp[-1] == 0.0 and ramp[0] > 0.0, "the watchdog's own stop did not reach the base"
        assert watchdog.core.foreign.undeclared == 0, "the watchdog took its own unstamped stop for a foreign one"
        tap.destroy_node()
    finally:
        stack.close()


def test_an_unstamped_command_skips_the_stamp_check_and_is_timed_by_receipt(twist_context):
    from hjepa_agent.nodes.guard import GuardedNode
    node = GuardedNode("sim", events=False, context=twist_context)
    harness = Node("harness", context=twist_context)
    ex = SingleThreadedExecutor(context=twist_context)
    for n in (node, harness):
        ex.add_node(n)
    got = []
    try:
        node.subscribe("command", lambda cmd, rx: got.append((cmd, rx)))
        pub = harness.create_publisher(Twist, "cmd_vel", 10)
        assert spin_until(ex, lambda: pub.get_subscription_count() > 0)
        msg = Twist()
        msg.linear.x, msg.angular.z = 0.25, -0.5
        pub.publish(msg)
        msg.linear.x = float("nan")
        pub.publish(msg)
        assert spin_until(ex, lambda: node.input_counts()["command"]["received"] == 2)
        (cmd, rx), = got
        assert (cmd.v, cmd.w, cmd.stamp_ns, cmd.frame_id) == (0.25, -0.5, None, "")
        assert rx.stamp_s is None and rx.reading_s == rx.now_s
        assert node.input_counts()["command"]["rejected_non_finite"] == 1
    finally:
        ex.shutdown()
        node.destroy_node()
        harness.destroy_node()


@pytest.fixture
def compressed_context():
    """A fresh rclpy Context (private DDS domain) whose every node has image_transport compressed."""
    import rclpy

    from hjepa_agent.harness.runner import isolate_dds
    isolate_dds()
    ctx = rclpy.Context()
    rclpy.init(context=ctx, args=["--ros-args", "-p", "image_transport:=compressed"])
    yield ctx
    rclpy.shutdown(context=ctx)


def _jpeg(t_s: float, w: int = 640, h: int = 480) -> CompressedImage:
    rgb = np.random.default_rng(int(t_s * 10)).integers(30, 220, (h, w, 3), dtype=np.uint8)
    ok, buf = cv2.imencode(".jpg", rgb)
    msg = CompressedImage(format="rgb8; jpeg compressed bgr8", data=buf.tobytes())
    msg.header.stamp = to_time(t_s)
    return msg


def test_with_image_transport_compressed_perception_and_the_watchdog_read_jpegs(compressed_context):
    from hjepa_agent.nodes.perception import PerceptionNode
    from hjepa_agent.nodes.watchdog import WatchdogNode
    perception = PerceptionNode(context=compressed_context)
    watchdog = WatchdogNode(context=compressed_context, parameter_overrides=[Parameter("use_sim_time", value=False)])
    harness = Node("harness", context=compressed_context)
    ex = SingleThreadedExecutor(context=compressed_context)
    for n in (perception, watchdog, harness):
        ex.add_node(n)
    try:
        pub = harness.create_publisher(CompressedImage, "camera/image_raw/compressed", 10)
        raw = harness.create_publisher(Image, "camera/image_raw", 10)
        got = []
        harness.create_subscription(JointState, "agent/percept", lambda m: got.append(msg_to_percept(m)), 10)
        assert spin_until(ex, lambda: pub.get_subscription_count() == 2 and harness.count_publishers("agent/percept"))
        assert raw.get_subscription_count() == 0   # nobody reads the raw topic any more
        pub.publish(_jpeg(1.0))
        assert spin_until(ex, lambda: len(got) == 1 and watchdog.input_age_s("camera") is not None)
        assert got[0].stamp_s == pytest.approx(1.0) and np.all(np.isfinite(got[0].latent))
        garbage = _jpeg(2.0)
        garbage.data = b"\xff\xd8\xff" + bytes(64)
        pub.publish(garbage)
        wrong = _jpeg(3.0)
        wrong.format = "16UC1; compressedDepth png"
        pub.publish(wrong)
        assert spin_until(ex, lambda: perception.input_counts()["camera"].get("rejected_bad_layout") == 2
                          and watchdog.input_counts()["camera"].get("rejected_bad_layout") == 2)
        pub.publish(_jpeg(4.0, 1280, 720))
        assert spin_until(ex, lambda: len(got) == 2)
    finally:
        ex.shutdown()
        for n in (perception, watchdog, harness):
            n.destroy_node()


@pytest.mark.parametrize("w, h, encoding, channels", [(640, 480, "bgr8", 3), (250, 250, "mono8", 1),
                                                      (1280, 720, "rgba8", 4)])
def test_perception_takes_real_camera_sizes_raw(ros_context, w, h, encoding, channels):
    from hjepa_agent.nodes.perception import PerceptionNode
    perception = PerceptionNode(context=ros_context)
    harness = Node("harness", context=ros_context)
    ex = SingleThreadedExecutor(context=ros_context)
    for n in (perception, harness):
        ex.add_node(n)
    try:
        pub = harness.create_publisher(Image, "camera/image_raw", 10)
        got = []
        harness.create_subscription(JointState, "agent/percept", lambda m: got.append(msg_to_percept(m)), 10)
        assert spin_until(ex, lambda: pub.get_subscription_count() > 0 and harness.count_publishers("agent/percept"))
        msg = Image(height=h, width=w, encoding=encoding, step=w * channels)
        msg.header.stamp = to_time(1.0)
        msg.data = np.random.default_rng(0).integers(30, 220, h * w * channels, dtype=np.uint8).tobytes()
        pub.publish(msg)
        assert spin_until(ex, lambda: len(got) == 1)
        assert perception.input_counts()["camera"]["accepted"] == 1
    finally:
        ex.shutdown()
        for n in (perception, harness):
            n.destroy_node()
