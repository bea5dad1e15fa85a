"""Run recording: a rosbag2 MCAP of the run's topics, the recorder node, and the mode/event tap the runner reads.

Recorder subscribes to every topic in TOPICS with raw (serialized CDR) callbacks and writes the
bytes unchanged with rosbags, so the file opens in Foxglove and `ros2 bag`. `hjepa-agent sim`
uses it through the runner (into its own fresh --out, with the simulated robot's URDF); a robot uses
RecorderNode. Frames go into the bag too, made with rosbags' typestore (no tf2_msgs wheel needed):
/tf gets the transform each odometry message states (its frame_id -> child_frame_id at its pose, its
stamp), written at that message's receive time; /tf_static gets the URDF's fixed joints (parent link
-> child link, as robot_state_publisher publishes them) once, at the start of the bag. The URDF's
moving joints (wheels) are not in it: robot_state_publisher would need the joint states.

recorder node (console script `recorder`; robot.launch.py with record:=true; `hjepa-agent record`):
Subscribes: every topic in TOPICS. Topic names are relative (so they follow the node's namespace
            and the launch file's remaps) except /clock and /diagnostics, which are global; the bag
            stores the resolved names (e.g. /robot1/agent/mode under namespace robot1). The robot's
            driver topics (DRIVER_TOPICS) are subscribed best-effort, so best-effort drivers match.
Publishes:  /diagnostics (messages written, per topic, and the bag's path; WARN while nothing but
            /diagnostics and /tf_static has been written).
Parameters: out (read-only): the bag directory; default hjepa_run_<UTC time> in the working
            directory. An existing non-empty path is refused, never overwritten (an empty directory
            is used). The bag is closed on SIGINT/SIGTERM or rclpy shutdown, so the MCAP is complete.
            urdf (read-only): the robot's URDF, whose fixed joints go on /tf_static; empty = none
            (a URDF that cannot be read stops the node at start, naming the file).
"""
from __future__ import annotations

import json
import logging
import shutil
import signal
import struct
import sys
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import rclpy
from nav_msgs.msg import Odometry
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile
from rclpy.signals import SignalHandlerOptions
from std_msgs.msg import String

from hjepa_agent.config.loader import ConfigError
from hjepa_agent.config.urdf import read_urdf
from hjepa_agent.core.types import Mode
from hjepa_agent.nodes.common import RELIABLE_QOS, SENSOR_QOS, Diagnostics, declare
from hjepa_agent.nodes.guard import declare_transport
from hjepa_agent.nodes.tf import odom_transform, tf_message
from hjepa_agent.nodes.topics import TOPICS as ALL_TOPICS
from hjepa_agent.nodes.topics import Transport

TOPICS: tuple[tuple[str, type], ...] = tuple((name, spec.type) for name, spec in ALL_TOPICS.items())
"""Everything a run is judged on: every topic of nodes/topics.py (inputs, world states, plans, modes,
events, commands and the bridge's records of them, diagnostics). Relative names resolve against the
recording node's namespace (no namespace: /agent/mode etc.)."""

DRIVER_TOPICS = frozenset(name for name, spec in ALL_TOPICS.items() if spec.qos == "sensor")
"""The robot drivers' streams: RecorderNode subscribes to them best-effort (as the agent's nodes do),
which matches both best-effort and reliable publishers."""

DIAGNOSTICS_TOPIC = "/diagnostics"
TF_TOPIC, TF_STATIC_TOPIC = "/tf", "/tf_static"
"""Where the bag keeps frames (global, as tf2's broadcasters publish them)."""
TF_TYPE = "tf2_msgs/msg/TFMessage"
ODOM_TOPIC = "odom"
"""The TOPICS row whose messages also go on /tf."""


def _type_name(cls: type) -> str:
    module = cls.__module__.split(".")[0]
    return f"{module}/msg/{cls.__name__}"


def _latched_qos() -> Any:
    """rosbag2's offered QoS for /tf_static: reliable, transient local, keep last 1, as
    robot_state_publisher offers it (so `ros2 bag play` republishes it latched)."""
    from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime
    never = QosTime(0x7FFFFFFF, 0xFFFFFFFF)
    return Qos(QosHistory.KEEP_LAST, 1, QosReliability.RELIABLE, QosDurability.TRANSIENT_LOCAL, never, never,
               QosLiveliness.AUTOMATIC, never, False)


def default_out(now_utc: datetime) -> Path:
    """The default bag directory for a recording started at ``now_utc``: hjepa_run_<YYYYmmddTHHMMSSZ>
    (relative: under the working directory)."""
    return Path(f"hjepa_run_{now_utc.astimezone(timezone.utc):%Y%m%dT%H%M%SZ}")


def prepare_bag_path(path: Path, overwrite: bool) -> None:
    """Make ``path`` free for a new bag. ``overwrite``: delete whatever is there (the sim runner's
    own --out). Otherwise an empty directory is removed and anything else is refused with
    FileExistsError: a recording is never deleted."""
    if not path.exists() and not path.is_symlink():
        return
    if overwrite:
        shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
    elif path.is_dir() and not path.is_symlink() and not any(path.iterdir()):
        path.rmdir()
    else:
        raise FileExistsError(f"{path} exists and is not an empty directory: refusing to overwrite a "
                              f"recording; choose another out (parameter out / --out)")


class Recorder:
    """Writes TOPICS to an MCAP rosbag2 at ``path`` (a directory: ``path/<name>.mcap`` + metadata.yaml),
    with receive timestamps from the node's clock.

    ``node``: subscribe through this node (RecorderNode); None: a plain node named "recorder"
    built from ``node_kwargs`` (the sim runner). ``overwrite``: an existing ``path`` is deleted
    (the runner's default); False refuses it (FileExistsError). ``driver_qos``: QoS for
    DRIVER_TOPICS (RELIABLE_QOS by default, as the simulator publishes; SENSOR_QOS on a robot).
    ``transport``: how the robot carries cmd_vel (nodes/topics.py Transport; default TwistStamped).
    ``urdf``: the robot's URDF; its fixed joints are written on /tf_static first (None: no /tf_static).
    Each odom message is also written on /tf as the transform it states (module doc).
    """

    def __init__(self, path: Path, *, node: Node | None = None, overwrite: bool = True,
                 driver_qos: QoSProfile = RELIABLE_QOS, transport: Transport | None = None,
                 urdf: str | Path | None = None, **node_kwargs: Any) -> None:
        from rosbags.rosbag2 import StoragePlugin, Writer
        from rosbags.typesys import Stores, get_typestore

        self.path = Path(path)
        static = read_urdf(urdf).static_transforms() if urdf else []   # a bad URDF fails before the bag exists
        prepare_bag_path(self.path, overwrite)
        self.node = node if node is not None else Node("recorder", **node_kwargs)
        self._typestore = get_typestore(Stores.LATEST)
        self._writer = Writer(self.path, version=9, storage_plugin=StoragePlugin.MCAP)
        self._writer.open()
        self._closed = False
        self.count = 0
        self.counts: dict[str, int] = {}
        """Messages written per resolved topic name."""
        self._conns: dict[str, Any] = {}
        self._subs = []
        transport = transport or Transport()
        for topic, _ in TOPICS:
            cls = transport.topic(topic).type   # cmd_vel as the base takes it (Twist or TwistStamped)
            qos = driver_qos if topic in DRIVER_TOPICS else RELIABLE_QOS
            sub = self.node.create_subscription(cls, topic, lambda data, t=topic: self._write(t, data), qos, raw=True)
            self._subs.append(sub)
            self._conns[topic] = self._writer.add_connection(sub.topic_name, _type_name(cls), typestore=self._typestore)
            self.counts[sub.topic_name] = 0
        self._conns[TF_TOPIC] = self._writer.add_connection(TF_TOPIC, TF_TYPE, typestore=self._typestore)
        self.counts[TF_TOPIC] = 0
        self.tf_skipped = 0
        """Odometry messages that stated no transform (an unnamed frame, a non-finite pose, unreadable)."""
        if static:
            self._conns[TF_STATIC_TOPIC] = self._writer.add_connection(
                TF_STATIC_TOPIC, TF_TYPE, typestore=self._typestore, offered_qos_profiles=[_latched_qos()])
            self.counts[TF_STATIC_TOPIC] = 0
            now_ns = self.node.get_clock().now().nanoseconds
            self._put(TF_STATIC_TOPIC, now_ns, self._tf_bytes(static, divmod(now_ns, 1_000_000_000)))

    def _put(self, key: str, t_ns: int, data: bytes | memoryview) -> None:
        conn = self._conns[key]
        self._writer.write(conn, t_ns, bytes(data))
        self.count += 1
        self.counts[conn.topic] += 1

    def _tf_bytes(self, transforms: list, stamp: tuple[int, int]) -> memoryview:
        msg = tf_message(transforms, *stamp, self._typestore.types.__getitem__)
        return self._typestore.serialize_cdr(msg, TF_TYPE)

    def _write(self, topic: str, data: bytes) -> None:
        if self._closed:
            return
        t_ns = self.node.get_clock().now().nanoseconds
        self._put(topic, t_ns, data)
        if topic == ODOM_TOPIC:
            self._write_odom_tf(t_ns, data)

    def _write_odom_tf(self, t_ns: int, data: bytes) -> None:
        """/tf at ``t_ns``: the transform the odometry message ``data`` (CDR) states, with its stamp."""
        try:
            odom = self._typestore.deserialize_cdr(data, _type_name(Odometry))
            transform = odom_transform(odom)
        except (ValueError, IndexError, struct.error) as exc:   # recorded as it came; no transform from it
            self.tf_skipped += 1
            if self.tf_skipped == 1:
                self.node.get_logger().warning(f"odom message with no transform for /tf ({exc}); further ones "
                                               f"are only counted")
            return
        stamp = odom.header.stamp
        self._put(TF_TOPIC, t_ns, self._tf_bytes([transform], (stamp.sec, stamp.nanosec)))

    @property
    def closed(self) -> bool:
        """True once close() finished the file."""
        return self._closed

    def close(self) -> None:
        """Finish the file (MCAP summary and metadata.yaml); later calls and messages are ignored."""
        if not self._closed:
            self._closed = True
            self._writer.close()


class RecorderNode(Node):
    """The recorder as a node: TOPICS (and /tf, /tf_static) into the bag at parameter ``out``, health on
    /diagnostics."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("recorder", **kwargs)
        self.recorder: Recorder | None = None
        out = declare(self, "out", "", "bag directory (default: hjepa_run_<UTC time> in the working directory); "
                                        "an existing non-empty path is refused")
        urdf = declare(self, "urdf", "", "the robot's URDF: its fixed joints are written on /tf_static at the start "
                                         "of the bag; empty = none")
        path = Path(out) if out else default_out(datetime.now(timezone.utc))
        try:
            self.recorder = Recorder(path, node=self, overwrite=False, driver_qos=SENSOR_QOS,
                                     transport=declare_transport(self), urdf=urdf or None)
        except BaseException:
            self.destroy_node()  # nothing half-built stays on the context
            raise
        self.diag = Diagnostics(self)
        self.create_timer(1.0, self.report)
        self.get_logger().info(f"recording {len(TOPICS)} topics to {path.resolve()}")

    @property
    def path(self) -> Path:
        """The bag directory."""
        return self.recorder.path

    def inputs(self) -> int:
        """Messages written on every topic but /diagnostics (which includes the recorder's own) and
        /tf_static (written at the start, from the URDF)."""
        counts = self.recorder.counts
        return self.recorder.count - counts.get(DIAGNOSTICS_TOPIC, 0) - counts.get(TF_STATIC_TOPIC, 0)

    def report(self) -> None:
        """Publish /diagnostics: messages written (in all and per topic with any) and the bag's path."""
        if self.recorder.closed:
            return
        per_topic = {t: n for t, n in self.recorder.counts.items() if n}
        level, note = ("OK", "") if self.inputs() > 0 else ("WARN", " (nothing but /diagnostics yet)")
        self.diag.publish(level, f"{self.recorder.count} messages to {self.path}{note}",
                          {"messages": self.recorder.count, "bag": str(self.path.resolve()), **per_topic})

    def close(self) -> None:
        """Finish the bag (idempotent)."""
        if self.recorder is not None:
            self.recorder.close()

    def destroy_node(self) -> None:
        """Finish the bag, then destroy the node."""
        self.close()
        super().destroy_node()


@contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """An Event set by SIGINT or SIGTERM while the block runs (the previous handlers are restored after).

    Used instead of rclpy's handlers so that a signal never interrupts a write half-way."""
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def spin_recording(executor: Any, node: RecorderNode, stop: threading.Event, duration_s: float | None = None,
                   on_spin: Callable[[], None] | None = None) -> None:
    """Spin until ``stop`` is set, ``duration_s`` of wall time passed or the context shut down; then
    take in what already arrived (up to 0.5 s) so that it is in the bag. ``on_spin`` after each spin."""
    deadline = None if duration_s is None else time.monotonic() + duration_s
    try:
        while not stop.is_set() and node.context.ok() and (deadline is None or time.monotonic() < deadline):
            executor.spin_once(timeout_sec=0.1)
            if on_spin is not None:
                on_spin()
        drain_end = time.monotonic() + 0.5
        last = -1
        while node.context.ok() and node.recorder.count != last and time.monotonic() < drain_end:
            last = node.recorder.count
            executor.spin_once(timeout_sec=0.05)
    except ExternalShutdownException:
        pass


def record(out: Path | None, duration_s: float | None = None, namespace: str = "", ros_args: list[str] | None = None,
           progress: bool = True, urdf: str | Path | None = None) -> dict[str, Any]:
    """`hjepa-agent record`: a RecorderNode on the environment's DDS domain (ROS_DOMAIN_ID) until
    ``duration_s`` passed or SIGINT/SIGTERM; ``urdf``: its fixed joints on /tf_static. Returns {bag,
    messages, duration_s, topics (those with any)}. FileExistsError if ``out`` holds anything."""
    from rclpy.parameter import Parameter
    from tqdm import tqdm

    ctx = rclpy.Context()
    rclpy.init(context=ctx, args=["hjepa-agent", *(ros_args or [])], signal_handler_options=SignalHandlerOptions.NO)
    node = None
    executor = None
    t0 = time.monotonic()
    try:
        with stop_on_signals() as stop:
            overrides = [Parameter("out", value=str(out))] if out is not None else []
            overrides += [Parameter("urdf", value=str(urdf))] if urdf else []
            node = RecorderNode(context=ctx, namespace=namespace or None, parameter_overrides=overrides)
            executor = SingleThreadedExecutor(context=ctx)
            executor.add_node(node)
            bar = tqdm(desc=f"recording to {node.path}", unit="msg", total=None, disable=not progress)
            shown = 0

            def _progress() -> None:
                nonlocal shown
                if node.recorder.count != shown:
                    bar.update(node.recorder.count - shown)
                    shown = node.recorder.count
                    bar.set_postfix(topics=sum(1 for n in node.recorder.counts.values() if n), refresh=False)

            spin_recording(executor, node, stop, duration_s, _progress)
        _progress()
        bar.close()
        return {"bag": str(node.path), "messages": node.recorder.count,
                "duration_s": round(time.monotonic() - t0, 3),
                "topics": {t: n for t, n in node.recorder.counts.items() if n}}
    finally:
        if executor is not None:
            executor.shutdown()
        if node is not None:
            node.destroy_node()
        if ctx.ok():
            rclpy.shutdown(context=ctx)


def main() -> None:
    """Console script `recorder` (ros2 run / robot.launch.py record:=true): record until SIGINT/SIGTERM
    or rclpy shutdown, then close the bag. Exits 2 if ``out`` is taken or invalid, or ``urdf`` unreadable."""
    rclpy.init(args=sys.argv, signal_handler_options=SignalHandlerOptions.NO)
    node = None
    try:
        with stop_on_signals() as stop:
            node = RecorderNode()
            executor = SingleThreadedExecutor()
            executor.add_node(node)
            spin_recording(executor, node, stop)
        executor.shutdown()
        node.get_logger().info(f"closed {node.path}: {node.recorder.count} messages")
    except (ConfigError, FileExistsError, ValueError) as exc:
        logging.getLogger("hjepa_agent").error("refusing to start: %s", exc)
        sys.exit(2)
    finally:
        if node is not None:
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()


class MetricsNode(Node):
    """Taps agent/mode and agent/events for the runner's per-episode figures."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("run_metrics", **kwargs)
        self.mode = Mode.SAFE_STOP
        self.events: list[dict[str, Any]] = []
        from hjepa_agent.nodes.guard import qos_for
        from hjepa_agent.nodes.traffic import counted_subscription
        counted_subscription(self, String, "agent/mode", self._on_mode, RELIABLE_QOS)
        counted_subscription(self, String, "agent/events", self._on_event, qos_for("events", subscriber=True))

    def reset(self) -> None:
        """New episode."""
        self.mode = Mode.SAFE_STOP
        self.events = []

    def _on_mode(self, msg: String) -> None:
        if msg.data in Mode.__members__:
            self.mode = Mode[msg.data]

    def _on_event(self, msg: String) -> None:
        try:
            self.events.append(json.loads(msg.data))
        except json.JSONDecodeError:
            self.events.append({"raw": msg.data})
