"""What `hjepa-agent check` (a bring-up check run on the robot's DDS domain before the agent starts)
judges: what the agent needs of the robot's drivers (:class:`Expectation`), what was seen on the ROS
graph and heard on each topic (:class:`Observed`, :class:`Sample`, summarised as :class:`Stats`), how
topic names resolve under remaps, and which models the params select (:func:`selected_models`). The
verdicts are :mod:`hjepa_agent.core.bringup_judge` (:func:`~hjepa_agent.core.bringup_judge.judge`); the
whole check's report and its display :mod:`hjepa_agent.core.bringup_report`.

ROS-free: hjepa_agent/harness/check.py builds the expectations from the agent's params files, ego model and
topic table (nodes/topics.py), observes the graph and the messages (its thin ROS part) and has them
judged; every time is a value passed in (``received_s``: the system clock at receipt, as the agent runs
on wall time on a robot).
"""
from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from hjepa_agent.config.urdf import Urdf


class Need(enum.Enum):
    """How much an input matters: a REQUIRED one failing fails the check; an OPTIONAL one (ego model
    presence: optional) is reported (its protections are off while missing); INFO (goal_pose: a user
    sends goals) is reported; ABSENT (presence: absent) is not subscribed by the agent at all."""

    REQUIRED = enum.auto()
    OPTIONAL = enum.auto()
    INFO = enum.auto()
    ABSENT = enum.auto()


class Direction(enum.Enum):
    """Who publishes: the robot (the agent reads it) or the agent (the robot's base must subscribe)."""

    ROBOT_PUBLISHES = enum.auto()
    ROBOT_SUBSCRIBES = enum.auto()


@dataclass(frozen=True)
class Endpoint:
    """A publisher or subscription on the graph: its node's fully qualified name, its message type
    ("sensor_msgs/msg/Image") and whether its QoS is reliable."""

    node: str
    type: str
    reliable: bool = True


@dataclass(frozen=True)
class TopicEnds:
    """The endpoints of one topic."""

    publishers: tuple[Endpoint, ...] = ()
    subscribers: tuple[Endpoint, ...] = ()


@dataclass(frozen=True)
class Alternative:
    """Another way the agent can take an input: on ``topic`` with ``type``, selected by ``setting`` (a
    parameter of the params file's '/**' section, e.g. "image_transport: compressed")."""

    topic: str
    type: str
    setting: str


@dataclass(frozen=True)
class MountRule:
    """How ``nodes`` (perception, planner) place a scan: base_frame, and the URDF of their ``urdf``
    parameter (``urdf``; None: none given, or it could not be read: ``urdf_error``)."""

    nodes: tuple[str, ...]
    base_frame: str
    urdf_path: str = ""
    urdf: Urdf | None = field(default=None, compare=False)
    urdf_error: str = ""


@dataclass(frozen=True)
class ScanShape:
    """The scanner of the robot description ``source``: beam count and field of view (deg)."""

    n_beams: int
    fov_deg: float
    source: str


@dataclass(frozen=True)
class Expectation:
    """What the agent needs of one robot-facing topic: ``key`` (camera, scan, odom, battery_state,
    motor_temperature, goal_pose, cmd_vel), the resolved ``topic`` and ``type``, who publishes it, how
    much it matters, the launch argument that remaps it (``remap_arg``, robot.launch.py; "" none) and
    the REMAPPABLE name it remaps (``remap``), the ego model's rate (Hz) and maximum age (s) and where
    they come from (``source``), the header frames taken (``frames``: any of them; ``frame_param``: the
    parameter that names the first, "" when it is not one setting), the odometry's ``child_frame``,
    ``mounts`` for a scan, the robot description's ``scan``, whether an image's size is judged, whether the agent
    subscribes reliable, the other types it can take (``alternatives``), the key of the ego model that
    could declare it missing (``presence_key``) and the guard's future-stamp tolerance (s)."""

    key: str
    topic: str
    type: str
    direction: Direction = Direction.ROBOT_PUBLISHES
    need: Need = Need.REQUIRED
    remap: str = ""
    remap_arg: str = ""
    rate_hz: float | None = None
    max_age_s: float | None = None
    source: str = ""
    frames: tuple[str, ...] = ()
    frame_param: str = ""
    child_frame: str | None = None
    mounts: tuple[MountRule, ...] = ()
    scan: ScanShape | None = None
    image: bool = False
    reliable: bool = False
    alternatives: tuple[Alternative, ...] = ()
    presence_key: str = ""
    future_tolerance_s: float = 0.25


@dataclass(frozen=True)
class Sample:
    """One message heard: the system clock at receipt and its header stamp (s; None: unstamped), its
    frames, an image's size and encoding (a compressed one: the size in its header and its format), a
    scan's beam count and angle increment (rad), and the agent's input check's refusal ("" accepted)."""

    received_s: float
    stamp_s: float | None = None
    frame_id: str = ""
    child_frame_id: str = ""
    width: int = 0
    height: int = 0
    encoding: str = ""
    beams: int = 0
    angle_increment_rad: float = 0.0
    rejected: str = ""


def scan_fov_deg(beams: int, angle_increment_rad: float) -> float:
    """A scan's field of view as a robot description states it (sim/robot.py ScanSpec): 360 when its
    beams make a full turn (within half an increment), else the span from the first beam to the last."""
    inc = abs(angle_increment_rad)
    if abs(inc * beams - 2.0 * math.pi) <= inc / 2.0:
        return 360.0
    return math.degrees(inc * max(beams - 1, 0))


@dataclass(frozen=True)
class Stats:
    """What was heard on one topic: message count, rate (Hz: (n - 1) over the span of receipts; None
    under two messages), age at receipt (s: median and max over the stamped messages), the distinct
    frames, image sizes (width, height, encoding), scan shapes (beams, fov deg), and how many messages
    the agent's input check refused (with the first reason)."""

    messages: int = 0
    rate_hz: float | None = None
    age_p50_s: float | None = None
    age_max_s: float | None = None
    frames: tuple[str, ...] = ()
    child_frames: tuple[str, ...] = ()
    images: tuple[tuple[int, int, str], ...] = ()
    scans: tuple[tuple[int, float], ...] = ()
    rejected: int = 0
    first_rejection: str = ""


def _median(xs: list[float]) -> float:
    s = sorted(xs)
    m = len(s) // 2
    return s[m] if len(s) % 2 else 0.5 * (s[m - 1] + s[m])


def summarise(samples: Sequence[Sample]) -> Stats:
    """The :class:`Stats` of ``samples``."""
    if not samples:
        return Stats()
    times = sorted(s.received_s for s in samples)
    span = times[-1] - times[0]
    rate = (len(times) - 1) / span if len(times) >= 2 and span > 0.0 else None
    ages = [s.received_s - s.stamp_s for s in samples if s.stamp_s is not None]
    refused = [s.rejected for s in samples if s.rejected]
    return Stats(messages=len(samples), rate_hz=rate, age_p50_s=_median(ages) if ages else None,
                 age_max_s=max(ages) if ages else None, frames=tuple(sorted({s.frame_id for s in samples})),
                 child_frames=tuple(sorted({s.child_frame_id for s in samples if s.child_frame_id})),
                 images=tuple(sorted({(s.width, s.height, s.encoding) for s in samples if s.width or s.height})),
                 scans=tuple(sorted({(s.beams, round(scan_fov_deg(s.beams, s.angle_increment_rad), 2))
                                     for s in samples if s.beams})),
                 rejected=len(refused), first_rejection=refused[0] if refused else "")


@dataclass(frozen=True)
class Observed:
    """Everything seen: the graph (fully qualified topic -> endpoints), the samples per expectation key,
    the static transforms heard on /tf_static ((parent, child) frame pairs; ``tf_read`` False: tf2 is
    not installed here, so neither the check nor the agent's nodes read it), how long it listened (s),
    the namespace the agent runs in ('' or '/ns') and the nodes whose endpoints do not count (the
    agent's own and the check's)."""

    graph: Mapping[str, TopicEnds]
    samples: Mapping[str, Sequence[Sample]]
    listen_s: float
    namespace: str = ""
    tf_edges: tuple[tuple[str, str], ...] = ()
    tf_read: bool = True
    own: frozenset[str] = frozenset()


# ---- names -----------------------------------------------------------------------------------------
def expand_topic(name: str, namespace: str) -> str:
    """A topic name made fully qualified in ``namespace`` ('' or '/ns') as rcl does: absolute names
    stay; relative ones go under the namespace."""
    return name if name.startswith("/") else f"{namespace}/{name}"


def resolve_topic(name: str, namespace: str, remaps: Mapping[str, str]) -> str:
    """The topic a node in ``namespace`` reaches under ``name`` with ``remaps`` (from -> to) given as
    --ros-args -r rules: the first rule whose expanded 'from' equals the expanded name wins, its 'to'
    expanded in the namespace; a rule matches whole names only (a remap of camera/image_raw leaves
    camera/image_raw/compressed as it is)."""
    full = expand_topic(name, namespace)
    for src, dst in remaps.items():
        if expand_topic(src, namespace) == full:
            return expand_topic(dst, namespace)
    return full


def relative_to(topic: str, namespace: str) -> str:
    """``topic`` as a remap would name it from ``namespace``: relative under the namespace, else absolute."""
    prefix = f"{namespace}/"
    return topic[len(prefix):] if namespace and topic.startswith(prefix) else (topic if namespace else topic[1:])


# ---- selection of models -----------------------------------------------------------------------------
OPTIONAL_MODELS = frozenset({"world_look"})
"""Models a node runs without when its manifest lists none (the world encoder's look model: the look score
is then NaN and leaves the ambiguity); one the manifest lists is checked like any other."""


def selected_models(params: Mapping[str, Mapping[str, Any]]) -> list[tuple[str, str]]:
    """(node, manifest entry) of each model the agent's nodes load with ``params`` ({node: {param:
    value}}, as node_table.load_params_files gives them; a missing parameter is the node's default):
    perception's encoder_model (with the world encoder its look model, OPTIONAL_MODELS), the habitual policy of its latent_source, the estimator's predictor
    (world_model), the planner's networks (planner: gflownet; hierarchy; ambiguity_weight > 0: the
    predictor) and the watchdog's typical risk (typical_risk)."""
    from hjepa_agent.core.models import HABITUAL_MODELS

    def p(node: str, key: str, default: Any) -> Any:
        return params.get(node, {}).get(key, default)

    encoder = str(p("perception", "encoder_model", "encoder"))
    out = [("perception", encoder)]
    if encoder == "world_encoder":
        out.append(("perception", "world_look"))
    out.append(("habitual", HABITUAL_MODELS.get(str(p("habitual", "latent_source", "encoder")), "habitual")))
    if p("estimator", "world_model", False):
        out.append(("estimator", "world_predictor"))
    if p("planner", "planner", "cem") == "gflownet":
        out += [("planner", "planner_policy"), ("planner", "planner_logz")]
    if p("planner", "hierarchy", False):
        out += [("planner", "subgoal_policy"), ("planner", "subgoal_logz")]
    if float(p("planner", "ambiguity_weight", 0.0)) > 0.0:
        out.append(("planner", "world_predictor"))
    if p("watchdog", "typical_risk", True):
        out.append(("watchdog", "typical_risk"))
    return out


__all__ = ["Alternative", "Direction", "Endpoint", "Expectation", "MountRule", "Need", "OPTIONAL_MODELS", "Observed",
           "Sample", "ScanShape", "Stats", "TopicEnds", "expand_topic", "relative_to", "resolve_topic", "scan_fov_deg",
           "selected_models", "summarise"]
