"""The watchdog node's switch for the fault suite's comparison cannot be used on a robot."""
import pytest
from rclpy.parameter import Parameter
from hjepa_agent.core.events import Transition


def test_the_watchdog_cannot_be_switched_off_outside_simulation(ros_context):
    from hjepa_agent.nodes.watchdog import WatchdogNode
    with pytest.raises(ValueError, match="simulation only"):
        WatchdogNode(context=ros_context, parameter_overrides=[Parameter("enabled", value=False),
                                                               Parameter("use_sim_time", value=False)])
    node = WatchdogNode(context=ros_context, parameter_overrides=[Parameter("enabled", value=False),
                                                                  Parameter("use_sim_time", value=True)])
    try:
        assert node.enabled is False
    finally:
        node.destroy_node()


def test_thresholds_can_be_tightened_live_never_loosened_and_cross_checked(ros_context):
    from hjepa_agent.nodes.watchdog import WatchdogNode
    node = WatchdogNode(context=ros_context, parameter_overrides=[Parameter("use_sim_time", value=True)])
    try:
        start = node.core.cfg
        ok = node.set_parameters([Parameter("ambiguity_stop", value=start.ambiguity_stop - 0.3)])[0]
        assert ok.successful and node.core.cfg.ambiguity_stop == start.ambiguity_stop - 0.3
        assert node.consumed[-1][0] == "params"                                  # journalled for replay
        back = node.set_parameters([Parameter("ambiguity_stop", value=start.ambiguity_stop + 0.1)])[0]
        assert not back.successful and "loosen" in back.reason
        assert node.core.cfg.ambiguity_stop == start.ambiguity_stop - 0.3         # unchanged
        cross = node.set_parameters([Parameter("clearance_optimise_m", value=start.clearance_plan_m + 0.1)])[0]
        assert not cross.successful and "clearance_optimise_m" in cross.reason   # above clearance_plan_m
        from hjepa_agent.core.watchdog import LIVE_UNITS, TIGHTER
        assert set(LIVE_UNITS) == set(TIGHTER)
        (desc,) = node.describe_parameters(["slip_tolerance_rps"])
        assert "[rad/s]" in desc.description and desc.floating_point_range[0].to_value == 10.0
        out_of_range = node.set_parameters([Parameter("charge_slow", value=50.0)])[0]
        assert not out_of_range.successful                                      # the descriptor's range
        from rclpy.exceptions import ParameterNotDeclaredException
        with pytest.raises(ParameterNotDeclaredException):                       # not live: the YAML's only
            node.set_parameters([Parameter("stall_window_s", value=1.0)])
    finally:
        node.destroy_node()


@pytest.fixture
def context_without_motor_temperature():
    """A fresh rclpy Context (private DDS domain) whose simulator node publishes no motor_temperature (its
    read-only parameter motor_temperature: false, set for the node named sim), as on a Create 3."""
    import rclpy

    from hjepa_agent.harness.runner import isolate_dds
    isolate_dds()
    ctx = rclpy.Context()
    rclpy.init(context=ctx, args=["--ros-args", "-p", "sim:motor_temperature:=false"])
    yield ctx
    rclpy.shutdown(context=ctx)


def test_with_motor_temperature_absent_the_watchdog_does_not_subscribe_and_drives(context_without_motor_temperature,
                                                                                  tmp_path):
    """Ego model with temperature absent (and battery optional), simulator without a temperature topic: the
    watchdog has no subscription on motor_temperature, says once that its protections are off, shows it on
    its status, and leaves SAFE_STOP for a driving mode; the robot drives."""
    import yaml

    from hjepa_agent.core.events import Cause
    from hjepa_agent.core.watchdog import PROTECTIONS
    from hjepa_agent.config.paths import data_path
    from hjepa_agent.harness.runner import EmbeddedStack
    ego = yaml.safe_load(data_path("config", "ego_model.yaml").read_text())
    ego["hard"]["sensors"]["temperature"] = {"presence": "absent"}
    ego["hard"]["sensors"]["battery"]["presence"] = "optional"
    path = tmp_path / "ego_model.yaml"
    path.write_text(yaml.safe_dump(ego))
    stack = EmbeddedStack(context_without_motor_temperature, data_path("config", "scenarios", "open.yaml"),
                          ego_model=path)
    try:
        wd = stack.node("watchdog")
        assert stack.sim.publish_temperature is False and stack.sim.pub_temp is None
        topics = [s.topic_name for s in wd.subscriptions]
        assert wd.resolve_topic_name("battery_state") in topics
        assert not any(t.endswith("motor_temperature") for t in topics), topics
        said = []
        emit = wd.emit
        wd.emit = lambda ev: (said.append(ev), emit(ev))
        stack.run(3.0)
        assert [e.reasons for e in said if e.kind == "protection"] == [(f"temperature: absent: "
                                                                        f"{PROTECTIONS['temperature']}",)]
        assert [e.causes for e in said if e.kind == "protection"] == [(Cause.INPUT_ABSENT,)]
        assert any(e.kind == "mode" and e.transition == Transition("SAFE_STOP", "HABITUAL") for e in said), said
        values = wd.last.status["values"]
        assert values["temperature_input"] == f"absent: {PROTECTIONS['temperature']}"
        assert values["age_temperature_s"] == "absent"
        assert values["battery_input"] == "optional"   # the simulator's battery is in force: its floor applies
        assert wd.count_publishers("motor_temperature") == 0
        assert max(stack.sim.log.v) > 0.2, "the robot should drive without a motor temperature"
    finally:
        stack.close()
