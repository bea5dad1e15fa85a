"""The bridge node over real DDS: limits, stale source, NaN input, e-stop latch and reset service."""
import math

import pytest
from geometry_msgs.msg import TwistStamped
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, String
from std_srvs.srv import Trigger

from conftest import SimClock, spin_until
from hjepa_agent.config.ego_model import load_ego_model
from hjepa_agent.nodes.bridge import BridgeNode
from hjepa_agent.nodes.codec import from_time, msg_to_bridge_output, to_time
from hjepa_agent.config.paths import data_path

EGO = load_ego_model(data_path("config", "ego_model.yaml"))
DT = 0.01


class Harness:
    """A test node playing watchdog + habitual + operator, recording cmd_vel."""

    def __init__(self, ctx):
        self.ex = SingleThreadedExecutor(context=ctx)
        self.bridge = BridgeNode(context=ctx, parameter_overrides=[Parameter("use_sim_time", value=True)])
        self.node = Node("harness", context=ctx)
        self.clock = SimClock(self.node, self.ex)
        self.cmd_pub = self.node.create_publisher(TwistStamped, "agent/habitual/cmd", 10)
        self.mode_pub = self.node.create_publisher(String, "agent/mode", 10)
        self.estop_pub = self.node.create_publisher(Bool, "agent/estop", 10)
        self.reset = self.node.create_client(Trigger, "agent/estop/reset")
        self.out: list[tuple[float, float, float, float]] = []  # (t, v, w, stamp)
        self.records: list[tuple] = []   # the bridge's agent/bridge/output records: (stamp ns, v, w, origin ns, state)
        self.node.create_subscription(TwistStamped, "cmd_vel", self._on_cmd, 50)
        self.node.create_subscription(JointState, "agent/bridge/output",
                                      lambda m: self.records.append(msg_to_bridge_output(m)), 50)
        for n in (self.bridge, self.node):
            self.ex.add_node(n)
        assert spin_until(self.ex, lambda: self.cmd_pub.get_subscription_count() > 0
                          and self.node.count_publishers("cmd_vel") > 0)
        self.clock.advance(DT)

    def _on_cmd(self, msg):
        self.out.append((self.clock.t_s, msg.twist.linear.x, msg.twist.angular.z, from_time(msg.header.stamp)))

    def drive(self, seconds, v=0.5, w=0.0, mode="HABITUAL", propose=True):
        for _ in range(int(round(seconds / DT))):
            self.mode_pub.publish(String(data=mode))
            if propose:
                m = TwistStamped()
                m.header.stamp = to_time(self.clock.t_s)
                m.twist.linear.x, m.twist.angular.z = v, w
                self.cmd_pub.publish(m)
            self.clock.advance(DT)

    def close(self):
        self.ex.shutdown()
        self.bridge.destroy_node()
        self.node.destroy_node()


@pytest.fixture
def harness(ros_context):
    h = Harness(ros_context)
    yield h
    h.close()


def _accels(out):
    return [(b[1] - a[1]) / (b[0] - a[0]) for a, b in zip(out, out[1:]) if b[0] > a[0]]


def test_follows_habitual_within_limits_and_carries_origin_stamp(harness):
    harness.drive(3.0, v=5.0)  # asks for far more than the limit
    vs = [o[1] for o in harness.out]
    assert max(vs) <= EGO.operating.max_linear_mps + 1e-6
    assert max(vs) > 0.9 * EGO.operating.max_linear_mps
    assert max(_accels(harness.out)) <= EGO.hard.kinematics.linear_x.max_accel + 1e-6
    t, _, _, stamp = harness.out[-1]
    assert abs(t - stamp) < 1e-6   # cmd_vel is stamped when published
    stamp_ns, v, _, origin_ns, state = harness.records[-1]
    assert stamp_ns == int(round(stamp * 1e9)) and v == harness.out[-1][1] and state == "DRIVING"
    assert 0.0 <= t - origin_ns * 1e-9 < 0.05  # the camera stamp of the proposal it answered travels beside it


def test_stale_source_decelerates_to_zero_and_holds(harness):
    harness.drive(2.0, v=0.5)
    t_last = harness.clock.t_s - DT
    n0 = len(harness.out)
    harness.drive(2.0, propose=False)
    after = harness.out[n0:]
    assert after, "bridge went silent"
    gaps = [b[0] - a[0] for a, b in zip(after, after[1:])]
    assert max(gaps) <= 1.0 / 20.0 + DT + 1e-9  # never silent longer than a period (+ one tick)
    decel_start = next(o[0] for o in after if o[1] < 0.5 - 1e-3)
    assert decel_start <= t_last + 0.3 + 1.0 / 20.0 + DT
    assert min(_accels(after)) >= -EGO.hard.kinematics.linear_x.max_decel - 1e-6
    assert all(abs(o[1]) < 1e-9 for o in after[-5:])


def test_nan_proposal_rejected_nothing_moves(harness):
    harness.drive(1.0, v=math.nan)
    assert harness.out and all(o[1] == 0.0 and o[2] == 0.0 for o in harness.out)
    assert harness.bridge.input_counts()["habitual"]["rejected_non_finite"] >= 50


def test_estop_latches_until_reset(harness):
    harness.drive(1.5, v=0.4)
    harness.estop_pub.publish(Bool(data=True))
    harness.drive(1.5, v=0.4)
    assert abs(harness.out[-1][1]) < 1e-9
    harness.estop_pub.publish(Bool(data=False))
    harness.drive(1.0, v=0.4)
    assert abs(harness.out[-1][1]) < 1e-9, "released e-stop input alone must not resume motion"
    assert harness.reset.wait_for_service(timeout_sec=5.0)
    fut = harness.reset.call_async(Trigger.Request())
    assert spin_until(harness.ex, fut.done)
    assert fut.result().success, fut.result().message
    harness.drive(1.5, v=0.4)
    assert harness.out[-1][1] > 0.3


def test_operating_limit_tighten_only(harness):
    node = harness.bridge
    ok = node.set_parameters([Parameter("max_linear_mps", value=0.3)])[0]
    assert ok.successful
    harness.drive(3.0, v=0.6)
    assert harness.out[-1][1] == pytest.approx(0.3, abs=1e-3)
    too_high = node.set_parameters([Parameter("max_linear_mps", value=EGO.hard.kinematics.linear_x.max_velocity)])[0]
    assert not too_high.successful
    ro = node.set_parameters([Parameter("source_timeout_s", value=1.0)])[0]
    assert not ro.successful  # read-only safety parameter


def test_malformed_plan_is_counted_reported_and_nothing_moves(harness):
    from diagnostic_msgs.msg import DiagnosticArray
    from sensor_msgs.msg import JointState
    diags = []
    harness.node.create_subscription(DiagnosticArray, "/diagnostics", diags.append, 10)
    pub = harness.node.create_publisher(JointState, "agent/plan", 10)
    assert spin_until(harness.ex, lambda: pub.get_subscription_count() > 0)
    for _ in range(20):
        pub.publish(JointState(name=["risk", "a0_v"], position=[0.0, 0.5]))
        harness.drive(0.05, mode="PLANNING", propose=False)
    assert harness.out and all(o[1] == 0.0 for o in harness.out)
    counts = harness.bridge.input_counts()["planner"]
    assert sum(n for k, n in counts.items() if k.startswith("rejected_")) >= 20   # no frame, then too few labels
    harness.drive(1.1, mode="PLANNING", propose=False)  # let the 1 Hz diagnostics go out
    mine = [{kv.key: kv.value for kv in st.values} for d in diags for st in d.status
            if st.name == "hjepa_agent/bridge"]
    assert mine and "bad_frame=20" in mine[-1]["in_planner_rejected"]


def test_watchdog_derating_scales_the_operating_limit(harness):
    from std_msgs.msg import Float32
    pub = harness.node.create_publisher(Float32, "agent/speed_scale", 10)
    assert spin_until(harness.ex, lambda: pub.get_subscription_count() > 0)
    pub.publish(Float32(data=0.5))
    harness.drive(3.0, v=0.6)
    assert harness.out[-1][1] == pytest.approx(0.5 * EGO.operating.max_linear_mps, abs=1e-3)
    pub.publish(Float32(data=float("nan")))  # refused, counted, limit unchanged
    harness.drive(1.0, v=0.6)
    assert harness.out[-1][1] == pytest.approx(0.5 * EGO.operating.max_linear_mps, abs=1e-3)
    assert harness.bridge.input_counts()["speed_scale"]["rejected_non_finite"] >= 1
    pub.publish(Float32(data=1.0))
    harness.drive(3.0, v=0.6)
    assert harness.out[-1][1] == pytest.approx(EGO.operating.max_linear_mps, abs=1e-3)
