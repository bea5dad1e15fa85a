"""The simulator renders each sensor from its link's pose in the URDF, orientation included: a laser
yawed on its mount turns its scan, a narrower field of view gives fewer directions, a yawed camera looks
sideways; and the mount the agent reads from the URDF is where PyBullet put the link."""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest

from hjepa_agent.config.paths import data_path
from hjepa_agent.sim.robot import RobotDescription, ScanSpec, load_robot_description
from hjepa_agent.sim.scenario import Arena, Goal, Obstacle, Scenario, Start
from hjepa_agent.sim.world import SimWorld

DIFFBOT = load_robot_description(data_path("config", "robots", "diffbot.yaml"))
LASER = '<origin xyz="0 0 0.075"/>'
CAMERA = '<origin xyz="0.155 0 0.07" rpy="0 0 0"/>'


def _robot(tmp_path: Path, name: str, laser: str = LASER, camera: str = CAMERA, **scan) -> RobotDescription:
    """The diffbot with its laser and camera joints' origins replaced, and scan fields changed."""
    text = data_path(DIFFBOT.urdf).read_text()
    assert text.count(LASER) == 1 and text.count(CAMERA) == 1
    path = tmp_path / f"{name}.urdf"
    path.write_text(text.replace(LASER, laser).replace(CAMERA, camera))
    return dataclasses.replace(DIFFBOT, urdf=str(path), scan=dataclasses.replace(DIFFBOT.scan, **scan))


def _arena(yaw: float = 0.0, obstacles: list | None = None) -> Scenario:
    return Scenario(name="room", seed=0, arena=Arena(5.0, 4.0, 0.5), obstacles=obstacles or [],
                    start=Start(0.3, -0.4, yaw), goal=Goal(-2.0, -1.5), goal_tolerance_m=0.25, time_limit_s=30.0)


def test_a_yawed_laser_turns_its_scan_and_the_agent_reads_the_same_mount(tmp_path):
    plain = SimWorld(DIFFBOT)
    turned = SimWorld(_robot(tmp_path, "turned", laser='<origin xyz="0 0 0.075" rpy="0 0 1.5707963267948966"/>'))
    offset = SimWorld(_robot(tmp_path, "offset", laser='<origin xyz="0.05 0.02 0.075" rpy="0 0 1.5707963267948966"/>'))
    try:
        for w in (plain, turned, offset):
            w.reset(_arena(0.4, [Obstacle("cylinder", 1.5, 0.8, radius_m=0.3)]), 0)
        a, b = plain.scan(), turned.scan()
        n = a.size
        shift = n // 4   # 90 deg: beam i of the turned laser looks where beam i + n/4 of the plain one does
        both = np.isfinite(a) & np.isfinite(b)
        assert np.array_equal(np.isfinite(a), np.isfinite(np.roll(b, shift))) and both.sum() > n // 2
        assert np.allclose(np.roll(b, shift)[np.isfinite(a)], a[np.isfinite(a)], atol=5e-3)
        assert not np.allclose(b[both], a[both], atol=0.05)
        mount = offset.scan_mount()
        assert (mount.x_m, mount.y_m, mount.yaw_rad) == pytest.approx((0.05, 0.02, math.pi / 2))
        # where PyBullet put the link, relative to the base's URDF frame
        bc, body = offset._bc, offset._body
        com_pos, com_orn = bc.getBasePositionAndOrientation(body)
        inertial_pos, inertial_orn = bc.getDynamicsInfo(body, -1)[3:5]
        base_pos, base_orn = bc.multiplyTransforms(com_pos, com_orn, *bc.invertTransform(inertial_pos, inertial_orn))
        st = bc.getLinkState(body, offset._laser_link, computeForwardKinematics=True)
        rel_pos, rel_orn = bc.multiplyTransforms(*bc.invertTransform(base_pos, base_orn), st[4], st[5])
        assert rel_pos == pytest.approx((mount.x_m, mount.y_m, mount.z_m), abs=1e-4)
        assert bc.getEulerFromQuaternion(rel_orn)[2] == pytest.approx(mount.yaw_rad, abs=1e-4)
    finally:
        for w in (plain, turned, offset):
            w.close()


def test_a_270_deg_laser_renders_its_beams_over_its_fov_only(tmp_path):
    robot = _robot(tmp_path, "narrow", n_beams=55, fov_deg=270.0)
    assert robot.scan.angle_min_rad == pytest.approx(-math.radians(135.0))
    assert robot.scan.angle_min_rad + 54 * robot.scan.angle_increment_rad == pytest.approx(math.radians(135.0))
    with SimWorld(robot) as w:
        w.reset(_arena(0.0, [Obstacle("cylinder", 0.3, 0.6, radius_m=0.2)]), 0)   # 1 m to the left
        ranges = w.scan()
        assert ranges.shape == (55,)
        left = int(round((90.0 + 135.0) / 5.0))   # beam 45 at +90 deg
        assert ranges[left] == pytest.approx(0.8, abs=0.05)
        w.reset(_arena(math.pi / 2, [Obstacle("cylinder", 0.3, -1.4, radius_m=0.2)]), 0)   # 1 m straight behind
        behind = w.scan()
        assert np.all(behind[np.isfinite(behind)] > 1.0)   # no beam looks back: it is not seen


def test_a_yawed_camera_looks_where_a_turned_robot_would(tmp_path):
    centred = '<origin xyz="0 0 0.07" rpy="0 0 0"/>'
    ahead = _robot(tmp_path, "ahead", camera=centred)
    left = _robot(tmp_path, "left", camera='<origin xyz="0 0 0.07" rpy="0 0 1.5707963267948966"/>')
    obstacles = [Obstacle("cylinder", 0.3, 1.4, radius_m=0.3), Obstacle("box", 2.0, -0.4, size_x_m=0.4, size_y_m=0.4)]
    with SimWorld(ahead) as a, SimWorld(left) as b:
        a.reset(_arena(math.pi / 2, obstacles), 0)   # robot turned left, camera ahead
        b.reset(_arena(0.0, obstacles), 0)           # robot ahead, camera turned left
        img_a, img_b = a.render_camera(), b.render_camera()
        top = slice(0, 3 * img_a.shape[0] // 4)     # the robot's own roof shows at the bottom, turned differently
        # within what the base's 2-cm centre-of-mass offset (PyBullet places the inertial frame) moves the eye
        assert np.abs(img_a[top].astype(int) - img_b[top].astype(int)).mean() < 6.0
        straight = SimWorld(ahead)
        try:
            straight.reset(_arena(0.0, obstacles), 0)
            assert np.abs(straight.render_camera()[top].astype(int) - img_b[top].astype(int)).mean() > 10.0
        finally:
            straight.close()


def test_scan_spec_field_of_view():
    full = ScanSpec("laser", 64, 0.1, 4.0)
    assert (full.fov_deg, full.angle_min_rad, full.angle_increment_rad) == (360.0, -math.pi, 2 * math.pi / 64)
    narrow = ScanSpec("laser", 5, 0.1, 4.0, fov_deg=90.0)
    assert narrow.angle_min_rad == pytest.approx(-math.pi / 4)
    assert narrow.angle_increment_rad == pytest.approx(math.pi / 8)
    for bad in (0.5, 361.0):
        with pytest.raises(ValueError, match="fov_deg"):
            ScanSpec("laser", 64, 0.1, 4.0, fov_deg=bad)
