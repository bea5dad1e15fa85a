"""The whole agent over DDS in lockstep with the simulator: killing the bridge's feeder, e-stop.

Measures on the wire (cmd_vel as received by the simulator): the bridge keeps publishing,
starts decelerating within source_timeout_s + one bridge period of the last proposal,
never decelerates faster than the ego model allows, reaches zero and holds.
"""
import pytest
from std_msgs.msg import Bool
from std_srvs.srv import Trigger

from conftest import spin_until
from hjepa_agent.config.ego_model import load_ego_model
from hjepa_agent.core.types import Mode
from hjepa_agent.node_table import load_params
from hjepa_agent.paths import data_path

EGO = load_ego_model(data_path("config", "ego_model.yaml"))
BRIDGE = load_params(data_path("config", "agent.yaml"))["bridge"]
PERIOD_S = 1.0 / BRIDGE["rate_hz"]
TIMEOUT_S = BRIDGE["source_timeout_s"]


def _since(log, t0):
    return [(t, v) for t, v in zip(log.sim_t, log.v) if t >= t0]


def test_killing_the_habitual_node_decelerates_within_limits_and_holds(stack):
    stack.run(3.0)
    assert stack.metrics.mode == Mode.HABITUAL
    assert stack.sim.log.v[-1] > 0.2, "robot should be driving before the fault"
    habitual = stack.node("habitual")
    last_proposal_s = max(stack.sim.log.origin_ns) * 1e-9  # camera stamp of the last proposal the bridge used
    stack.step.remove("habitual")
    t_kill = stack.sim.sim_time_s
    stack.run(3.0)
    out = _since(stack.sim.log, t_kill)
    times = [t for t, _ in out]
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert max(gaps) <= PERIOD_S + 0.01 + 1e-9, f"cmd_vel went silent for {max(gaps):.3f} s"
    v0 = out[0][1]
    decel_start = next(t for t, v in out if v < v0 - 1e-3)
    assert decel_start <= last_proposal_s + TIMEOUT_S + PERIOD_S + 0.01
    decels = [(a[1] - b[1]) / (b[0] - a[0]) for a, b in zip(out, out[1:]) if b[0] > a[0]]
    assert max(decels) <= EGO.hard.kinematics.linear_x.max_decel + 1e-6
    tail = [v for t, v in out if t > t_kill + 2.0]
    assert tail and all(abs(v) < 1e-9 for v in tail), "must reach zero and hold"
    assert stack.metrics.mode == Mode.SAFE_STOP  # the watchdog noticed the silent node too
    assert habitual not in stack.step.nodes


def test_estop_latches_until_reset_on_the_full_stack(stack):
    stack.run(2.5)
    assert stack.sim.log.v[-1] > 0.2
    node = stack.sim  # any node of the context can publish the operator's e-stop
    pub = node.create_publisher(Bool, "agent/estop", 10)
    client = node.create_client(Trigger, "agent/estop/reset")
    assert spin_until(stack.executor, lambda: pub.get_subscription_count() > 0)
    pub.publish(Bool(data=True))
    stack.run(2.0)
    assert abs(stack.sim.log.v[-1]) < 1e-9
    pub.publish(Bool(data=False))
    stack.run(1.0)
    assert abs(stack.sim.log.v[-1]) < 1e-9, "releasing the e-stop input alone must not move the robot"
    fut = client.call_async(Trigger.Request())
    assert spin_until(stack.executor, fut.done)
    assert fut.result().success, fut.result().message
    stack.run(2.0)
    assert stack.sim.log.v[-1] > 0.1
