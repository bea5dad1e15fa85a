"""tf2_msgs/TFMessage from core.frames.FrameTransform, built with whichever message classes are at hand.

The simulator publishes /tf and /tf_static over DDS only where tf2_msgs is installed (a robot's ROS 2:
rclpy's classes, :func:`rclpy_type`); the recorder writes them into every bag with rosbags' typestore,
which has tf2_msgs/msg/TFMessage without the wheel (``typestore.types.__getitem__``). Both come from
the same two rules here: the odometry's pose is the transform odom -> base (:func:`odom_transform`),
and a transform is a TransformStamped whose header names the parent (:func:`tf_message`).
"""
from __future__ import annotations

import importlib
from typing import Any, Callable, Iterable

from hjepa_agent.core.frames import FrameTransform


def rclpy_type(name: str) -> type:
    """The rclpy message class of a ROS type name, e.g. "tf2_msgs/msg/TFMessage" (ImportError where its
    package is not installed)."""
    package, _, cls = name.split("/")
    return getattr(importlib.import_module(f"{package}.msg"), cls)


def odom_transform(odom: Any) -> FrameTransform:
    """The transform a nav_msgs/Odometry states: header.frame_id -> child_frame_id at its pose (either
    library's message). ValueError when a frame is unnamed or a number is not finite (no transform)."""
    p, q = odom.pose.pose.position, odom.pose.pose.orientation
    return FrameTransform(odom.header.frame_id, odom.child_frame_id, (p.x, p.y, p.z), (q.x, q.y, q.z, q.w))


def tf_message(transforms: Iterable[FrameTransform], sec: int, nanosec: int, types: Callable[[str], type]) -> Any:
    """A tf2_msgs/TFMessage of ``transforms``, each stamped (``sec``, ``nanosec``), with the classes
    ``types`` gives for each ROS type name (:func:`rclpy_type`, or a rosbags typestore's ``types``)."""
    time_, header, stamped, transform, vector, quaternion = (types(n) for n in (
        "builtin_interfaces/msg/Time", "std_msgs/msg/Header", "geometry_msgs/msg/TransformStamped",
        "geometry_msgs/msg/Transform", "geometry_msgs/msg/Vector3", "geometry_msgs/msg/Quaternion"))
    return types("tf2_msgs/msg/TFMessage")(transforms=[
        stamped(header=header(stamp=time_(sec=int(sec), nanosec=int(nanosec)), frame_id=t.parent),
                child_frame_id=t.child,
                transform=transform(translation=vector(x=t.translation[0], y=t.translation[1], z=t.translation[2]),
                                    rotation=quaternion(x=t.rotation[0], y=t.rotation[1], z=t.rotation[2],
                                                        w=t.rotation[3])))
        for t in transforms])


__all__ = ["odom_transform", "rclpy_type", "tf_message"]
