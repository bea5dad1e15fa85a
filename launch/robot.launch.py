"""Launch the agent on a physical robot: one process per node from hjepa_agent.nodes.node_table.NODES.

    ros2 launch hjepa_agent robot.launch.py namespace:=robot1 \
        ego_model:=/path/ego_model.yaml robot:=/path/robot.yaml params_file:=/path/agent.yaml \
        camera_topic:=/front_camera/image_raw camera_info_topic:=/front_camera/camera_info \
        scan_topic:=/scan odom_topic:=/odom cmd_vel_topic:=/cmd_vel urdf:=/path/robot.urdf \
        record:=true record_dir:=/data/runs/robot1_001

The params file's sections are keyed '/**/<node>' (config/agent.yaml) so that they reach the nodes in
any namespace; a section that would not (a bare 'perception:' under namespace:=robot1) or that names no
node of the agent stops the launch with a message that says what to write.
The robot's drivers provide camera/image_raw (or camera/image_raw/compressed), camera/camera_info, scan,
odom, battery_state, motor_temperature and consume cmd_vel; remap them with the *_topic arguments
(node_table.REMAPPABLE; camera_topic, camera_compressed_topic and camera_info_topic for the camera's).
How the camera and cmd_vel are carried (image_transport, cmd_vel_type) is the params file's '/**' section.
urdf:= is the robot's URDF: given, robot_state_publisher starts with it as robot_description (/tf_static,
and /tf of the moving joints from joint_states), the nodes that place the scan's beams
(nodes/mounts.py MOUNT_NODES) read the scanner's mount from it, and the recorder writes its fixed joints
on /tf_static; empty (the default), the mount comes from tf2 where it is installed.
With record:=true the recorder node (node_table.RECORDER_NODE) also writes the run's topics
(nodes/recorder.py: TOPICS, under the same namespace and remaps) to an MCAP rosbag2 at record_dir
(default: hjepa_run_<UTC time> in the launch's working directory); an existing recording is
refused, never overwritten.
robot:= is the robot description YAML (config/robots/*.yaml format) of THIS robot: the nodes that load
models (perception, estimator, habitual, planner, watchdog) refuse models whose manifest fingerprint
(core/fingerprint.py) is not this robot's with this ego model, saying what differs and how to train them.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue

from hjepa_agent.nodes.node_table import NODES, RECORDER_NODE, REMAPPABLE, check_launch_params, robot_state_publisher
from hjepa_agent.nodes.node_table import remap_argument as _arg
from hjepa_agent.nodes.mounts import MOUNT_NODES
from hjepa_agent.config.paths import data_path


def generate_launch_description() -> LaunchDescription:
    """One Node action per entry of the node table, robot_state_publisher when urdf is given, and the
    recorder when record:=true."""
    args = [
        DeclareLaunchArgument("namespace", default_value="", description="namespace for every node"),
        DeclareLaunchArgument("use_sim_time", default_value="false"),
        DeclareLaunchArgument("ego_model", default_value=str(data_path("config", "ego_model.yaml"))),
        DeclareLaunchArgument("robot", default_value=str(data_path("config", "robots", "diffbot.yaml")),
                              description="robot description YAML (config/robots/*.yaml format: wheels, drive, "
                                          "camera, scan, URDF for the mounts); the models' robot fingerprint "
                                          "must be its (with ego_model's), or the nodes refuse to start"),
        DeclareLaunchArgument("params_file", default_value=str(data_path("config", "agent.yaml"))),
        DeclareLaunchArgument("urdf", default_value="",
                              description="the robot's URDF: robot_state_publisher's robot_description, the "
                                          "scanner's mount for perception and planner, the recorder's /tf_static; "
                                          "empty: none (mounts from tf2 where installed)"),
        DeclareLaunchArgument("record", default_value="false",
                              description="also record the run's topics to an MCAP rosbag2 (recorder node)"),
        DeclareLaunchArgument("record_dir", default_value="",
                              description="bag directory for record:=true (default: hjepa_run_<UTC time> in the "
                                          "working directory); an existing non-empty one is refused"),
    ] + [DeclareLaunchArgument(_arg(t), default_value=t, description=f"remap of {t}") for t in REMAPPABLE]
    remaps = [(t, LaunchConfiguration(_arg(t))) for t in REMAPPABLE]
    urdf = {"urdf": ParameterValue(LaunchConfiguration("urdf"), value_type=str)}   # "" stays a string
    nodes = [
        Node(package="hjepa_agent", executable=spec.executable, name=spec.name,
             namespace=LaunchConfiguration("namespace"), output="screen",
             parameters=[LaunchConfiguration("params_file"),
                         {"use_sim_time": ParameterValue(LaunchConfiguration("use_sim_time"), value_type=bool),
                          "ego_model": LaunchConfiguration("ego_model"), "robot": LaunchConfiguration("robot")}]
             + ([urdf] if spec.name in MOUNT_NODES else []),
             remappings=list(spec.remaps) + remaps)
        for spec in NODES
    ]
    recorder = Node(package="hjepa_agent", executable=RECORDER_NODE.executable, name=RECORDER_NODE.name,
                    namespace=LaunchConfiguration("namespace"), output="screen",
                    parameters=[{"use_sim_time": ParameterValue(LaunchConfiguration("use_sim_time"), value_type=bool),
                                 "out": ParameterValue(LaunchConfiguration("record_dir"), value_type=str)}, urdf],
                    remappings=list(RECORDER_NODE.remaps) + remaps,
                    condition=IfCondition(LaunchConfiguration("record")))
    return LaunchDescription(args + [OpaqueFunction(function=check_launch_params),
                                     OpaqueFunction(function=robot_state_publisher)] + nodes + [recorder])
