"""The robot fingerprint (core/fingerprint.py): what it holds, that it is canonical, and that the shipped
manifest carries the sample robot's."""
from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from hjepa_agent.config.ego_model import load_ego_model
from hjepa_agent.core.fingerprint import (FINGERPRINT_DECIMALS, RobotFingerprint, canonical_json,
                                          load_robot_fingerprint, robot_fingerprint, robot_values)
from hjepa_agent.core.models import load_manifest
from hjepa_agent.config.paths import data_path
from hjepa_agent.sim.robot import CameraSpec, ScanSpec, load_robot_description

ROBOT = data_path("config", "robots", "diffbot.yaml")
EGO = data_path("config", "ego_model.yaml")

keys = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_.", min_size=1, max_size=12)
leaves = st.one_of(st.integers(-10**6, 10**6), st.floats(-1e6, 1e6, allow_nan=False), st.booleans(), st.none(),
                   st.text(max_size=8), st.lists(st.floats(-1e3, 1e3, allow_nan=False), max_size=4))


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(keys, leaves, min_size=1, max_size=20), st.randoms(use_true_random=False))
def test_the_hash_depends_on_the_values_only_never_on_their_order(values: dict, rnd: random.Random) -> None:
    items = list(values.items())
    rnd.shuffle(items)
    a, b = RobotFingerprint.of(values), RobotFingerprint.of(dict(items))
    assert a == b and a.sha256 == b.sha256 and list(a.values) == sorted(a.values)
    assert json.loads(canonical_json(a.values)) == a.values   # what is hashed is what is kept
    assert RobotFingerprint.of(a.values) == a                  # canonical values are a fixed point


@settings(max_examples=200, deadline=None)
@given(st.floats(-1e3, 1e3, allow_nan=False), st.floats(0.6, 5.0))
def test_floats_count_to_the_stated_precision(x: float, steps: float) -> None:
    unit = 10.0 ** -FINGERPRINT_DECIMALS
    base = RobotFingerprint.of({"k": x})
    assert RobotFingerprint.of({"k": round(x, FINGERPRINT_DECIMALS) + 0.1 * unit}) == base   # below the precision
    moved = RobotFingerprint.of({"k": round(x, FINGERPRINT_DECIMALS) + steps * unit})
    assert moved.sha256 != base.sha256 and [d[0] for d in base.differences(moved)] == ["k"]
    assert RobotFingerprint.of({"k": -0.0}) == RobotFingerprint.of({"k": 0.0})


def test_same_files_give_the_same_fingerprint_and_every_sensor_field_is_in_it() -> None:
    a, b = load_robot_fingerprint(ROBOT, EGO), load_robot_fingerprint(ROBOT, EGO)
    assert a == b and a.sha256 == b.sha256 and len(a.sha256) == 64
    robot, ego = load_robot_description(ROBOT), load_ego_model(EGO)
    for name, spec in (("camera", CameraSpec), ("scan", ScanSpec)):   # generic: fields added later are in too
        for f in dataclasses.fields(spec):
            value = getattr(getattr(robot, name), f.name)
            if f.name == "link":   # a name; the mount numbers stand for it
                continue
            if name == "scan" and f.name == "fov_deg":   # read in base_link: its coverage stands for it
                continue
            if name == "camera" and f.name in ("width", "height", "fov_deg"):   # its central square stands for them
                continue
            if isinstance(value, (bool, int, float, str)):
                assert a.values[f"{name}.{f.name}"] == value
            else:                  # a nested spec or a list: flattened under its key
                assert any(k == f"{name}.{f.name}" or k.startswith(f"{name}.{f.name}.") for k in a.values)
    assert {f"camera.mount.{k}" for k in ("x_m", "y_m", "z_m", "roll_rad", "pitch_rad", "yaw_rad")} <= set(a.values)
    assert a.values["scan.coverage"] == "1" * 16 and not any(k.startswith("scan.mount.") for k in a.values)
    assert a.values["camera.square_fov_deg"] == robot.camera.fov_deg == 90.0
    assert a.values["wheel_radius_m"] == robot.wheel_radius_m and a.values["drive"] == robot.drive
    assert a.values["ego.hard.kinematics.angular_z.max_accel"] == ego.hard.kinematics.angular_z.max_accel
    assert a.values["ego.operating.max_linear_mps"] == ego.operating.max_linear_mps
    assert a.values["left_wheel_joints.count"] == len(robot.left_wheel_joints)
    assert not any(k.startswith(("battery", "thermal", "name", "urdf")) or k.endswith(".link") for k in a.values)


def test_wheel_count_counts_and_joint_names_do_not() -> None:
    robot, ego = load_robot_description(ROBOT), load_ego_model(EGO)
    base = robot_fingerprint(robot, ego)
    renamed = dataclasses.replace(robot, name="x", left_wheel_joints=["a"], right_wheel_joints=["b"])
    assert robot_fingerprint(renamed, dataclasses.replace(ego, robot="x")) == base
    four = dataclasses.replace(robot, left_wheel_joints=["a", "c"], right_wheel_joints=["b", "d"])
    assert [k for k, _, _ in base.differences(robot_fingerprint(four, ego))] == ["left_wheel_joints.count",
                                                                                 "right_wheel_joints.count"]


def test_a_sensor_moved_in_the_urdf_changes_its_mount_keys(tmp_path: Path) -> None:
    robot, ego = load_robot_description(ROBOT), load_ego_model(EGO)
    text = Path(robot.urdf).read_text()
    assert text.count('<origin xyz="0.155 0 0.07"') == 1
    moved = tmp_path / "moved.urdf"
    moved.write_text(text.replace('<origin xyz="0.155 0 0.07"', '<origin xyz="0.155 0 0.20"'))
    diffs = robot_fingerprint(robot, ego).differences(robot_fingerprint(dataclasses.replace(robot, urdf=str(moved)),
                                                                        ego))
    assert diffs == [("camera.mount.z_m", 0.07, 0.2)]


def test_observation_and_action_spaces_are_in_it() -> None:
    values = robot_values(load_robot_description(ROBOT), load_ego_model(EGO))
    from hjepa_agent.core.models import ACTION_NAMES, EXPECTED_OBSERVATION
    assert values["action.names"] == list(ACTION_NAMES)
    for key, want in EXPECTED_OBSERVATION.items():
        assert values[f"observation.{key}"] == (list(want) if isinstance(want, tuple) else want)
    assert "observation.scan_range_max_m" in values


def test_the_shipped_manifest_carries_the_sample_robots_fingerprint() -> None:
    """If this fails after a change that adds keys to the fingerprint (a new sensor field), a maintainer
    re-stamps the shipped manifest: `hjepa-agent train fingerprint` (the models were trained on exactly
    the sample diffbot with config/ego_model.yaml); a user with another robot retrains instead."""
    shipped = load_manifest(data_path("models")).fingerprint
    here = load_robot_fingerprint(ROBOT, EGO)
    assert shipped is not None, "models/manifest.yaml has no fingerprint: run `hjepa-agent train fingerprint`"
    assert shipped == here, f"re-stamp with `hjepa-agent train fingerprint`: {shipped.differences(here)}"
    skid = load_robot_fingerprint(data_path("config", "robots", "skidbot.yaml"), EGO)
    assert shipped.sha256 != skid.sha256
    assert "left_wheel_joints.count" in [k for k, _, _ in shipped.differences(skid)]


def test_a_scanner_is_fingerprinted_by_its_base_frame_coverage_not_its_mount() -> None:
    """The scan is binned in base_link from its mount, so a 360-deg scanner turned by 90 deg (the
    rehearsal's TurtleBot-like robot) fits the sample robot's models, and a 270-deg one does not."""
    from hjepa_agent.config.urdf import read_urdf
    from hjepa_agent.core.fingerprint import scan_coverage
    robot, ego = load_robot_description(ROBOT), load_ego_model(EGO)
    turned = load_robot_description(data_path("config", "robots", "diffbot_yawed_laser.yaml"))
    assert read_urdf(turned.urdf).transform("base_link", "laser_link").yaw_rad != 0.0
    assert robot_fingerprint(turned, ego).differences(robot_fingerprint(robot, ego)) == []
    mount = read_urdf(robot.urdf).transform("base_link", "laser_link")
    narrow = scan_coverage(dataclasses.replace(turned.scan, fov_deg=270.0), mount)
    assert narrow == "0011111111111110"   # beams from -135 to +135 deg: the sectors behind are unknown
    keys = [k for k, _, _ in robot_fingerprint(dataclasses.replace(turned, scan=dataclasses.replace(
        turned.scan, fov_deg=270.0)), ego).differences(robot_fingerprint(robot, ego))]
    assert keys == ["scan.coverage"]


def test_a_camera_is_fingerprinted_by_the_square_the_encoder_sees():
    """640x480 with the 64x64 camera's vertical fov: the same central square, the same models; a portrait
    camera's square is narrower."""
    robot, ego = load_robot_description(ROBOT), load_ego_model(EGO)
    wide = dataclasses.replace(robot, camera=dataclasses.replace(robot.camera, width=640, height=480))
    assert robot_fingerprint(wide, ego) == robot_fingerprint(robot, ego)
    tall = dataclasses.replace(robot, camera=dataclasses.replace(robot.camera, width=48, height=64))
    diff = robot_fingerprint(tall, ego).differences(robot_fingerprint(robot, ego))
    assert [k for k, _, _ in diff] == ["camera.square_fov_deg"] and 70.0 < diff[0][1] < 75.0
