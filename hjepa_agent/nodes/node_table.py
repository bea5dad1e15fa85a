"""The one table of the agent's nodes, read by launch/*.launch.py and by `hjepa-agent sim`.

Both ways of starting the agent build their nodes from NODES, with parameters from
config/agent.yaml (``ros__parameters`` per node, keyed '/**/<name>' so that any namespace gets
them), so they cannot drift.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hjepa_agent.config.loader import ConfigError, read_yaml


@dataclass(frozen=True)
class NodeSpec:
    """One node: its ROS name, console script, class (module:Class), default remaps, and whether it is on
    the reflex path (camera -> cmd_vel: the embedded runner spins those first, harness/lockstep.Tiered)."""

    name: str
    executable: str
    cls: str
    remaps: tuple[tuple[str, str], ...] = ()
    reflex: bool = False

    def load_class(self) -> type:
        """Import and return the node class."""
        module, _, attr = self.cls.partition(":")
        return getattr(importlib.import_module(module), attr)


NODES: tuple[NodeSpec, ...] = (
    NodeSpec("perception", "perception", "hjepa_agent.nodes.perception:PerceptionNode", reflex=True),
    NodeSpec("estimator", "estimator", "hjepa_agent.nodes.estimator:EstimatorNode", reflex=True),
    NodeSpec("habitual", "habitual", "hjepa_agent.nodes.habitual:HabitualNode", reflex=True),
    NodeSpec("planner", "planner", "hjepa_agent.nodes.planner:PlannerNode"),
    NodeSpec("watchdog", "watchdog", "hjepa_agent.nodes.watchdog:WatchdogNode"),
    NodeSpec("bridge", "bridge", "hjepa_agent.nodes.bridge:BridgeNode", reflex=True),
)
"""The agent's nodes, in data-flow order."""

SIM_NODE = NodeSpec("sim", "sim", "hjepa_agent.nodes.sim:SimNode", reflex=True)
"""The PyBullet simulator node (sim.launch.py and `hjepa-agent sim` only)."""

RECORDER_NODE = NodeSpec("recorder", "recorder", "hjepa_agent.nodes.recorder:RecorderNode")
"""The rosbag2/MCAP recorder (robot.launch.py with record:=true, `hjepa-agent record`); takes no
params_file section (its one parameter, out, is given by the launch file or the CLI)."""


LATENT_PARAMS = (("perception", "encoder_model"), ("habitual", "latent_source"))
"""Parameters naming the encoder of the latent: perception computes it, the habitual policy reads it;
a params file must set them equal (both default to "encoder", the nodes' defaults)."""


def check_latent_params(path: str | Path, params: dict[str, dict[str, Any]]) -> None:
    """ConfigError if perception.encoder_model and habitual.latent_source differ (a missing one is the nodes' default, "encoder")."""
    values = {f"{node}.{key}": params.get(node, {}).get(key, "encoder") for node, key in LATENT_PARAMS}
    if len(set(values.values())) > 1:
        a, b = values.items()
        raise ConfigError(path, b[0], f"is {b[1]!r} but {a[0]} is {a[1]!r}: set both to the encoder the habitual "
                                      f"policy was trained on ('encoder' or 'world_encoder')")


REMAPPABLE = ("camera/image_raw", "camera/image_raw/compressed", "camera/camera_info", "scan", "odom", "battery_state",
              "motor_temperature", "goal_pose", "cmd_vel")
"""The robot-facing topics a launch may remap to the robot's own names (robot.launch.py's *_topic
arguments, `hjepa-agent rehearse`'s driver profiles). The camera's three are remapped each on its own: a
ROS remap renames one exact topic, so camera/image_raw:=/front/image_raw leaves the compressed stream
(image_transport's <camera>/compressed) and camera_info where they were."""

CAMERA_REMAP_ARGUMENTS = {"camera/image_raw": "camera_topic", "camera/image_raw/compressed": "camera_compressed_topic",
                          "camera/camera_info": "camera_info_topic"}
"""The camera topics' remap arguments (the others are <topic>_topic)."""


def remap_argument(topic: str) -> str:
    """robot.launch.py's argument naming the remap of ``topic``: camera/image_raw -> camera_topic,
    camera/image_raw/compressed -> camera_compressed_topic, camera/camera_info -> camera_info_topic,
    scan -> scan_topic."""
    return CAMERA_REMAP_ARGUMENTS.get(topic, f"{topic}_topic")


def node_command(spec: NodeSpec, executable: str, *, namespace: str = "", params_files: list[str | Path],
                 ego_model: str | Path, use_sim_time: bool = False,
                 remaps: dict[str, str] | None = None) -> list[str]:
    """The command line that starts ``spec`` as robot.launch.py does (its console script, node name,
    namespace, the params files in order, use_sim_time and ego_model, the node's own remaps and the
    robot-facing ones in ``remaps``, each a REMAPPABLE topic): what `hjepa-agent rehearse` runs, one
    process per node. ValueError for a remap of a topic that is not REMAPPABLE."""
    remaps = dict(remaps or {})
    unknown = sorted(set(remaps) - set(REMAPPABLE))
    if unknown:
        raise ValueError(f"cannot remap {', '.join(unknown)} (remappable: {', '.join(REMAPPABLE)})")
    cmd = [executable, "--ros-args", "-r", f"__node:={spec.name}"]
    ns = normalise_namespace(namespace)
    if ns:
        cmd += ["-r", f"__ns:={ns}"]
    for f in params_files:
        cmd += ["--params-file", str(f)]
    cmd += ["-p", f"use_sim_time:={str(use_sim_time).lower()}", "-p", f"ego_model:={ego_model}"]
    for a, b in list(spec.remaps) + [(t, remaps.get(t, t)) for t in REMAPPABLE]:
        if a != b:
            cmd += ["-r", f"{a}:={b}"]
    return cmd


ANY_NODE = "/**"
"""A params-file key for every node in every namespace (rcl's wildcard)."""
ANY_NAMESPACE = "/**/"
"""Prefix of a params-file key for one node name in any namespace (rcl's wildcard): the shipped files'
keys, so that a namespaced launch (robot.launch.py namespace:=robot1) applies them."""


def key_target(key: str) -> tuple[str | None, str | None]:
    """(namespace, node name) a ros__parameters key addresses under rcl's matching: '/**' -> (None,
    None): every node; '/**/perception' -> (None, 'perception'): that name in any namespace;
    '/robot1/perception' -> ('/robot1', 'perception'); 'perception' and '/perception' -> ('',
    'perception'): the root namespace only."""
    key = str(key)
    if key == ANY_NODE:
        return None, None
    if key.startswith(ANY_NAMESPACE):
        return None, key[len(ANY_NAMESPACE):]
    ns, _, name = ("/" + key.lstrip("/")).rpartition("/")
    return ns, name


def normalise_namespace(namespace: str) -> str:
    """'robot1', '/robot1/' -> '/robot1'; '' and '/' -> '' (the root namespace)."""
    ns = "/" + namespace.strip().strip("/")
    return "" if ns == "/" else ns


def load_params(path: str | Path, namespace: str = "") -> dict[str, dict[str, Any]]:
    """Read a ros__parameters YAML as the agent's nodes in ``namespace`` ('' the root) get it from rcl:
    {node_name: {param: value}}, a '/**' section applied to every node under its own. ConfigError names
    a key that addresses no node of the table, or addresses one in another namespace (rcl would drop
    it without a word: the node would run on its defaults), and perception.encoder_model differing
    from habitual.latent_source."""
    data = read_yaml(path)
    ns = normalise_namespace(namespace)
    known = {n.name for n in NODES} | {SIM_NODE.name}
    every: dict[str, Any] = {}
    out: dict[str, dict[str, Any]] = {}
    for key, body in data.items():
        key_ns, node = key_target(key)
        if not isinstance(body, dict) or set(body) != {"ros__parameters"} or not isinstance(body["ros__parameters"], dict):
            raise ConfigError(path, key, "expected exactly one key 'ros__parameters' holding a mapping")
        if node is None:
            every.update(body["ros__parameters"])
            continue
        if node not in known:
            raise ConfigError(path, key, f"unknown node (known: {', '.join(sorted(known))})")
        if key_ns is not None and key_ns != ns:
            raise ConfigError(path, key, f"addresses the node {key_ns}/{node}, but the agent's nodes run in "
                                         f"{ns or 'the root namespace'}: rcl would not apply it. Write "
                                         f"'{ANY_NAMESPACE}{node}' (any namespace) or '{ns}/{node}'")
        if node in out:
            raise ConfigError(path, key, f"a second section for {node}")
        out[node] = dict(body["ros__parameters"])
    if every:
        out = {n: {**every, **out.get(n, {})} for n in sorted(known)}
    check_latent_params(path, out)
    return out


def load_params_files(paths: list[str | Path], namespace: str = "") -> dict[str, dict[str, Any]]:
    """Several params files as rcl applies them in order (a later file's value wins), each checked by
    :func:`load_params`; the merged result is checked again (encoder_model against latent_source)."""
    out: dict[str, dict[str, Any]] = {}
    for path in paths:
        for node, values in load_params(path, namespace).items():
            out.setdefault(node, {}).update(values)
    if paths:
        check_latent_params(paths[-1], out)
    return out


def robot_state_publisher(context: Any, *args: Any, **kwargs: Any) -> list:
    """For robot.launch.py's OpaqueFunction: with launch argument urdf set, robot_state_publisher (package
    robot_state_publisher) in the launch's namespace, its robot_description parameter the URDF file's
    contents, so that it publishes the URDF's fixed joints on /tf_static and its moving ones (from
    joint_states) on /tf; with urdf empty, nothing. A URDF that cannot be read stops the launch before any
    node starts (UrdfError naming the file and what is wrong). Needs launch_ros (a robot's ROS 2)."""
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import Node
    from launch_ros.parameter_descriptions import ParameterValue

    from hjepa_agent.config.urdf import read_urdf

    path = LaunchConfiguration("urdf").perform(context)
    if not path:
        return []
    read_urdf(path)
    return [Node(package="robot_state_publisher", executable="robot_state_publisher", name="robot_state_publisher",
                 namespace=LaunchConfiguration("namespace"), output="screen",
                 parameters=[{"robot_description": ParameterValue(Path(path).read_text(), value_type=str),
                              "use_sim_time": ParameterValue(LaunchConfiguration("use_sim_time"), value_type=bool)}])]


def check_launch_params(context: Any, *args: Any, **kwargs: Any) -> list:
    """For a launch file's OpaqueFunction: refuse, before any node starts, a params file (launch
    argument params_file) with a section that would not reach its node in the launch's namespace
    (argument namespace) or that names no node of the agent (:func:`load_params` says which and what
    to write). Needs the launch package (a robot's ROS 2)."""
    from launch.substitutions import LaunchConfiguration

    load_params(LaunchConfiguration("params_file").perform(context), LaunchConfiguration("namespace").perform(context))
    return []
