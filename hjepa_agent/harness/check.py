"""`hjepa-agent check`: a bring-up check, run on the robot's DDS domain before the agent is started.

From the agent's own configuration (the params files in order, the ego model, the robot description,
the namespace and the robot-facing remaps, exactly as robot.launch.py or `hjepa-agent rehearse` would
start the nodes; a driver profile fills them as rehearse does) it works out what the agent will
subscribe and publish: the camera (raw or compressed per image_transport), scan, odom, battery_state and
motor_temperature (per the ego model's presence), goal_pose (informational), and cmd_vel (which the
base must subscribe with the type cmd_vel_type says), each resolved under the namespace and remaps, with
the rates, ages and frames the agent and the ego model require (:func:`plan`). Then a probe node reads
the ROS graph and listens for ``duration_s`` seconds to every input, putting each message through the
agent's own input check (nodes/topics.py validators), and to /tf_static (:func:`observe`). The judging
is ROS-free (hjepa_agent/core/bringup.py, bringup_judge.py): one typed verdict per input, with the remap or parameter
that would fix it. The models the params select are checked against this robot's fingerprint as the
nodes would (:func:`check_models`). Exit status (cli.py): 0 when nothing required fails, 1 otherwise,
2 for a configuration that cannot be read.
"""
from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from hjepa_agent.config.ego_model import Sensors, load_ego_model
from hjepa_agent.config.loader import ConfigError
from hjepa_agent.config.urdf import UrdfError, read_urdf
from hjepa_agent.core.bringup import (Alternative, Direction, Endpoint, Expectation, MountRule, Need, Observed, Sample,
                                      ScanShape, TopicEnds, resolve_topic, OPTIONAL_MODELS, selected_models)
from hjepa_agent.core.bringup_judge import ModelFinding, Verdict, judge
from hjepa_agent.core.bringup_report import Report
from hjepa_agent.nodes.node_table import NODES, REMAPPABLE, load_params_files, normalise_namespace, remap_argument
from hjepa_agent.config.paths import data_path

PROBE_NAME = "hjepa_check"
"""The check's node on the graph (its own subscriptions do not count as the robot's)."""
MAX_SAMPLES = 10_000
"""Messages kept per topic (a 3 s listen at 100 Hz is 300)."""
DEFAULT_DURATION_S = 3.0
"""How long the check listens by default (s): enough for two messages of a 1 Hz topic."""


@dataclass(frozen=True)
class CheckSetup:
    """What to check: the agent's namespace, params files (in order; empty: config/agent.yaml), ego model
    (empty: config/ego_model.yaml, robot.launch.py's default), robot description (empty: each node's
    ``robot`` parameter, else the shipped diffbot), robot-facing remaps ((REMAPPABLE topic, name)
    pairs), how long to listen (s), a models directory for every node (empty: each node's models_dir)
    and the driver profile it came from (for display). ValueError naming a bad remap or duration."""

    namespace: str = ""
    params_files: tuple[str, ...] = ()
    ego_model: str = ""
    robot: str = ""
    remaps: tuple[tuple[str, str], ...] = ()
    duration_s: float = DEFAULT_DURATION_S
    models_dir: str = ""
    profile: str = ""

    def __post_init__(self) -> None:
        if not self.duration_s > 0.0:
            raise ValueError(f"--duration: must be > 0 s, got {self.duration_s}")
        for topic, name in self.remaps:
            if topic not in REMAPPABLE:
                raise ValueError(f"--remap {topic}:={name}: {topic!r} is not a robot-facing topic of the agent "
                                 f"(remappable: {', '.join(REMAPPABLE)})")
            if not name or " " in name:
                raise ValueError(f"--remap {topic}:={name}: {name!r} is not a topic name")

    @property
    def params(self) -> list[str]:
        """The params files the nodes get (config/agent.yaml when none is given)."""
        return list(self.params_files) or [str(data_path("config", "agent.yaml"))]

    @property
    def ego(self) -> str:
        """The ego model file the nodes get."""
        return self.ego_model or str(data_path("config", "ego_model.yaml"))


def parse_remap(text: str) -> tuple[str, str]:
    """'topic:=name' -> (topic, name); ValueError saying the form otherwise."""
    topic, sep, name = text.partition(":=")
    if not sep or not topic or not name:
        raise ValueError(f"--remap {text!r}: expected TOPIC:=NAME, e.g. battery_state:=platform/bms/state")
    return topic, name


def setup_for_profile(profile_path: str | Path, workdir: Path, **given: Any) -> CheckSetup:
    """The setup `hjepa-agent rehearse` would run the agent with for a driver profile: its namespace,
    params files (then the robot params file rehearse writes, here into ``workdir``), ego model, robot
    and topic names as remaps. ``given`` (CheckSetup fields, None = not given) override the profile's;
    given remaps are added to the profile's (a given one wins)."""
    from hjepa_agent.harness.rehearse import robot_params
    from hjepa_agent.sim.profile import load_profile
    profile = load_profile(profile_path)
    robot_file = robot_params(profile, workdir / "robot_params.yaml")
    remaps = dict(profile.topics)
    remaps.update(dict(given.pop("remaps", None) or ()))
    fields = {"namespace": profile.namespace, "ego_model": profile.ego_model, "robot": profile.robot,
              "params_files": tuple(list(profile.params) or [str(data_path("config", "agent.yaml"))])
              + (str(robot_file),), "profile": profile.name}
    fields.update({k: v for k, v in given.items() if v not in (None, (), [])})
    return CheckSetup(remaps=tuple(remaps.items()), **fields)


# ---- what the agent needs ----------------------------------------------------------------------------
def type_name(cls: type) -> str:
    """A message class's ROS type name: sensor_msgs/msg/Image."""
    return f"{cls.__module__.split('.')[0]}/msg/{cls.__name__}"


def _param(params: dict[str, dict[str, Any]], node: str, key: str, default: Any) -> Any:
    return params.get(node, {}).get(key, default)


def _one_setting(params: dict[str, dict[str, Any]], key: str, default: str, source: str) -> str:
    """The value of a setting every node must share (image_transport, cmd_vel_type); ConfigError when
    the agent's nodes disagree."""
    values = {spec.name: str(_param(params, spec.name, key, default)) for spec in NODES}
    if len(set(values.values())) > 1:
        each = ", ".join(f"{n}: {v}" for n, v in values.items())
        raise ConfigError(source, key, f"the agent's nodes disagree ({each}): set it once, in the '/**' section")
    return next(iter(values.values()))


@dataclass(frozen=True)
class Plan:
    """What the agent needs (one Expectation per robot-facing topic), how the check reads each input
    (key -> (message class, the agent's validator)), and the merged params it came from."""

    expectations: tuple[Expectation, ...]
    readers: dict[str, tuple[type, Callable[[Any], Any]]]
    params: dict[str, dict[str, Any]]


def _mount_rules(params: dict[str, dict[str, Any]]) -> tuple[MountRule, ...]:
    """The scan placement of each node that bins scans (nodes/mounts.py), identical ones merged."""
    from hjepa_agent.nodes.mounts import MOUNT_NODES
    rules: dict[tuple[str, str], list[str]] = {}
    for node in MOUNT_NODES:
        key = (str(_param(params, node, "base_frame", "base_link")), str(_param(params, node, "urdf", "")))
        rules.setdefault(key, []).append(node)
    out = []
    for (base, path), nodes in rules.items():
        urdf, error = None, ""
        if path:
            try:
                urdf = read_urdf(path)
            except UrdfError as exc:
                error = str(exc)
        out.append(MountRule(tuple(nodes), base, path, urdf, error))
    return tuple(out)


def plan(setup: CheckSetup) -> Plan:
    """The expectations for ``setup`` (module docstring). ConfigError for a params file, ego model or
    robot description that cannot be read, or nodes that disagree on image_transport / cmd_vel_type."""
    from hjepa_agent.nodes.guard import FUTURE_STAMP_TOLERANCE_S
    from hjepa_agent.nodes.topics import CMD_VEL_TYPES, IMAGE_TRANSPORTS, TOPICS, Transport, inputs_of
    from hjepa_agent.sim.robot import load_robot_description

    ns = normalise_namespace(setup.namespace)
    params = load_params_files(setup.params, ns)
    ego = load_ego_model(setup.ego)
    source = setup.params[-1]
    transport = Transport(_one_setting(params, "image_transport", Transport.image_transport, source),
                          _one_setting(params, "cmd_vel_type", Transport.cmd_vel_type, source))
    remaps = dict(setup.remaps)
    robot = setup.robot or str(_param(params, "perception", "robot", "")) or str(
        data_path("config", "robots", "diffbot.yaml"))
    desc = load_robot_description(robot)
    odom_frame = str(_param(params, "estimator", "odom_frame", "odom"))
    base_frame = str(_param(params, "perception", "base_frame", "base_link"))
    tolerance = float(_param(params, "watchdog", "future_stamp_tolerance_s", FUTURE_STAMP_TOLERANCE_S))

    def resolve(topic: str) -> str:
        return resolve_topic(topic, ns, remaps)

    out: list[Expectation] = []
    readers: dict[str, tuple[type, Callable[[Any], Any]]] = {}
    for sensor in (f.name for f in dataclasses.fields(Sensors)):
        named = inputs_of("watchdog")[sensor]   # the robot-facing name (REMAPPABLE), before the transport
        spec = transport.input(named)
        row = TOPICS[spec.topic]
        limits = getattr(ego.hard.sensors, sensor)
        need = {"required": Need.REQUIRED, "optional": Need.OPTIONAL, "absent": Need.ABSENT}[limits.presence]
        key = named.topic.split("/")[0]
        remap = spec.topic if spec.topic in REMAPPABLE else ""
        alts = ()
        if sensor == "camera":
            alts = tuple(Alternative(resolve(t), type_name(TOPICS[t].type), f"image_transport: {name}")
                         for name, (t, _) in IMAGE_TRANSPORTS.items() if name != transport.image_transport)
        out.append(Expectation(
            key=key, topic=resolve(spec.topic), type=type_name(row.type), need=need, remap=remap,
            remap_arg=remap_argument(remap) if remap else "", rate_hz=limits.rate_hz, max_age_s=limits.max_age_s,
            source=f"{setup.ego}: hard.sensors.{sensor}", frames=(odom_frame,) if spec.frame == "odom" else (),
            frame_param="odom_frame" if spec.frame == "odom" else "",
            child_frame=base_frame if sensor == "odom" else None,
            mounts=_mount_rules(params) if sensor == "scan" else (),
            scan=ScanShape(desc.scan.n_beams, desc.scan.fov_deg, robot) if sensor == "scan" else None,
            image=sensor == "camera", alternatives=alts,
            presence_key=f"hard.sensors.{sensor}.presence" if sensor in ("battery", "temperature") else "",
            future_tolerance_s=tolerance))
        readers[key] = (row.type, spec.validate)
    goal = inputs_of("estimator")["goal"]
    out.append(Expectation(key="goal_pose", topic=resolve(goal.topic), type=type_name(TOPICS[goal.topic].type),
                           need=Need.INFO, remap=goal.topic, remap_arg=remap_argument(goal.topic),
                           frames=(odom_frame, str(_param(params, "estimator", "base_frame", "base_link"))),
                           reliable=TOPICS[goal.topic].qos != "sensor",
                           future_tolerance_s=tolerance))
    readers["goal_pose"] = (TOPICS[goal.topic].type, goal.validate)
    cmd = transport.topic("cmd_vel")
    out.append(Expectation(key="cmd_vel", topic=resolve("cmd_vel"), type=type_name(cmd.type),
                           direction=Direction.ROBOT_SUBSCRIBES, remap="cmd_vel", remap_arg=remap_argument("cmd_vel"),
                           alternatives=tuple(Alternative(resolve("cmd_vel"), type_name(row.type), f"cmd_vel_type: {n}")
                                              for n, row in CMD_VEL_TYPES.items() if n != transport.cmd_vel_type)))
    return Plan(tuple(out), readers, params)


# ---- the models ----------------------------------------------------------------------------------------
def check_models(setup: CheckSetup, params: dict[str, dict[str, Any]]) -> list[ModelFinding]:
    """Each model the params select (core/bringup.py selected_models), checked as its node would load it:
    in the manifest of the node's models_dir (or ``setup.models_dir``), compatible with this runtime,
    trained for this robot (the fingerprint of the node's robot, or ``setup.robot``, with the ego
    model), its file present with the manifest's sha256. ConfigError for a robot description or ego
    model that cannot be read."""
    from hjepa_agent.core.fingerprint import load_robot_fingerprint
    from hjepa_agent.core.models import MANIFEST_FILE, ModelMismatchError, load_manifest, retrain_hint, sha256_file

    fingerprints: dict[str, Any] = {}
    manifests: dict[str, Any] = {}
    out: list[ModelFinding] = []
    for node, model in selected_models(params):
        models_dir = setup.models_dir or str(_param(params, node, "models_dir", "")) or str(data_path("models"))
        robot = setup.robot or str(_param(params, node, "robot", "")) or str(data_path("config", "robots",
                                                                                       "diffbot.yaml"))
        if robot not in fingerprints:
            fingerprints[robot] = load_robot_fingerprint(robot, setup.ego)
        expected = fingerprints[robot].used_by(f"{node} node")
        where = str(Path(models_dir) / MANIFEST_FILE)
        fix = retrain_hint(model, expected)
        if models_dir not in manifests:
            try:
                manifests[models_dir] = load_manifest(models_dir)
            except ConfigError as exc:
                manifests[models_dir] = exc
        manifest = manifests[models_dir]
        if isinstance(manifest, ConfigError):
            out.append(ModelFinding(node, model, where, Verdict.MISSING, detail=str(manifest),
                                    fix=retrain_hint(model, expected, verb="train it")))
            continue
        entry = manifest.models.get(model)
        if entry is None and model in OPTIONAL_MODELS:
            out.append(ModelFinding(node, model, where, Verdict.OK,
                                    detail=f"not in {where}: {node} runs without it (no look score)"))
            continue
        if entry is None:
            out.append(ModelFinding(node, model, where, Verdict.MISSING,
                                    detail=f"no model {model!r} in {where} (has: {', '.join(manifest.models)})",
                                    fix=retrain_hint(model, expected, verb="train it")))
            continue
        diffs = tuple(manifest.fingerprint.differences(expected)) if manifest.fingerprint is not None else ()
        try:
            manifest.check_compatible(model, expected)
        except ModelMismatchError as exc:
            detail = (f"trained for another robot than {expected.robot_file} with {expected.ego_model_file}: "
                      f"{len(diffs)} fingerprint key(s) differ" if diffs else str(exc))
            out.append(ModelFinding(node, model, where, Verdict.MODEL_MISMATCH, diffs, detail, fix))
            continue
        path = Path(models_dir) / entry.file
        if not path.is_file():
            out.append(ModelFinding(node, model, where, Verdict.MISSING, detail=f"file {path} not found", fix=fix))
        elif sha256_file(path) != entry.sha256:
            out.append(ModelFinding(node, model, where, Verdict.MODEL_MISMATCH,
                                    detail=f"{path}: sha256 differs from the manifest's (replaced or corrupted)",
                                    fix=f"restore it, or {fix}"))
        else:
            out.append(ModelFinding(node, model, where, Verdict.OK))
    return out


# ---- the ROS part: the probe ---------------------------------------------------------------------------
def to_sample(msg: Any, validate: Callable[[Any], Any], received_s: float) -> Sample:
    """What the judging needs of one message (core/bringup.py Sample), ``validate`` (the agent's input
    check) giving its refusal; never raises for a message of the type subscribed."""
    from nav_msgs.msg import Odometry
    from sensor_msgs.msg import CompressedImage, Image, LaserScan

    from hjepa_agent.core.perception import ImageError, compressed_format, compressed_image_size
    from hjepa_agent.nodes.codec import MessageError
    rejected = ""
    try:
        validate(msg)
    except ValueError as exc:   # the guard's Rejected (a MessageError: a typed cause), a core ImageError
        rejected = f"{exc.cause.name.lower()}: {exc.detail}" if isinstance(exc, MessageError) else str(exc)
    header = getattr(msg, "header", None)
    stamp = None if header is None else header.stamp.sec + header.stamp.nanosec * 1e-9
    kw: dict[str, Any] = {}
    if isinstance(msg, Image):
        kw = {"width": int(msg.width), "height": int(msg.height), "encoding": msg.encoding}
    elif isinstance(msg, CompressedImage):
        try:
            w, h = compressed_image_size(msg.data, compressed_format(msg.format)[0])
        except ImageError:   # the validator said why
            w = h = 0
        kw = {"width": w, "height": h, "encoding": msg.format[:40]}
    elif isinstance(msg, LaserScan):
        kw = {"beams": len(msg.ranges), "angle_increment_rad": float(msg.angle_increment)}
    elif isinstance(msg, Odometry):
        kw = {"child_frame_id": msg.child_frame_id}
    return Sample(received_s, stamp, "" if header is None else header.frame_id, rejected=rejected, **kw)


def _endpoint(info: Any) -> Endpoint:
    from rclpy.qos import ReliabilityPolicy
    return Endpoint(f"{info.node_namespace.rstrip('/')}/{info.node_name}", info.topic_type,
                    info.qos_profile.reliability == ReliabilityPolicy.RELIABLE)


def read_graph(node: Any) -> dict[str, TopicEnds]:
    """Every topic on the graph with its publishers and subscriptions (types, reliability)."""
    return {name: TopicEnds(tuple(_endpoint(i) for i in node.get_publishers_info_by_topic(name)),
                            tuple(_endpoint(i) for i in node.get_subscriptions_info_by_topic(name)))
            for name, _ in node.get_topic_names_and_types()}


def observe(context: Any, the_plan: Plan, namespace: str, duration_s: float) -> Observed:
    """Listen on ``context`` for ``duration_s`` (s, wall clock) to every input the robot must publish and
    to /tf_static, then read the graph: the Observed that core/bringup_judge.py judges."""
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rclpy.parameter import Parameter
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

    from hjepa_agent.nodes.topics import AGENT_NODES
    ns = normalise_namespace(namespace)
    node = Node(PROBE_NAME, namespace=ns or None, context=context, enable_rosout=False,
                start_parameter_services=False,
                parameter_overrides=[Parameter("start_type_description_service", value=False)])
    samples: dict[str, list[Sample]] = {}
    listen = QoSProfile(depth=50, reliability=ReliabilityPolicy.BEST_EFFORT)   # matches any publisher

    def reader(key: str, validate: Callable[[Any], Any]) -> Callable[[Any], None]:
        kept = samples.setdefault(key, [])

        def on_msg(msg: Any) -> None:
            if len(kept) < MAX_SAMPLES:
                kept.append(to_sample(msg, validate, time.time()))
        return on_msg

    for exp in the_plan.expectations:
        if exp.direction is Direction.ROBOT_PUBLISHES and exp.need is not Need.ABSENT:
            cls, validate = the_plan.readers[exp.key]
            node.create_subscription(cls, exp.topic, reader(exp.key, validate), listen)
    edges: set[tuple[str, str]] = set()
    try:
        from tf2_msgs.msg import TFMessage
    except ImportError:   # neither the agent's nodes (nodes/mounts.py) nor the check can use tf2 here
        tf_read = False
    else:
        tf_read = True
        latched = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        node.create_subscription(TFMessage, "/tf_static", lambda m: edges.update(
            (t.header.frame_id, t.child_frame_id) for t in m.transforms), latched)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    try:
        deadline = time.monotonic() + duration_s
        while (left := deadline - time.monotonic()) > 0.0:
            executor.spin_once(timeout_sec=min(left, 0.1))
        graph = read_graph(node)
    finally:
        executor.remove_node(node)
        node.destroy_node()
        executor.shutdown()
    own = frozenset(f"{ns}/{n}" for n in AGENT_NODES + (PROBE_NAME,))
    return Observed(graph, samples, duration_s, ns, tuple(sorted(edges)), tf_read, own)


def run_check(setup: CheckSetup, context: Any = None) -> Report:
    """Plan, check the models, observe (on ``context``, else on a context of its own on this process's
    DDS domain: ROS_DOMAIN_ID, as the robot's) and judge: the Report."""
    the_plan = plan(setup)
    models = check_models(setup, the_plan.params)
    own = context is None
    if own:
        import rclpy
        context = rclpy.Context()
        rclpy.init(args=[], context=context)
    try:
        observed = observe(context, the_plan, setup.namespace, setup.duration_s)
    finally:
        if own:
            import rclpy
            rclpy.shutdown(context=context)
    info = {"profile": setup.profile, "namespace": normalise_namespace(setup.namespace) or "/",
            "ROS_DOMAIN_ID": os.environ.get("ROS_DOMAIN_ID", "0"), "params": list(setup.params),
            "ego_model": setup.ego, "robot": setup.robot or "(each node's robot parameter)",
            "remaps": [f"{a}:={b}" for a, b in setup.remaps], "models_dir": setup.models_dir,
            "listen_s": setup.duration_s}
    return Report(tuple(judge(e, observed) for e in the_plan.expectations), tuple(models), setup.duration_s, info)


__all__ = ["CheckSetup", "DEFAULT_DURATION_S", "PROBE_NAME", "Plan", "check_models", "observe", "parse_remap", "plan",
           "read_graph", "run_check", "setup_for_profile", "to_sample", "type_name"]
