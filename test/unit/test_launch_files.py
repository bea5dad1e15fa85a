"""Both launch files executed (item 10 of issue 14): generate_launch_description() is run in a LaunchContext with
given arguments, its OpaqueFunctions called and its Node actions' substitutions performed, without starting
a process; every Node is then checked against this package's console_scripts entry points and the node table
(package, executable, name, namespace, parameters, remappings). Needs launch_ros, which has no PyPI wheels:
it skips here and runs on a robot with ROS 2 (test/unit/test_node_table.py checks the files' shape by AST
everywhere)."""
from __future__ import annotations

import importlib.metadata
import importlib.util
from pathlib import Path

import pytest
import yaml

from hjepa_agent.nodes.node_table import NODES, RECORDER_NODE, REMAPPABLE, SIM_NODE, remap_argument
from hjepa_agent.nodes.mounts import MOUNT_NODES
from hjepa_agent.config.paths import data_path

pytest.importorskip("launch_ros", reason="launch_ros is not installed (ROS 2's launch has no PyPI wheels): these "
                                         "tests execute the launch files on a machine with ROS 2")

ROOT = Path(__file__).resolve().parents[2]
PARAMS = str(data_path("config", "agent.yaml"))
EGO = str(data_path("config", "ego_model.yaml"))
ROBOT = str(data_path("config", "robots", "diffbot.yaml"))
URDF = str(data_path("urdf", "diffbot.urdf"))


def _console_scripts() -> dict[str, str]:
    """hjepa_agent's console_scripts as installed (setup.py's entry points): name -> module:function."""
    eps = importlib.metadata.distribution("hjepa_agent").entry_points
    return {ep.name: ep.value for ep in eps if ep.group == "console_scripts"}


def _execute(launch_file: str, arguments: dict[str, str]) -> list:
    """The Node actions ``launch_file`` starts with ``arguments`` (conditions evaluated, OpaqueFunctions
    called, substitutions performed), in order; nothing is started."""
    from launch import LaunchContext
    from launch.actions import DeclareLaunchArgument, OpaqueFunction
    from launch_ros.actions import Node

    spec = importlib.util.spec_from_file_location(launch_file.replace(".", "_"), ROOT / "launch" / launch_file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    context = LaunchContext()
    context.launch_configurations.update(arguments)
    nodes = []

    def visit(entities) -> None:
        for e in entities:
            if e.condition is not None and not e.condition.evaluate(context):
                continue
            if isinstance(e, DeclareLaunchArgument):
                e.execute(context)   # its default where the argument is not given
            elif isinstance(e, OpaqueFunction):
                visit(e.execute(context) or [])
            elif isinstance(e, Node):
                e._perform_substitutions(context)
                nodes.append(e)
            else:
                raise AssertionError(f"{launch_file}: an action this test does not know: {e!r}")

    visit(module.generate_launch_description().entities)
    return nodes


def _parameters(node) -> tuple[list[str], dict]:
    """(the params files a Node passes, in order; the parameters its launch file sets itself, merged)."""
    args = getattr(node, "_Node__expanded_parameter_arguments", None)
    if args is None:   # launch_ros before Humble
        args = [(f, True) for f in node._Node__expanded_parameter_files]
    files, given = [], {}
    for arg, is_file in args:
        if not is_file:
            name, _, value = arg.partition(":=")
            given[name] = yaml.safe_load(value)
        elif Path(arg).name.startswith("launch_params_"):   # a dict of the launch file, written by launch_ros
            for body in yaml.safe_load(Path(arg).read_text()).values():
                given.update(body["ros__parameters"])
        else:
            files.append(arg)
    return files, given


def _by_name(nodes) -> dict:
    named = {n.node_name: n for n in nodes}
    assert len(named) == len(nodes), "two Node actions with one name"
    return named


def _check_agent_node(node, spec, scripts: dict[str, str]) -> None:
    assert node.node_package == "hjepa_agent" and node.node_executable == spec.executable
    module = spec.cls.split(":")[0]
    assert scripts.get(spec.executable) == f"{module}:main", f"{spec.executable}: no console script running {module}"
    assert callable(importlib.import_module(module).main)


def test_robot_launch_starts_the_table_with_its_arguments(tmp_path):
    scripts = _console_scripts()
    remaps = {"camera/image_raw": "/front/image_raw", "camera/camera_info": "/front/camera_info",
              "odom": "/base/odom", "cmd_vel": "/base/cmd_vel"}
    args = {"namespace": "robot1", "ego_model": EGO, "robot": ROBOT, "params_file": PARAMS, "urdf": URDF,
            "record": "true", "record_dir": str(tmp_path / "bag"), **{remap_argument(t): v for t, v in remaps.items()}}
    nodes = _by_name(_execute("robot.launch.py", args))
    want_remaps = [(t, remaps.get(t, t)) for t in REMAPPABLE]
    assert set(nodes) == {f"/robot1/{n}" for n in [s.name for s in NODES] + ["recorder", "robot_state_publisher"]}
    for spec in NODES:
        node = nodes[f"/robot1/{spec.name}"]
        _check_agent_node(node, spec, scripts)
        assert node.expanded_node_namespace == "/robot1"
        files, given = _parameters(node)
        assert files == [PARAMS]
        assert given == {"use_sim_time": False, "ego_model": EGO, "robot": ROBOT,
                         **({"urdf": URDF} if spec.name in MOUNT_NODES else {})}, spec.name
        assert list(node.expanded_remapping_rules) == list(spec.remaps) + want_remaps, spec.name
    recorder = nodes["/robot1/recorder"]
    _check_agent_node(recorder, RECORDER_NODE, scripts)
    assert _parameters(recorder) == ([], {"use_sim_time": False, "out": str(tmp_path / "bag"), "urdf": URDF})
    assert list(recorder.expanded_remapping_rules) == list(RECORDER_NODE.remaps) + want_remaps
    rsp = nodes["/robot1/robot_state_publisher"]
    assert (rsp.node_package, rsp.node_executable) == ("robot_state_publisher", "robot_state_publisher")
    assert _parameters(rsp) == ([], {"robot_description": Path(URDF).read_text(), "use_sim_time": False})


def test_robot_launch_without_urdf_or_record_starts_neither_extra():
    nodes = _by_name(_execute("robot.launch.py", {}))
    assert set(nodes) == {f"/{s.name}" for s in NODES}
    for name in MOUNT_NODES:
        assert _parameters(nodes[f"/{name}"])[1]["urdf"] == ""   # the mount from tf2 where installed
    assert list(nodes["/perception"].expanded_remapping_rules) == [(t, t) for t in REMAPPABLE]


def test_robot_launch_refuses_an_unreadable_urdf(tmp_path):
    bad = tmp_path / "robot.urdf"
    bad.write_text("not xml")
    with pytest.raises(ValueError, match="not valid XML"):
        _execute("robot.launch.py", {"urdf": str(bad)})


def test_sim_launch_starts_the_simulator_and_the_table_on_sim_time():
    scripts = _console_scripts()
    nodes = _by_name(_execute("sim.launch.py", {"urdf": URDF}))
    assert set(nodes) == {f"/{n}" for n in [SIM_NODE.name] + [s.name for s in NODES]}
    sim = nodes["/sim"]
    _check_agent_node(sim, SIM_NODE, scripts)
    assert _parameters(sim)[1] == {"robot": ROBOT, "scenario": str(data_path("config", "scenarios", "clutter.yaml")),
                                   "gui": False}
    for spec in NODES:
        node = nodes[f"/{spec.name}"]
        _check_agent_node(node, spec, scripts)
        files, given = _parameters(node)
        assert files == [PARAMS]
        assert given == {"use_sim_time": True, "ego_model": EGO, "robot": ROBOT,
                         **({"urdf": URDF} if spec.name in MOUNT_NODES else {})}, spec.name
        assert list(node.expanded_remapping_rules or []) == list(spec.remaps), spec.name
