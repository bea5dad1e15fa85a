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
