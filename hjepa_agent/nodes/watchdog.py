"""watchdog node: decides the mode from risk, ambiguity, input freshness and the ego model's limits.

Subscribes: camera/image_raw, scan (freshness), odom, battery_state, motor_temperature,
            agent/world_state, agent/habitual/cmd, agent/plan.
Publishes:  agent/mode (std_msgs/String: HABITUAL|PLANNING|OPTIMISING|SAFE_STOP, at tick_hz),
            agent/speed_scale (std_msgs/Float32 in [0, 1]: battery/temperature derating, at tick_hz),
            agent/habitual_stalled (std_msgs/Bool, at tick_hz: deliberating because the habitual
            policy made no progress, so the planner must not refine its proposal),
            agent/events (String, JSON per transition with reasons), /diagnostics.
Services:   agent/clear_safe_stop (std_srvs/Trigger): unlatches SAFE_STOP once its causes are gone.
Parameters: ego_model, watchdog_config (YAML paths, read-only), tick_hz [Hz].
"""
from __future__ import annotations


from geometry_msgs.msg import TwistStamped
from nav_msgs.msg import Odometry
from rclpy.node import Node
from sensor_msgs.msg import BatteryState, Image, JointState, LaserScan, Temperature
from std_msgs.msg import Bool, Float32, String
from std_srvs.srv import Trigger

from hjepa_agent.core.watchdog import Watchdog, load_watchdog_config
from hjepa_agent.nodes.bridge import event_to_json
from hjepa_agent.nodes.codec import from_time, msg_to_plan, msg_to_proposal, msg_to_world_state
from hjepa_agent.nodes.common import (decode_or_none, RELIABLE_QOS, SENSOR_QOS, Diagnostics, declare, declare_ego_model, now_s,
                                      run_node)
from hjepa_agent.paths import data_path


class WatchdogNode(Node):
    """Thin wrapper around core.watchdog.Watchdog."""

    def __init__(self, **kwargs) -> None:
        super().__init__("watchdog", **kwargs)
        ego = declare_ego_model(self)
        path = declare(self, "watchdog_config", "", "watchdog thresholds YAML", read_only=True)
        tick_hz = declare(self, "tick_hz", 20.0, "mode decision rate", unit="Hz", lo=1.0, hi=200.0, read_only=True)
        self.core = Watchdog(load_watchdog_config(path or data_path("config", "watchdog.yaml")), ego)
        self.mode_pub = self.create_publisher(String, "agent/mode", RELIABLE_QOS)
        self.events = self.create_publisher(String, "agent/events", RELIABLE_QOS)
        self.scale_pub = self.create_publisher(Float32, "agent/speed_scale", RELIABLE_QOS)
        self.stalled_pub = self.create_publisher(Bool, "agent/habitual_stalled", RELIABLE_QOS)
        self.rejected = 0
        self.create_subscription(Image, "camera/image_raw", lambda m: self._fresh("camera", m), SENSOR_QOS)
        self.create_subscription(LaserScan, "scan", lambda m: self._fresh("scan", m), SENSOR_QOS)
        self.create_subscription(Odometry, "odom", self.on_odom, SENSOR_QOS)
        self.create_subscription(BatteryState, "battery_state", self.on_battery, SENSOR_QOS)
        self.create_subscription(Temperature, "motor_temperature", self.on_temperature, SENSOR_QOS)
        self.create_subscription(JointState, "agent/world_state", self.on_world_state, RELIABLE_QOS)
        self.create_subscription(TwistStamped, "agent/habitual/cmd", self.on_habitual, RELIABLE_QOS)
        self.create_subscription(JointState, "agent/plan", self.on_plan, RELIABLE_QOS)
        self.create_service(Trigger, "agent/clear_safe_stop", self.on_clear)
        self.diag = Diagnostics(self)
        self.create_timer(1.0 / tick_hz, self.on_tick)
        self.create_timer(1.0, self.report)
        self.last = None

    def _fresh(self, name: str, msg) -> None:
        self.core.on_input(name, from_time(msg.header.stamp), now_s(self))

    def on_odom(self, msg: Odometry) -> None:
        """Freshness and measured speed."""
        self._fresh("odom", msg)
        self.core.on_odom(msg.twist.twist.linear.x, msg.twist.twist.angular.z, now_s(self))

    def on_battery(self, msg: BatteryState) -> None:
        """Freshness and charge (BatteryState.percentage is 0..1)."""
        self._fresh("battery", msg)
        self.core.on_battery(100.0 * msg.percentage, now_s(self))

    def on_temperature(self, msg: Temperature) -> None:
        """Freshness and motor temperature (degC)."""
        self._fresh("temperature", msg)
        self.core.on_temperature(msg.temperature, now_s(self))

    def on_world_state(self, msg: JointState) -> None:
        """Freshness, ambiguity and the state the risk is computed in."""
        ws = decode_or_none(self, msg_to_world_state, msg, "world state")
        if ws is None:
            self.rejected += 1
            return
        self.core.on_input("world_state", ws.stamp_s, now_s(self))
        self.core.on_world_state(ws, now_s(self))

    def on_habitual(self, msg: TwistStamped) -> None:
        """The habitual proposal, whose risk decides HABITUAL vs PLANNING."""
        p = msg_to_proposal(msg, "habitual")
        self.core.on_input("habitual", p.stamp_s, now_s(self))
        self.core.on_habitual(p, now_s(self))

    def on_plan(self, msg: JointState) -> None:
        """The best plan, whose risk decides PLANNING vs OPTIMISING."""
        plan = decode_or_none(self, msg_to_plan, msg, "plan")
        if plan is None:
            self.rejected += 1
            return
        self.core.on_input("planner", plan.stamp_s, now_s(self))
        self.core.on_plan(plan, now_s(self))

    def on_clear(self, request, response):
        """agent/clear_safe_stop."""
        ok, message = self.core.clear_safe_stop(now_s(self))
        response.success, response.message = ok, message
        return response

    def on_tick(self) -> None:
        """Decide and publish the mode; publish and log every transition with its reasons."""
        out = self.core.tick(now_s(self))
        self.mode_pub.publish(String(data=out.mode.name))
        self.scale_pub.publish(Float32(data=float(out.speed_scale)))
        self.stalled_pub.publish(Bool(data=bool(out.habitual_stalled)))
        for ev in out.events:
            self.events.publish(String(data=event_to_json(ev)))
            self.get_logger().info(f"{ev.kind}: {'; '.join(ev.reasons)}")
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
