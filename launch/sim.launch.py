"""Launch the agent and the PyBullet simulator, one process per node, on sim time.

    ros2 launch hjepa_agent sim.launch.py scenario:=$(ros2 pkg prefix hjepa_agent)/share/hjepa_agent/config/scenarios/clutter.yaml

The agent's nodes come from hjepa_agent.nodes.node_table.NODES (as for the robot and for
`hjepa-agent sim`); the simulator runs free at realtime_factor x real time. The simulator publishes
its scans in the laser link's frame: the nodes that place the beams (nodes/mounts.py MOUNT_NODES) read
that link's mount from the ``urdf`` argument, which must be the ``robot`` description's URDF.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue

from hjepa_agent.nodes.node_table import NODES, SIM_NODE, check_launch_params
from hjepa_agent.nodes.mounts import MOUNT_NODES
from hjepa_agent.config.paths import data_path


def generate_launch_description() -> LaunchDescription:
    """The simulator node plus one Node action per entry of the node table, all with use_sim_time."""
    args = [
        DeclareLaunchArgument("namespace", default_value=""),
        DeclareLaunchArgument("ego_model", default_value=str(data_path("config", "ego_model.yaml"))),
        DeclareLaunchArgument("params_file", default_value=str(data_path("config", "agent.yaml"))),
        DeclareLaunchArgument("robot", default_value=str(data_path("config", "robots", "diffbot.yaml"))),
        DeclareLaunchArgument("scenario", default_value=str(data_path("config", "scenarios", "clutter.yaml"))),
        DeclareLaunchArgument("urdf", default_value=str(data_path("urdf", "diffbot.urdf")),
                              description="the robot's URDF (the scanner's mount): the one `robot` names"),
        DeclareLaunchArgument("gui", default_value="false"),
    ]
    common = {"use_sim_time": True, "ego_model": LaunchConfiguration("ego_model"),
              "robot": LaunchConfiguration("robot")}
    sim = Node(package="hjepa_agent", executable=SIM_NODE.executable, name=SIM_NODE.name,
               namespace=LaunchConfiguration("namespace"), output="screen",
               parameters=[{"robot": LaunchConfiguration("robot"), "scenario": LaunchConfiguration("scenario"),
                            "gui": ParameterValue(LaunchConfiguration("gui"), value_type=bool)}])
    nodes = [
        Node(package="hjepa_agent", executable=spec.executable, name=spec.name,
             namespace=LaunchConfiguration("namespace"), output="screen",
             parameters=[LaunchConfiguration("params_file"), common]
             + ([{"urdf": LaunchConfiguration("urdf")}] if spec.name in MOUNT_NODES else []),
             remappings=list(spec.remaps))
        for spec in NODES
    ]
    return LaunchDescription(args + [OpaqueFunction(function=check_launch_params), sim] + nodes)
