"""Helpers shared by the nodes: parameter declaration with descriptors, /diagnostics, QoS, main()."""
from __future__ import annotations

import logging
import sys
from typing import Any, Callable

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy, HistoryPolicy, qos_profile_sensor_data

from hjepa_agent.config.ego_model import EgoModel, load_ego_model
from hjepa_agent.config.loader import ConfigError
from hjepa_agent.core.models import ModelMismatchError
from hjepa_agent.paths import data_path

SENSOR_QOS = qos_profile_sensor_data
"""Best-effort subscription QoS for sensor streams (matches reliable and best-effort publishers)."""
RELIABLE_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
LEVELS = {"OK": DiagnosticStatus.OK, "WARN": DiagnosticStatus.WARN, "ERROR": DiagnosticStatus.ERROR,
          "STALE": DiagnosticStatus.STALE}


def declare(node: Node, name: str, default: Any, description: str, *, unit: str = "",
            lo: float | None = None, hi: float | None = None, read_only: bool = False) -> Any:
    """Declare a parameter with a descriptor (unit in the description, range, read_only) and return its value.

    rclpy itself rejects values outside the range, at start and when set live.
    """
    desc = ParameterDescriptor(description=f"{description}" + (f" [{unit}]" if unit else ""), read_only=read_only)
    if lo is not None and hi is not None:
        if isinstance(default, bool):
            pass
        elif isinstance(default, int):
            desc.integer_range = [IntegerRange(from_value=int(lo), to_value=int(hi), step=0)]
        elif isinstance(default, float):
            desc.floating_point_range = [FloatingPointRange(from_value=float(lo), to_value=float(hi), step=0.0)]
    return node.declare_parameter(name, default, desc).value


def declare_ego_model(node: Node) -> EgoModel:
    """Declare the read-only ``ego_model`` path parameter and load the file; ConfigError on a bad file."""
    path = declare(node, "ego_model", "", "ego-model YAML (hard limits are read once, here)", read_only=True)
    return load_ego_model(path or data_path("config", "ego_model.yaml"))


class Diagnostics:
    """Publishes one DiagnosticStatus for this node on /diagnostics."""

    def __init__(self, node: Node, hardware_id: str = "hjepa_agent") -> None:
        self._node = node
        self._pub = node.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._hw = hardware_id

    def publish(self, level: str, message: str, values: dict[str, Any]) -> None:
        """Publish level (OK/WARN/ERROR/STALE), a message and key values."""
        arr = DiagnosticArray()
        arr.header.stamp = self._node.get_clock().now().to_msg()
        st = DiagnosticStatus(level=LEVELS[level], name=f"hjepa_agent/{self._node.get_name()}",
                              message=message, hardware_id=self._hw)
        st.values = [KeyValue(key=str(k), value=str(v)) for k, v in values.items()]
        arr.status = [st]
        self._pub.publish(arr)


def decode_or_none(node: Node, decoder: Callable[[Any], Any], msg: Any, what: str) -> Any:
    """Decode ``msg`` with ``decoder``; on a malformed message log a throttled warning and return None
    (the caller counts the rejection; nothing downstream sees the message)."""
    try:
        return decoder(msg)
    except ValueError as exc:  # codec.MessageError and core validation errors
        node.get_logger().warning(f"{what} rejected: {exc}", throttle_duration_sec=5.0)
        return None


def now_s(node: Node) -> float:
    """The node's clock (sim time under use_sim_time) in seconds."""
    return node.get_clock().now().nanoseconds * 1e-9


def run_node(factory: Callable[[], Node]) -> None:
    """Standard main: init, build the node, spin, shut down. Exits non-zero with a clear
    message when the node refuses to start (bad config, mismatched model)."""
    rclpy.init(args=sys.argv)
    node = None
    try:
        node = factory()
        rclpy.spin(node)
    except (ConfigError, ModelMismatchError, FileNotFoundError, ValueError) as exc:
        logging.getLogger("hjepa_agent").error("refusing to start: %s", exc)
        sys.exit(2)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
