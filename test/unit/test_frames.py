"""Frames without tf2 (core/frames.py, config/urdf.py static_transforms, nodes/tf.py, the camera's pinhole): goals
placed in odom, the URDF's fixed joints as robot_state_publisher publishes them, TFMessages as rosbags
serializes them, and a CameraInfo K that projects as the simulator renders."""
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hjepa_agent.config.urdf import link_mount, matrix_quaternion, quaternion_matrix, read_urdf, rpy_matrix
from hjepa_agent.core.frames import (FrameTransform, GoalFrameError, base_to_odom, goal_frame_refusal, goal_in_odom,
                                     planar_transform)
from hjepa_agent.nodes.node_table import REMAPPABLE, remap_argument
from hjepa_agent.config.paths import data_path

coord = st.floats(-1e3, 1e3, allow_nan=False)
angle = st.floats(-4 * math.pi, 4 * math.pi, allow_nan=False)


@given(coord, coord, angle, coord, coord)
def test_a_base_frame_goal_keeps_its_distance_and_bearing_from_the_robot(x, y, yaw, gx, gy):
    g = base_to_odom(np.array([gx, gy]), np.array([x, y, yaw]))
    d = g - np.array([x, y])
    assert np.hypot(*d) == pytest.approx(math.hypot(gx, gy), abs=1e-9)
    # back into the base frame: rotate the offset by -yaw
    c, s = math.cos(yaw), math.sin(yaw)
    np.testing.assert_allclose([c * d[0] + s * d[1], -s * d[0] + c * d[1]], [gx, gy], atol=1e-8)


@given(coord, coord, angle)
def test_one_metre_ahead_is_along_the_heading(x, y, yaw):
    g = goal_in_odom("base_link", np.array([1.0, 0.0]), np.array([x, y, yaw]), odom_frame="odom",
                     base_frame="base_link")
    np.testing.assert_allclose(g, [x + math.cos(yaw), y + math.sin(yaw)], atol=1e-9)


@given(coord, coord)
def test_an_odom_goal_is_taken_as_sent_with_or_without_odometry(gx, gy):
    for pose in (None, np.array([5.0, -2.0, 1.0])):
        np.testing.assert_array_equal(goal_in_odom("odom", np.array([gx, gy]), pose, odom_frame="odom",
                                                   base_frame="base_link"), [gx, gy])


@pytest.mark.parametrize("frame", ["map", "", "ODOM", "/odom", "base_footprint"])
def test_other_frames_are_refused_saying_what_to_send(frame):
    with pytest.raises(GoalFrameError) as exc:
        goal_in_odom(frame, np.array([1.0, 2.0]), np.array([0.0, 0.0, 0.0]), odom_frame="odom", base_frame="base_link")
    assert str(exc.value) == goal_frame_refusal(frame, "odom", "base_link")
    assert str(exc.value) == (f"goal in frame {frame!r}: this agent accepts goals in 'odom' or 'base_link' (no tf2 "
                              f"here); send it in odom or run with tf2_ros")


def test_a_base_frame_goal_before_odometry_is_refused():
    with pytest.raises(GoalFrameError, match="goal in frame 'base_link' before any odometry"):
        goal_in_odom("base_link", np.array([1.0, 0.0]), None, odom_frame="odom", base_frame="base_link")


def test_frame_transforms_need_names_and_finite_numbers():
    with pytest.raises(ValueError, match="must both be named"):
        FrameTransform("odom", "", (0.0, 0.0, 0.0), (0.0, 0.0, 0.0, 1.0))
    with pytest.raises(ValueError, match="finite"):
        FrameTransform("odom", "base_link", (math.nan, 0.0, 0.0), (0.0, 0.0, 0.0, 1.0))
    t = planar_transform("odom", "base_link", 1.0, 2.0, math.pi / 2)
    np.testing.assert_allclose(quaternion_matrix(*t.rotation), rpy_matrix(0.0, 0.0, math.pi / 2), atol=1e-12)


@given(st.floats(-math.pi, math.pi), st.floats(-1.5, 1.5), st.floats(-math.pi, math.pi))
def test_matrix_quaternion_inverts_quaternion_matrix(roll, pitch, yaw):
    r = rpy_matrix(roll, pitch, yaw)
    q = matrix_quaternion(r)
    assert math.isclose(sum(v * v for v in q), 1.0, abs_tol=1e-12) and q[3] >= 0.0
    np.testing.assert_allclose(quaternion_matrix(*q), r, atol=1e-9)


@pytest.mark.parametrize("r", [np.diag([1.0, -1.0, -1.0]), np.diag([-1.0, 1.0, -1.0]), np.diag([-1.0, -1.0, 1.0])])
def test_matrix_quaternion_of_half_turns(r):
    np.testing.assert_allclose(quaternion_matrix(*matrix_quaternion(r)), r, atol=1e-12)


@pytest.mark.parametrize("urdf", ["diffbot.urdf", "diffbot_yawed_laser.urdf", "husky.urdf", "skidbot.urdf"])
def test_static_transforms_are_the_fixed_joints_and_compose_to_the_mounts(urdf):
    """Each fixed joint once, parent -> child; along the chain from the root they give link_mount's pose
    of every link behind fixed joints only."""
    path = data_path("urdf", urdf)
    u = read_urdf(path)
    static = u.static_transforms()
    fixed = [j for j in u.joints.values() if j.type == "fixed"]
    assert [(t.parent, t.child) for t in static] == [(j.parent, j.child) for j in fixed] and static
    by_child = {t.child: t for t in static}
    for child in by_child:
        pose, link = np.eye(4), child
        while link in by_child:   # compose up to the first link not placed by a fixed joint
            t = by_child[link]
            step = np.eye(4)
            step[:3, :3], step[:3, 3] = quaternion_matrix(*t.rotation), t.translation
            pose, link = step @ pose, t.parent
        m = link_mount(path, link, child)
        want = np.eye(4)
        want[:3, :3], want[:3, 3] = rpy_matrix(m.roll_rad, m.pitch_rad, m.yaw_rad), (m.x_m, m.y_m, m.z_m)
        np.testing.assert_allclose(pose, want, atol=1e-9)


def test_tf_messages_serialize_with_rosbags_and_read_back():
    from rosbags.typesys import Stores, get_typestore

    from hjepa_agent.nodes.tf import odom_transform, tf_message
    ts = get_typestore(Stores.LATEST)
    laser = read_urdf(data_path("urdf", "diffbot.urdf")).static_transforms()[-1]
    moved = planar_transform("odom", "base_link", 1.0, -2.0, 0.3)
    raw = ts.serialize_cdr(tf_message([moved, laser], 12, 34, ts.types.__getitem__), "tf2_msgs/msg/TFMessage")
    back = ts.deserialize_cdr(raw, "tf2_msgs/msg/TFMessage").transforms
    assert [(t.header.frame_id, t.child_frame_id, t.header.stamp.sec, t.header.stamp.nanosec) for t in back] == \
        [("odom", "base_link", 12, 34), ("base_link", "laser_link", 12, 34)]
    for got, sent in zip(back, (moved, laser)):
        tr = got.transform
        assert (tr.translation.x, tr.translation.y, tr.translation.z) == sent.translation
        assert (tr.rotation.x, tr.rotation.y, tr.rotation.z, tr.rotation.w) == sent.rotation
    assert laser.child == "laser_link" and laser.translation == (0.0, 0.0, 0.075)
    # an Odometry as rosbags reads one: its pose is the transform odom -> base_link
    msg = ts.deserialize_cdr(ts.serialize_cdr(_rosbags_odom(ts, 1.0, -2.0, 0.3), "nav_msgs/msg/Odometry"),
                             "nav_msgs/msg/Odometry")
    t = odom_transform(msg)
    assert (t.parent, t.child) == ("odom", "base_link")
    np.testing.assert_allclose(t.translation, moved.translation, atol=1e-12)
    np.testing.assert_allclose(t.rotation, moved.rotation, atol=1e-12)


def test_tf_messages_build_with_rclpy_classes_and_odometry():
    """The simulator's path where tf2_msgs is installed: rclpy's TransformStamped takes what tf_message gives it
    (TFMessage itself is not installed here: its list of transforms is checked instead)."""
    from geometry_msgs.msg import TransformStamped
    from nav_msgs.msg import Odometry

    from hjepa_agent.nodes.tf import odom_transform, rclpy_type, tf_message
    odom = Odometry()
    odom.header.frame_id, odom.child_frame_id = "odom", "base_link"
    odom.pose.pose.position.x, odom.pose.pose.orientation.w = 2.5, 1.0

    def types(name):
        return (lambda transforms: transforms) if name == "tf2_msgs/msg/TFMessage" else rclpy_type(name)
    (t,) = tf_message([odom_transform(odom)], 7, 8, types)
    assert isinstance(t, TransformStamped) and (t.header.frame_id, t.child_frame_id) == ("odom", "base_link")
    assert (t.header.stamp.sec, t.header.stamp.nanosec, t.transform.translation.x, t.transform.rotation.w) == \
        (7, 8, 2.5, 1.0)


def _rosbags_odom(ts, x, y, yaw):
    T = ts.types
    time = T["builtin_interfaces/msg/Time"](sec=1, nanosec=0)
    pose = T["geometry_msgs/msg/PoseWithCovariance"](
        pose=T["geometry_msgs/msg/Pose"](position=T["geometry_msgs/msg/Point"](x=x, y=y, z=0.0),
                                         orientation=T["geometry_msgs/msg/Quaternion"](
                                             x=0.0, y=0.0, z=math.sin(yaw / 2), w=math.cos(yaw / 2))),
        covariance=np.zeros(36))
    zero = T["geometry_msgs/msg/Vector3"](x=0.0, y=0.0, z=0.0)
    twist = T["geometry_msgs/msg/TwistWithCovariance"](twist=T["geometry_msgs/msg/Twist"](linear=zero, angular=zero),
                                                       covariance=np.zeros(36))
    return T["nav_msgs/msg/Odometry"](header=T["std_msgs/msg/Header"](stamp=time, frame_id="odom"),
                                      child_frame_id="base_link", pose=pose, twist=twist)


@pytest.mark.parametrize("size, fov_deg", [((64, 64), 90.0), ((160, 120), 60.0), ((120, 160), 100.0)])
def test_camera_k_projects_as_the_simulator_renders(size, fov_deg):
    """PyBullet's projection (computeProjectionMatrixFOV, what SimWorld renders with) and K map camera-frame
    points to the same pixel (pixel centres at integers, row 0 at the top)."""
    import pybullet

    from hjepa_agent.sim.robot import CameraSpec
    w, h = size
    cam = CameraSpec("camera_link", w, h, fov_deg, 0.05, 10.0)
    fx, fy, cx, cy = cam.pinhole()
    proj = np.array(pybullet.computeProjectionMatrixFOV(fov_deg, w / h, 0.05, 10.0)).reshape(4, 4).T   # column-major
    for x, y, z in [(0.3, -0.2, 2.0), (-1.0, 0.5, 3.0), (0.0, 0.0, 1.0)]:   # optical frame: x right, y down, z ahead
        clip = proj @ np.array([x, -y, -z, 1.0])                          # OpenGL eye frame: y up, looking down -z
        ndc = clip[:3] / clip[3]
        u_gl, v_gl = (ndc[0] + 1.0) / 2.0 * w - 0.5, (1.0 - ndc[1]) / 2.0 * h - 0.5
        assert (fx * x / z + cx, fy * y / z + cy) == pytest.approx((u_gl, v_gl), abs=1e-3)   # float32 matrix


def test_every_remappable_topic_has_its_own_launch_argument():
    args = [remap_argument(t) for t in REMAPPABLE]
    assert len(set(args)) == len(REMAPPABLE)
    assert {"camera/image_raw/compressed", "camera/camera_info"} <= set(REMAPPABLE)
    assert remap_argument("camera/image_raw") == "camera_topic" and remap_argument("scan") == "scan_topic"
    assert remap_argument("camera/camera_info") == "camera_info_topic"
