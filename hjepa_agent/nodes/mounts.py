"""Where the scanner sits on the robot, for the nodes that place its beams (perception, planner): the
transform base_frame -> a scan's frame_id, as a core.types.Mount.

Parameters it declares on its node (both read-only): ``urdf`` (path of the robot's URDF; empty = none)
and ``base_frame`` (default base_link). Sources, in order:
  1. a scan whose frame_id is base_frame needs no transform (identity);
  2. ``urdf`` given: the URDF's fixed joint chain base_frame -> frame_id (hjepa_agent.config.urdf), read
     once per frame; a URDF that cannot be read stops the node at start (UrdfError, a ValueError);
  3. no ``urdf``, and tf2_ros importable (a robot with ROS 2 installed): tf2's transform, as
     robot_state_publisher broadcasts it on /tf_static, looked up when a scan in that frame arrives and
     kept (a mount does not move);
  4. otherwise none: the scan is refused (Cause.BAD_FRAME) with a message saying to give ``urdf``.
A frame the URDF (or tf2) does not connect to base_frame is refused the same way, so nothing is ever
binned in the wrong frame.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from hjepa_agent.config.urdf import UrdfError, mount_from_matrix, quaternion_matrix, read_urdf
from hjepa_agent.core.events import Cause
from hjepa_agent.core.types import Mount
from hjepa_agent.nodes.common import declare
from hjepa_agent.nodes.topics import Rejected


MOUNT_NODES = ("perception", "planner")
"""The nodes that place scan beams and so declare ``urdf`` and ``base_frame``."""


def declare_base_frame(node: Any) -> str:
    """Declare the read-only parameter ``base_frame`` (default base_link, REP-105) on ``node``; its value."""
    return declare(node, "base_frame", "base_link", "the robot's base frame (REP-105): scan sectors are binned "
                   "from its origin; goals in it are placed in odom with the current odometry pose")


class SensorMounts:
    """Declares ``urdf`` and ``base_frame`` on ``node`` and answers :meth:`mount` (module doc)."""

    def __init__(self, node: Any) -> None:
        self.urdf_path = declare(node, "urdf", "", "the robot's URDF: a scan's mount (base_frame -> its frame_id) "
                                 "is read from its fixed joints; empty = none (tf2 where installed)")
        self.base_frame = declare_base_frame(node)
        self._urdf = read_urdf(self.urdf_path) if self.urdf_path else None
        self._known: dict[str, Mount] = {self.base_frame: Mount()}
        self._refused: dict[str, str] = {}
        self._tf = None
        self._tf_listener = None
        if self._urdf is None:
            try:
                import tf2_ros
            except ImportError:
                node.get_logger().info("tf2_ros is not importable here: scan mounts come from the `urdf` parameter "
                                       f"only (none given: only scans in {self.base_frame!r} are taken)")
            else:
                self._tf2 = tf2_ros
                self._tf = tf2_ros.Buffer()
                self._tf_listener = tf2_ros.TransformListener(self._tf, node)
                node.get_logger().info(f"no `urdf`: scan mounts come from tf2 ({self.base_frame!r} -> each scan's "
                                       f"frame)")

    def mount(self, frame_id: str) -> Mount:
        """The pose of ``frame_id`` in base_frame; Rejected(BAD_FRAME) saying what to do when it is unknown."""
        known = self._known.get(frame_id)
        if known is not None:
            return known
        if frame_id in self._refused:
            raise Rejected(Cause.BAD_FRAME, self._refused[frame_id])
        shown = repr(frame_id[:60])
        if self._urdf is not None:
            try:
                m = self._urdf.transform(self.base_frame, frame_id)
            except UrdfError as exc:
                why = (f"scan frame {shown} has no fixed mount on {self.base_frame!r}: {exc}; give `urdf` the URDF of "
                       f"this robot, whose joints connect {self.base_frame!r} to the scanner's frame")
                if len(self._refused) < 64:
                    self._refused[frame_id] = why
                raise Rejected(Cause.BAD_FRAME, why) from None
        elif self._tf is not None:
            m = self._lookup_tf(frame_id, shown)
        else:
            raise Rejected(Cause.BAD_FRAME, f"scan frame {shown} is not base_frame {self.base_frame!r} and no "
                                            f"transform between them is known: set this node's `urdf` parameter "
                                            f"to the robot's URDF (or publish the scan in {self.base_frame!r})")
        if len(self._known) < 64:
            self._known[frame_id] = m
        return m

    def _lookup_tf(self, frame_id: str, shown: str) -> Mount:
        """tf2's transform base_frame -> frame_id (latest); Rejected(BAD_FRAME) when tf2 has none (yet)."""
        from rclpy.time import Time
        try:
            t = self._tf.lookup_transform(self.base_frame, frame_id, Time()).transform
        except self._tf2.TransformException as exc:   # Lookup-, Connectivity-, ExtrapolationException
            raise Rejected(Cause.BAD_FRAME, f"tf2 has no transform {self.base_frame!r} -> {shown} "
                                            f"({type(exc).__name__}): start robot_state_publisher with the robot's "
                                            f"URDF, or set this node's `urdf` parameter") from None
        mat = np.eye(4)
        mat[:3, :3] = quaternion_matrix(t.rotation.x, t.rotation.y, t.rotation.z, t.rotation.w)
        mat[:3, 3] = (t.translation.x, t.translation.y, t.translation.z)
        return mount_from_matrix(mat)
