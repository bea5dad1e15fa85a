"""`hjepa-agent rehearse`'s pure parts: driver profiles, the agent's command lines, the sent-command judge."""
from pathlib import Path

import pytest
import yaml

from hjepa_agent.config.loader import ConfigError
from hjepa_agent.nodes.node_table import NODES, REMAPPABLE, load_params_files, node_command
from hjepa_agent.config.paths import data_path
from hjepa_agent.harness.rehearse import agent_commands_for, robot_params, sent_commands
from hjepa_agent.sim.profile import load_profile

PROFILE = data_path("config", "profiles", "turtlebot4_like.yaml")


def test_the_turtlebot_like_profile_loads_with_paths_resolved_next_to_it():
    p = load_profile(PROFILE)
    assert p.cmd_vel_type == "twist" and p.namespace == "robot1" and not p.temperature
    assert (p.camera.width, p.camera.height, p.camera.encoding, p.camera.rate_hz) == (250, 250, "bgr8", 30.0)
    assert Path(p.robot).is_file() and Path(p.ego_model).is_file() and all(Path(f).is_file() for f in p.params)


@pytest.mark.parametrize("edit, key", [
    ({"cmd_vel_type": "twist_stampd"}, "cmd_vel_type"),
    ({"topics": {"camera/raw": "x"}}, "topics"),
    ({"camera": {"width": 250, "height": 250, "encoding": "yuv422"}}, "camera.encoding"),
    ({"camera": {"width": 250, "height": 250, "rate_hz": 0.0}}, "camera.rate_hz"),
    ({"colour": "red"}, "colour"),
])
def test_a_bad_profile_is_refused_naming_the_key(tmp_path, edit, key):
    doc = yaml.safe_load(PROFILE.read_text())
    doc.update(edit)
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(doc))
    with pytest.raises(ConfigError) as err:
        load_profile(bad)
    assert err.value.key == key


def test_each_node_is_started_as_robot_launch_would_with_the_robots_own_parameters(tmp_path):
    """One command per node of the table: its console script, name, namespace, the params files in
    order (the robot's file last, per node: rcl lets a node's own section win over '/**' and -p), the
    drivers' topic names as remaps; and what rcl would give each node is the profile's robot."""
    p = load_profile(PROFILE)
    robot_file = robot_params(p, tmp_path / "robot_params.yaml")
    commands = agent_commands_for(p, robot_file)
    assert [n for n, _ in commands] == [s.name for s in NODES]
    for (name, cmd), spec in zip(commands, NODES):
        assert Path(cmd[0]).name == spec.executable
        assert cmd[1:6] == ["--ros-args", "-r", f"__node:={name}", "-r", "__ns:=/robot1"]
        files = [cmd[i + 1] for i, a in enumerate(cmd) if a == "--params-file"]
        assert files == list(p.params) + [str(robot_file)]
        assert "camera/image_raw:=oakd/rgb/preview/image_raw" in cmd
    params = load_params_files(list(p.params) + [str(robot_file)], "robot1")
    for spec in NODES:
        assert params[spec.name]["ego_model"] == str(Path(p.ego_model).resolve())
        assert params[spec.name]["robot"] == str(Path(p.robot).resolve())
        assert params[spec.name]["cmd_vel_type"] == "twist"
    assert params["perception"]["urdf"].endswith("diffbot_yawed_laser.urdf")


def test_node_command_refuses_a_remap_of_a_topic_the_drivers_do_not_own():
    assert "cmd_vel" in REMAPPABLE
    with pytest.raises(ValueError, match="cannot remap agent/mode"):
        node_command(NODES[0], "perception", params_files=[], ego_model="e.yaml", remaps={"agent/mode": "x"})


def test_the_shipped_params_leave_the_robots_identity_to_the_launch():
    """An ego_model, robot or urdf in a node's own section of the shipped params files would override
    robot.launch.py's ego_model:= (a '/**' value) without a word, as it did the rehearsal's."""
    for name in ("agent.yaml", "agent_foundation.yaml"):
        doc = yaml.safe_load(data_path("config", name).read_text())
        for key, body in doc.items():
            if key != "/**/sim":
                assert not {"ego_model", "robot", "urdf"} & set(body["ros__parameters"]), (name, key)


def test_sent_commands_are_ordered_by_the_bridges_stamps():
    t, v, w = sent_commands({2_000_000_000: {(0.2, 0.1)}, 1_000_000_000: {(0.1, 0.0)}})
    assert t == [1.0, 2.0] and v == [0.1, 0.2] and w == [0.0, 0.1]


def test_a_relative_models_dir_is_found_in_the_package_when_not_here(tmp_path, monkeypatch):
    """A params file (the Jackal-like profile's) names models/skidrover: from anywhere it is the package's."""
    from hjepa_agent.config.paths import models_dir
    monkeypatch.chdir(tmp_path)
    assert models_dir("") == data_path("models")
    assert models_dir("models/skidrover") == data_path("models", "skidrover")
    (tmp_path / "mine").mkdir()
    assert models_dir("mine") == Path("mine") and models_dir(str(tmp_path)) == tmp_path
