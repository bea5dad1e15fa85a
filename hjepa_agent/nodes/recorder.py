"""Run recording: a rosbag2 MCAP of the run's topics, and the mode/event tap the runner reads.

Recorder subscribes to every topic in TOPICS with raw (serialized CDR) callbacks and writes
the bytes unchanged with rosbags, so the file opens in Foxglove and `ros2 bag`.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped, TwistStamped
from nav_msgs.msg import Odometry, Path as PathMsg
from rclpy.node import Node
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import BatteryState, Image, JointState, LaserScan, Temperature
from std_msgs.msg import Bool, Float32, String

from hjepa_agent.core.types import Mode
from hjepa_agent.nodes.common import RELIABLE_QOS

TOPICS: tuple[tuple[str, type], ...] = (
    ("/clock", Clock), ("/camera/image_raw", Image), ("/scan", LaserScan), ("/odom", Odometry),
    ("/joint_states", JointState), ("/battery_state", BatteryState), ("/motor_temperature", Temperature),
    ("/goal_pose", PoseStamped), ("/agent/percept", JointState), ("/agent/world_state", JointState),
    ("/agent/habitual/cmd", TwistStamped), ("/agent/plan", JointState), ("/agent/plan/path", PathMsg),
    ("/agent/plan/route", PathMsg), ("/agent/plan/explanation", String),
    ("/agent/mode", String), ("/agent/speed_scale", Float32), ("/agent/events", String), ("/agent/watchdog/journal", String), ("/agent/estop", Bool), ("/cmd_vel", TwistStamped),
    ("/diagnostics", DiagnosticArray),
)
"""Everything a run is judged on: inputs, world states, plans, modes, events and commands."""


def _type_name(cls: type) -> str:
    module = cls.__module__.split(".")[0]
    return f"{module}/msg/{cls.__name__}"


class Recorder:
    """Writes TOPICS to an MCAP rosbag2 at ``path`` (wall-clock receive timestamps)."""

    def __init__(self, path: Path, **node_kwargs: Any) -> None:
        from rosbags.rosbag2 import StoragePlugin, Writer
        from rosbags.typesys import Stores, get_typestore

        if path.exists():
            import shutil
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        self.node = Node("recorder", **node_kwargs)
        self._typestore = get_typestore(Stores.LATEST)
        self._writer = Writer(path, version=9, storage_plugin=StoragePlugin.MCAP)
        self._writer.open()
        self.count = 0
        self._subs = []
        for topic, cls in TOPICS:
            conn = self._writer.add_connection(topic, _type_name(cls), typestore=self._typestore)
            self._subs.append(self.node.create_subscription(
                cls, topic, lambda data, c=conn: self._write(c, data), RELIABLE_QOS, raw=True))

    def _write(self, conn, data: bytes) -> None:
        self._writer.write(conn, self.node.get_clock().now().nanoseconds, data)
        self.count += 1

    def close(self) -> None:
        """Finish the file."""
        self._writer.close()


class MetricsNode(Node):
    """Taps agent/mode and agent/events for the runner's per-episode figures."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("run_metrics", **kwargs)
        self.mode = Mode.SAFE_STOP
        self.events: list[dict[str, Any]] = []
        self.create_subscription(String, "agent/mode", self._on_mode, RELIABLE_QOS)
        self.create_subscription(String, "agent/events", self._on_event, RELIABLE_QOS)

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
