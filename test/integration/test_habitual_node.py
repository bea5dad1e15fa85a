"""The habitual node refuses at start a policy trained on another latent than its latent_source."""
import pytest
from rcl_interfaces.msg import ParameterType
from rclpy.parameter import Parameter

from hjepa_agent.core.models import ModelMismatchError
from hjepa_agent.nodes.habitual import HabitualNode


def test_latent_source_is_read_only_and_checked_at_start(ros_context):
    node = HabitualNode(context=ros_context)
    try:
        assert node.get_parameter("latent_source").value == "encoder"
        desc = node.describe_parameter("latent_source")
        assert desc.read_only and desc.type == ParameterType.PARAMETER_STRING and "world_encoder" in desc.description
        assert not node.set_parameters([Parameter("latent_source", value="world_encoder")])[0].successful
    finally:
        node.destroy_node()
    # Both shipped policies load with their own latent source; each records what it was trained on.
    for source, entry in (("encoder", "habitual"), ("world_encoder", "habitual_world")):
        node = HabitualNode(context=ros_context, parameter_overrides=[Parameter("latent_source", value=source)])
        try:
            assert node.core.model.name == entry
        finally:
            node.destroy_node()
