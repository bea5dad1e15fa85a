"""Frames without tf2: a transform between two named frames, and a goal moved into the odom frame.

The agent plans in the odom frame (REP-105). A goal may come in the odom frame, or in the robot's base
frame ("1 m ahead of me"), which the current odometry pose places in odom; a goal in any other frame
needs tf2 (the estimator node looks such a goal up where tf2_ros is installed) and is refused here with
:class:`GoalFrameError`, whose message says what to send instead.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FrameTransform:
    """The pose of frame ``child`` in frame ``parent``, as a geometry_msgs/TransformStamped carries it:
    translation (x, y, z) m and rotation quaternion (x, y, z, w), unit norm."""

    parent: str
    child: str
    translation: tuple[float, float, float]
    rotation: tuple[float, float, float, float]

    def __post_init__(self) -> None:
        if not self.parent or not self.child:
            raise ValueError(f"FrameTransform: parent {self.parent!r} and child {self.child!r} must both be named")
        values = (*self.translation, *self.rotation)
        if len(self.translation) != 3 or len(self.rotation) != 4 or not all(math.isfinite(v) for v in values):
            raise ValueError(f"FrameTransform {self.parent!r} -> {self.child!r}: translation {self.translation} "
                             f"and rotation {self.rotation} must be 3 and 4 finite numbers")


def planar_transform(parent: str, child: str, x_m: float, y_m: float, yaw_rad: float) -> FrameTransform:
    """The transform of a pose (x, y m, yaw rad) on the plane: child at (x, y, 0), turned by yaw about z."""
    return FrameTransform(parent, child, (float(x_m), float(y_m), 0.0),
                          (0.0, 0.0, math.sin(yaw_rad / 2.0), math.cos(yaw_rad / 2.0)))


def base_to_odom(goal_xy: np.ndarray, pose_xyyaw: np.ndarray) -> np.ndarray:
    """A point (x, y) m in the base frame -> the odom frame, for the base at ``pose_xyyaw`` (x m, y m,
    yaw rad, in odom): rotate by yaw, then add the position. Shape (2,)."""
    x, y, yaw = (float(v) for v in pose_xyyaw)
    gx, gy = (float(v) for v in goal_xy)
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([x + c * gx - s * gy, y + s * gx + c * gy])


class GoalFrameError(ValueError):
    """A goal this agent cannot place in the odom frame; the message says why and what to send."""


def goal_frame_refusal(frame_id: str, odom_frame: str, base_frame: str) -> str:
    """Why a goal in ``frame_id`` (neither odom nor base frame) is refused without tf2, and what to do."""
    return (f"goal in frame {frame_id[:60]!r}: this agent accepts goals in {odom_frame!r} or {base_frame!r} "
            f"(no tf2 here); send it in {odom_frame} or run with tf2_ros")


def goal_in_odom(frame_id: str, goal_xy: np.ndarray, pose_xyyaw: np.ndarray | None, *, odom_frame: str,
                 base_frame: str) -> np.ndarray:
    """A goal position (x, y) m given in ``frame_id``, in the odom frame, shape (2,): as it is in
    ``odom_frame``; placed with the base's current odometry pose ``pose_xyyaw`` (x, y, yaw in odom)
    in ``base_frame``. GoalFrameError for any other frame, and for a base-frame goal before any
    odometry (``pose_xyyaw`` None)."""
    goal = np.asarray(goal_xy, dtype=float).reshape(2)
    if frame_id == odom_frame:
        return goal
    if frame_id == base_frame:
        if pose_xyyaw is None:
            raise GoalFrameError(f"goal in frame {base_frame!r} before any odometry: nothing places it in "
                                 f"{odom_frame!r} yet; send it again once odom is published, or send it in "
                                 f"{odom_frame}")
        return base_to_odom(goal, pose_xyyaw)
    raise GoalFrameError(goal_frame_refusal(frame_id, odom_frame, base_frame))


__all__ = ["FrameTransform", "GoalFrameError", "base_to_odom", "goal_frame_refusal", "goal_in_odom",
           "planar_transform"]
