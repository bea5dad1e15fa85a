"""The one table of every topic the agent reads or writes, and of each node's inputs.

TOPICS: every topic (relative name, type, QoS, who may publish it, whether it is stamped).
INPUTS: per node, every subscription: the topic, the validator that decodes it, the stamp
rules and where its maximum age comes from. Nodes subscribe only through
:class:`hjepa_agent.nodes.guard.GuardedNode.subscribe`, which takes an INPUTS entry, so an
input cannot skip the guard (a test checks that no node calls create_subscription itself).

A validator takes the message and returns what the node's callback gets (the message itself,
or a decoded core value); it raises :class:`Rejected` with a typed cause for anything the core
must not see. Stamps (sec >= 0, nanosec < 1e9, a valid time, not in the future beyond the
node's tolerance, after the last accepted one) and frames are checked by the guard from the
entry's ``stamped``/``order``/``frame`` fields, before the validator runs.

Who may publish (``publishers``): node names in the agent's namespace; None means anyone (the
robot's drivers, an operator, a user). The watchdog compares the ROS graph with this column.

TOPICS and INPUTS name the defaults; how this robot carries its camera (raw Image or CompressedImage)
and its velocity commands (TwistStamped or Twist) is :class:`Transport`, which the guard applies.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped, Twist, TwistStamped
from nav_msgs.msg import Odometry, Path
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import BatteryState, CameraInfo, CompressedImage, Image, JointState, LaserScan, Temperature
from std_msgs.msg import Bool, Float32, String

from hjepa_agent.core.events import Cause, Event, Transition
from hjepa_agent.core.perception import SUPPORTED_ENCODINGS, ImageError, compressed_format, compressed_image_size
from hjepa_agent.core.types import Mode
from hjepa_agent.nodes.codec import Command, MessageError, msg_to_command

MAX_IMAGE_PIXELS = 4096 * 4096
"""Images with more pixels are refused before anything is copied (a decoder must not be a DoS)."""
MAX_COMPRESSED_BYTES = 4 * MAX_IMAGE_PIXELS
"""Compressed images with more bytes are refused unread: more than an uncompressed 8-bit RGBA image
of MAX_IMAGE_PIXELS, which no camera's JPEG or PNG needs."""
MAX_SCAN_BEAMS = 100_000
"""Scans with more beams are refused."""


class Rejected(MessageError):
    """A message the guard refuses: ``cause`` (typed) and ``detail`` (for people)."""

    def __init__(self, cause: Cause, detail: str) -> None:
        super().__init__(detail, cause)


@dataclass(frozen=True)
class TopicSpec:
    """One topic: relative name (absolute for /clock, /diagnostics), message type, QoS kind
    ("sensor": best-effort subscription, "reliable", "events": reliable with a deep queue, "latched":
    reliable + transient local, "clock"), the node names allowed to publish it (None: anyone) and whether it has a header."""

    name: str
    type: type
    qos: str
    publishers: tuple[str, ...] | None
    stamped: bool


_T = TopicSpec
TOPICS: dict[str, TopicSpec] = {t.name: t for t in (
    _T("/clock", Clock, "clock", None, False),
    _T("camera/image_raw", Image, "sensor", None, True),
    _T("camera/image_raw/compressed", CompressedImage, "sensor", None, True),
    _T("camera/camera_info", CameraInfo, "sensor", None, True),
    _T("scan", LaserScan, "sensor", None, True),
    _T("odom", Odometry, "sensor", None, True),
    _T("joint_states", JointState, "sensor", None, True),
    _T("battery_state", BatteryState, "sensor", None, True),
    _T("motor_temperature", Temperature, "sensor", None, True),
    _T("goal_pose", PoseStamped, "reliable", None, True),
    _T("agent/percept/early", JointState, "reliable", ("perception",), True),
    _T("agent/percept", JointState, "reliable", ("perception",), True),
    _T("agent/world_state/early", JointState, "reliable", ("estimator",), True),
    _T("agent/world_state", JointState, "reliable", ("estimator",), True),
    _T("agent/habitual/cmd", TwistStamped, "reliable", ("habitual",), True),
    _T("agent/plan", JointState, "reliable", ("planner",), True),
    _T("agent/plan/path", Path, "reliable", ("planner",), True),
    _T("agent/plan/route", Path, "reliable", ("planner",), True),
    _T("agent/plan/explanation", String, "reliable", ("planner",), False),
    _T("agent/goal_status", JointState, "reliable", ("planner",), True),
    _T("agent/mode", String, "reliable", ("watchdog",), False),
    _T("agent/speed_scale", Float32, "reliable", ("watchdog",), False),
    _T("agent/habitual_stalled", Bool, "reliable", ("watchdog",), False),
    _T("agent/watchdog/journal", String, "reliable", ("watchdog",), False),
    _T("base_stop", Bool, "latched", ("watchdog",), False),
    _T("agent/events", String, "events",
       ("perception", "estimator", "habitual", "planner", "watchdog", "bridge"), False),
    _T("agent/estop", Bool, "reliable", None, False),
    _T("cmd_vel", TwistStamped, "reliable", ("bridge", "watchdog"), True),
    _T("agent/bridge/output", JointState, "reliable", ("bridge",), True),
    _T("/diagnostics", DiagnosticArray, "reliable", None, True),
)}
"""Every topic of the agent (module doc)."""

AGENT_NODES = ("perception", "estimator", "habitual", "planner", "watchdog", "bridge")
"""The agent's own nodes (node_table.NODES), the only legitimate publishers of its topics."""


def guarded_topics() -> tuple[str, ...]:
    """Topics with a fixed set of publishers: a publisher outside it is a foreign publisher."""
    return tuple(name for name, spec in TOPICS.items() if spec.publishers is not None
                 and not name.startswith("/"))


# ---- validators (msg -> value; Rejected on anything the core must not see) ----------------------
def _finite(cause_field: str, *values: float) -> None:
    for v in values:
        if not math.isfinite(v):
            raise Rejected(Cause.NON_FINITE, f"{cause_field} is {v}")


def check_image(msg: Image) -> Image:
    """Structure of a sensor_msgs/Image (encoding, sizes, buffer length) without copying pixels."""
    if msg.encoding not in SUPPORTED_ENCODINGS:
        raise Rejected(Cause.BAD_LAYOUT, f"encoding {msg.encoding!r} (supported: {', '.join(SUPPORTED_ENCODINGS)})")
    channels = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1}[msg.encoding]
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    if h <= 0 or w <= 0 or h * w > MAX_IMAGE_PIXELS:
        raise Rejected(Cause.BAD_LAYOUT, f"size {w}x{h} (1..{MAX_IMAGE_PIXELS} pixels)")
    if step < w * channels:
        raise Rejected(Cause.BAD_LAYOUT, f"step {step} < width*channels {w * channels}")
    if len(msg.data) != step * h:
        raise Rejected(Cause.BAD_LAYOUT, f"buffer {len(msg.data)} bytes, expected step*height {step * h}")
    return msg


def check_compressed_image(msg: CompressedImage) -> CompressedImage:
    """A sensor_msgs/CompressedImage whose format is decoded (core/perception.py COMPRESSED_FORMATS),
    at most MAX_COMPRESSED_BYTES long, whose bytes are that format's stream with a header size of
    1..MAX_IMAGE_PIXELS pixels: read from the header, without decoding the pixels (the perception node
    decodes them; the watchdog only needs to know a frame came)."""
    n = len(msg.data)
    if n == 0 or n > MAX_COMPRESSED_BYTES:
        raise Rejected(Cause.BAD_LAYOUT, f"compressed image of {n} bytes (1..{MAX_COMPRESSED_BYTES})")
    try:
        codec, _ = compressed_format(msg.format)
        w, h = compressed_image_size(msg.data, codec)
    except ImageError as exc:
        raise Rejected(Cause.BAD_LAYOUT, str(exc)) from None
    if w <= 0 or h <= 0 or w * h > MAX_IMAGE_PIXELS:
        raise Rejected(Cause.BAD_LAYOUT, f"{codec} image {w}x{h} (1..{MAX_IMAGE_PIXELS} pixels)")
    return msg


def check_scan(msg: LaserScan) -> LaserScan:
    """A LaserScan whose beams can be placed: finite angles, a non-zero increment, a sane range
    window. Ranges may hold inf (no return) and NaN (invalid) as REP-117 says: they read as no return."""
    _finite("angle_min/angle_increment/range_min/range_max", msg.angle_min, msg.angle_increment,
            msg.range_min, msg.range_max)
    n = len(msg.ranges)
    if n == 0 or n > MAX_SCAN_BEAMS:
        raise Rejected(Cause.BAD_LAYOUT, f"{n} beams (1..{MAX_SCAN_BEAMS})")
    if msg.angle_increment == 0.0 or abs(msg.angle_increment) * n > 2.0 * math.pi + 1e-3:
        raise Rejected(Cause.OUT_OF_RANGE, f"angle_increment {msg.angle_increment} x {n} beams is not a scan "
                                           f"of at most one turn")
    if abs(msg.angle_min) > 4.0 * math.pi:
        raise Rejected(Cause.OUT_OF_RANGE, f"angle_min {msg.angle_min} rad")
    if not 0.0 <= msg.range_min < msg.range_max:
        raise Rejected(Cause.OUT_OF_RANGE, f"need 0 <= range_min < range_max, got {msg.range_min}, {msg.range_max}")
    return msg


def check_odom(msg: Odometry) -> Odometry:
    """Finite pose and twist, a usable orientation quaternion."""
    p, q, t = msg.pose.pose.position, msg.pose.pose.orientation, msg.twist.twist
    _finite("pose", p.x, p.y, p.z, q.x, q.y, q.z, q.w)
    _finite("twist", t.linear.x, t.linear.y, t.angular.z)
    norm = math.sqrt(q.x * q.x + q.y * q.y + q.z * q.z + q.w * q.w)
    if not 0.5 < norm < 1.5:
        raise Rejected(Cause.OUT_OF_RANGE, f"orientation quaternion norm {norm:.3g} (not a rotation)")
    if max(abs(p.x), abs(p.y)) > 1e6 or max(abs(t.linear.x), abs(t.linear.y), abs(t.angular.z)) > 1e3:
        raise Rejected(Cause.OUT_OF_RANGE, "pose beyond 1e6 m or speed beyond 1e3")
    return msg


def check_battery(msg: BatteryState) -> BatteryState:
    """A measured state of charge in [0, 1] (BatteryState says NaN when unmeasured: unusable here)."""
    if not math.isfinite(msg.percentage):
        raise Rejected(Cause.NON_FINITE, f"percentage is {msg.percentage} (unmeasured)")
    if not 0.0 <= msg.percentage <= 1.0:
        raise Rejected(Cause.OUT_OF_RANGE, f"percentage {msg.percentage} outside [0, 1]")
    return msg


def check_temperature(msg: Temperature) -> Temperature:
    """A finite temperature a motor can have (degC)."""
    _finite("temperature", msg.temperature)
    if not -273.15 <= msg.temperature <= 1000.0:
        raise Rejected(Cause.OUT_OF_RANGE, f"temperature {msg.temperature} degC")
    return msg


def check_goal(msg: PoseStamped) -> PoseStamped:
    """A finite goal position (its frame is the estimator's to place: core/frames.py goal_in_odom)."""
    p, q = msg.pose.position, msg.pose.orientation
    _finite("goal position", p.x, p.y, p.z)
    _finite("goal orientation", q.x, q.y, q.z, q.w)
    if max(abs(p.x), abs(p.y)) > 1e6:
        raise Rejected(Cause.OUT_OF_RANGE, f"goal ({p.x:.3g}, {p.y:.3g}) beyond 1e6 m")
    return msg


MAX_TWIST = 1e3
"""A velocity command or proposal beyond this (m/s, rad/s) on any axis is no robot's (as odometry's
speed bound): refused before a core divides it by a limit and overflows float32 (the estimator's
cmd_vel input failed stop on 1e308 m/s: found by the fuzz battery)."""


def _check_velocity(t: Twist) -> None:
    values = (t.linear.x, t.linear.y, t.linear.z, t.angular.x, t.angular.y, t.angular.z)
    _finite("twist", *values)
    if max(abs(v) for v in values) > MAX_TWIST:
        raise Rejected(Cause.OUT_OF_RANGE, f"twist component beyond {MAX_TWIST:g} (m/s or rad/s)")


def check_twist(msg: TwistStamped) -> TwistStamped:
    """A finite velocity command within MAX_TWIST (the limits are the bridge's business, not the guard's)."""
    _check_velocity(msg.twist)
    return msg


def check_command(msg: Twist | TwistStamped) -> Command:
    """cmd_vel, either type (CMD_VEL_TYPES), checked as :func:`check_twist`, read as a
    :class:`~hjepa_agent.nodes.codec.Command` (an unstamped Twist: no stamp, no frame)."""
    _check_velocity(msg.twist if isinstance(msg, TwistStamped) else msg)
    return msg_to_command(msg)


def check_mode(msg: String) -> Mode:
    """One of the watchdog's mode names."""
    if msg.data not in Mode.__members__:
        raise Rejected(Cause.BAD_LAYOUT, f"mode {msg.data[:40]!r} is not one of {', '.join(Mode.__members__)}")
    return Mode[msg.data]


def check_scale(msg: Float32) -> float:
    """A speed scale in [0, 1]."""
    _finite("speed_scale", msg.data)
    if not 0.0 <= msg.data <= 1.0:
        raise Rejected(Cause.OUT_OF_RANGE, f"speed_scale {msg.data} outside [0, 1]")
    return float(msg.data)


def check_bool(msg: Bool) -> bool:
    """A std_msgs/Bool (its type admits nothing else)."""
    return bool(msg.data)


def check_string(msg: String) -> str:
    """Any std_msgs/String up to 64 KiB."""
    if len(msg.data) > 65536:
        raise Rejected(Cause.BAD_LAYOUT, f"{len(msg.data)} characters (at most 65536)")
    return msg.data


MAX_EVENT_DEPTH = 32
"""An event on agent/events nested deeper than this (arrays and objects) is refused: the planner's
json.loads raised RecursionError (not a ValueError) on 40,000 nested arrays and failed stop (found by
the fuzz battery)."""


def event_to_json(ev: Event) -> str:
    """Event -> one-line JSON for agent/events: {stamp_s, kind, reasons, causes (Cause values), transition:
    [before, after] or null, values}; :func:`event_from_json` reads it back."""
    return json.dumps({"stamp_s": round(ev.stamp_s, 4), "kind": ev.kind, "reasons": list(ev.reasons),
                       "causes": [c.value for c in ev.causes],
                       "transition": None if ev.transition is None else [ev.transition.before, ev.transition.after],
                       "values": {k: float(v) for k, v in ev.values.items()}})


_CAUSES = {c.value: c for c in Cause}


def _event_field(doc: dict, key: str, ok: Callable[[Any], bool], what: str) -> Any:
    if key not in doc:
        raise Rejected(Cause.BAD_LAYOUT, f"event has no {key!r}")
    if not ok(doc[key]):
        raise Rejected(Cause.BAD_LAYOUT, f"event {key} is not {what}: {str(doc[key])[:40]!r}")
    return doc[key]


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def event_from_json(text: str) -> Event:
    """The :class:`~hjepa_agent.core.events.Event` of :func:`event_to_json`'s JSON; Rejected (BAD_LAYOUT) for
    anything else: not JSON, nested deeper than MAX_EVENT_DEPTH, a missing or ill-typed field, a cause
    code this runtime does not know, a transition that is not two state names; a non-finite stamp_s is
    NON_FINITE (``values`` may hold any float: display numbers, decided on by no reader)."""
    try:
        doc = json.loads(text)
    except RecursionError:
        raise Rejected(Cause.BAD_LAYOUT, "event nested too deeply to parse") from None
    except ValueError as exc:
        raise Rejected(Cause.BAD_LAYOUT, f"event is not JSON: {str(exc)[:60]}") from None
    level, depth = [doc], 0
    while level:
        level = [v for x in level for v in (x.values() if isinstance(x, dict) else x if isinstance(x, list) else ())]
        depth += 1
        if depth > MAX_EVENT_DEPTH:
            raise Rejected(Cause.BAD_LAYOUT, f"event nested deeper than {MAX_EVENT_DEPTH}")
    if not isinstance(doc, dict):
        raise Rejected(Cause.BAD_LAYOUT, f"event is a JSON {type(doc).__name__}, not an object")
    stamp = _event_field(doc, "stamp_s", _number, "a number")
    _finite("event stamp_s", stamp)
    kind = _event_field(doc, "kind", lambda x: isinstance(x, str) and 0 < len(x) <= 64, "a short string")
    reasons = _event_field(doc, "reasons", lambda x: isinstance(x, list) and all(isinstance(r, str) for r in x),
                           "a list of strings")
    causes = _event_field(doc, "causes", lambda x: isinstance(x, list) and all(isinstance(c, str) and c in _CAUSES
                                                                               for c in x), "a list of cause codes")
    transition = _event_field(doc, "transition", lambda x: x is None or (
        isinstance(x, list) and len(x) == 2 and all(isinstance(t, str) and t for t in x)), "null or [before, after]")
    values = _event_field(doc, "values", lambda x: isinstance(x, dict) and all(_number(v) for v in x.values()),
                          "an object of numbers")
    return Event(float(stamp), kind, tuple(reasons), tuple(_CAUSES[c] for c in causes),
                 None if transition is None else Transition(*transition), {k: float(v) for k, v in values.items()})


def check_event(msg: String) -> Event:
    """An agent event (:func:`event_to_json`) in a String of up to 64 KiB, decoded (:func:`event_from_json`)."""
    return event_from_json(check_string(msg))


def codec_check(decoder: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A validator from a codec decoder: its MessageError keeps its typed cause; any other
    ValueError from the core types it builds (a value they refuse) is BAD_LAYOUT."""
    def check(msg: Any) -> Any:
        try:
            return decoder(msg)
        except MessageError as exc:
            raise Rejected(exc.cause, exc.detail) from None
        except ValueError as exc:
            raise Rejected(Cause.BAD_LAYOUT, str(exc)) from None
    check.__doc__ = f"{decoder.__name__}, its errors typed"
    check.__name__ = f"check_{decoder.__name__}"
    return check


@dataclass(frozen=True)
class InputSpec:
    """One subscription of one node: its topic (a TOPICS key), its validator, the frame its
    header must name (a role the node resolves: "odom", "base"; None: not checked), whether stamps
    must increase (``order``), and where its maximum age comes from (documentation and
    /diagnostics; the core that decides staleness gets the same number at start)."""

    topic: str
    validate: Callable[[Any], Any]
    max_age: str | None = None
    frame: str | None = None
    order: bool = True

    @property
    def spec(self) -> TopicSpec:
        """The topic's row in TOPICS."""
        return TOPICS[self.topic]


# ---- how the robot carries its camera and its commands -----------------------------------------
CAMERA_TOPIC = "camera/image_raw"
"""The camera's topic in INPUTS (the raw transport's); :class:`Transport` moves it."""
IMAGE_TRANSPORTS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "raw": (CAMERA_TOPIC, check_image),
    "compressed": ("camera/image_raw/compressed", check_compressed_image),
}
"""image_transport -> (the camera's topic, its validator): sensor_msgs/Image, or the CompressedImage
(jpeg, png) that image_transport's compressed plugin publishes beside it on <camera>/compressed."""
CMD_VEL_TYPES: dict[str, TopicSpec] = {
    "twist_stamped": TOPICS["cmd_vel"],
    "twist": dataclasses.replace(TOPICS["cmd_vel"], type=Twist, stamped=False),
}
"""cmd_vel_type -> cmd_vel's row: geometry_msgs/TwistStamped (ros2_control's diff_drive_controller,
Clearpath) or geometry_msgs/Twist (TurtleBot 4 / Create 3), which has no header: the guard skips its
stamp check and times it by receipt, and the watchdog matches it with the bridge's records by value."""


@dataclass(frozen=True)
class Transport:
    """How this robot carries its camera (``image_transport``: IMAGE_TRANSPORTS) and its velocity
    commands (``cmd_vel_type``: CMD_VEL_TYPES). Every guarded node declares both as read-only
    parameters with these defaults (nodes/guard.py), so one '/**' section of a params file sets them for
    every node; the guard subscribes and publishes through :meth:`topic` and :meth:`input`. ValueError
    naming a value that is not an option."""

    image_transport: str = "raw"
    cmd_vel_type: str = "twist_stamped"

    def __post_init__(self) -> None:
        for name, options in (("image_transport", IMAGE_TRANSPORTS), ("cmd_vel_type", CMD_VEL_TYPES)):
            value = getattr(self, name)
            if value not in options:
                raise ValueError(f"parameter {name}: {value!r} is not one of {', '.join(options)}; set it (for "
                                 f"every node: the params file's '/**' section) to the one the robot uses")

    def topic(self, key: str) -> TopicSpec:
        """TOPICS[key] as carried here (cmd_vel: its CMD_VEL_TYPES row)."""
        return CMD_VEL_TYPES[self.cmd_vel_type] if key == "cmd_vel" else TOPICS[key]

    def input(self, spec: InputSpec) -> InputSpec:
        """An INPUTS entry as carried here (the camera: on its IMAGE_TRANSPORTS topic, with its validator)."""
        if spec.topic != CAMERA_TOPIC:
            return spec
        topic, validate = IMAGE_TRANSPORTS[self.image_transport]
        return dataclasses.replace(spec, topic=topic, validate=validate)


def _inputs() -> dict[str, dict[str, InputSpec]]:
    from hjepa_agent.nodes.codec import (msg_to_bridge_output, msg_to_early_percept, msg_to_early_world_state,
                                         msg_to_percept, msg_to_plan, msg_to_world_state)
    percept, world, plan = codec_check(msg_to_percept), codec_check(msg_to_world_state), codec_check(msg_to_plan)
    command_record = codec_check(msg_to_bridge_output)
    I = InputSpec
    camera = I(CAMERA_TOPIC, check_image, "ego_model: hard.sensors.camera.max_age_s")
    scan = I("scan", check_scan, "ego_model: hard.sensors.scan.max_age_s")
    odom = I("odom", check_odom, "ego_model: hard.sensors.odom.max_age_s", frame="odom")
    world_state = I("agent/world_state", world, "watchdog.yaml: world_state_max_age_s", frame="odom")
    habitual = I("agent/habitual/cmd", check_twist, "bridge: source_timeout_s")
    return {
        "perception": {"camera": camera, "scan": scan},
        "estimator": {"early_percept": I("agent/percept/early", codec_check(msg_to_early_percept),
                                         "ego_model: hard.sensors.camera.max_age_s"),
                      "percept": I("agent/percept", percept, "ego_model: hard.sensors.camera.max_age_s"),
                      "odom": odom, "goal": I("goal_pose", check_goal, order=False),   # odom or base frame
                      "command": I("cmd_vel", check_command, order=False)},
        "habitual": {"world_state": I("agent/world_state/early", codec_check(msg_to_early_world_state),
                                      "watchdog.yaml: world_state_max_age_s", frame="odom")},
        "planner": {"world_state": world_state, "mode": I("agent/mode", check_mode, "bridge: mode_timeout_s"),
                    "stalled": I("agent/habitual_stalled", check_bool), "events": I("agent/events", check_event),
                    "scan": scan, "habitual": habitual},
        "watchdog": {"camera": camera, "scan": scan, "odom": odom,
                     "battery": I("battery_state", check_battery, "ego_model: hard.sensors.battery.max_age_s"),
                     "temperature": I("motor_temperature", check_temperature,
                                      "ego_model: hard.sensors.temperature.max_age_s"),
                     "world_state": world_state, "habitual": I("agent/habitual/cmd", check_twist,
                                                               "watchdog.yaml: habitual_max_age_s"),
                     "planner": I("agent/plan", plan, "watchdog.yaml: planner_max_age_s", frame="odom"),
                     "command": I("cmd_vel", check_command, order=False),
                     "bridge_output": I("agent/bridge/output", command_record, "watchdog.yaml: bridge_max_age_s",
                                        order=False),
                     "goal_status": I("agent/goal_status", codec_check(_goal_status_decoder()), order=False)},
        "bridge": {"habitual": habitual, "planner": I("agent/plan", plan, "bridge: source_timeout_s", frame="odom"),
                   "mode": I("agent/mode", check_mode, "bridge: mode_timeout_s"),
                   "estop": I("agent/estop", check_bool), "speed_scale": I("agent/speed_scale", check_scale)},
        "sim": {"command": I("cmd_vel", check_command, order=False),
                "bridge_output": I("agent/bridge/output", command_record, order=False),
                "base_stop": I("base_stop", check_bool)},
    }


def _goal_status_decoder():
    from hjepa_agent.nodes.codec import msg_to_goal_status
    return msg_to_goal_status


_INPUTS: dict[str, dict[str, InputSpec]] | None = None


def inputs_of(node: str) -> dict[str, InputSpec]:
    """INPUTS of ``node`` (input key -> InputSpec)."""
    global _INPUTS
    if _INPUTS is None:
        _INPUTS = _inputs()
    return _INPUTS[node]


def all_inputs() -> dict[str, dict[str, InputSpec]]:
    """Every node's inputs: node name -> input key -> InputSpec."""
    inputs_of("bridge")
    assert _INPUTS is not None
    return dict(_INPUTS)


def as_array(values: Any) -> np.ndarray:
    """A message's float array field as float64 numpy (for validators)."""
    return np.asarray(values, dtype=np.float64)


__all__ = ["AGENT_NODES", "CAMERA_TOPIC", "CMD_VEL_TYPES", "IMAGE_TRANSPORTS", "InputSpec", "MAX_COMPRESSED_BYTES",
           "MAX_IMAGE_PIXELS", "MAX_EVENT_DEPTH", "MAX_SCAN_BEAMS", "MAX_TWIST", "Rejected", "TOPICS", "TopicSpec",
           "Transport", "all_inputs", "check_battery", "check_bool", "check_command", "check_compressed_image",
           "check_event", "check_goal", "check_image", "check_mode", "check_odom", "check_scale", "check_scan",
           "check_string", "check_temperature", "check_twist", "codec_check", "event_from_json", "event_to_json",
           "guarded_topics", "inputs_of"]
