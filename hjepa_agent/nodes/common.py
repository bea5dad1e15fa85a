"""Helpers shared by the nodes: parameter declaration with descriptors, /diagnostics, QoS, main()."""
from __future__ import annotations

import faulthandler
import logging
import signal
import sys
import threading
from typing import Any, Callable

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy._rclpy_pybind11 import RCLError
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node

from hjepa_agent.config.ego_model import EgoModel, load_ego_model
from hjepa_agent.config.loader import ConfigError
from hjepa_agent.core.fingerprint import RobotFingerprint, robot_fingerprint
from hjepa_agent.core.models import ModelMismatchError
from hjepa_agent.nodes.guard import RELIABLE_QOS, SENSOR_QOS
from hjepa_agent.config.paths import data_path
from hjepa_agent.sim.robot import load_robot_description

START_ERRORS = (ConfigError, ModelMismatchError, FileNotFoundError, ValueError)
"""What a node raises when it refuses to start (a bad file, key or value; a model trained for another
robot): ``run_node`` exits 2 with it, and a managed node's configure fails with it (nodes/guard.py
GuardedLifecycleNode)."""

LEVELS = {"OK": DiagnosticStatus.OK, "WARN": DiagnosticStatus.WARN, "ERROR": DiagnosticStatus.ERROR,
          "STALE": DiagnosticStatus.STALE}


def declare(node: Node, name: str, default: Any, description: str, *, unit: str = "",
            lo: float | None = None, hi: float | None = None, live: bool = False) -> Any:
    """Declare a parameter with a descriptor (unit in the description, range, read_only) and return its value.

    Every parameter is read-only at run time (read once at start: a live set would be ignored, or
    would change a safety decision under the robot) unless ``live``: then a node callback hands each
    change to its core, which checks it (the operating limits and watchdog thresholds may only be
    tightened: config/thresholds.py tighten_only, the one rule). rclpy itself rejects values outside
    the range, at start and when set live, and refuses a read-only one naming it.
    """
    desc = ParameterDescriptor(description=f"{description}" + (f" [{unit}]" if unit else ""), read_only=not live)
    if lo is not None and hi is not None:
        if isinstance(default, bool):
            pass
        elif isinstance(default, int):
            desc.integer_range = [IntegerRange(from_value=int(lo), to_value=int(hi), step=0)]
        elif isinstance(default, float):
            desc.floating_point_range = [FloatingPointRange(from_value=float(lo), to_value=float(hi), step=0.0)]
    return node.declare_parameter(name, default, desc).value


def declare_ego_path(node: Node) -> str:
    """Declare the read-only ``ego_model`` path parameter; return the file it names (empty: the shipped one)."""
    path = declare(node, "ego_model", "", "ego-model YAML (hard limits are read once, here)")
    return path or str(data_path("config", "ego_model.yaml"))


def declare_ego_model(node: Node) -> EgoModel:
    """Declare the read-only ``ego_model`` path parameter and load the file; ConfigError on a bad file."""
    return load_ego_model(declare_ego_path(node))


def declare_robot(node: Node, ego: EgoModel) -> RobotFingerprint:
    """Declare the read-only ``robot`` path parameter (the robot description YAML, config/robots/*.yaml,
    as the simulator's; empty: the shipped diffbot.yaml) and return the fingerprint of that robot with
    ``ego`` (core/fingerprint.py): what every model this node loads must have been trained for. On a
    real robot the file describes it (wheels, drive, camera, scan, mounts): robot.launch.py robot:=...
    ConfigError on a bad file."""
    return robot_fingerprint_at(node, declare_robot_path(node), ego)


def declare_robot_path(node: Node) -> str:
    """Declare the read-only ``robot`` path parameter (declare_robot); return the file it names."""
    path = declare(node, "robot", "", "robot description YAML (config/robots/*.yaml; empty: the shipped "
                   "diffbot.yaml): the robot the models must have been trained for")
    return path or str(data_path("config", "robots", "diffbot.yaml"))


def robot_fingerprint_at(node: Node, robot: str, ego: EgoModel) -> RobotFingerprint:
    """The fingerprint of the robot described in the file ``robot`` with ``ego`` (declare_robot), for
    ``node``'s errors; ConfigError on a bad file."""
    return robot_fingerprint(load_robot_description(robot), ego, robot, ego.source, f"{node.get_name()} node")


class Diagnostics:
    """Publishes one DiagnosticStatus for this node on /diagnostics, stamped on the node's ROS clock
    (``stamp``: another clock, e.g. the simulator's sim time, so one topic never mixes clocks). A
    guarded node's input counters, ages and failure are added to every status."""

    def __init__(self, node: Node, hardware_id: str = "hjepa_agent", stamp: Callable[[], Any] | None = None) -> None:
        self._node = node
        self._pub = node.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._hw = hardware_id
        self._stamp = stamp

    def publish(self, level: str, message: str, values: dict[str, Any]) -> None:
        """Publish level (OK/WARN/ERROR/STALE), a message and key values. A failed node always says
        ERROR with its failure."""
        arr = DiagnosticArray()
        arr.header.stamp = self._stamp() if self._stamp is not None else self._node.get_clock().now().to_msg()
        failure = getattr(self._node, "failure", None)
        if failure is not None:
            level, message = "ERROR", f"failed stop in {failure.where}: {failure.error}"
        st = DiagnosticStatus(level=LEVELS[level], name=f"hjepa_agent/{self._node.get_name()}",
                              message=message, hardware_id=self._hw)
        guard = getattr(self._node, "guard_values", None)
        values = {**values, **(guard() if guard is not None else {})}
        st.values = [KeyValue(key=str(k), value=str(v)) for k, v in values.items()]
        arr.status = [st]
        self._pub.publish(arr)


STOP_GRACE_S = 8.0
"""A node still running this long after SIGINT/SIGTERM prints every thread's stack and exits 1 (under
rehearse's STOP_TIMEOUT_S, 10 s, after which it would be killed without a word)."""


def stop_on_signals() -> threading.Event:
    """Make SIGINT and SIGTERM a request to stop instead of an exception raised wherever Python happens to
    be. Installed before rclpy.init, which chains its own handler (shut the contexts down, so the executor
    raises ExternalShutdownException) in front of this one. Python's default SIGINT handler raised
    KeyboardInterrupt at the next bytecode; when that was inside a message's constructor called from
    rclpy's take_message, pybind11 turned it into "RuntimeError: Unable to convert call argument '0'",
    which escaped spin and made a node stopped by Ctrl-C exit 1 (CI, a rehearsal's watchdog). A second
    signal while the first is being handled still raises KeyboardInterrupt, so a stuck node can be
    interrupted, and a node still running STOP_GRACE_S after the first prints every thread's stack
    (faulthandler) and exits 1: a stop that hangs is a failure with its place named, not a silent wait for
    SIGKILL (a bridge process once outlived the test's 30 s after SIGTERM; not reproduced since)."""
    stop = threading.Event()

    def handler(signum, frame):
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        faulthandler.dump_traceback_later(STOP_GRACE_S, exit=True)

    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, handler)
    return stop


def run_node(factory: Callable[[], Node]) -> None:
    """Standard main: init, build the node, spin, shut down. Exits 2 with a clear message when the
    node refuses to start (START_ERRORS: bad config, mismatched model; for a managed node with
    ``autostart``, its configure failed and the constructor raised the reason), 3 when it failed stop
    while running (a callback raised: its traceback is in the log and on /diagnostics). A managed node
    with ``autostart: false`` spins unconfigured, waiting for a lifecycle manager; a configure that
    fails then leaves it unconfigured and running, as a lifecycle manager expects (nodes/guard.py
    GuardedLifecycleNode). SIGINT and SIGTERM stop it cleanly (exit 0; ``stop_on_signals``)."""
    stopping = stop_on_signals()
    rclpy.init(args=sys.argv)
    node = None
    try:
        try:
            node = factory()
        except Exception as exc:
            if not stopping.is_set():
                raise
            # a signal shut the context down while the node was being built: its next call into rclpy
            # (creating the node, publishing a parameter event) failed on it; a stop, not a failure to start
            logging.getLogger("hjepa_agent").info("stopped on a signal while starting: %s", exc)
            return
        if hasattr(node, "on_fail_stop"):
            node.on_fail_stop = lambda failure: rclpy.try_shutdown(context=node.context)
        try:
            rclpy.spin(node)
        except ExternalShutdownException:
            pass
        except (RCLError, RuntimeError) as exc:
            if node.context.ok() and not stopping.is_set():
                raise
            # a signal shut the context down while the executor was taking a message or between waits: a
            # clean stop, not a failure (a rehearsal's processes stopped this way showed tracebacks and
            # exit code 1, 3 in 20 episodes)
            logging.getLogger("hjepa_agent").info("stopping on a signal; the executor said: %s", exc)
        if getattr(node, "failure", None) is not None:
            logging.getLogger("hjepa_agent").error("%s failed stop: %s", node.get_name(), node.failure.error)
            sys.exit(3)
    except START_ERRORS as exc:
        logging.getLogger("hjepa_agent").error("refusing to start: %s", exc)
        sys.exit(2)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
