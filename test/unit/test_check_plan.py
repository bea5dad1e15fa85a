"""`hjepa-agent check` without DDS (hjepa_agent/harness/check.py): what the agent needs of a robot, worked out from
its params files, ego model, namespace and remaps (or a driver profile, as rehearse runs it); the models
its params select, checked against the robot's fingerprint; a message turned into what the judging
needs, through the agent's own input check."""
import dataclasses
import math

import cv2
import numpy as np
import pytest
import yaml
from nav_msgs.msg import Odometry
from sensor_msgs.msg import CompressedImage, Image, LaserScan

from hjepa_agent.harness.check import CheckSetup, check_models, parse_remap, plan, setup_for_profile, to_sample
from hjepa_agent.config.loader import ConfigError
from hjepa_agent.core.bringup import Direction, Need
from hjepa_agent.core.bringup_judge import Verdict
from hjepa_agent.nodes.topics import check_compressed_image, check_image, check_odom, check_scan
from hjepa_agent.config.paths import data_path

PROFILE = data_path("config", "profiles", "turtlebot4_like.yaml")


@pytest.fixture
def tb4(tmp_path):
    """The setup `hjepa-agent rehearse` runs the turtlebot4_like profile with."""
    return setup_for_profile(PROFILE, tmp_path, duration_s=1.0)


def by_key(the_plan):
    return {e.key: e for e in the_plan.expectations}


def test_a_profile_gives_the_names_types_needs_and_limits_the_agent_runs_with(tb4):
    assert tb4.namespace == "robot1" and tb4.profile == "turtlebot4_like"
    assert dict(tb4.remaps) == {"camera/image_raw": "oakd/rgb/preview/image_raw"}
    e = by_key(plan(tb4))
    assert list(e) == ["camera", "scan", "odom", "battery_state", "motor_temperature", "goal_pose", "cmd_vel"]
    cam = e["camera"]
    assert (cam.topic, cam.type, cam.need) == ("/robot1/oakd/rgb/preview/image_raw", "sensor_msgs/msg/Image",
                                               Need.REQUIRED)
    assert (cam.rate_hz, cam.max_age_s, cam.remap_arg, cam.image) == (30.0, 0.35, "camera_topic", True)
    assert [a.setting for a in cam.alternatives] == ["image_transport: compressed"]
    assert e["odom"].frames == ("odom",) and e["odom"].child_frame == "base_link"
    scan = e["scan"]
    assert (scan.scan.n_beams, scan.scan.fov_deg) == (64, 360.0)
    assert [m.urdf_path.endswith("diffbot_yawed_laser.urdf") and m.urdf is not None for m in scan.mounts] == [True]
    assert e["battery_state"].need is Need.REQUIRED and e["motor_temperature"].need is Need.ABSENT
    assert e["goal_pose"].need is Need.INFO and e["goal_pose"].reliable
    cmd = e["cmd_vel"]   # the profile's params file says twist (a Create 3)
    assert (cmd.topic, cmd.type, cmd.direction) == ("/robot1/cmd_vel", "geometry_msgs/msg/Twist",
                                                    Direction.ROBOT_SUBSCRIBES)
    assert [(a.type, a.setting) for a in cmd.alternatives] == [("geometry_msgs/msg/TwistStamped",
                                                                "cmd_vel_type: twist_stamped")]


def test_given_options_override_the_profile_and_given_remaps_add_to_its_own(tmp_path):
    s = setup_for_profile(PROFILE, tmp_path, namespace="robot2", remaps=(("battery_state", "bms/state"),))
    e = by_key(plan(s))
    assert e["battery_state"].topic == "/robot2/bms/state" and e["camera"].topic == "/robot2/oakd/rgb/preview/image_raw"


def test_without_a_profile_the_shipped_configuration_is_checked_in_the_root_namespace():
    e = by_key(plan(CheckSetup()))
    assert e["camera"].topic == "/camera/image_raw" and e["cmd_vel"].type == "geometry_msgs/msg/TwistStamped"
    assert e["motor_temperature"].need is Need.REQUIRED   # config/ego_model.yaml: a base with a temperature
    assert [(m.nodes, m.urdf_path) for m in e["scan"].mounts] == [(("perception", "planner"), "")]


def test_nodes_that_disagree_on_the_transport_are_refused_naming_the_setting(tmp_path):
    params = yaml.safe_load(data_path("config", "agent.yaml").read_text())
    params["/**/perception"]["ros__parameters"]["image_transport"] = "compressed"
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(params))
    with pytest.raises(ConfigError, match="image_transport.*perception: compressed"):
        plan(CheckSetup(params_files=(str(path),)))


def test_bad_remaps_and_durations_are_refused_saying_what_is_wrong():
    assert parse_remap("battery_state:=platform/bms/state") == ("battery_state", "platform/bms/state")
    with pytest.raises(ValueError, match="expected TOPIC:=NAME"):
        parse_remap("battery_state=bms")
    with pytest.raises(ValueError, match="not a robot-facing topic"):
        CheckSetup(remaps=(("agent/mode", "mode"),))
    with pytest.raises(ValueError, match="--duration"):
        CheckSetup(duration_s=0.0)


# ---- models ----------------------------------------------------------------------------------------------
def test_the_shipped_models_fit_the_profiles_robot(tb4):
    found = check_models(tb4, plan(tb4).params)
    assert [(m.node, m.model) for m in found] == [("perception", "world_encoder"), ("perception", "world_look"),
                                                  ("habitual", "habitual_world"), ("estimator", "world_predictor"),
                                                  ("watchdog", "typical_risk")]
    assert {m.verdict for m in found} == {Verdict.OK}


def test_the_look_model_is_checked_when_listed_and_optional_when_not(tb4, tmp_path):
    import shutil

    models = tmp_path / "models"
    shutil.copytree(data_path("models"), models, ignore=shutil.ignore_patterns("skidrover"))
    (models / "world_look.npz").write_bytes(b"not the bank")          # listed, replaced: refused
    found = {m.model: m for m in check_models(dataclasses.replace(tb4, models_dir=str(models)), plan(tb4).params)}
    assert found["world_look"].verdict == Verdict.MODEL_MISMATCH and "sha256" in found["world_look"].detail
    doc = yaml.safe_load((models / "manifest.yaml").read_text())
    del doc["models"]["world_look"]                                       # not listed: perception runs without
    (models / "manifest.yaml").write_text(yaml.safe_dump(doc))
    found = {m.model: m for m in check_models(dataclasses.replace(tb4, models_dir=str(models)), plan(tb4).params)}
    assert found["world_look"].verdict == Verdict.OK and "runs without it" in found["world_look"].detail
    assert found["world_encoder"].verdict == Verdict.OK


def test_models_for_another_robot_name_the_keys_that_differ_and_the_training_command(tmp_path):
    husky = str(data_path("config", "robots", "husky.yaml"))
    setup = setup_for_profile(PROFILE, tmp_path, robot=husky)
    found = check_models(setup, plan(setup).params)
    assert {m.verdict for m in found} == {Verdict.MODEL_MISMATCH}
    habitual = next(m for m in found if m.model == "habitual_world")
    assert habitual.differences and all(trained != here for _, trained, here in habitual.differences)
    assert "hjepa-agent train habitual --latent world --robot" in habitual.fix and "husky.yaml" in habitual.fix


def test_a_models_dir_without_a_manifest_is_missing(tmp_path):
    found = check_models(CheckSetup(models_dir=str(tmp_path)), {})
    assert found and {m.verdict for m in found} == {Verdict.MISSING} and "file not found" in found[0].detail


# ---- messages -> samples ------------------------------------------------------------------------------------
def test_a_message_becomes_a_sample_with_the_agents_refusal():
    img = Image(width=32, height=24, encoding="yuv422", step=64)
    img.header.stamp.sec, img.header.stamp.nanosec, img.header.frame_id = 100, 500_000_000, "camera_link"
    img.data = bytes(64 * 24)
    s = to_sample(img, check_image, 101.0)
    assert (s.stamp_s, s.received_s, s.frame_id, s.width, s.height, s.encoding) == (100.5, 101.0, "camera_link", 32,
                                                                                   24, "yuv422")
    assert s.rejected.startswith("bad_layout: encoding 'yuv422'")
    scan = LaserScan(angle_min=-math.pi, angle_increment=2 * math.pi / 8, range_min=0.1, range_max=4.0,
                     ranges=[1.0] * 8)
    s = to_sample(scan, check_scan, 0.0)
    assert (s.beams, s.angle_increment_rad, s.rejected) == (8, pytest.approx(2 * math.pi / 8), "")
    odom = Odometry(child_frame_id="base_footprint")
    odom.pose.pose.orientation.w = 1.0
    assert to_sample(odom, check_odom, 0.0).child_frame_id == "base_footprint"
    ok, jpeg = cv2.imencode(".jpg", np.zeros((48, 80, 3), np.uint8))
    comp = CompressedImage(format="bgr8; jpeg compressed bgr8", data=jpeg.tobytes())
    s = to_sample(comp, check_compressed_image, 0.0)
    assert (s.width, s.height, s.rejected) == (80, 48, "")
    assert to_sample(CompressedImage(format="theora", data=b"xx"), check_compressed_image, 0.0).rejected
