"""Nodes that load models compare the manifest's robot fingerprint with the robot they are given (their
read-only ``robot`` parameter, nodes/common.py declare_robot): the shipped diffbot passes, another robot
is refused at start with the node, the model file, what differs and the command that trains THAT model."""
import pytest
from rcl_interfaces.msg import ParameterType
from rclpy.parameter import Parameter

from hjepa_agent.core.models import ModelMismatchError
from hjepa_agent.nodes.habitual import HabitualNode
from hjepa_agent.nodes.watchdog import WatchdogNode
from hjepa_agent.config.paths import data_path

SKIDBOT = str(data_path("config", "robots", "skidbot.yaml"))


def test_the_robot_parameter_is_read_only_and_the_shipped_robot_passes(ros_context):
    node = HabitualNode(context=ros_context)
    try:
        desc = node.describe_parameter("robot")
        assert desc.read_only and desc.type == ParameterType.PARAMETER_STRING
        assert "robot description YAML" in desc.description and node.get_parameter("robot").value == ""
        assert node.core.model.name == "habitual"
    finally:
        node.destroy_node()


@pytest.mark.parametrize("cls, name, model, trainer", [
    (HabitualNode, "habitual", "habitual", "habitual --latent encoder"),
    (WatchdogNode, "watchdog", "typical_risk", "typical-risk --runs RUNS")])
def test_a_node_on_another_robot_refuses_naming_what_differs_and_the_models_own_command(ros_context, cls, name,
                                                                                        model, trainer):
    with pytest.raises(ModelMismatchError) as err:
        cls(context=ros_context, parameter_overrides=[Parameter("robot", value=SKIDBOT)])
    msg = str(err.value)
    assert msg.startswith(f"{name} node: {model} ({data_path('models') / model}.onnx) was trained for another robot")
    assert "left_wheel_joints.count: 1 trained, 2 here" in msg and "wheel_separation_m: 0.27 trained" in msg
    assert f"`hjepa-agent train {trainer} --robot {SKIDBOT} --ego-model " in msg
