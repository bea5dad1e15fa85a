"""The URDF mount reader (hjepa_agent.config.urdf): base -> link transforms through fixed joint chains."""
from __future__ import annotations

import math

import numpy as np
import pytest

from hjepa_agent.config.urdf import UrdfError, link_mount, mount_from_matrix, quaternion_matrix, read_urdf, rpy_matrix
from hjepa_agent.core.types import Mount
from hjepa_agent.config.paths import data_path

CHAIN = """<?xml version="1.0"?>
<robot name="chain">
  <link name="base_footprint"/><link name="base_link"/><link name="mast"/><link name="laser"/>
  <link name="camera"/><link name="wheel"/><link name="tool"/>
  <joint name="foot" type="fixed"><parent link="base_footprint"/><child link="base_link"/>
    <origin xyz="0 0 0.1"/></joint>
  <joint name="mast_joint" type="fixed"><parent link="base_link"/><child link="mast"/>
    <origin xyz="-0.1 0.05 0.2" rpy="0 0 0.5"/></joint>
  <joint name="laser_joint" type="fixed"><parent link="mast"/><child link="laser"/>
    <origin xyz="0.1 0 0.05" rpy="3.14159265358979 0 1.0"/></joint>
  <joint name="camera_joint" type="fixed"><parent link="base_footprint"/><child link="camera"/>
    <origin xyz="0.2 0 0.3" rpy="0 0.3 0"/></joint>
  <joint name="wheel_joint" type="continuous"><parent link="base_link"/><child link="wheel"/>
    <origin xyz="0 0.1 0"/><axis xyz="0 1 0"/></joint>
  <joint name="tool_joint" type="fixed"><parent link="wheel"/><child link="tool"/></joint>
</robot>
"""


def _tf(xyz, rpy) -> np.ndarray:
    t = np.eye(4)
    t[:3, :3] = rpy_matrix(*rpy)
    t[:3, 3] = xyz
    return t


def _matrix(m: Mount) -> np.ndarray:
    return _tf((m.x_m, m.y_m, m.z_m), (m.roll_rad, m.pitch_rad, m.yaw_rad))


@pytest.fixture
def chain(tmp_path):
    path = tmp_path / "chain.urdf"
    path.write_text(CHAIN)
    return read_urdf(path)


def test_shipped_robots_have_their_laser_on_the_base_axis_unturned():
    """What the shipped models were trained with: the old binning ignored the mount, and there is none to ignore."""
    for name in ("diffbot", "skidbot"):
        m = link_mount(data_path("urdf", f"{name}.urdf"), "base_link", "laser_link")
        assert m == Mount(z_m=0.075) and m.planar_yaw_only, name
        cam = link_mount(data_path("urdf", f"{name}.urdf"), "base_link", "camera_link")
        assert cam == Mount(x_m=0.155, z_m=0.07)


def test_a_chain_composes_like_robot_state_publisher(chain):
    want = _tf((-0.1, 0.05, 0.2), (0, 0, 0.5)) @ _tf((0.1, 0, 0.05), (math.pi, 0, 1.0))
    got = chain.transform("base_link", "laser")
    assert np.allclose(_matrix(got), want, atol=1e-9)
    assert got.roll_rad == pytest.approx(math.pi, abs=1e-6) or got.roll_rad == pytest.approx(-math.pi, abs=1e-6)
    assert got.yaw_rad == pytest.approx(1.5, abs=1e-9)
    # from the footprint: one more joint above
    assert np.allclose(_matrix(chain.transform("base_footprint", "laser")), _tf((0, 0, 0.1), (0, 0, 0)) @ want)
    # across the tree (camera hangs off the footprint, a sibling branch of base_link) and backwards
    cam = _tf((0.2, 0, 0.3), (0, 0.3, 0))
    assert np.allclose(_matrix(chain.transform("base_link", "camera")),
                       np.linalg.inv(_tf((0, 0, 0.1), (0, 0, 0))) @ cam, atol=1e-9)
    assert np.allclose(_matrix(chain.transform("laser", "base_link")), np.linalg.inv(want), atol=1e-9)
    assert chain.transform("base_link", "base_link") == Mount()
    assert chain.root == "base_footprint"


def test_what_cannot_be_read_is_refused_naming_file_and_reason(chain, tmp_path):
    with pytest.raises(UrdfError, match=r"chain\.urdf: no link 'lidar'"):
        chain.transform("base_link", "lidar")
    with pytest.raises(UrdfError, match=r"joint 'wheel_joint' \(continuous\) lies between 'base_link' and 'tool'"):
        chain.transform("base_link", "tool")
    bad = {"missing.urdf": None,
           "notxml.urdf": "<robot><link name='a'>",
           "other.urdf": "<sdf/>",
           "origin.urdf": "<robot><link name='a'/><link name='b'/><joint name='j' type='fixed'><parent link='a'/>"
                          "<child link='b'/><origin xyz='0 0'/></joint></robot>",
           "twoparents.urdf": "<robot><link name='a'/><link name='b'/><link name='c'/>"
                              "<joint name='j1' type='fixed'><parent link='a'/><child link='c'/></joint>"
                              "<joint name='j2' type='fixed'><parent link='b'/><child link='c'/></joint></robot>",
           "noparent.urdf": "<robot><link name='a'/><joint name='j' type='fixed'><child link='a'/></joint></robot>"}
    words = {"missing.urdf": "file not found", "notxml.urdf": "not valid XML", "other.urdf": "expected <robot>",
             "origin.urdf": "origin xyz '0 0' is not three", "twoparents.urdf": "child of two joints",
             "noparent.urdf": "needs <parent"}
    for name, text in bad.items():
        if text is not None:
            (tmp_path / name).write_text(text)
        with pytest.raises(UrdfError, match=words[name]):
            read_urdf(tmp_path / name)
    (tmp_path / "apart.urdf").write_text("<robot><link name='a'/><link name='b'/></robot>")
    with pytest.raises(UrdfError, match="not connected"):
        link_mount(tmp_path / "apart.urdf", "a", "b")
    (tmp_path / "loop.urdf").write_text("<robot><link name='a'/><link name='b'/>"
                                        "<joint name='j1' type='fixed'><parent link='a'/><child link='b'/></joint>"
                                        "<joint name='j2' type='fixed'><parent link='b'/><child link='a'/></joint>"
                                        "</robot>")
    with pytest.raises(UrdfError, match="loop"):
        link_mount(tmp_path / "loop.urdf", "a", "b")


@pytest.mark.parametrize("rpy", [(0.1, -0.4, 2.0), (math.pi, 0.0, 0.5), (0.0, math.pi / 2, 0.3), (-2.0, 1.0, -3.0)])
def test_matrix_and_quaternion_round_trips(rpy):
    t = _tf((0.1, -0.2, 0.3), rpy)
    assert np.allclose(_matrix(mount_from_matrix(t)), t, atol=1e-9)
    r, p, y = rpy   # the quaternion of R = Rz Ry Rx
    cr, sr, cp, sp, cy, sy = (math.cos(r / 2), math.sin(r / 2), math.cos(p / 2), math.sin(p / 2), math.cos(y / 2),
                              math.sin(y / 2))
    q = (sr * cp * cy - cr * sp * sy, cr * sp * cy + sr * cp * sy, cr * cp * sy - sr * sp * cy,
         cr * cp * cy + sr * sp * sy)
    assert np.allclose(quaternion_matrix(*q), rpy_matrix(*rpy), atol=1e-9)
    with pytest.raises(ValueError, match="not a rotation"):
        quaternion_matrix(0.0, 0.0, 0.0, 0.0)
