"""estimator node: percept + odometry + goal -> world state (mean, variance, ambiguity).

Subscribes (through the input guard, nodes/topics.py INPUTS["estimator"]): agent/percept/early and agent/percept
            (JointState: a frame's latent and sectors first, then the same frame with its image statistics),
            odom (nav_msgs/Odometry), goal_pose (geometry_msgs/PoseStamped), cmd_vel (TwistStamped or Twist,
            as the guard's cmd_vel_type says: the action actually sent, for the learned model's prior;
            world_model only).
Publishes:  agent/world_state/early (JointState: the frame's world state without its ambiguity, as soon as its
            early percept is folded in: what the habitual policy reads) and agent/world_state (the same with its
            ambiguity, once the frame's percept completes it), layouts in nodes/codec.py; neither before the first
            odometry reading: the pose would be the prior's, so the watchdog keeps its start-up SAFE_STOP;
            agent/events (goals accepted or
            rejected, with the reason; the guard's rejections), /diagnostics.
Goals: in odom_frame as they are; in base_frame placed in odom_frame with the latest odometry pose (a goal
            (1, 0) in base_link is 1 m ahead of the robot as it stands when the goal arrives); in any other frame
            looked up with tf2 where tf2_ros is importable (a robot's ROS 2; untested here: no tf2_ros wheels),
            else refused (Cause.BAD_FRAME) with a message naming the frames taken (core/frames.py).
Parameters: odom_frame (the guard's, read-only), base_frame (read-only, default base_link); world_model
            (read-only, default false): fuse the latent with the JEPA predictor ensemble (needs
            perception's encoder_model = world_encoder) and read the ambiguity off the world model's
            calibrated scores (their values are in /diagnostics as score_*); false = the foundation filter
            and heuristic ambiguity; models_dir, use_cuda, ego_model, robot (read-only; the world model's
            robot fingerprint must be this robot description's with this ego model: nodes/common.py
            declare_robot).
Time: a clock jump re-anchors the filter's time (the next reading starts it again); an odometry jump
(core/watchdog/odometry.py, the watchdog's rule) re-anchors its pose on the new odometry.
"""
from __future__ import annotations

import numpy as np
from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Odometry

from hjepa_agent.core.estimator import Estimator, EstimatorConfig, LearnedLatent, OutOfOrder
from hjepa_agent.config.urdf import quaternion_matrix
from hjepa_agent.core.events import Cause, Event
from hjepa_agent.core.frames import GoalFrameError, goal_in_odom
from hjepa_agent.core.models import select_providers, world_action_norm
from hjepa_agent.core.timekeeping import ClockJump
from hjepa_agent.core.types import EarlyPercept, Percept
from hjepa_agent.core.watchdog.odometry import OdometryCheckConfig, OdometryConsistency
from hjepa_agent.core.world_model import WorldModel
from hjepa_agent.nodes.codec import Command, early_world_state_to_msg, world_state_to_msg, yaw_from_quaternion
from hjepa_agent.nodes.common import Diagnostics, declare, declare_ego_model, declare_robot, run_node
from hjepa_agent.nodes.guard import GuardedNode, Receipt
from hjepa_agent.nodes.mounts import declare_base_frame
from hjepa_agent.nodes.topics import Rejected
from hjepa_agent.config.paths import models_dir as models_path


class EstimatorNode(GuardedNode):
    """Thin wrapper around core.estimator.Estimator."""

    def __init__(self, **kwargs) -> None:
        super().__init__("estimator", **kwargs)
        self.odom_frame = self.frames["odom"]
        self.base_frame = declare_base_frame(self)
        self.odom_pose: np.ndarray | None = None
        """The latest accepted odometry pose (x m, y m, yaw rad in odom_frame): what places base-frame goals."""
        self._tf = None
        try:
            import tf2_ros
        except ImportError:
            self.get_logger().info(f"tf2_ros is not importable here: goals are taken in {self.odom_frame!r} or "
                                   f"{self.base_frame!r} only")
        else:   # a robot's ROS 2 (untested here: no tf2_ros wheels): goals in other frames are looked up
            self._tf_error = tf2_ros.TransformException
            self._tf = tf2_ros.Buffer()
            self._tf_listener = tf2_ros.TransformListener(self._tf, self)
        self.ego = declare_ego_model(self)
        self.robot = declare_robot(self, self.ego)   # the world model's robot fingerprint must be this one
        self.odometry = OdometryConsistency(OdometryCheckConfig.from_ego(self.ego))
        learned = None
        if declare(self, "world_model", False, "fuse the latent with the learned predictor ensemble"):
            models_dir = str(models_path(declare(self, "models_dir", "", "directory with manifest.yaml and ONNX "
                                                         "models (relative: from here, else the package's)")))
            use_cuda = declare(self, "use_cuda", True, "use CUDA when it truly works")
            wm = WorldModel(models_dir, select_providers(use_cuda)[0], self.robot, with_encoder=False)
            self.action_norm = world_action_norm(wm.pred)
            learned = LearnedLatent.from_world_model(wm, models_dir)
        self.core = Estimator(EstimatorConfig(), learned)
        if learned is not None:
            self.subscribe("command", self.on_cmd)
        self.published = 0
        self.withheld = 0   # world states not published: no odometry fused yet
        self.last_ambiguity = float("nan")
        self.pub_early = self.publisher("agent/world_state/early")
        self.pub = self.publisher("agent/world_state")
        self.subscribe("early_percept", self.on_early_percept)
        self.subscribe("percept", self.on_percept)
        self.subscribe("odom", self.on_odom)
        self.subscribe("goal", self.on_goal)
        self.diag = Diagnostics(self)
        self.create_timer(1.0, self.report)

    def on_clock_jump(self, jump: ClockJump) -> None:
        """Stamps before the jump say nothing about time after it: the filter restarts its clock."""
        self.core.restart_clock()
        self.odometry.reset()

    def on_odom(self, msg: Odometry, rx: Receipt) -> None:
        """Correct the filter (the guard checked the odometry is finite and in the odom frame)."""
        p, q, t = msg.pose.pose.position, msg.pose.pose.orientation, msg.twist.twist
        pose = np.array([p.x, p.y, yaw_from_quaternion(q.x, q.y, q.z, q.w)])
        twist = np.array([t.linear.x, t.angular.z])
        cov_p, cov_t = msg.pose.covariance, msg.twist.covariance
        var = np.array([cov_p[0], cov_p[7], cov_p[35], cov_t[0], cov_t[35]])
        jump = self.odometry.on_odom(rx.stamp_s, *pose, *twist)
        self.odom_pose = pose
        if jump is not None and jump.pose_jumped:   # REP-105: no motion explains it; start again from here
            self.core.reanchor(rx.stamp_s, pose, twist)
            self.emit(Event(rx.now_s, "odometry", (f"estimator re-anchored: {jump.describe()}",),
                            (Cause.ODOMETRY_JUMP,)))
            return
        self.core.on_odom(rx.stamp_s, pose, twist, var)

    def on_cmd(self, cmd: Command, rx: Receipt) -> None:
        """The command sent to the base (finite: the guard checked): the action between this percept and the next."""
        self.core.on_action(np.array([cmd.v / self.action_norm[0], cmd.w / self.action_norm[1]]))

    def on_goal(self, msg: PoseStamped, rx: Receipt) -> None:
        """A goal (finite: the guard checked), placed in odom_frame (module doc); Rejected(BAD_FRAME) saying
        which frames are taken when it cannot be placed: the previous goal stays."""
        frame = msg.header.frame_id
        sent = np.array([msg.pose.position.x, msg.pose.position.y])
        try:
            if self._tf is not None and frame not in (self.odom_frame, self.base_frame):
                goal = self._goal_by_tf2(msg)
            else:
                goal = goal_in_odom(frame, sent, self.odom_pose, odom_frame=self.odom_frame,
                                    base_frame=self.base_frame)
        except GoalFrameError as exc:
            raise Rejected(Cause.BAD_FRAME, str(exc)) from None
        if self.core.goal is None or not np.allclose(self.core.goal, goal, atol=1e-6):
            via = "" if frame == self.odom_frame else f" (sent as ({sent[0]:.2f}, {sent[1]:.2f}) m in {frame[:60]})"
            self.emit(Event(rx.now_s, "goal", (f"goal ({goal[0]:.2f}, {goal[1]:.2f}) m in {self.odom_frame} "
                                               f"accepted{via}",)))
        self.core.on_goal(goal)

    def _goal_by_tf2(self, msg: PoseStamped) -> np.ndarray:
        """The goal's position in odom_frame through tf2's latest transform from its frame (a robot with
        tf2_ros only; untested here); GoalFrameError when tf2 has none."""
        from rclpy.time import Time
        frame = msg.header.frame_id
        try:
            t = self._tf.lookup_transform(self.odom_frame, frame, Time()).transform
        except self._tf_error as exc:   # Lookup-, Connectivity-, ExtrapolationException
            raise GoalFrameError(f"goal in frame {frame[:60]!r}: tf2 has no transform to {self.odom_frame!r} "
                                 f"({type(exc).__name__}); publish one (a localisation's map -> odom) or send "
                                 f"the goal in {self.odom_frame} or {self.base_frame}") from None
        r = quaternion_matrix(t.rotation.x, t.rotation.y, t.rotation.z, t.rotation.w)
        p = msg.pose.position
        xyz = r @ np.array([p.x, p.y, p.z]) + np.array([t.translation.x, t.translation.y, t.translation.z])
        return xyz[:2]

    def on_early_percept(self, early: EarlyPercept, rx: Receipt) -> None:
        """Fold in a frame's latent and scan sectors and publish its early world state (the habitual policy's
        input), before the frame's image statistics come."""
        ws = self.core.on_early(early)
        if ws is not None and self.core.localised:
            self.pub_early.publish(early_world_state_to_msg(ws, self.odom_frame))

    def on_percept(self, percept: Percept, rx: Receipt) -> None:
        """Complete the frame with its image statistics and publish the world state (the early one too when
        the frame's early percept never came: the core folded in the whole percept)."""
        early_before = self.core.folded_t_s
        try:
            ws = self.core.on_percept(percept)
        except OutOfOrder as exc:
            raise Rejected(Cause.OUT_OF_ORDER, str(exc)) from None
        except ValueError as exc:  # a non-finite learned ambiguity: publish nothing, the watchdog stops
            raise Rejected(Cause.NON_FINITE, f"percept not fused: {exc}") from None
        if not self.core.localised:   # no position yet (core doc): the watchdog keeps its start-up SAFE_STOP
            self.withheld += 1
            return
        if early_before != percept.stamp_s:
            self.pub_early.publish(early_world_state_to_msg(ws, self.odom_frame))
        self.last_ambiguity = ws.ambiguity
        self.published += 1
        self.pub.publish(world_state_to_msg(ws, self.odom_frame))

    def report(self) -> None:
        """Publish /diagnostics (the guard adds its counters)."""
        counts = self.input_counts()
        n_rej = sum(v for c in counts.values() for k, v in c.items() if k.startswith("rejected"))
        level = "OK" if n_rej == 0 and self.core.localised else "WARN"
        self.diag.publish(level, (f"{self.published} states, ambiguity {self.last_ambiguity:.3f}" if self.core.localised
                                  else f"no odometry yet: {self.withheld} world states withheld"),
                          {"published": self.published, "withheld": self.withheld,
                           "has_goal": self.core.goal is not None,
                           "odom_count": self.core.odom_count, "ambiguity": f"{self.last_ambiguity:.4f}",
                           **{f"score_{k}": f"{v:.3f}" for k, v in self.core.scores.items()}})


def main() -> None:
    """Entry point: ros2 run hjepa_agent estimator."""
    run_node(EstimatorNode)
