"""The whole agent over DDS in lockstep with the simulator: killing the bridge's feeder, or the bridge, e-stop.

Measures on the wire (cmd_vel as received by the simulator): the bridge keeps publishing,
starts decelerating within source_timeout_s + one bridge period of the last proposal,
never decelerates faster than the ego model allows, reaches zero and holds.
"""
from std_msgs.msg import Bool
from std_srvs.srv import Trigger

from conftest import spin_until
from hjepa_agent.config.ego_model import load_ego_model
from hjepa_agent.core.types import Mode
from hjepa_agent.nodes.node_table import load_params
from hjepa_agent.config.paths import data_path

EGO = load_ego_model(data_path("config", "ego_model.yaml"))
BRIDGE = load_params(data_path("config", "agent.yaml"))["bridge"]
PERIOD_S = 1.0 / BRIDGE["rate_hz"]
TIMEOUT_S = BRIDGE["source_timeout_s"]


def test_killing_the_habitual_node_decelerates_within_limits_and_holds(ros_context):
    from hjepa_agent.harness.runner import feeder_loss
    r = feeder_loss(ros_context, "habitual", drive_s=3.0, after_s=3.0)
    assert r["speed_before_mps"] > 0.2, "robot should be driving before the fault"
    assert r["max_output_gap_s"] <= PERIOD_S + 0.01 + 1e-9, "cmd_vel went silent"
    assert r["decel_start_after_last_proposal_s"] <= TIMEOUT_S + PERIOD_S + 0.01  # one 10 ms sim tick of slack
    assert r["peak_decel_mps2"] <= EGO.hard.kinematics.linear_x.max_decel + 1e-6
    assert r["held_zero_s"] > 1.5, "must reach zero and hold"
    assert r["mode_after"] == Mode.SAFE_STOP.name  # the watchdog noticed the silent node too


def test_killing_the_bridge_lets_the_watchdog_stop_the_base_alone(ros_context):
    """No bridge: the base would hold its last command; the watchdog notices the silence within
    bridge_max_age_s and ramps the base down itself, within the deceleration limit, and holds zero."""
    from hjepa_agent.core.watchdog import load_watchdog_config
    from hjepa_agent.harness.runner import feeder_loss
    wd = load_watchdog_config(data_path("config", "watchdog.yaml"))
    tick_s = 1.0 / float(load_params(data_path("config", "agent.yaml")).get("watchdog", {}).get("tick_hz", 20.0))
    r = feeder_loss(ros_context, "bridge", drive_s=3.0, after_s=3.0)
    assert r["speed_before_mps"] > 0.2, "robot should be driving before the fault"
    assert r["decel_start_after_kill_s"] <= wd.bridge_max_age_s + tick_s + 0.01
    assert r["peak_decel_mps2"] <= EGO.hard.kinematics.linear_x.max_decel + 1e-6
    assert r["held_zero_s"] > 1.5, "must reach zero and hold"
    assert r["mode_after"] == Mode.SAFE_STOP.name
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


def test_the_planner_maps_what_the_scan_sees(stack):
    """The planner node folds each scan into its navfield at the world state's pose; after 3 s
    of driving the cells it counts as hit lie on the simulator's real walls and obstacles
    (the privileged occupancy grid, which the agent never sees), and it has seen a good part
    of them."""
    import math

    import numpy as np

    stack.run(3.0)
    planner = stack.node("planner")
    nav = planner.core.navfield
    assert planner.scans_folded >= 20
    occ = nav.occupied()
    ys, xs = np.nonzero(occ)
    centres = np.stack([nav.origin[0] + (xs + 0.5) * nav.resolution_m,
                        nav.origin[1] + (ys + 0.5) * nav.resolution_m], axis=1)
    truth, (ox, oy) = stack.world.occupancy_grid(0.05)
    ty, tx = np.nonzero(truth)
    real = np.stack([ox + (tx + 0.5) * 0.05, oy + (ty + 0.5) * 0.05], axis=1)
    near = [np.min(np.hypot(*(real - c).T)) <= nav.resolution_m * math.sqrt(2) for c in centres]
    assert len(centres) >= 40
    assert np.mean(near) >= 0.95


def test_each_plan_is_explained_with_its_mode_and_why(ros_context):
    """On the corridor the watchdog hands over to the planner within seconds; every published plan
    then carries an account that starts with the mode and the watchdog's reason."""
    from hjepa_agent.config.paths import data_path
    from hjepa_agent.harness.runner import EmbeddedStack

    stack = EmbeddedStack(ros_context, data_path("config", "scenarios", "corridor.yaml"), seed=0)
    try:
        stack.run(8.0)
        planner = stack.node("planner")
        assert planner.plans > 0
        text = planner.last_explanation
        assert text.split(" ")[0] in ("PLANNING", "OPTIMISING")
        assert "(" in text.split("|")[0] and "plan, 3.0 s:" in text and "to goal" in text and "risk" in text
    finally:
        stack.close()
