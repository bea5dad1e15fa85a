"""The watchdog node's switch for the fault suite's comparison cannot be used on a robot."""
import pytest
from rclpy.parameter import Parameter


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
