"""Message <-> core-type conversion. The agent's own tensors travel as sensor_msgs/JointState.

Why JointState: it is a standard type with a header (so every receiver can tell
the age of what feeds a safety decision) and labelled float64 arrays, which any
ROS tool can plot. Layout, used for every agent tensor:

* ``header.stamp``: the ORIGINATING camera stamp of the value;
* ``name[i]``: the label of element i;
* ``position[i]``: the value (the mean, for estimates);
* ``velocity[i]``: the variance of element i, or empty when the value has none;
* ``effort``: empty.

Per topic:

* ``agent/percept``: labels z_0..z_15, scan_0..scan_15, quality, image_noise_log, appearance_log, image_change
  (core.types.Percept.vector).
* ``agent/percept/early``: labels z_0..z_15, scan_0..scan_15 (core.types.EarlyPercept.vector): the same
  frame's latent and sectors, published before ``agent/percept`` (whose image statistics take longer).
* ``agent/world_state``: labels core.types.WORLD_STATE_LABELS + ["ambiguity"];
  velocity = variance (0 for ambiguity).
* ``agent/world_state/early``: labels core.types.WORLD_STATE_LABELS, velocity = variance: the world state
  of ``agent/world_state`` with the same stamp, published before its ambiguity is known (read as a
  WorldState whose ambiguity is NaN: not computed yet).
* ``agent/plan``: labels risk, log_reward, ambiguity, dt_s, world_model_calls,
  then for k in 0..H-1: a{k}_v, a{k}_w, lp{k}; then for k in 0..H: s{k}_x, s{k}_y, s{k}_yaw.
* ``agent/bridge/output``: one per cmd_vel the bridge publishes; header.stamp = that cmd_vel's stamp
  (the bridge's clock when it published), header.frame_id = the bridge's state (DRIVING, STOPPING,
  STOPPED, ESTOP); labels v, w (what it commanded, m/s and rad/s), origin_sec, origin_nanosec (the
  camera stamp of the proposal it followed; -1, -1 before any). So the originating camera stamp
  travels beside cmd_vel (end-to-end latency stays measurable), and anyone reading cmd_vel can tell
  the bridge's commands from a foreign publisher's.
* ``agent/goal_status``: header.stamp = the world state's stamp it was judged at; labels kind
  (core.planner.navfield.GoalKind value), goal_x, goal_y, target_x, target_y (where the planner heads:
  the goal, or the map edge towards it), distance_m (straight line, robot to goal).
* ``agent/habitual/cmd`` is a geometry_msgs/TwistStamped (header.stamp = origin camera stamp);
  ``cmd_vel`` too, stamped when the bridge publishes it, or a geometry_msgs/Twist without a header
  (parameter cmd_vel_type, nodes/topics.py CMD_VEL_TYPES; read as a :class:`Command` either way).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import PoseStamped, Twist, TwistStamped
from nav_msgs.msg import Path
from sensor_msgs.msg import JointState

from hjepa_agent.core.events import Cause
from hjepa_agent.core.types import (LATENT_LABELS, SCAN_LABELS, WORLD_STATE_LABELS, EarlyPercept, Percept,
                                    Plan, Proposal, WorldState)

EARLY_PERCEPT_LABELS = LATENT_LABELS + SCAN_LABELS
PERCEPT_LABELS = EARLY_PERCEPT_LABELS + ("quality", "image_noise_log", "appearance_log", "image_change")
PLAN_HEAD = ("risk", "log_reward", "ambiguity", "dt_s", "world_model_calls")


class MessageError(ValueError):
    """A message does not have the layout documented above: ``cause`` says how (typed: wrong size or
    labels, BAD_LAYOUT; non-finite values, NON_FINITE), ``detail`` says it for people."""

    def __init__(self, detail: str, cause: Cause = Cause.BAD_LAYOUT) -> None:
        super().__init__(detail)
        self.detail = detail
        self.cause = cause


def to_time(t_s: float) -> Time:
    """Seconds -> builtin_interfaces/Time (nanosecond-exact for sim times < 100 days)."""
    ns = int(round(t_s * 1e9))
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def from_time(t: Time) -> float:
    """builtin_interfaces/Time -> seconds."""
    return t.sec + t.nanosec * 1e-9


def time_ns(t: Time) -> int:
    """builtin_interfaces/Time -> integer nanoseconds (exact, for matching stamps)."""
    return t.sec * 1_000_000_000 + t.nanosec


def _vector_msg(stamp_s: float, labels: tuple[str, ...] | list[str], values: np.ndarray,
                variances: np.ndarray | None = None, frame_id: str = "") -> JointState:
    msg = JointState()
    msg.header.stamp = to_time(stamp_s)
    msg.header.frame_id = frame_id
    msg.name = list(labels)
    msg.position = [float(v) for v in values]
    msg.velocity = [] if variances is None else [float(v) for v in variances]
    return msg


def _check(msg: JointState, expected: tuple[str, ...], what: str) -> np.ndarray:
    if tuple(msg.name) != expected:
        raise MessageError(f"{what}: expected {len(expected)} labels {expected[:3]}..., got {len(msg.name)}")
    values = np.asarray(msg.position, dtype=np.float64)
    if values.shape != (len(expected),):
        raise MessageError(f"{what}: position must hold {len(expected)} values, got {values.shape[0]}")
    if not np.all(np.isfinite(values)):
        raise MessageError(f"{what}: position holds non-finite values", Cause.NON_FINITE)
    return values


def percept_to_msg(p: Percept) -> JointState:
    """Percept -> JointState (layout in the module docstring)."""
    return _vector_msg(p.stamp_s, PERCEPT_LABELS, p.vector())


def msg_to_percept(msg: JointState) -> Percept:
    """JointState -> Percept; MessageError on a wrong layout or non-finite values."""
    values = _check(msg, PERCEPT_LABELS, "percept")
    return Percept.from_vector(from_time(msg.header.stamp), values)


def early_percept_to_msg(p: EarlyPercept) -> JointState:
    """EarlyPercept -> JointState (layout in the module docstring)."""
    return _vector_msg(p.stamp_s, EARLY_PERCEPT_LABELS, p.vector())


def msg_to_early_percept(msg: JointState) -> EarlyPercept:
    """JointState -> EarlyPercept; MessageError on a wrong layout or non-finite values."""
    values = _check(msg, EARLY_PERCEPT_LABELS, "early percept")
    return EarlyPercept.from_vector(from_time(msg.header.stamp), values)


def world_state_to_msg(ws: WorldState, frame_id: str = "odom") -> JointState:
    """WorldState -> JointState (mean in position, variance in velocity, ambiguity last)."""
    values = np.concatenate([ws.vector(), [ws.ambiguity]])
    variances = np.concatenate([ws.variance, [0.0]])
    return _vector_msg(ws.stamp_s, WORLD_STATE_LABELS + ("ambiguity",), values, variances, frame_id)


def early_world_state_to_msg(ws: WorldState, frame_id: str = "odom") -> JointState:
    """WorldState -> the agent/world_state/early JointState (mean and variance, no ambiguity)."""
    return _vector_msg(ws.stamp_s, WORLD_STATE_LABELS, ws.vector(), ws.variance, frame_id)


def msg_to_world_state(msg: JointState) -> WorldState:
    """JointState -> WorldState; MessageError on a wrong layout or non-finite values."""
    values, var = _world_state_arrays(msg, WORLD_STATE_LABELS + ("ambiguity",), "world_state")
    return WorldState.from_vector(from_time(msg.header.stamp), values[:-1], var[:-1], float(values[-1]))


def msg_to_early_world_state(msg: JointState) -> WorldState:
    """agent/world_state/early JointState -> WorldState with ambiguity NaN (not computed yet); MessageError on a
    wrong layout or non-finite values."""
    values, var = _world_state_arrays(msg, WORLD_STATE_LABELS, "early world_state")
    ws = WorldState.from_vector(from_time(msg.header.stamp), values, var, 0.0)
    return dataclasses.replace(ws, ambiguity=math.nan)


def _world_state_arrays(msg: JointState, labels: tuple[str, ...], what: str) -> tuple[np.ndarray, np.ndarray]:
    """(values, variances) of a world-state message with ``labels``; MessageError on a wrong layout,
    non-finite values or negative variances."""
    values = _check(msg, labels, what)
    var = np.asarray(msg.velocity, dtype=np.float64)
    if var.shape != (len(labels),):
        raise MessageError(f"{what}: velocity (variance) must match position")
    if not np.all(np.isfinite(var)) or np.any(var < 0.0):
        raise MessageError(f"{what}: variances must be finite and >= 0", Cause.NON_FINITE)
    return values, var


def plan_labels(horizon: int) -> tuple[str, ...]:
    """Labels of a plan message with ``horizon`` actions."""
    per_action = tuple(f"{k}" for k in range(horizon))
    a = tuple(x for k in per_action for x in (f"a{k}_v", f"a{k}_w", f"lp{k}"))
    s = tuple(x for k in range(horizon + 1) for x in (f"s{k}_x", f"s{k}_y", f"s{k}_yaw"))
    return PLAN_HEAD + a + s


def plan_to_msg(plan: Plan, frame_id: str = "odom") -> JointState:
    """Plan -> JointState (layout in the module docstring); header.frame_id = frame of the states."""
    h = plan.horizon
    head = [plan.risk, plan.log_reward, plan.ambiguity, plan.dt_s, float(plan.world_model_calls)]
    acts = np.concatenate([plan.actions, plan.log_probs[:, None]], axis=1).reshape(-1)
    values = np.concatenate([head, acts, plan.states.reshape(-1)])
    msg = _vector_msg(plan.stamp_s, plan_labels(h), values, None, frame_id)
    return msg


PLAN_DT_RANGE_S = (1e-3, 10.0)
"""A plan's step dt_s (s) must lie in this range: the planners' own is 0.02..1 s; a step of 5e-324 s
made the watchdog's rollout of the course loop without end (found by the fuzz battery)."""
PLAN_MAX_RATE = 1e3
"""A plan's actions beyond this |v| (m/s) or |w| (rad/s) are no plan of a robot (as odometry's
1e3 bound in nodes/topics.py); the bridge refuses far less (10x its operating limit)."""
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def msg_to_plan(msg: JointState, planner: str = "remote") -> Plan:
    """JointState -> Plan; MessageError when the labels do not form a plan of some horizon, a value
    is not finite (as float64, or as the float32 the plan's arrays hold), dt_s is outside
    PLAN_DT_RANGE_S or an action beyond PLAN_MAX_RATE."""
    n = len(msg.name)
    h = (n - len(PLAN_HEAD) - 3) // 6
    if h < 1:
        raise MessageError(f"plan: {n} labels cannot hold a plan")
    values = _check(msg, plan_labels(h), "plan")
    head = values[: len(PLAN_HEAD)]
    acts = values[len(PLAN_HEAD): len(PLAN_HEAD) + 3 * h].reshape(h, 3)
    states = values[len(PLAN_HEAD) + 3 * h:].reshape(h + 1, 3)
    if not PLAN_DT_RANGE_S[0] <= head[3] <= PLAN_DT_RANGE_S[1]:
        raise MessageError(f"plan: dt_s {head[3]:.3g} s outside [{PLAN_DT_RANGE_S[0]:g}, {PLAN_DT_RANGE_S[1]:g}]",
                           Cause.OUT_OF_RANGE)
    if np.any(np.abs(acts[:, :2]) > PLAN_MAX_RATE):
        raise MessageError(f"plan: an action beyond {PLAN_MAX_RATE:g} m/s or rad/s", Cause.OUT_OF_RANGE)
    if np.any(np.abs(acts[:, 2]) > _FLOAT32_MAX) or np.any(np.abs(states) > _FLOAT32_MAX):
        raise MessageError("plan: log-probabilities or states beyond float32 (they would read inf)", Cause.NON_FINITE)
    return Plan(stamp_s=from_time(msg.header.stamp), actions=acts[:, :2].astype(np.float32),
                states=states.astype(np.float32), log_probs=acts[:, 2].astype(np.float32),
                log_reward=float(head[1]), risk=float(head[0]), ambiguity=float(head[2]), dt_s=float(head[3]),
                planner=planner, world_model_calls=int(head[4]))


def plan_to_path(plan: Plan, frame_id: str = "odom") -> Path:
    """The plan's predicted route as nav_msgs/Path, for viewers."""
    path = Path()
    path.header.stamp = to_time(plan.stamp_s)
    path.header.frame_id = frame_id
    for k, (x, y, yaw) in enumerate(plan.states):
        ps = PoseStamped()
        ps.header.stamp = to_time(plan.stamp_s + k * plan.dt_s)
        ps.header.frame_id = frame_id
        ps.pose.position.x, ps.pose.position.y = float(x), float(y)
        ps.pose.orientation.z, ps.pose.orientation.w = math.sin(yaw / 2.0), math.cos(yaw / 2.0)
        path.poses.append(ps)
    return path


def route_to_path(plan: Plan, goal, frame_id: str = "odom") -> Path | None:
    """The two-level planner's route (start, the subgoals left, goal) as nav_msgs/Path; None for a
    plan without a route."""
    sub = plan.extras.get("subgoals")
    if sub is None or not len(plan.states):
        return None
    path = Path()
    path.header.stamp = to_time(plan.stamp_s)
    path.header.frame_id = frame_id
    for x, y in [tuple(plan.states[0][:2])] + [tuple(p) for p in sub] + [tuple(goal[:2])]:
        ps = PoseStamped()
        ps.header = path.header
        ps.pose.position.x, ps.pose.position.y = float(x), float(y)
        ps.pose.orientation.w = 1.0
        path.poses.append(ps)
    return path


def proposal_to_msg(p: Proposal, frame_id: str = "base_link") -> TwistStamped:
    """Proposal -> TwistStamped carrying the origin camera stamp."""
    msg = TwistStamped()
    msg.header.stamp = to_time(p.stamp_s)
    msg.header.frame_id = frame_id
    msg.twist.linear.x = float(p.v)
    msg.twist.angular.z = float(p.w)
    return msg


def msg_to_proposal(msg: TwistStamped, source: str) -> Proposal:
    """TwistStamped -> Proposal (values are NOT validated here: the bridge rejects bad ones and counts them)."""
    return Proposal(from_time(msg.header.stamp), float(msg.twist.linear.x), float(msg.twist.angular.z), source)


def yaw_from_quaternion(x: float, y: float, z: float, w: float) -> float:
    """Yaw (rad) of a geometry_msgs quaternion (x, y, z, w order)."""
    return math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


@dataclass(frozen=True)
class Command:
    """A velocity command as read off cmd_vel, whichever type carries it (nodes/topics.py
    CMD_VEL_TYPES): ``v`` (m/s), ``w`` (rad/s), ``stamp_ns`` its header stamp and ``frame_id`` its
    header frame; an unstamped geometry_msgs/Twist has neither (None, "")."""

    v: float
    w: float
    stamp_ns: int | None
    frame_id: str


def content_key(cmd: Command) -> int:
    """What names an unstamped command (a Twist has no header) in the watchdog's journal: a negative
    integer made from its values, never a stamp (stamps are >= 0). Identical commands share it, and are
    interchangeable, so a recording that misses one command misaligns nothing else on replay."""
    import struct
    import zlib
    return -(zlib.crc32(struct.pack("<dd", float(cmd.v), float(cmd.w))) + 1)


def msg_to_command(msg: Twist | TwistStamped) -> Command:
    """cmd_vel (Twist or TwistStamped) -> Command (values are NOT validated here: the guard's check_command is)."""
    if isinstance(msg, TwistStamped):
        return Command(float(msg.twist.linear.x), float(msg.twist.angular.z), time_ns(msg.header.stamp),
                       str(msg.header.frame_id))
    return Command(float(msg.linear.x), float(msg.angular.z), None, "")


def command_to_msg(msg_type: type, v: float, w: float, stamp: Time, frame_id: str) -> Twist | TwistStamped:
    """A cmd_vel of ``msg_type`` (Twist or TwistStamped: nodes/topics.py CMD_VEL_TYPES) commanding ``v``
    (m/s) and ``w`` (rad/s); a TwistStamped is stamped ``stamp`` in ``frame_id``, a Twist has no header."""
    if msg_type is TwistStamped:
        msg = TwistStamped()
        msg.header.stamp, msg.header.frame_id = stamp, frame_id
        twist = msg.twist
    elif msg_type is Twist:
        msg = twist = Twist()
    else:
        raise ValueError(f"cmd_vel cannot be a {msg_type.__name__} (Twist or TwistStamped)")
    twist.linear.x, twist.angular.z = float(v), float(w)
    return msg



BRIDGE_OUTPUT_LABELS = ("v", "w", "origin_sec", "origin_nanosec")


def bridge_output_to_msg(stamp: Time, v: float, w: float, origin: Time | None, state: str) -> JointState:
    """The record of one cmd_vel the bridge published (layout in the module docstring); ``stamp`` is
    that cmd_vel's header.stamp."""
    msg = JointState()
    msg.header.stamp = stamp
    msg.header.frame_id = state
    msg.name = list(BRIDGE_OUTPUT_LABELS)
    o = (-1.0, -1.0) if origin is None else (float(origin.sec), float(origin.nanosec))
    msg.position = [float(v), float(w), *o]
    return msg


def msg_to_bridge_output(msg: JointState) -> tuple[int, float, float, int | None, str]:
    """JointState -> (cmd_vel stamp ns, v, w, origin camera stamp ns or None, bridge state);
    MessageError on a wrong layout or non-finite values."""
    values = _check(msg, BRIDGE_OUTPUT_LABELS, "bridge output")
    sec, nsec = values[2], values[3]
    origin = None
    if sec >= 0.0:
        if nsec < 0.0 or nsec >= 1e9 or sec != int(sec) or nsec != int(nsec):
            raise MessageError(f"bridge output: origin ({sec}, {nsec}) is not a time", Cause.OUT_OF_RANGE)
        origin = int(sec) * 1_000_000_000 + int(nsec)
    return time_ns(msg.header.stamp), float(values[0]), float(values[1]), origin, str(msg.header.frame_id)


GOAL_STATUS_LABELS = ("kind", "goal_x", "goal_y", "target_x", "target_y", "distance_m")


def goal_status_to_msg(stamp_s: float, kind: int, goal: tuple[float, float], target: tuple[float, float],
                       distance_m: float) -> JointState:
    """The planner's judgement of the goal (layout in the module docstring)."""
    return _vector_msg(stamp_s, GOAL_STATUS_LABELS, np.array([float(kind), *goal, *target, distance_m]),
                       frame_id="odom")


def msg_to_goal_status(msg: JointState) -> tuple[float, int, np.ndarray, np.ndarray, float]:
    """JointState -> (stamp s, kind code, goal xy, target xy, distance m); MessageError on a bad layout."""
    values = _check(msg, GOAL_STATUS_LABELS, "goal status")
    if values[0] != int(values[0]) or not 0 <= values[0] < 16:
        raise MessageError(f"goal status: kind {values[0]} is not a code", Cause.OUT_OF_RANGE)
    return from_time(msg.header.stamp), int(values[0]), values[1:3], values[3:5], float(values[5])
