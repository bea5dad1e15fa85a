"""estimator node: percept + odometry + goal -> world state (mean, variance, ambiguity).

Subscribes: agent/percept (JointState), odom (nav_msgs/Odometry), goal_pose (geometry_msgs/PoseStamped),
            cmd_vel (TwistStamped: the action actually sent, for the learned model's prior).
Publishes:  agent/world_state (JointState, layout in nodes/codec.py), /diagnostics.
Parameters: odom_frame (read-only): goals in another frame are rejected; world_model (read-only, default
            false): fuse the latent with the JEPA predictor ensemble (needs perception's encoder_model
            = world_encoder) and read the ambiguity off the world model's calibrated scores (their
            values are in /diagnostics as score_*); false = the foundation filter and heuristic ambiguity;
            models_dir, use_cuda, ego_model (read-only).
"""
from __future__ import annotations

import math

import numpy as np
from geometry_msgs.msg import PoseStamped, TwistStamped
from nav_msgs.msg import Odometry
from rclpy.node import Node
from sensor_msgs.msg import JointState

from hjepa_agent.core.estimator import Estimator
from hjepa_agent.core.models import WORLD_CALIBRATION_FILE, ModelMismatchError, select_providers, world_action_norm
from hjepa_agent.core.world_model import LatentCalibration, LatentFilter, WorldModel
from hjepa_agent.nodes.codec import (from_time, msg_to_percept, world_state_to_msg,
                                     yaw_from_quaternion)
from hjepa_agent.nodes.common import (RELIABLE_QOS, SENSOR_QOS, Diagnostics, declare, declare_ego_model,
                                      decode_or_none, run_node)
from hjepa_agent.paths import data_path


class EstimatorNode(Node):
    """Thin wrapper around core.estimator.Estimator."""

    def __init__(self, **kwargs) -> None:
        super().__init__("estimator", **kwargs)
        self.odom_frame = declare(self, "odom_frame", "odom", "frame of odometry and goals", read_only=True)
        self.core = Estimator()
        if declare(self, "world_model", False, "fuse the latent with the learned predictor ensemble", read_only=True):
            models_dir = declare(self, "models_dir", "", "directory with manifest.yaml and ONNX models",
                                 read_only=True) or str(data_path("models"))
            use_cuda = declare(self, "use_cuda", True, "use CUDA when it truly works", read_only=True)
            ego = declare_ego_model(self)
            wm = WorldModel(models_dir, select_providers(use_cuda)[0], ego.robot, with_encoder=False)
            self.action_norm = world_action_norm(wm.pred)
            if not wm.ref or not math.isfinite(wm.ambiguity_scale) or wm.ambiguity_scale <= 0:
                raise ModelMismatchError(f"{models_dir}/{WORLD_CALIBRATION_FILE} has no score_ref / ambiguity_scale "
                                         "(models trained before the runtime ambiguity existed); retrain with "
                                         "`hjepa-agent train world-model`")
            # The calibrated one-step residual variance r splits evenly into process noise (model
            # error per step) and measurement noise (encoder noise): an assumption, see core/world_model.py.
            self.core.latent_filter = LatentFilter(wm.heads, LatentCalibration(wm.s_pred, wm.r / 2, wm.r / 2))
            self.core.scorer, self.core.ambiguity_fn = wm.online(), wm.ambiguity
            self.create_subscription(TwistStamped, "cmd_vel", self.on_cmd, RELIABLE_QOS)
        self.rejected = {"odom": 0, "percept": 0, "goal": 0}
        self.published = 0
        self.last_ambiguity = float("nan")
        self.pub = self.create_publisher(JointState, "agent/world_state", RELIABLE_QOS)
        self.create_subscription(JointState, "agent/percept", self.on_percept, RELIABLE_QOS)
        self.create_subscription(Odometry, "odom", self.on_odom, SENSOR_QOS)
        self.create_subscription(PoseStamped, "goal_pose", self.on_goal, RELIABLE_QOS)
        self.diag = Diagnostics(self)
        self.create_timer(1.0, self.report)

    def on_odom(self, msg: Odometry) -> None:
        """Correct the filter; NaN or malformed odometry is rejected and counted."""
        p, q, t = msg.pose.pose.position, msg.pose.pose.orientation, msg.twist.twist
        pose = np.array([p.x, p.y, yaw_from_quaternion(q.x, q.y, q.z, q.w)])
        twist = np.array([t.linear.x, t.angular.z])
        cov_p, cov_t = msg.pose.covariance, msg.twist.covariance
        var = np.array([cov_p[0], cov_p[7], cov_p[35], cov_t[0], cov_t[35]])
        try:
            self.core.on_odom(from_time(msg.header.stamp), pose, twist,
                              var if np.all(var > 0) and np.all(np.isfinite(var)) else None)
        except ValueError as exc:
            self.rejected["odom"] += 1
            self.get_logger().warning(f"odometry rejected: {exc}", throttle_duration_sec=5.0)

    def on_cmd(self, msg: TwistStamped) -> None:
        """The command the bridge sent: the action between this percept and the next."""
        try:
            self.core.on_action(np.array([msg.twist.linear.x / self.action_norm[0],
                                          msg.twist.angular.z / self.action_norm[1]]))
        except ValueError as exc:
            self.get_logger().warning(f"cmd_vel ignored: {exc}", throttle_duration_sec=5.0)

    def on_goal(self, msg: PoseStamped) -> None:
        """Accept a goal in the odom frame."""
        if msg.header.frame_id not in ("", self.odom_frame):
            self.rejected["goal"] += 1
            self.get_logger().error(f"goal in frame {msg.header.frame_id!r} rejected: expected {self.odom_frame!r}")
            return
        try:
            self.core.on_goal(np.array([msg.pose.position.x, msg.pose.position.y]))
        except ValueError as exc:
            self.rejected["goal"] += 1
            self.get_logger().error(f"goal rejected: {exc}")

    def on_percept(self, msg: JointState) -> None:
        """Fold in the percept and publish the world state."""
        percept = decode_or_none(self, msg_to_percept, msg, "percept")
        if percept is None:
            self.rejected["percept"] += 1
            return
        try:
            ws = self.core.on_percept(percept)
        except ValueError as exc:  # e.g. a non-finite learned ambiguity: publish nothing, the watchdog stops
            self.rejected["percept"] += 1
            self.get_logger().error(f"percept not fused: {exc}", throttle_duration_sec=5.0)
            return
        self.last_ambiguity = ws.ambiguity
        self.published += 1
        self.pub.publish(world_state_to_msg(ws, self.odom_frame))

    def report(self) -> None:
        """Publish /diagnostics."""
        n_rej = sum(self.rejected.values())
        level = "OK" if n_rej == 0 and self.core.odom_count else "WARN"
        self.diag.publish(level, f"{self.published} states, ambiguity {self.last_ambiguity:.3f}",
                          {"published": self.published, "has_goal": self.core.goal is not None,
                           "odom_count": self.core.odom_count, "ambiguity": f"{self.last_ambiguity:.4f}",
                           **{f"score_{k}": f"{v:.3f}" for k, v in self.core.scores.items()},
                           **{f"rejected_{k}": v for k, v in self.rejected.items()}})


def main() -> None:
    """Entry point: ros2 run hjepa_agent estimator."""
    run_node(EstimatorNode)
