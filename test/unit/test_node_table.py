"""The node table is the single source for launch files and the embedded runner."""
import ast
import re
from pathlib import Path

import pytest

from hjepa_agent.config.loader import ConfigError
from hjepa_agent.nodes.node_table import NODES, RECORDER_NODE, SIM_NODE, key_target, load_params
from hjepa_agent.config.paths import data_path

ROOT = Path(__file__).resolve().parents[2]


def _declared(spec) -> set[str]:
    module = spec.cls.split(":")[0].replace(".", "/") + ".py"
    src = (ROOT / module).read_text()
    names = set(re.findall(r'declare\(\s*self, "([a-z_]+)"', src))
    if "declare_ego_model(self)" in src or "declare_ego_path(self)" in src:
        names.add("ego_model")
    # nodes/common.py: the robot the models' fingerprint is checked against
    if "declare_robot(self" in src or "declare_robot_path(self" in src:
        names.add("robot")
    if "SensorMounts(self)" in src:   # nodes/mounts.py: the scanner's mount (urdf, base_frame)
        mounts = (ROOT / "hjepa_agent" / "nodes" / "mounts.py").read_text()
        names |= set(re.findall(r'declare\(\s*node, "([a-z_]+)"', mounts))
    # the input guard's own parameters (nodes/guard.py), managed nodes' autostart (nodes/lifecycle.py) among them
    if "(GuardedNode)" in src or "(GuardedLifecycleNode)" in src:
        guard = (ROOT / "hjepa_agent" / "nodes" / "guard.py").read_text()
        if "(GuardedLifecycleNode)" in src:
            guard += (ROOT / "hjepa_agent" / "nodes" / "lifecycle.py").read_text()
        names |= set(re.findall(r'declare\(\s*(?:self|node), "([a-z_]+)"', guard))
    return names


def test_table_lists_the_six_nodes_in_flow_order():
    assert [n.name for n in NODES] == ["perception", "estimator", "habitual", "planner", "watchdog", "bridge"]


@pytest.mark.parametrize("spec", NODES + (SIM_NODE, RECORDER_NODE), ids=lambda s: s.name)
def test_classes_import_and_have_console_scripts(spec):
    cls = spec.load_class()
    assert cls.__name__.endswith("Node")
    setup = (ROOT / "setup.py").read_text()
    assert f'"{spec.executable}"' in setup


@pytest.mark.parametrize("name", ["agent.yaml", "agent_foundation.yaml"])
def test_params_file_matches_declared_parameters(name):
    params = load_params(data_path("config", name))
    assert set(params) == {n.name for n in NODES} | {SIM_NODE.name}
    for spec in NODES + (SIM_NODE,):
        unknown = set(params[spec.name]) - _declared(spec)
        assert not unknown, f"{spec.name}: {name} sets undeclared parameters {unknown}"


@pytest.mark.parametrize("launch", ["sim.launch.py", "robot.launch.py"])
def test_launch_files_build_nodes_from_the_table(launch):
    tree = ast.parse((ROOT / "launch" / launch).read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module == "hjepa_agent.nodes.node_table"
                for a in n.names}
    assert "NODES" in imported
    loops = [n for n in ast.walk(tree) if isinstance(n, ast.comprehension) and getattr(n.iter, "id", "") == "NODES"]
    assert loops, f"{launch} does not iterate over NODES"
    assert "generate_launch_description" in {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}


@pytest.mark.parametrize("launch", ["sim.launch.py", "robot.launch.py"])
def test_launch_files_check_the_params_file_before_any_node_starts(launch):
    tree = ast.parse((ROOT / "launch" / launch).read_text())
    ret = next(n for n in ast.walk(tree) if isinstance(n, ast.Return) and "LaunchDescription" in ast.unparse(n))
    actions = ast.unparse(ret.value)
    assert "OpaqueFunction(function=check_launch_params)" in actions
    assert actions.index("check_launch_params") < actions.index("nodes"), "the check must come before the nodes"


def test_robot_launch_starts_the_recorder_only_when_asked():
    """record (default "false") and record_dir declared; the recorder node from the table under IfCondition(record),
    with the agent's namespace and remaps and record_dir as its out parameter."""
    tree = ast.parse((ROOT / "launch" / "robot.launch.py").read_text())
    defaults = {n.args[0].value: next((ast.unparse(k.value) for k in n.keywords if k.arg == "default_value"), None)
                for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "DeclareLaunchArgument"
                and isinstance(n.args[0], ast.Constant)}
    assert defaults["record"] == "'false'" and defaults["record_dir"] == "''"
    recorder = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "Node"
                and any(ast.unparse(k.value) == "RECORDER_NODE.executable" for k in n.keywords)]
    assert len(recorder) == 1
    kw = {k.arg: ast.unparse(k.value) for k in recorder[0].keywords}
    assert kw["condition"] == "IfCondition(LaunchConfiguration('record'))"
    assert kw["namespace"] == "LaunchConfiguration('namespace')" and "remaps" in kw["remappings"]
    assert "'out': ParameterValue(LaunchConfiguration('record_dir'), value_type=str)" in kw["parameters"]


def test_robot_launch_passes_the_urdf_and_starts_robot_state_publisher_with_it():
    """urdf (default "") reaches the nodes that read the scan's mount and the recorder as a string, and
    robot_state_publisher's OpaqueFunction comes before the nodes (test_launch_files.py executes it where
    launch_ros is installed)."""
    tree = ast.parse((ROOT / "launch" / "robot.launch.py").read_text())
    declared = [n for n in ast.walk(tree)
                if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "DeclareLaunchArgument"]
    urdf_arg = next(n for n in declared if isinstance(n.args[0], ast.Constant) and n.args[0].value == "urdf")
    assert next(ast.unparse(k.value) for k in urdf_arg.keywords if k.arg == "default_value") == "''"
    src = ast.unparse(tree)
    assert "urdf = {'urdf': ParameterValue(LaunchConfiguration('urdf'), value_type=str)}" in src
    assert "([urdf] if spec.name in MOUNT_NODES else [])" in src
    ret = next(n for n in ast.walk(tree) if isinstance(n, ast.Return) and "LaunchDescription" in ast.unparse(n))
    actions = ast.unparse(ret.value)
    assert actions.index("OpaqueFunction(function=robot_state_publisher)") < actions.index("nodes")
    recorder = next(n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "Node"
                    and any(ast.unparse(k.value) == "RECORDER_NODE.executable" for k in n.keywords))
    assert ast.unparse(next(k.value for k in recorder.keywords if k.arg == "parameters")).endswith(", urdf]")


def test_params_file_errors_name_the_node(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text("ghost:\n  ros__parameters: {a: 1}\n")
    with pytest.raises(ConfigError, match="ghost: unknown node"):
        load_params(p)
    p.write_text("bridge:\n  params: {a: 1}\n")
    with pytest.raises(ConfigError, match="ros__parameters"):
        load_params(p)


def test_latent_params_must_agree(tmp_path):
    """perception.encoder_model (computes the latent) and habitual.latent_source (reads it) cannot differ."""
    params = load_params(data_path("config", "agent_foundation.yaml"))
    assert params["perception"]["encoder_model"] == params["habitual"]["latent_source"] == "encoder"
    learned = load_params(data_path("config", "agent.yaml"))
    assert learned["perception"]["encoder_model"] == learned["habitual"]["latent_source"] == "world_encoder"
    assert learned["estimator"]["world_model"] is True
    p = tmp_path / "p.yaml"
    p.write_text("perception:\n  ros__parameters: {encoder_model: world_encoder}\n"
                 "habitual:\n  ros__parameters: {latent_source: encoder}\n")
    with pytest.raises(ConfigError, match=r"habitual.latent_source: is 'encoder' but perception.encoder_model "
                                          r"is 'world_encoder'"):
        load_params(p)
    p.write_text("perception:\n  ros__parameters: {encoder_model: world_encoder}\n")  # habitual default: encoder
    with pytest.raises(ConfigError, match="habitual.latent_source"):
        load_params(p)
    p.write_text("perception:\n  ros__parameters: {encoder_model: world_encoder}\n"
                 "habitual:\n  ros__parameters: {latent_source: world_encoder}\n")
    assert load_params(p)["habitual"]["latent_source"] == "world_encoder"


@pytest.mark.parametrize("key, target", [
    ("/**", (None, None)), ("/**/perception", (None, "perception")), ("perception", ("", "perception")),
    ("/perception", ("", "perception")), ("/robot1/perception", ("/robot1", "perception")),
    ("/fleet/robot1/bridge", ("/fleet/robot1", "bridge"))])
def test_params_keys_address_nodes_as_rcl_matches_them(key, target):
    assert key_target(key) == target


def test_a_section_that_would_not_reach_its_node_in_the_namespace_is_refused(tmp_path):
    """rcl drops a section whose key does not match the node's fully qualified name without a word;
    load_params (and the launch files, through it) refuses it and says what to write."""
    p = tmp_path / "p.yaml"
    p.write_text("bridge:\n  ros__parameters: {rate_hz: 25.0}\n")
    assert load_params(p)["bridge"] == {"rate_hz": 25.0}
    with pytest.raises(ConfigError, match=r"bridge: addresses the node /bridge, but the agent's nodes run in "
                                          r"/robot1: .* Write '/\*\*/bridge' \(any namespace\) or '/robot1/bridge'"):
        load_params(p, "robot1")
    p.write_text("/robot1/bridge:\n  ros__parameters: {rate_hz: 25.0}\n")
    assert load_params(p, "/robot1/")["bridge"] == {"rate_hz": 25.0}
    with pytest.raises(ConfigError, match="the root namespace"):
        load_params(p)
    p.write_text("/**/bridge:\n  ros__parameters: {rate_hz: 25.0}\n")
    assert load_params(p)["bridge"] == load_params(p, "robot1")["bridge"] == {"rate_hz": 25.0}
    p.write_text("/**/bridge:\n  ros__parameters: {rate_hz: 25.0}\nbridge:\n  ros__parameters: {rate_hz: 30.0}\n")
    with pytest.raises(ConfigError, match="a second section for bridge"):
        load_params(p)


def test_a_section_for_every_node_applies_under_each_nodes_own(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text("/**:\n  ros__parameters: {use_cuda: false, ego_model: /e.yaml}\n"
                 "/**/bridge:\n  ros__parameters: {ego_model: /bridge.yaml}\n")
    params = load_params(p, "robot1")
    assert params["bridge"] == {"use_cuda": False, "ego_model": "/bridge.yaml"}
    assert params["perception"] == {"use_cuda": False, "ego_model": "/e.yaml"}


def test_the_shipped_params_files_reach_the_nodes_in_any_namespace():
    for name in ("agent.yaml", "agent_foundation.yaml"):
        assert load_params(data_path("config", name), "robot1") == load_params(data_path("config", name))
