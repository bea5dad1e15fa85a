"""watchdog node: decides the mode from risk, ambiguity, input freshness and the ego model's limits.

Subscribes: camera/image_raw, scan (freshness), odom, battery_state, motor_temperature,
            agent/world_state, agent/habitual/cmd, agent/plan, cmd_vel (the slip check).
Publishes:  agent/mode (std_msgs/String: HABITUAL|PLANNING|OPTIMISING|SAFE_STOP, at tick_hz),
            agent/speed_scale (std_msgs/Float32 in [0, 1]: battery/temperature derating, at tick_hz),
            agent/habitual_stalled (std_msgs/Bool, at tick_hz: deliberating because the habitual
            policy made no progress, so the planner must not refine its proposal),
            agent/events (String, JSON per transition with reasons), /diagnostics,
            agent/watchdog/journal (String, JSON per tick: the inputs consumed and when, the decision;
            what `hjepa-agent tune replay` re-runs, see WatchdogNode),
            cmd_vel (TwistStamped, frame_id watchdog_stop) only while the bridge is silent (its cmd_vel
            older than bridge_max_age_s): a ramp to zero at the ego model's deceleration limits, so
            the watchdog can stop the base alone (core.watchdog.Watchdog.bridge_stop).
Services:   agent/clear_safe_stop (std_srvs/Trigger): unlatches SAFE_STOP once its causes are gone.
Parameters: ego_model, watchdog_config (YAML paths, read-only), models_dir and typical_risk (the
            learned typical risk, core/risk.py; read-only), tick_hz [Hz], journal, enabled
            (false: simulation only, for the fault suite's watchdog-off comparison), and every live
            threshold of core.watchdog.TIGHTER (start: the YAML's; live: tighten only).
"""
from __future__ import annotations

import dataclasses
import json
import uuid

from geometry_msgs.msg import TwistStamped
from nav_msgs.msg import Odometry
from rcl_interfaces.msg import SetParametersResult
from rclpy.node import Node
from sensor_msgs.msg import BatteryState, Image, JointState, LaserScan, Temperature
from std_msgs.msg import Bool, Float32, String
from std_srvs.srv import Trigger

from hjepa_agent.core.types import Mode
from hjepa_agent.config.loader import ConfigError
from hjepa_agent.core.models import load_typical_risk
from hjepa_agent.core.risk import TypicalRisk
from hjepa_agent.core.watchdog import LIVE_UNITS, TIGHTER, Watchdog, load_watchdog_config, tightened
from hjepa_agent.nodes.bridge import event_to_json
from hjepa_agent.nodes.codec import from_time, msg_to_plan, msg_to_proposal, msg_to_world_state, time_ns, to_time
from hjepa_agent.nodes.common import RELIABLE_QOS, SENSOR_QOS, Diagnostics, declare, declare_ego_model, now_s, run_node
from hjepa_agent.paths import data_path


INPUTS: dict[str, tuple[str, type]] = {
    "camera": ("camera/image_raw", Image), "scan": ("scan", LaserScan), "odom": ("odom", Odometry),
    "battery": ("battery_state", BatteryState), "temperature": ("motor_temperature", Temperature),
    "world_state": ("agent/world_state", JointState), "habitual": ("agent/habitual/cmd", TwistStamped),
    "planner": ("agent/plan", JointState), "command": ("cmd_vel", TwistStamped),
}
"""What the watchdog consumes: input kind -> (topic, message type). The journal names inputs by kind."""


OWN_STOP_FRAME = "watchdog_stop"
"""header.frame_id of the commands the watchdog sends the base itself while the bridge is silent."""


def apply_input(core: Watchdog, kind: str, msg, now: float) -> bool:
    """Feed one message of ``kind`` (INPUTS) to the core at time ``now`` (s), as the node does and
    as ``hjepa-agent tune replay`` does again offline; False if the message was rejected."""
    if kind in ("camera", "scan"):
        core.on_input(kind, from_time(msg.header.stamp), now)
    elif kind == "odom":
        core.on_input("odom", from_time(msg.header.stamp), now)
        core.on_odom(msg.twist.twist.linear.x, msg.twist.twist.angular.z, now, msg.twist.twist.linear.y)
    elif kind == "battery":   # BatteryState.percentage is 0..1
        core.on_input("battery", from_time(msg.header.stamp), now)
        core.on_battery(100.0 * msg.percentage, now)
    elif kind == "temperature":
        core.on_input("temperature", from_time(msg.header.stamp), now)
        core.on_temperature(msg.temperature, now)
    elif kind == "world_state":
        try:
            ws = msg_to_world_state(msg)
        except ValueError:   # codec.MessageError and core validation errors
            return False
        core.on_input("world_state", ws.stamp_s, now)
        core.on_world_state(ws, now)
    elif kind == "habitual":
        try:
            p = msg_to_proposal(msg, "habitual")
        except ValueError:
            return False
        core.on_input("habitual", p.stamp_s, now)
        core.on_habitual(p, now)
    elif kind == "planner":
        try:
            plan = msg_to_plan(msg)
        except ValueError:
            return False
        core.on_input("planner", plan.stamp_s, now)
        core.on_plan(plan, now)
    elif kind == "command":   # what the bridge sent the base: the slip check and the bridge's heartbeat
        if msg.header.frame_id != OWN_STOP_FRAME:   # not the watchdog's own stop (bridge silent)
            core.on_command(msg.twist.linear.x, now, msg.twist.angular.z)
    else:
        raise ValueError(f"unknown watchdog input kind {kind!r}")
    return True


class WatchdogNode(Node):
    """Thin wrapper around core.watchdog.Watchdog.

    With ``journal`` (default true) it publishes on agent/watchdog/journal, once per tick, one JSON
    object: {"session": id of this node's run, "tick": the tick's time (s), "inputs": [[kind,
    header stamp (ns), time consumed (s)], ...] in the order consumed since the previous tick
    ("clear" for agent/clear_safe_stop calls, with its result), "mode": the mode decided,
    "events": [[kind, reasons], ...]}. With the recorded inputs that is everything needed to run the
    same core again, offline, and get the same decisions at the same times (``hjepa-agent tune replay``).
    """

    def __init__(self, **kwargs) -> None:
        super().__init__("watchdog", **kwargs)
        ego = declare_ego_model(self)
        path = declare(self, "watchdog_config", "", "watchdog thresholds YAML", read_only=True)
        tick_hz = declare(self, "tick_hz", 20.0, "mode decision rate", unit="Hz", lo=1.0, hi=200.0, read_only=True)
        self.journal = declare(self, "journal", True, "publish agent/watchdog/journal (what tune replay re-runs)",
                               read_only=True)
        self.enabled = declare(self, "enabled", True, "false: publish HABITUAL and full speed whatever happens "
                               "(the fault suite's watchdog-off comparison; refused without use_sim_time)",
                               read_only=True)
        if not self.enabled and not self.get_parameter("use_sim_time").value:
            raise ValueError("watchdog: enabled: false is for simulation only (use_sim_time: true); "
                             "on a robot the watchdog cannot be switched off")
        models_dir = declare(self, "models_dir", "", "directory with manifest.yaml and typical_risk.onnx "
                             "(empty: the package's models)", read_only=True)
        use_typical = declare(self, "typical_risk", True, "score risk against the learned typical risk "
                              "(core/risk.py); false: no risk-deviation scores", read_only=True)
        typical = None
        if use_typical:
            typical = TypicalRisk(load_typical_risk(models_dir or data_path("models"), expected_robot=ego.robot))
        start = load_watchdog_config(path or data_path("config", "watchdog.yaml"))
        self.ego, self.start_cfg = ego, start
        for name in TIGHTER:   # live thresholds: tighten only, checked in _on_set (core.watchdog.tightened)
            unit, lo, hi = LIVE_UNITS[name]
            declare(self, name, float(getattr(start, name)), f"watchdog threshold (config/watchdog.yaml); live, "
                    f"tighten only ({'raise' if TIGHTER[name] > 0 else 'lower'} it)", unit=unit, lo=lo, hi=hi)
        self.core = Watchdog(dataclasses.replace(start, **{n: float(self.get_parameter(n).value) for n in TIGHTER}), ego,
                             typical)
        self.mode_pub = self.create_publisher(String, "agent/mode", RELIABLE_QOS)
        self.events = self.create_publisher(String, "agent/events", RELIABLE_QOS)
        self.scale_pub = self.create_publisher(Float32, "agent/speed_scale", RELIABLE_QOS)
        self.stalled_pub = self.create_publisher(Bool, "agent/habitual_stalled", RELIABLE_QOS)
        self.journal_pub = self.create_publisher(String, "agent/watchdog/journal", RELIABLE_QOS)
        self.stop_pub = self.create_publisher(TwistStamped, "cmd_vel", RELIABLE_QOS)   # only while the bridge is silent
        self.session = uuid.uuid4().hex[:12]
        self.consumed: list[list] = []
        self.add_on_set_parameters_callback(self._on_set)
        self.rejected = 0
        for kind, (topic, cls) in INPUTS.items():
            qos = RELIABLE_QOS if topic.startswith("agent/") else SENSOR_QOS
            self.create_subscription(cls, topic, lambda m, k=kind: self.on_input(k, m), qos)
        self.create_service(Trigger, "agent/clear_safe_stop", self.on_clear)
        self.diag = Diagnostics(self)
        self.create_timer(1.0 / tick_hz, self.on_tick)
        self.create_timer(1.0, self.report)
        self.last = None

    def _on_set(self, params) -> SetParametersResult:
        """Live threshold changes: tighten only, range and cross-field checked; journalled for replay."""
        changes = {p.name: float(p.value) for p in params if p.name in TIGHTER}
        if not changes:
            return SetParametersResult(successful=True)
        try:
            cfg = tightened(self.start_cfg, self.core.cfg, changes, self.ego)
        except (ValueError, ConfigError) as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        self.core.reconfigure(cfg)
        if self.journal:
            self.consumed.append(["params", changes, now_s(self)])
        self.get_logger().info(f"thresholds changed live: {changes}")
        return SetParametersResult(successful=True)

    def on_input(self, kind: str, msg) -> None:
        """Any input: freshness, and what the core reads from it (apply_input)."""
        now = now_s(self)
        if not apply_input(self.core, kind, msg, now):
            self.rejected += 1
            self.get_logger().warning(f"rejected a malformed {kind} message", throttle_duration_sec=5.0)
        if self.journal:
            self.consumed.append([kind, time_ns(msg.header.stamp), now])

    def on_clear(self, request, response):
        """agent/clear_safe_stop."""
        now = now_s(self)
        ok, message = self.core.clear_safe_stop(now)
        if self.journal:
            self.consumed.append(["clear", int(ok), now])
        response.success, response.message = ok, message
        return response

    def on_tick(self) -> None:
        """Decide and publish the mode; publish and log every transition with its reasons."""
        now = now_s(self)
        decided = self.core.tick(now)
        out = decided
        if not self.enabled:   # simulation only (checked at start): decisions are made, not enforced
            out = dataclasses.replace(decided, mode=Mode.HABITUAL, speed_scale=1.0, habitual_stalled=False)
        stop = self.core.bridge_stop(now) if self.enabled else None
        if stop is not None:   # the bridge is silent: the watchdog brings the base to a stop itself
            msg = TwistStamped()
            msg.header.stamp = to_time(now)
            msg.header.frame_id = OWN_STOP_FRAME
            msg.twist.linear.x, msg.twist.angular.z = stop
            self.stop_pub.publish(msg)
        self.mode_pub.publish(String(data=out.mode.name))
        self.scale_pub.publish(Float32(data=float(out.speed_scale)))
        self.stalled_pub.publish(Bool(data=bool(out.habitual_stalled)))
        for ev in out.events:
            self.events.publish(String(data=event_to_json(ev)))
            self.get_logger().info(f"{ev.kind}: {'; '.join(ev.reasons)}")
        if self.journal:
            self.journal_pub.publish(String(data=json.dumps(
                {"session": self.session, "tick": now, "inputs": self.consumed, "mode": decided.mode.name,
                 "events": [[ev.kind, list(ev.reasons)] for ev in out.events]})))
            self.consumed = []
        self.last = out

    def report(self) -> None:
        """Publish /diagnostics from the core's status."""
        if self.last is None:
            return
        st = self.last.status
        self.diag.publish(st["level"], f"mode {self.last.mode.name}: {st['message']}",
                          {**st["values"], "rejected": self.rejected})


def main() -> None:
    """Entry point: ros2 run hjepa_agent watchdog."""
    run_node(WatchdogNode)
